"""Social recommenders: friend suggestions, and friends' taste blended into item ranking.

Friend recommendation (:class:`FriendRecommender`) scores a candidate v for user u by mixing
social proximity P (Adamic–Adar, common neighbours or resource allocation on the friendship
graph, :mod:`lgrec.graph.social`) with taste similarity T (cosine of interaction rows or of
learned user embeddings):

    s_uv = (1 − α) · z_u(P_uv) + α · z_u(T_uv)        (z_u = standardisation over row u)

α = 0 is social-only, α = 1 taste-only; α is chosen on held-out friendships (Recall@k of
recovering them), then the model is refitted with every known friendship.

Social blending (:class:`SocialBlend`) adds what a user's friends like to any fitted item
recommender's scores:

    s'_u = z_u(s_u) + β · z_u(m_u),      m_u = mean_{f ∈ F(u)} x_f   (friends' interactions)

or, with ``source="scores"``, m_u = mean_{f ∈ F(u)} s_f (friends' model scores). β is chosen
on the validation split (β = 0 is the base model) and kept for the refit on train + valid.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from lgrec.data.dataset import Dataset
from lgrec.errors import ConfigError, NotFittedError
from lgrec.graph.social import (
    PROXIMITIES,
    check_edges,
    friends_mean,
    proximity,
    social_adjacency,
    split_edges,
    taste_similarity,
)
from lgrec.models.base import Recommender, Tensor, _standardise, as_index_tensor
from lgrec.ranking import topk_stable
from lgrec.train import validation_metrics

log = logging.getLogger(__name__)


def _grid(value: float | Sequence[float], name: str) -> list[float]:
    vals = [float(v) for v in (value if isinstance(value, Sequence) else [value])]
    if not vals:
        raise ConfigError(f"{name}: give at least one value")
    return vals


def _zrows(s: np.ndarray) -> np.ndarray:
    mu = s.mean(1, keepdims=True)
    sd = s.std(1, keepdims=True)
    return (s - mu) / np.maximum(sd, 1e-8)


class FriendRecommender:
    """Suggest friends by social proximity + taste similarity (see module docstring).

    Args:
        alpha: mixing weight α in [0, 1], or a grid chosen on held-out friendships.
        proximity: ``"adamic_adar"``, ``"common_neighbors"`` or ``"resource_allocation"``.
        valid_frac: share of friendships hidden to choose α when ``fit`` gets no
            ``valid_edges``.
        k: cut-off of the validation recall.
        seed: seed of the validation hold-out.
        block_size: query users per block (memory O(block · users)).
    """

    def __init__(
        self,
        alpha: float | Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0),
        proximity: str = "adamic_adar",
        valid_frac: float = 0.1,
        k: int = 20,
        seed: int = 0,
        block_size: int = 1024,
    ):
        self.alpha = alpha
        self.proximity = proximity
        self.valid_frac = valid_frac
        self.k = k
        self.seed = seed
        self.block_size = block_size

    def fit(
        self,
        edges: np.ndarray,
        vectors: np.ndarray | sp.spmatrix,
        *,
        valid_edges: np.ndarray | None = None,
    ) -> FriendRecommender:
        """Fit on friendship ``edges`` ((E, 2) user ids) and user ``vectors`` (U × d dense
        embeddings or a sparse U × I interaction matrix); choose α on ``valid_edges`` (or on a
        seeded ``valid_frac`` of ``edges``), then keep every friendship."""
        if self.proximity not in PROXIMITIES:
            raise ConfigError(
                f"FriendRecommender: proximity={self.proximity!r}; expected one of {PROXIMITIES}"
            )
        grid = _grid(self.alpha, "FriendRecommender.alpha")
        if any(not 0.0 <= a <= 1.0 for a in grid):
            raise ConfigError(f"FriendRecommender: alpha must be in [0, 1], got {self.alpha!r}")
        n = vectors.shape[0]
        edges = check_edges(edges, n, "FriendRecommender.fit(edges)")
        self.vectors_ = vectors if sp.issparse(vectors) else np.asarray(vectors, np.float32)
        self.n_users_ = n
        self.valid_scores_: dict[float, float] = {}
        if len(grid) > 1:
            if valid_edges is None:
                train_e, valid_e = split_edges(edges, n, frac=self.valid_frac, seed=self.seed)
            else:
                train_e, valid_e = edges, check_edges(valid_edges, n, "valid_edges")
            self.social_ = social_adjacency(train_e, n)
            truth = social_adjacency(valid_e, n)
            truth = (truth - truth.multiply(self.social_)).tocsr()
            truth.eliminate_zeros()
            for a in grid:
                self.alpha_ = a
                self.valid_scores_[a] = self._recall(truth, self.k)
            self.alpha_ = max(grid, key=lambda a: (self.valid_scores_[a], -abs(a - 0.5)))
            log.info("friends: α=%s (valid Recall@%d %s)", self.alpha_, self.k, self.valid_scores_)
        else:
            self.alpha_ = grid[0]
        all_e = edges if valid_edges is None else np.concatenate([edges, valid_edges])
        self.social_ = social_adjacency(all_e, n)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "social_"):
            raise NotFittedError("FriendRecommender is not fitted: call fit() first")

    def score(self, users: Any) -> np.ndarray:
        """s_uv for the query users against every user, (len(users), U) float32."""
        self._check_fitted()
        u = as_index_tensor(users, self.n_users_, "user").numpy()
        a = self.alpha_
        out = np.zeros((len(u), self.n_users_), dtype=np.float32)
        if a < 1.0:
            out += (1.0 - a) * _zrows(proximity(self.social_, u, self.proximity))
        if a > 0.0:
            out += a * _zrows(taste_similarity(self.vectors_, u))
        return out

    def recommend(
        self, users: Any, k: int = 10, *, exclude_known: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` candidate friends per user (ids, scores), best first; the user and (when
        ``exclude_known``) their current friends are never suggested."""
        self._check_fitted()
        if not isinstance(k, int | np.integer) or k <= 0:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        u = as_index_tensor(users, self.n_users_, "user").numpy()
        k = min(int(k), self.n_users_ - 1)
        ids, scores = [], []
        for s in range(0, len(u), self.block_size):
            ub = u[s : s + self.block_size]
            sc = torch.from_numpy(self.score(ub))
            sc[torch.arange(len(ub)), torch.from_numpy(ub)] = -torch.inf
            if exclude_known:
                m = self.social_[ub].tocoo()
                sc[torch.from_numpy(m.row).long(), torch.from_numpy(m.col).long()] = -torch.inf
            v, ix = topk_stable(sc, k)
            ids.append(ix.numpy())
            scores.append(v.numpy())
        return np.concatenate(ids), np.concatenate(scores)

    def _recall(self, truth: sp.csr_matrix, k: int) -> float:
        users = np.flatnonzero(np.diff(truth.indptr) > 0)
        if not len(users):
            return 0.0
        top, _ = self.recommend(users, k)
        t = truth[users]
        t.sort_indices()
        n = self.n_users_
        rows = np.arange(len(users), dtype=np.int64)
        keys = np.repeat(rows, np.diff(t.indptr)) * n + t.indices
        q = rows[:, None] * n + top
        hit = keys[np.minimum(np.searchsorted(keys, q), len(keys) - 1)] == q
        return float((hit.sum(1) / np.diff(t.indptr)).mean())


class SocialBlend(Recommender):
    """A fitted item recommender plus friends' taste (module docstring).

    Args:
        base: the item recommender (fitted by :meth:`fit` when not fitted yet).
        edges: (E, 2) friendship pairs of user ids (directed or not; used undirected).
        beta: β ≥ 0, or a grid chosen on the validation split.
        source: ``"interactions"`` (mean of friends' training rows) or ``"scores"`` (mean of
            friends' base-model scores).

    Not persisted: save the base model and rebuild the blend from the edges and ``beta_``.
    """

    name = "social_blend"

    def __init__(
        self,
        base: Recommender,
        edges: np.ndarray,
        beta: float | Sequence[float] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0),
        source: str = "interactions",
    ):
        self.base = base
        self.edges = edges
        self.beta = beta
        self.source = source

    def __repr__(self) -> str:
        return f"SocialBlend(base={self.base!r}, edges={len(self.edges)}, beta={self.beta!r})"

    def fit(self, data: Dataset, *, valid: Dataset | None = None, **fit_kw: Any) -> SocialBlend:
        """Fit ``base`` (unless fitted) on ``data``; choose β on ``valid`` (Recall@20)."""
        if self.source not in ("interactions", "scores"):
            raise ConfigError(
                f"SocialBlend: source={self.source!r}; expected 'interactions' or 'scores'"
            )
        grid = _grid(self.beta, "SocialBlend.beta")
        if any(b < 0 for b in grid):
            raise ConfigError(f"SocialBlend: beta must be ≥ 0, got {self.beta!r}")
        if not hasattr(self.base, "n_items_"):
            self.base.fit(data, valid=valid, **fit_kw)
        x = self._remember(data)
        edges = check_edges(self.edges, data.n_users, "SocialBlend(edges)")
        self.social_ = social_adjacency(edges, data.n_users)
        deg = np.diff(self.social_.indptr).astype(np.float32)
        self._row_norm = sp.csr_matrix(
            sp.diags(np.where(deg > 0, 1.0 / np.maximum(deg, 1.0), 0.0)) @ self.social_
        )
        self.friend_mean_ = friends_mean(self.social_, x) if self.source == "interactions" else None
        self.beta_, self.valid_scores_ = grid[0], {}
        if len(grid) > 1 and valid is not None and len(valid):
            vx = valid.matrix("binary")
            for b in grid:
                self.beta_ = b
                self.valid_scores_[b] = validation_metrics(self._score_block, x, vx, k=20)[
                    "Recall@20"
                ]
            self.beta_ = max(grid, key=lambda b: (self.valid_scores_[b], -b))
            log.info("social blend: β=%s (valid Recall@20 %s)", self.beta_, self.valid_scores_)
        elif len(grid) > 1:
            raise ConfigError("SocialBlend: a beta grid needs a non-empty valid split to choose β")
        return self

    def _friend_signal(self, users: Tensor) -> Tensor:
        ub = users.numpy()
        if self.friend_mean_ is not None:
            return torch.from_numpy(self.friend_mean_[ub].toarray())
        rows = self._row_norm[ub]
        friends = np.unique(rows.indices)
        if not len(friends):
            return torch.zeros((len(ub), self.n_items_))
        sf = self.base.score(torch.from_numpy(friends)).float()
        w = torch.from_numpy(rows[:, friends].toarray())
        return w @ sf

    def _score_block(self, users: Tensor) -> Tensor:
        s = _standardise(self.base.score(users).float())
        if self.beta_ == 0:
            return s
        return s + self.beta_ * _standardise(self._friend_signal(users))

    def refit_params(self) -> dict[str, Any]:
        """A fresh base with its refit parameters and the chosen β (for train + valid)."""
        base = type(self.base)(**self.base.refit_params())
        return {"base": base, "edges": self.edges, "beta": self.beta_, "source": self.source}

    def save(self, path: Any) -> Any:
        raise NotImplementedError(
            "SocialBlend is not saved: save its base model and rebuild the blend from the edges"
        )
