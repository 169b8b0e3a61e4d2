"""A small, fast validation scorer for early stopping (full ranking, train items excluded).

Recall@k = |top-k ∩ V_u| / |V_u| averaged over users with validation items, where V_u is the
user's validation set; NDCG@k uses binary gains. The full evaluation suite is ``lgrec.eval``;
this copy exists so training does not depend on the later evaluation stage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import scipy.sparse as sp
import torch

from lgrec.ranking import topk_stable


def validation_metrics(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    train: sp.csr_matrix,
    valid: sp.csr_matrix,
    k: int = 20,
    block_size: int = 2048,
    max_users: int | None = 5000,
    seed: int = 0,
) -> dict[str, float]:
    """Recall@k and NDCG@k of ``score_fn(users) -> (B, I)`` on ``valid`` (a users × items CSR).

    At most ``max_users`` users (a fixed seeded sample) are scored, to keep validation cheap.
    """
    return validation_grid(
        lambda u: [score_fn(u)], 1, train, valid, k, block_size, max_users, seed
    )[0]


def validation_grid(
    scores_fn: Callable[[torch.Tensor], Iterable[torch.Tensor]],
    n_candidates: int,
    train: sp.csr_matrix,
    valid: sp.csr_matrix,
    k: int = 20,
    block_size: int = 2048,
    max_users: int | None = 5000,
    seed: int = 0,
) -> list[dict[str, float]]:
    """:func:`validation_metrics` of ``n_candidates`` scorers at once, one dict per candidate.

    ``scores_fn(users)`` yields the (B, I) scores of every candidate in order, so a grid search
    can compute what its candidates share (e.g. a filter's components) once per user block.
    """
    users = np.flatnonzero(np.diff(valid.indptr) > 0)
    if max_users is not None and len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    rec: list[list[np.ndarray]] = [[] for _ in range(n_candidates)]
    ndcg: list[list[np.ndarray]] = [[] for _ in range(n_candidates)]
    for s in range(0, len(users), block_size):
        ub = users[s : s + block_size]
        seen = train[ub].tocoo()
        rows, cols = torch.from_numpy(seen.row).long(), torch.from_numpy(seen.col).long()
        truth = valid[ub]
        truth.sort_indices()
        n_rel = np.diff(truth.indptr)
        keys = np.repeat(np.arange(len(ub), dtype=np.int64), n_rel) * valid.shape[1] + truth.indices
        idcg = np.cumsum(discount)[np.minimum(n_rel, k) - 1]
        with torch.no_grad():
            scored = 0
            for c, sc in enumerate(scores_fn(torch.from_numpy(ub))):
                sc = sc.float().clone()
                sc[rows, cols] = -torch.inf
                top = topk_stable(sc, k)[1].numpy()
                q = np.arange(len(ub), dtype=np.int64)[:, None] * valid.shape[1] + top
                pos = np.minimum(np.searchsorted(keys, q), len(keys) - 1)
                hit = keys[pos] == q
                rec[c].append(hit.sum(1) / n_rel)
                ndcg[c].append((hit * discount).sum(1) / idcg)
                scored += 1
        if scored != n_candidates:
            raise ValueError(f"validation_grid: scores_fn gave {scored} of {n_candidates} scores")
    if not len(users):
        return [{f"Recall@{k}": 0.0, f"NDCG@{k}": 0.0} for _ in range(n_candidates)]
    return [
        {
            f"Recall@{k}": float(np.concatenate(r).mean()),
            f"NDCG@{k}": float(np.concatenate(n).mean()),
        }
        for r, n in zip(rec, ndcg)
    ]
