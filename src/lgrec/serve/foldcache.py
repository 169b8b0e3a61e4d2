"""Feedback folded into the precomputed score rows in O(items) per event, with no graph pass.

:mod:`lgrec.serve.scorecache` keeps, for every trained user ``u``, the core row
``c_u = V_B e_u`` and (LMGCN) the graph-filter row ``g_u = GF(x_u)`` over the trained items
``B``. One event of ``u`` on item ``i`` with weight ``α`` changes both:

    fold-in   e_u' = a e_u + b e_i               (a, b: online.fold_in_coefficients)
    core      c_u' = V_B e_u' = a c_u + b V_B e_i = a c_u + b K_i,       K = V_B V_Bᵀ
    filter    GF is linear in x (each term of the filter is x times a fixed matrix), so
              GF(x) = x F with F = GF(I), row i = GF(1_i). If i is new in a history of
              trained items, x_u' = x_u + 1_i and g_u' = g_u + F_i; if it was there already,
              x_u' = x_u and g_u' = g_u.

An event thus costs two vector updates of length ``|B|`` in each worker (read ``K_i``, add
``F_i``; microseconds) instead of marking the rows stale and recomputing them on the user's
next request with a ``|B| × d`` product and a pass over the whole interaction graph (LMGCN on
colakg-ml-1m: ~1 ms + ~3 ms of CPU per stale request, which queued every request behind it at
50 events/s; docs/benchmarks.md). A history holding runtime items (they enter ``x`` as
clamped text-neighbour weights, :mod:`lgrec.serve.scoring`) or an event on a runtime item marks
the row stale as before; recomputing it then also uses ``x F`` (``nnz(x) · |B|``), as do the
graph-filter scores of users created at run time.

Both matrices are ``|B| × |B|`` float32 (colakg-ml-1m: 3,260² → 41 MiB each) and come out of
the score cache's memory budget after its rows. ``K`` is built only for wide vectors
(``d ≥`` :data:`GRAM_MIN_DIM`): with narrow ones the product ``V_B e_i`` per event costs about
as little as reading a row of ``K``. Without ``F`` (no room) events mark rows stale, as before.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from lgrec.serve import online
from lgrec.serve.scorecache import ScoreCache
from lgrec.utils import progress

log = logging.getLogger(__name__)
Tensor = torch.Tensor

GRAM_MIN_DIM = 256
"""Vectors at least this wide get the item Gram matrix ``K`` (module docstring)."""


class ItemOperators:
    """``V_B`` with its Gram matrix ``K = V_B V_Bᵀ`` (or None) and the graph filter as an
    item × item matrix ``F = GF(I)`` (or None): what an event needs to update score rows."""

    def __init__(self, vb: Tensor, gram: Tensor | None, filt: Tensor | None) -> None:
        self.vb, self.gram, self.filt = vb, gram, filt

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.gram, self.filt) if t is not None)

    @classmethod
    def build(cls, vb: Tensor, gf: Any, budget_mb: float, block: int = 512) -> ItemOperators | None:
        """``F`` when the model has a graph filter ``gf`` and ``K`` when the vectors are wide,
        each only if it fits what is left of ``budget_mb`` (MiB); None when neither is built."""
        n_items, dim = vb.shape
        size_mb = n_items * n_items * 4 / 2**20
        left = budget_mb
        t0 = time.perf_counter()
        filt = gram = None
        if gf is not None and size_mb <= left:
            filt, left = filter_matrix(gf, n_items, block), left - size_mb
        if dim >= GRAM_MIN_DIM and size_mb <= left:
            with torch.no_grad():
                v = vb.float().contiguous()
                gram = v @ v.T
        if filt is None and gram is None:
            return None
        ops = cls(vb, gram, filt)
        log.info(
            "fold-in operators: filter matrix %s, item Gram matrix %s (%.0f MiB) in %.1f s",
            filt is not None, gram is not None, ops.nbytes / 2**20, time.perf_counter() - t0,
        )  # fmt: skip
        return ops

    def core_row(self, i: int, e: Tensor) -> Tensor:
        """``V_B e`` for item ``i`` with vector ``e``: row ``i`` of ``K`` for a trained item."""
        if self.gram is not None and i < self.gram.shape[0]:
            return self.gram[i]
        return self.vb @ e

    def filter_scores(self, x: sp.csr_matrix) -> Tensor:
        """``GF(x) = x F`` of one interaction row ``x`` (1 × |B|): ``nnz(x) · |B|`` work."""
        return torch.from_numpy(np.asarray(x @ self.filt.numpy(), dtype=np.float32)[0])


def filter_matrix(gf: Any, n_items: int, block: int = 512) -> Tensor:
    """``F = GF(I)``: the graph filter's scores of the one-item histories ``1_i``, row by row
    (a shallow copy of the filter reads ``x_ = I``, as :func:`online.filter_row_scores`)."""
    g = copy.copy(gf)
    g.x_ = sp.identity(n_items, dtype=np.float32, format="csr")
    out = torch.empty(n_items, n_items, dtype=torch.float32)
    starts = range(0, n_items, block)
    with torch.no_grad():
        for lo in progress(starts, desc="graph filter matrix", total=len(starts)):
            hi = min(n_items, lo + block)
            out[lo:hi] = g._score_block(torch.arange(lo, hi)).float()
    return out


class FoldInMixin:
    """Feedback fold-in of :class:`~lgrec.serve.state.ServeState` that keeps the user's cached
    score rows current (module docstring)."""

    lock: threading.RLock
    U: Tensor
    V: Tensor
    seen_base: sp.csr_matrix
    online_seen: dict[int, dict[int, None]]
    score_cache: ScoreCache | None
    item_ops: ItemOperators | None
    n_base_users: int
    n_base_items: int

    def _fold_user(self, u: int, i: int, alpha: float) -> None:
        """``e_u ← fold_in(e_u, e_i, α)`` and the user's cached rows with it. The caller holds
        the lock and has not yet added ``i`` to the user's online history."""
        e, e_u = self.V[i], self.U[u]
        a, b = online.fold_in_coefficients(e_u, e, alpha)
        self.U[u] = online.fold_in(e_u, e, alpha)
        cache, ops = self.score_cache, self.item_ops
        if cache is None or u >= cache.n_users:
            return
        step = self._filter_step(u, i) if cache.gf is not None else None
        if ops is None or step is False:
            cache.invalidate(u)  # recomputed on the user's next request
            return
        cache.fold(u, a, b, ops.core_row(i, e), step)

    def _filter_step(self, u: int, i: int) -> Tensor | bool | None:
        """What one event on ``i`` adds to ``GF(x_u)``: ``F_i`` when ``i`` is new in ``u``'s
        history, None when it was there already, False when only a recomputation can say
        (runtime items in the history or the event, or no ``F``)."""
        nb, ops = self.n_base_items, self.item_ops
        hist = self.online_seen.get(u, {})
        if ops is None or ops.filt is None or i >= nb or any(j >= nb for j in hist):
            return False
        seen = self.seen_base
        base = seen.indices[seen.indptr[u] : seen.indptr[u + 1]] if u < self.n_base_users else []
        if i in hist or bool(np.any(base == i)):
            return None
        return ops.filt[i]


__all__ = ["GRAM_MIN_DIM", "FoldInMixin", "ItemOperators", "filter_matrix"]
