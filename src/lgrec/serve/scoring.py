"""Scoring for a running server: scores, top-k lists, similar items, histories.

The scores of user ``u`` over all items are those of the model (``uᵀV + b``, or with an LMGCN
graph filter ``z(uᵀV) + λ z(GF(x_u))``) computed on the server's mutable copies of the vectors,
so online fold-in and runtime items count at once; free text adds a z-scored cosine term
(:meth:`ScoringMixin.scores`). Reads take the state's lock only to copy a row or to take the
current ``(V, b, T)``: those tensors are replaced, never changed in place, when items are
added, so a request scores against one consistent snapshot.

A mixin of :class:`lgrec.serve.state.ServeState`: it works on the attributes declared below.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from lgrec.models.base import Recommender
from lgrec.ranking import topk_stable
from lgrec.serve import online

log = logging.getLogger(__name__)
Tensor = torch.Tensor


class ScoringMixin:
    """Reads and rankings of :class:`~lgrec.serve.state.ServeState`."""

    model: Recommender
    lock: threading.RLock
    U: Tensor
    V: Tensor
    b: Tensor | None
    T: Tensor | None
    seen_base: sp.csr_matrix
    filter: Any
    filter_weight: float
    online_seen: dict[int, dict[int, None]]
    user_query: dict[int, Tensor]
    _gf_mix: list[tuple[Tensor, Tensor]]
    n_base_users: int
    n_base_items: int

    # provided by the other parts of ServeState
    encode: Callable[[str], Tensor]

    # ---- reads -------------------------------------------------------------------------------
    def history(self, u: int) -> np.ndarray:
        """Item rows the user has interacted with: training items, then online ones in order."""
        seen = self.seen_base
        base = seen.indices[seen.indptr[u] : seen.indptr[u + 1]] if u < self.n_base_users else []
        with self.lock:
            extra = list(self.online_seen.get(u, ()))
        return np.concatenate([np.asarray(base, dtype=np.int64), np.asarray(extra, dtype=np.int64)])

    def snapshot(self) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """``(V, b, T)`` of this moment (replaced, never mutated in place, on growth)."""
        with self.lock:
            return self.V, self.b, self.T

    def user_vector(self, u: int) -> Tensor:
        with self.lock:
            return self.U[u].clone()

    def scores(self, u: int, query: str | None = None, query_weight: float = 1.0) -> Tensor:
        """Scores of every item for user ``u``, as the model scores: ``uᵀV + b``, or with its
        graph filter ``z(uᵀV) + λ z(GF(x_u))``. A user created from text adds
        ``w_u · z(cos(q_u, T))`` with ``w_u = 1 / (1 + |H_u| / 5)`` (their text counts while their
        history ``H_u`` is short); a query adds ``w · z(cos(q, T))`` (like
        :meth:`Recommender.recommend`)."""
        q = self.encode(query) if query else None
        V, b, T = self.snapshot()
        s = V @ self.user_vector(u)
        if b is not None:
            s = s + b
        if self.filter is not None:
            s = online.zscore(s) + self.filter_weight * online.zscore(self._filter_scores(u))
        q_u = self.user_query.get(u)
        if q_u is not None:  # a runtime user's own text, fading as their history grows
            w = 1.0 / (1.0 + len(self.history(u)) / online.TEXT_HALF_HISTORY)
            s = online.zscore(s) + w * online.zscore(T @ q_u)
        if q is not None:
            s = online.zscore(s) + query_weight * online.zscore(T @ q)
        return s

    def _filter_scores(self, u: int) -> Tensor:
        """Graph-filter scores of ``u``'s current history; runtime items mix their neighbours."""
        hist = self.history(u)
        base = hist[hist < self.n_base_items]
        cols, vals = [base], [np.ones(len(base), dtype=np.float32)]
        with self.lock:
            mix = list(self._gf_mix)
        for i in hist[hist >= self.n_base_items].tolist():
            idx, w = mix[i - self.n_base_items]
            cols.append(idx.numpy())
            vals.append(w.numpy())
        c = np.concatenate(cols)
        row = sp.csr_matrix(
            (np.concatenate(vals), (np.zeros(len(c), dtype=np.int64), c)),
            shape=(1, self.n_base_items),
        )
        row.data = np.minimum(row.data, 1.0)  # duplicates sum; keep the row binary-like
        gf = online.filter_row_scores(self.filter, row)
        if mix:
            gf = torch.cat([gf, torch.stack([(gf[idx] * w).sum() for idx, w in mix])])
        return gf

    def recommend(
        self,
        u: int,
        k: int,
        *,
        exclude_seen: bool = True,
        query: str | None = None,
        query_weight: float = 1.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item rows and scores for user row ``u`` (ties: lower row first)."""
        s = self.scores(u, query, query_weight)
        if exclude_seen:
            s[torch.from_numpy(self.history(u))] = -torch.inf
        k = min(k, int(torch.isfinite(s).sum()))
        v, ix = topk_stable(s, k)
        return ix.numpy(), v.numpy()

    def similar(self, i: int, k: int, blend: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
        """Items most associated with item ``i``: ``β cos(e_i, e_j) + (1−β) cos(t_i, t_j)``."""
        V, _, T = self.snapshot()
        sim = online.blend_cosines(online.unit_rows(V), T, i, blend)
        sim[i] = -torch.inf
        v, ix = topk_stable(sim, min(k, len(sim) - 1))
        return ix.numpy(), v.numpy()

    def _check_parity(self) -> None:
        """Warn when the online scores of a trained user differ from ``model.score``."""
        if not self.n_base_users:
            return
        want = self.model.score([0])[0].float()
        got = self.scores(0)
        if not torch.allclose(got, want, rtol=1e-3, atol=1e-3 * float(want.abs().max())):
            log.warning(
                "online scoring of %s differs from model.score (max |Δ| %.3g): the server's "
                "rankings may differ slightly from `lgrec recommend`",
                self.model.name, float((got - want).abs().max()),
            )  # fmt: skip
