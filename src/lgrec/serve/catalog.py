"""The catalogue of a running server: id ↔ row maps, and users and items created at run time.

Rows are the model's trained users/items first (``0 … n_base − 1``), then runtime ones appended
in creation order, so a row never moves. :meth:`CatalogMixin.add_user` and
:meth:`~CatalogMixin.add_item` only write the store; :meth:`SyncMixin.sync
<lgrec.serve.sync.SyncMixin.sync>` then calls :meth:`~CatalogMixin._load_catalog`, which
appends every stored user/item this process has not seen yet (in ``created_at`` order, so all
processes sharing a store build the same rows):

* an item gets the weighted mean of its text neighbours' vectors (and bias)
  (:func:`lgrec.serve.online.item_from_text`), its text embedding joins ``T``, and its trained
  neighbours and weights are kept for the graph-filter scores;
* a user gets :func:`lgrec.serve.online.user_from_signals` of their liked items and/or text.

A mixin of :class:`lgrec.serve.state.ServeState`: it works on the attributes declared below.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from lgrec.errors import AlreadyExistsError, ConfigError, UnknownIdError
from lgrec.serve import online
from lgrec.store.base import FeedbackStoreProtocol

log = logging.getLogger(__name__)
Tensor = torch.Tensor


class CatalogMixin:
    """Id maps and runtime users/items of :class:`~lgrec.serve.state.ServeState`."""

    store: FeedbackStoreProtocol
    lock: threading.RLock
    user_ids: list[str]
    item_ids: list[str]
    _uidx: dict[str, int]
    _iidx: dict[str, int]
    titles: list[str]
    categories: list[list[str]]
    user_text: dict[int, str]
    user_query: dict[int, Tensor]
    online_seen: dict[int, dict[int, None]]
    _gf_mix: sp.csr_matrix
    U: Tensor
    V: Tensor
    b: Tensor | None
    T: Tensor | None
    encoder: Any
    n_base_items: int
    user_scale: float
    neighbours: int
    tau: float

    # provided by the other parts of ServeState
    text_enabled: bool
    encode: Callable[[str], Tensor]
    sync: Callable[..., int]

    # ---- ids -------------------------------------------------------------------------------
    def _index(self, table: str, what: str, key: str) -> int:
        """Row of ``key`` in the id map ``table``; re-reads the store once, then
        :class:`UnknownIdError`."""
        k = getattr(self, table).get(key)
        if k is None:
            self.sync(force_catalog=True)
            k = getattr(self, table).get(key)
        if k is None:
            raise UnknownIdError(f"unknown {what} {key!r}")
        return k

    def user_index(self, user_id: str) -> int:
        """Row of ``user_id`` (see :meth:`_index`)."""
        return self._index("_uidx", "user", user_id)

    def item_index(self, item_id: str) -> int:
        """Row of ``item_id`` (see :meth:`_index`)."""
        return self._index("_iidx", "item", item_id)

    def has_user(self, user_id: str) -> bool:
        return user_id in self._uidx

    def has_item(self, item_id: str) -> bool:
        return item_id in self._iidx

    def add_user(self, user_id: str, text: str | None, liked: Sequence[str]) -> int:
        """Create a user from liked items and/or text; usable as soon as this returns.

        An id the model or the store knows raises :class:`AlreadyExistsError`; the store's
        unique key decides between concurrent creators (threads or server processes), so
        exactly one succeeds and every process serves the same user."""
        if self.has_user(user_id):
            raise AlreadyExistsError(f"user {user_id!r} already exists")
        if self.store.is_erased(user_id):
            raise AlreadyExistsError(f"user {user_id!r} was erased; its id cannot be reused")
        for i in liked:
            self.item_index(i)
        if text and not self.text_enabled:
            raise ConfigError("this server cannot encode text: create the user from liked_items")
        if not liked and not text:
            raise ConfigError("a new user needs 'text' or at least one of 'liked_items'")
        attrs = {"liked_items": list(dict.fromkeys(liked)), "source": "lgrec-serve"}
        self.store.add_user(user_id, text=text, attributes=attrs, exist_ok=False)
        self.sync(force_catalog=True)
        return self.user_index(user_id)

    def add_item(
        self, item_id: str, title: str, description: str | None, categories: Sequence[str]
    ) -> int:
        """Create an item placed by its text neighbours; recommendable when this returns
        (ids known to the model or the store: :class:`AlreadyExistsError`, as for users)."""
        if self.has_item(item_id):
            raise AlreadyExistsError(f"item {item_id!r} already exists")
        if not self.text_enabled:
            raise ConfigError("this server cannot encode text, so it cannot place new items")
        self.store.add_item(
            item_id, title=title, description=description, categories=categories, exist_ok=False
        )
        self.sync(force_catalog=True)
        return self.item_index(item_id)

    # ---- loading what the store holds -----------------------------------------------------------
    def _load_catalog(self) -> None:
        """Append the store's items, then users, that this process has not loaded yet."""
        new_items = [r for r in self.store.list_items() if r["item_id"] not in self._iidx]
        if new_items:
            self._append_items(new_items)
        new_users = [r for r in self.store.list_users() if r["user_id"] not in self._uidx]
        for rec in sorted(new_users, key=lambda r: (r["created_at"], r["user_id"])):
            self._append_user(rec)

    def _append_items(self, recs: list[dict[str, Any]]) -> None:
        if not self.text_enabled:
            log.warning("%d stored items ignored: this server cannot encode text", len(recs))
            return
        recs = sorted(recs, key=lambda r: (r["created_at"], r["item_id"]))
        rows = pd.DataFrame(
            {
                "item_id": [r["item_id"] for r in recs],
                "title": [r["title"] or "" for r in recs],
                "description": [r["description"] or "" for r in recs],
                "categories": [list(r["categories"]) for r in recs],
            }
        )
        Q = online.unit_rows(torch.from_numpy(self.encoder.encode(online.item_texts(rows))))
        with self.lock:
            V, T, b = self.V, self.T, self.b
        mix: list[tuple[Tensor, Tensor]] = []
        for k in range(len(recs)):  # one by one: later new items may neighbour earlier ones
            vec, bias = online.item_from_text(Q[k], T, V, b, self.neighbours, self.tau)
            mix.append(
                online.text_neighbours(Q[k], T[: self.n_base_items], self.neighbours, self.tau)
            )
            V, T = torch.cat([V, vec[None]]), torch.cat([T, Q[k][None]])
            if b is not None:
                b = torch.cat([b, torch.tensor([bias])])
        with self.lock:  # rows first, ids last: an id found always has its row
            self.V, self.T, self.b = V, T, b
            self._gf_mix = sp.vstack([self._gf_mix, _mix_rows(mix, self.n_base_items)]).tocsr()
            for k, rec in enumerate(recs):
                self._iidx[rec["item_id"]] = len(self.item_ids)
                self.item_ids.append(rec["item_id"])
                self.titles.append(rows["title"][k] or rec["item_id"])
                self.categories.append(rows["categories"][k])

    def _append_user(self, rec: dict[str, Any]) -> None:
        liked = [self._iidx[i] for i in rec["attributes"].get("liked_items", []) if i in self._iidx]
        text = rec.get("text") or None
        q = self.encode(text) if text and self.text_enabled else None
        if not liked and q is None:
            log.warning(
                "stored user %r has neither known liked items nor usable text: skipped",
                rec["user_id"],
            )
            return
        with self.lock:
            vec = online.user_from_signals(
                self.V,
                torch.as_tensor(liked, dtype=torch.long) if liked else None,
                q,
                self.T,
                self.user_scale,
                self.neighbours,
                self.tau,
            )
            u = len(self.user_ids)
            self.U = torch.cat([self.U, vec[None]])
            self._uidx[rec["user_id"]] = u
            self.user_ids.append(rec["user_id"])
            if text:
                self.user_text[u] = text
            if q is not None:
                self.user_query[u] = q
            self.online_seen[u] = dict.fromkeys(liked)


def _mix_rows(mix: list[tuple[Tensor, Tensor]], n_cols: int) -> sp.csr_matrix:
    """``(neighbour rows, weights)`` of new items as the rows of a CSR matrix."""
    lengths = [len(idx) for idx, _ in mix]
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    cols = np.concatenate([idx.numpy() for idx, _ in mix]) if mix else np.zeros(0, np.int64)
    vals = np.concatenate([w.numpy() for _, w in mix]) if mix else np.zeros(0, np.float32)
    return sp.csr_matrix((vals.astype(np.float32), cols, indptr), shape=(len(mix), n_cols))
