"""Top singular pairs of the normalised interaction matrix with the users sharded over processes.

The graph filter (:mod:`lgrec.models.graphfilter`) and LMGCN's graph-position block use the
top-k right singular vectors V_k of R̃ = D_U^{-a} R D_I^{-b}, i.e. the top eigenvectors of the
item–item Gram matrix P = R̃ᵀR̃. P is a sum over users, and so is every product with it:

    P Q = Σ_u r̃_uᵀ (r̃_u Q) = Σ_p R̃_pᵀ (R̃_p Q)                      (R̃_p: process p's users)

and the item degrees D_I = Σ_u r_u are too, while D_U is per user. So with the users sharded
over P processes a randomized subspace iteration (Halko, Martinsson & Tropp 2011, alg. 4.4)
needs one all-reduce of an I × ℓ block per product, ℓ = k + oversampling:

    Ω ~ N(0, 1)^{I × ℓ} (the same seed on every process),  Q₀ = lu(P Ω),
    Q_{j+1} = lu(P Q_j)  (j < n_iter − 1),   Q = qr(P Q_{n_iter − 1}),
    B = Qᵀ P Q  (ℓ × ℓ),   B = S M Sᵀ,   V_k = Q S_{:, top k},   σ_k = √μ_k.

lu(Y) is the unit lower-triangular factor L of Y = Π L U (partial pivoting): the same column
space as Y with well-scaled columns, which is all a power step needs (as scikit-learn's
``randomized_range_finder`` does); only the last step needs an orthonormal basis (qr). On
Gowalla (I = 40,981, ℓ = 266) this took the spectrum from 9.2 s (a qr every step) to 6.3 s
(docs/distributed.md).

Every process ends with the same V_k (I × k) and σ_k: the item-side result is replicated, the
users and their rows of R stay sharded. Work per process: 2 (n_iter + 2) sparse × dense
products with its nnz(R_p) non-zeros; communication: n_iter + 2 all-reduces of I × ℓ floats
(float64) and one of I item degrees. With one process (or none) it is the same computation
without the all-reduces.

:func:`data_parallel_spectrum` is the switch the fitting code calls with the *whole* matrix
(every process holds it, as under ``lgrec train --distributed``): under a process group of
P > 1 processes each takes its contiguous block of users with about equal non-zeros
(:func:`lgrec.train.distributed_ridge.user_block`) and calls :func:`sharded_spectrum`; without
a group, or with one process, it returns nothing and the caller keeps its single-process
computation (scikit-learn's ``randomized_svd``), so one-process fits do not change at all.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import torch.distributed as dist

from lgrec.train.distributed_ridge import all_reduce_sum, rank_world, user_block

__all__ = ["data_parallel_spectrum", "sharded_spectra", "sharded_spectrum"]

_SHARDED = [0]  # spectra of this process computed over a process group (see sharded_spectra)


def sharded_spectrum(
    r: sp.spmatrix,
    k: int,
    user_exp: float = 0.5,
    item_exp: float = 0.5,
    oversample: int = 10,
    n_iter: int = 6,
    seed: int = 0,
    group: dist.ProcessGroup | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(σ, V, d_I)``: the top ``k`` singular values (descending) and right singular vectors
    (I × k, float64) of R̃ = D_U^{-a} R D_I^{-b} over all processes' users, and the item
    degrees d_I (summed over processes).

    Args:
        r: this process's users' interactions (U_p × I, binary; all items).
        k: number of singular pairs (k + ``oversample`` ≤ I).
        user_exp, item_exp: the exponents a and b.
        n_iter: power iterations (more: sharper for slowly decaying spectra).
        seed: seed of Ω (must be the same on every process).
    """
    r = sp.csr_matrix(r, dtype=np.float32)
    n_items = r.shape[1]
    width = int(k) + int(oversample)
    if not k > 0 or width > n_items:
        raise ValueError(f"sharded_spectrum: need 0 < k and k + oversample ≤ {n_items} items, "
                         f"got k={k}, oversample={oversample}")  # fmt: skip
    _, world = rank_world(group)
    di = np.asarray(r.sum(0), dtype=np.float64).ravel()
    if world > 1:  # integer counts: the sum is exact, as in one process
        di = all_reduce_sum(di, group)
    di32, du = di.astype(np.float32), np.asarray(r.sum(1)).ravel()
    with np.errstate(divide="ignore"):  # as lgrec.graph.bipartite.normalized_biadjacency
        iu = np.where(du > 0, du**-user_exp, 0.0).astype(np.float32)
        ii = np.where(di32 > 0, di32**-item_exp, 0.0).astype(np.float32)
    rn = sp.csr_matrix(sp.diags(iu) @ r @ sp.diags(ii), dtype=np.float64)
    rnt = rn.T.tocsr()

    def gram(q: np.ndarray) -> np.ndarray:  # P q = Σ_p R̃_pᵀ (R̃_p q)
        y = rnt @ (rn @ q)
        return all_reduce_sum(y, group) if world > 1 else y

    q = np.random.default_rng(seed).standard_normal((n_items, width))
    for _ in range(n_iter):
        q = scipy.linalg.lu(gram(q), permute_l=True, check_finite=False)[0]
    q = np.linalg.qr(gram(q))[0]
    b = q.T @ gram(q)
    mu, s = np.linalg.eigh((b + b.T) / 2)
    top = np.argsort(mu)[::-1][:k]
    return np.sqrt(np.maximum(mu[top], 0.0)), q @ s[:, top], di


def data_parallel_spectrum(
    x: sp.spmatrix,
    k: int,
    user_exp: float,
    item_exp: float,
    seed: int = 0,
    group: dist.ProcessGroup | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None, int]:
    """``(σ, V, P)`` of the whole ``x`` (U × I, the same on every process) computed
    data-parallel when ``group`` (the default group) has P > 1 processes: this process's block
    of users goes to :func:`sharded_spectrum` (oversampling min(10, I − k)), so each process
    does 1/P of the sparse products and all get the same σ (k, descending) and V (I × k).
    ``(None, None, 1)`` without a process group or with one process: the caller computes the
    spectrum itself."""
    rank, world = rank_world(group)
    if world == 1:
        return None, None, 1
    x = sp.csr_matrix(x)
    mine = x[user_block(x, rank, world)]
    over = min(10, x.shape[1] - int(k))
    sig, v, _ = sharded_spectrum(mine, k, user_exp, item_exp, over, seed=seed, group=group)
    _SHARDED[0] += 1
    return sig, v, world


def sharded_spectra() -> int:
    """How many spectra this process computed with the users sharded over a process group."""
    return _SHARDED[0]
