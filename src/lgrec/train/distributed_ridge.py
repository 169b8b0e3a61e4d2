"""Data-parallel fit of LMGCN's closed-form core (:class:`lgrec.models.bilinear.BilinearRidge`).

The ridge problem min_W ‖R − H W Xᵀ‖²_F + λ‖W‖²_F is solved from four statistics
(:class:`lgrec.models.bilinear.RidgeStatistics`), each a sum over users or over items:

    HᵀH = Σ_u h_uᵀ h_u,     HᵀRX = Σ_u h_uᵀ (r_u X),     c_i = Σ_{u ∋ i} w_u       (users)
    XᵀX = Σ_i x_iᵀ x_i,     Xᵀ diag(c) X = Σ_i c_i x_iᵀ x_i                        (items)

so with P processes, process p sums them over its shard of users U_p and its block of items
I_p, and one ``all_reduce`` (sum, gloo) gives every process the statistics of the whole data.
Every process then solves the same small problem: two D × D eigendecompositions and, per λ,
one D × D product (D = a few hundred). Work per process: O((nnz(R_p) + |U_p| D) D) for the
user sums and O(|I_p| D²) for the item sums, 1/P of the single-process fit; communication:
one vector of I numbers (c, only when the users are sharded) and one of D_u² + D_u D_i + 2 D_i²
numbers. What is replicated: the item features X (every process needs all of X for r_u X) and
the solution W. What is sharded: the users (their rows of R and of H, and c's terms).

:func:`fit_ridge` takes the data two ways:

* ``sharded=False`` — every process holds the whole problem (``lgrec train --distributed``:
  each process loads the data set); each takes its block of users (about equal non-zeros,
  :func:`lgrec.train.partition.row_blocks`) and of items. One process, or no process group:
  the plain :class:`BilinearRidge`.
* ``sharded=True`` — each process holds only its own users' ``h``, ``r`` and their part of
  ``c`` (e.g. computed by :func:`lgrec.models.features.user_history_features` on its rows of
  R); c is all-reduced first, then the statistics.

Sums in another order differ from the single-process ones by float64 round-off; the test
(tests/train/test_distributed_ridge.py) requires W*(λ) to agree to 10⁻⁸ relative.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.distributed as dist

from lgrec.models.bilinear import BilinearRidge, RidgeStatistics
from lgrec.train.partition import row_blocks

__all__ = ["fit_ridge", "item_block", "rank_world", "reduced_fits", "user_block"]

_REDUCED = [0]  # fits whose statistics were all-reduced in this process (see reduced_fits)


def rank_world(group: dist.ProcessGroup | None = None) -> tuple[int, int]:
    """``(rank, world)`` of ``group`` (the default group); ``(0, 1)`` without a process group."""
    if not dist.is_available() or not dist.is_initialized():
        return 0, 1
    return dist.get_rank(group), dist.get_world_size(group)


def user_block(r: sp.csr_matrix, rank: int, world: int) -> slice:
    """Process ``rank``'s contiguous block of users: about equal non-zeros + rows per block."""
    b = row_blocks(sp.csr_matrix(r).indptr, world)
    return slice(int(b[rank]), int(b[rank + 1]))


def item_block(n_items: int, rank: int, world: int) -> slice:
    """Process ``rank``'s contiguous block of items (sizes differ by at most one)."""
    b = np.linspace(0, n_items, world + 1).round().astype(int)
    return slice(int(b[rank]), int(b[rank + 1]))


def all_reduce_sum(a: np.ndarray, group: dist.ProcessGroup | None = None) -> np.ndarray:
    """The float64 sum of ``a`` over the processes of ``group`` (every process gets it)."""
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))
    dist.all_reduce(t, op=dist.ReduceOp.SUM, group=group)
    return t.numpy()


def _reduce(
    h: np.ndarray,
    r: sp.spmatrix,
    x: np.ndarray,
    c: np.ndarray | None,
    n_hist: int,
    items: slice,
    group: dist.ProcessGroup | None,
) -> BilinearRidge:
    """Statistics of this process's users and ``items``, summed over the group, solved."""
    local = RidgeStatistics.of(h, r, x, c, n_hist, items=items)
    # the same layout on every process: all-reduce one flat vector
    total = local.unflat(all_reduce_sum(local.flat(), group))
    _REDUCED[0] += 1
    return BilinearRidge.from_statistics(total)


def fit_ridge(
    h: np.ndarray,
    r: sp.spmatrix,
    x: np.ndarray,
    c: np.ndarray | None = None,
    n_hist: int = 0,
    *,
    sharded: bool = False,
    group: dist.ProcessGroup | None = None,
) -> BilinearRidge:
    """:class:`BilinearRidge` ``(h, r, x, c, n_hist)`` with the statistics summed over the
    processes of ``group``; every process gets the same solver. Without a process group (or
    with one process) it is ``BilinearRidge(h, r, x, c, n_hist)``.

    ``sharded=False``: every process passes the *whole* problem and sums its block of users
    and items. ``sharded=True``: every process passes only its own users, ``h`` (U_p × D_u),
    ``r`` (U_p × I, all items) and its part of the leave-one-out weights,
    c_i = Σ_{u ∈ U_p, u ∋ i} w_u (``None`` on every process for no correction); ``x`` is
    every item's features (I × D_i) on every process alike.
    """
    rank, world = rank_world(group)
    if world == 1:
        return BilinearRidge(h, r, x, c, n_hist)
    r = sp.csr_matrix(r)
    if r.shape[0] != len(h):
        raise ValueError(f"fit_ridge: r has {r.shape[0]} users, h has {len(h)}")
    if sharded:
        if c is not None:
            c = all_reduce_sum(c, group)
    else:
        rows = user_block(r, rank, world)
        h, r = h[rows], r[rows]
    return _reduce(h, r, x, c, n_hist, item_block(len(x), rank, world), group)


def reduced_fits() -> int:
    """How many ridge fits of this process summed their statistics over a process group."""
    return _REDUCED[0]
