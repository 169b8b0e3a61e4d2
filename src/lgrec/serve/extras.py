"""Endpoints for what a bundle may carry beyond ranking: item categories and friends.

* ``GET /categories?item=ID&k=3`` — the item's most likely categories from the model's
  category head (LMGCN, ``category_head=True``; :mod:`lgrec.models.fused_heads`): a ridge
  regression on the item features with a fitted softmax temperature. 404 when the model has
  no head or the item was added at run time (its features were never seen by the head).
* ``GET /friends?user=ID&k=10`` — friend suggestions (:class:`lgrec.models.friends.
  FriendRecommender`) over the social edges the bundle was saved with (``social.parquet``,
  written by :func:`lgrec.pipeline.save_bundle` for a data set with social edges such as
  lastfm-social). Taste similarity uses the served user vectors. The recommender is fitted on
  the first request, and again after an erasure: an erased user's edges leave the graph and
  they are never suggested. 404 when the bundle has no social edges or the user has none.
"""

import logging
import threading
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import Query
from pydantic import BaseModel

from lgrec.errors import UnknownIdError

__all__ = ["SOCIAL_FILE", "SocialIndex", "install_extras"]
log = logging.getLogger(__name__)
SOCIAL_FILE = "social.parquet"


class CategoryOut(BaseModel):
    category: str
    probability: float


class CategoriesResponse(BaseModel):
    item_id: str
    title: str
    categories: list[CategoryOut]


class FriendOut(BaseModel):
    user_id: str
    score: float
    common_friends: int


class FriendsResponse(BaseModel):
    user: str
    k: int
    alpha: float
    friends: list[FriendOut]


class SocialIndex:
    """The bundle's friendships as rows of the served users, and a friend recommender fitted
    on them lazily (module docstring)."""

    def __init__(self, model_dir: str | Path, state: Any) -> None:
        self.state = state
        self.edges: np.ndarray | None = None
        f = Path(model_dir) / SOCIAL_FILE
        if f.is_file():
            df = pd.read_parquet(f)
            rows = {u: r for r, u in enumerate(state.user_ids[: state.n_base_users])}
            a = df["user_id"].astype(str).map(rows)
            b = df["friend_id"].astype(str).map(rows)
            ok = a.notna() & b.notna()
            self.edges = np.stack([a[ok], b[ok]], axis=1).astype(np.int64)
            log.info("social graph: %d friendships from %s", len(self.edges), f)
        self._lock = threading.Lock()
        self._fitted: tuple[frozenset[int], Any] | None = None

    def recommender(self) -> Any:
        """The :class:`FriendRecommender` of the current (erasure-filtered) graph."""
        from lgrec.models.friends import FriendRecommender

        if self.edges is None:
            raise UnknownIdError(
                "this model was saved without social edges (train it on a data set with "
                "friendships, e.g. lastfm-social): no friend suggestions"
            )
        st = self.state
        n = st.n_base_users
        with st.lock:
            gone = frozenset(r for r in range(n) if not st.user_ids[r])
            vectors = st.U[:n].numpy().copy()
        with self._lock:
            if self._fitted is None or self._fitted[0] != gone:
                e = self.edges
                if gone:
                    keep = ~(np.isin(e[:, 0], list(gone)) | np.isin(e[:, 1], list(gone)))
                    e = e[keep]
                self._fitted = (gone, FriendRecommender().fit(e, vectors))
            return self._fitted[1]

    def suggest(self, u: int, k: int) -> tuple[list[int], list[float], list[int], float]:
        """Rows, scores and common-friend counts of ``u``'s top-``k`` suggestions, and α."""
        st = self.state
        if u >= st.n_base_users:
            raise UnknownIdError("a user created at run time has no friendships in the model")
        rec = self.recommender()
        social = rec.social_
        if social[u].nnz == 0:
            raise UnknownIdError(f"user {st.user_ids[u]!r} has no friendships in the model")
        ids, scores = rec.recommend([u], k=min(k + 64, st.n_base_users - 1))
        keep = [j for j, v in enumerate(ids[0].tolist()) if st.user_ids[v]][:k]
        rows = ids[0][keep]
        common = np.asarray((social[rows] @ social[u].T).todense()).ravel().astype(int)
        return rows.tolist(), scores[0][keep].tolist(), common.tolist(), float(rec.alpha_)


def install_extras(app: Any, st: Any, pid: Any, read: Any, errs: dict) -> None:
    """Add ``/categories`` and ``/friends`` (module docstring) to ``app``."""
    from lgrec.serve.app import ItemQ, K, UserQ

    social = SocialIndex(st.model_dir, st)

    @app.get("/categories", response_model=CategoriesResponse, responses=errs, dependencies=[read])
    def categories(item: ItemQ, k: Annotated[int, Query(ge=1, le=100)] = 3) -> CategoriesResponse:
        """The item's ``k`` most likely categories (LMGCN's category head) with probabilities."""
        i = st.item_index(item)
        head = getattr(st.model, "cat_logits_", None)
        if head is None or not hasattr(st.model, "predict_categories"):
            raise UnknownIdError(
                f"model {st.model.name!r} has no category head (LMGCN with category_head=True, "
                "trained on data with categories, has one)"
            )
        if i >= st.n_base_items:
            raise UnknownIdError(f"item {item!r} was added at run time: the head never saw it")
        pred = st.model.predict_categories([i], k=k)[0]
        cats = [CategoryOut(category=c, probability=p) for c, p in pred]
        return CategoriesResponse(item_id=item, title=st.titles[i], categories=cats)

    @app.get("/friends", response_model=FriendsResponse, responses=errs, dependencies=[read])
    def friends(user: UserQ, k: K = 10) -> FriendsResponse:
        """Friend suggestions for ``user``: social proximity blended with taste similarity
        (α chosen on held-out friendships); never the user, a current friend or an erased
        user."""
        st.sync()
        u = st.user_index(pid(user))
        rows, scores, common, alpha = social.suggest(u, k)
        out = [
            FriendOut(user_id=st.user_ids[r], score=s, common_friends=c)
            for r, s, c in zip(rows, scores, common)
        ]
        return FriendsResponse(user=user, k=k, alpha=alpha, friends=out)
