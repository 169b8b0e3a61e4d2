"""Worker of tests/train/test_distributed_ridge.py: ``torchrun -m tests.train.ridge_worker``.

Every process builds the same problem (:func:`problem`) and fits LMGCN's closed-form core
data-parallel twice (:func:`fit_ridge`): with the whole problem on every process, and with
only its own users, their features and their part of c computed on its shard (``sharded``).
It also computes the top singular pairs of the normalised interactions of
:func:`planted` from its own users (:func:`sharded_spectrum`). Each process writes W*(λ) for
the λ of :data:`LAMS` (in units of the data's scale), the scales and the spectrum to
``OUT/rank<r>.npz``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch.distributed as dist

from lgrec.models.bilinear import BilinearRidge
from lgrec.models.features import user_history_features
from lgrec.train.distributed_ridge import fit_ridge, reduced_fits, user_block
from lgrec.train.distributed_spectrum import sharded_spectrum

LAMS = (1e-3, 0.1, 10.0)
SPECTRUM = dict(k=4, user_exp=0.3, item_exp=0.4)


def problem(seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    """Interactions (301 users × 97 items, power-law activity, 1-3 % of cells, some users
    empty) and item features (97 × 12, float32, as LMGCN's)."""
    rng = np.random.default_rng(seed)
    n_u, n_i = 301, 97
    deg = np.minimum(rng.zipf(1.6, n_u), n_i) * (rng.random(n_u) > 0.05)
    pop = 1.0 / np.arange(1, n_i + 1) ** 0.8
    rows = np.repeat(np.arange(n_u), deg)
    cols = np.concatenate([rng.choice(n_i, d, replace=False, p=pop / pop.sum()) for d in deg])
    r = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_u, n_i))
    return r, rng.standard_normal((n_i, 12)).astype(np.float32)


def planted(seed: int = 0) -> sp.csr_matrix:
    """Interactions with 4 planted groups (301 users × 97 items; 25 % of the cells inside a
    group, 2 % outside): the top 4 singular values stand clear of the rest."""
    rng = np.random.default_rng(seed)
    same = (np.arange(301)[:, None] % 4) == (np.arange(97)[None, :] % 4)
    return sp.csr_matrix((rng.random(same.shape) < np.where(same, 0.25, 0.02)).astype(np.float32))


def user_features(r: sp.csr_matrix, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LMGCN's H = [history aggregation, 1] and the leave-one-out weights c of ``r``'s users."""
    hist, c = user_history_features(r, x)
    return np.hstack([hist, np.ones((r.shape[0], 1), np.float32)]), c


def solutions(solver: BilinearRidge) -> np.ndarray:
    return np.stack([solver.solve(lam * solver.scale_) for lam in LAMS])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    r, x = problem()
    h, c = user_features(r, x)
    whole = fit_ridge(h, r, x, c=c, n_hist=x.shape[1])
    plain = fit_ridge(h, r, x)  # no leave-one-out correction
    mine = user_block(r, rank, world)  # a shard: only its users' rows exist in this process
    h_p, c_p = user_features(r[mine], x)
    shard = fit_ridge(h_p, r[mine], x, c=c_p, n_hist=x.shape[1], sharded=True)
    g = planted()
    sig, v, deg = sharded_spectrum(g[user_block(g, rank, world)], **SPECTRUM)
    np.savez(
        args.out / f"rank{rank}.npz",
        whole=solutions(whole), plain=solutions(plain), sharded=solutions(shard),
        scale=np.array([whole.scale_, plain.scale_, shard.scale_]),
        users=np.array([mine.start, mine.stop]), reduced=np.array(reduced_fits()),
        sigma=sig, v=v, degrees=deg,
    )  # fmt: skip
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
