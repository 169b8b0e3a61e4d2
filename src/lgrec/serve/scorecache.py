"""Precomputed score rows of the trained users: a ``/recommend`` copies a row instead of
multiplying by the item matrix and running the graph filter.

The served score of a trained user ``u`` (a row of the model, ``u < B``) over the trained items
is built from two parts (:meth:`lgrec.serve.scoring.ScoringMixin.scores`):

    c_u = V_B e_u        the core: e_u the user's vector (for LMGCN ``e_u = h_u W``, the
                         history features times the fitted map), V_B the trained items' vectors;
    g_u = GF(x_u)        the graph filter of the user's interaction row (LMGCN's blend only).

With LMGCN on colakg-ml-1m, ``c_u`` reads a 3,260 × 1,408 matrix (18 MB) and ``g_u`` walks the
801k-edge graph: milliseconds per request. Both parts change only when the user's vector or
history changes, i.e. when a feedback event of that user is folded in. So they are computed
once for every trained user when the server starts — ``C = U V_Bᵀ`` and ``G = GF(X)``, in
blocks of users — and each event updates its user's rows in place in O(items)
(:meth:`ScoreCache.fold`, math in :mod:`lgrec.serve.foldcache`). When that is not possible (a
runtime item in the event or the history, no room for the fold-in operators) the event marks
the rows stale (:meth:`ScoreCache.invalidate`) and the user's next request recomputes and
stores them. A stored row carries the version it was computed from, so a row computed while an
event arrived is not kept.

Items added at run time are not in the cache: their scores come per request from the row
(``V_R e_u`` and ``M g_u``, see :mod:`lgrec.serve.scoring`), vectorised. Users added at run time
are scored per request as before (the cache covers the trained users only).

Memory: ``B × I_B × 4`` bytes per part (colakg-ml-1m: 6,040 × 3,260 → 79 MB, 158 MB with the
filter), per worker. The cache is built only when that fits ``budget_mb``; otherwise every
request computes its row (the same scores, slower).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import torch

from lgrec.utils import progress

log = logging.getLogger(__name__)
Tensor = torch.Tensor


class ScoreCache:
    """Score rows ``C`` (core) and ``G`` (graph filter, or None) of the trained users.

    Not thread-safe by itself: the serving state calls it under its lock.
    """

    def __init__(self, core: Tensor, gf: Tensor | None) -> None:
        self.core, self.gf = core, gf
        self.version = np.zeros(len(core), dtype=np.int64)  # bumped by every event of a user
        self.valid = np.zeros(len(core), dtype=np.int64)  # the version each row was made from

    @property
    def n_users(self) -> int:
        return self.core.shape[0]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.core, self.gf) if t is not None)

    @classmethod
    def build(
        cls,
        U: Tensor,
        V: Tensor,
        gf_block: Callable[[Tensor], Tensor] | None,
        budget_mb: float,
        block: int = 512,
    ) -> ScoreCache | None:
        """``C = U Vᵀ`` and ``G = gf_block(users)`` for every user row of ``U``, in blocks of
        ``block`` users; None when they would take more than ``budget_mb`` MiB."""
        n_users, n_items = U.shape[0], V.shape[0]
        need = n_users * n_items * 4 * (2 if gf_block is not None else 1)
        if not n_users or need > budget_mb * 2**20:
            if n_users:
                log.info(
                    "score cache off: %d users × %d items need %.0f MiB, budget %.0f MiB "
                    "(every request computes its scores)",
                    n_users, n_items, need / 2**20, budget_mb,
                )  # fmt: skip
            return None
        t0 = time.perf_counter()
        core = torch.empty(n_users, n_items, dtype=torch.float32)
        gf = None if gf_block is None else torch.empty(n_users, n_items, dtype=torch.float32)
        Vt = V.float().T.contiguous()
        starts = range(0, n_users, block)
        with torch.no_grad():
            for lo in progress(starts, desc="score cache", total=len(starts)):
                hi = min(n_users, lo + block)
                torch.matmul(U[lo:hi].float(), Vt, out=core[lo:hi])
                if gf is not None:
                    gf[lo:hi] = gf_block(torch.arange(lo, hi)).float()
        cache = cls(core, gf)
        log.info(
            "score cache: %d users × %d items (%.0f MiB) in %.1f s",
            n_users, n_items, cache.nbytes / 2**20, time.perf_counter() - t0,
        )  # fmt: skip
        return cache

    def get(self, u: int) -> tuple[tuple[Tensor, Tensor | None] | None, int]:
        """``(copies of u's rows, or None when stale; the current version of u)``."""
        v = int(self.version[u])
        if self.valid[u] != v:
            return None, v
        return (self.core[u].clone(), None if self.gf is None else self.gf[u].clone()), v

    def put(self, u: int, version: int, core: Tensor, gf: Tensor | None) -> bool:
        """Store rows computed from ``version`` of user ``u``; False (kept nothing) when an
        event arrived meanwhile."""
        if self.version[u] != version:
            return False
        self.core[u] = core
        if self.gf is not None and gf is not None:
            self.gf[u] = gf
        self.valid[u] = version
        return True

    def fold(self, u: int, a: float, b: float, core_row: Tensor, gf_step: Tensor | None) -> bool:
        """One event of user ``u`` folded into their rows in place (:mod:`lgrec.serve.foldcache`):
        ``c ← a c + b core_row`` and ``g ← g + gf_step`` (None: ``g`` unchanged). A stale row is
        left stale (False). The version moves on, so a row computed before this event and
        stored after it (:meth:`put`) is refused."""
        v = int(self.version[u])
        if self.valid[u] != v:
            self.version[u] += 1
            return False
        row = self.core[u]
        row.mul_(a).add_(core_row, alpha=b)
        if self.gf is not None and gf_step is not None:
            self.gf[u].add_(gf_step)
        self.version[u] = self.valid[u] = v + 1
        return True

    def invalidate(self, u: int) -> None:
        """User ``u``'s vector or history changed: its rows are stale until recomputed."""
        if 0 <= u < self.n_users:
            self.version[u] += 1

    def erase(self, u: int) -> None:
        """User ``u`` was erased (:mod:`lgrec.privacy.serving`): zero its rows, which were
        computed from their data, and mark them stale so that nothing serves them."""
        if 0 <= u < self.n_users:
            self.core[u] = 0.0
            if self.gf is not None:
                self.gf[u] = 0.0
            self.version[u] += 1


__all__ = ["ScoreCache"]
