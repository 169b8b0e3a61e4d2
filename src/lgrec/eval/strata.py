"""Ranking metrics by stratum: how a model serves sparse users and long-tail items.

One full-ranking pass (the protocol of :func:`lgrec.eval.protocol.evaluate_ranking`: every
user ranks all items except their training items) gives each evaluated user a top-``k`` list;
the lists are then scored on subsets:

* **users by activity** — users whose number of training interactions :math:`n_u` falls in
  ``(0, b₁]``, ``(b₁, b₂]``, … , ``(b_last, ∞)`` (default ≤ 5, 6–20, > 20); users with no
  training interaction form the ``cold`` stratum when any exist. Metrics are the usual means
  over the stratum's users.
* **long-tail items** — the items outside the ``head_share`` most popular by training count
  (default: the bottom 80 % of items, i.e. all but the top 20 %). The relevant set of each user
  is restricted to tail items, :math:`R_u^{tail} = R_u ∩ T`, and

      Recall@k_tail = mean over users with R_u^tail ≠ ∅ of |L_u ∩ R_u^tail| / |R_u^tail|

  over the *same* top-k list (ranked among all items), so a model that only recommends popular
  items scores 0 here. ``head`` is the complement.

Ties in the popularity order are broken by item index, so the strata are deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from lgrec.data.dataset import Dataset
from lgrec.eval.metrics import ranking_metrics
from lgrec.eval.protocol import _check_spaces, _topk_blocks
from lgrec.models.base import Recommender

__all__ = ["evaluate_strata", "tail_items", "user_strata"]


def tail_items(train: sp.spmatrix, head_share: float = 0.2) -> np.ndarray:
    """Boolean mask of the long-tail items: all but the ``head_share`` most interacted-with
    items of ``train`` (count descending, ties by item index)."""
    counts = np.asarray((sp.csr_matrix(train) > 0).sum(0)).ravel()
    order = np.lexsort((np.arange(len(counts)), -counts))
    n_head = int(np.ceil(head_share * len(counts)))
    tail = np.ones(len(counts), dtype=bool)
    tail[order[:n_head]] = False
    return tail


def user_strata(n_train: np.ndarray, bounds: Sequence[int] = (5, 20)) -> dict[str, np.ndarray]:
    """Name → boolean user mask for the activity bins ``(0, b₁], (b₁, b₂], …, (b_last, ∞)``
    plus ``cold`` (no training interaction)."""
    out: dict[str, np.ndarray] = {}
    if (n_train == 0).any():
        out["cold"] = n_train == 0
    lo = 0
    for b in bounds:
        out[f"{lo + 1}-{b}" if lo else f"<={b}"] = (n_train > lo) & (n_train <= b)
        lo = b
    out[f">{lo}"] = n_train > lo
    return out


def evaluate_strata(
    model: Recommender,
    train: Dataset,
    test: Dataset,
    *,
    k: int = 20,
    user_bounds: Sequence[int] = (5, 20),
    head_share: float = 0.2,
    block_size: int = 1024,
) -> dict[str, float]:
    """Recall@k and NDCG@k overall, per user-activity stratum and on head / tail items.

    Keys: ``Recall@k``, ``NDCG@k``, ``n_users`` and, per stratum ``s``, ``s:Recall@k``,
    ``s:NDCG@k``, ``s:n_users`` (``s`` in the user bins, ``tail`` and ``head``).
    """
    _check_spaces(model, train, test)
    train_m = sp.csr_matrix(train.matrix("binary"))
    truth = sp.csr_matrix(test.matrix("binary"))
    truth = (truth - truth.multiply(train_m)).tocsr()
    truth.eliminate_zeros()
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    seen = train_m
    model_seen = getattr(model, "seen_", None)
    if sp.issparse(model_seen) and model_seen.shape == train_m.shape:
        seen = (train_m + model_seen).tocsr()
    top = _topk_blocks(model, users, seen, None, k, block_size)
    sub = truth[users]
    out = _metrics(top, sub, k, "")
    out["n_users"] = len(users)
    n_train = np.diff(train_m.indptr)[users]
    for name, mask in user_strata(n_train, user_bounds).items():
        out.update(_metrics(top[mask], sub[mask], k, f"{name}:"))
    tail = tail_items(train_m, head_share)
    for name, keep in (("tail", tail), ("head", ~tail)):
        t = sub.multiply(keep[None, :].astype(np.float32)).tocsr()
        t.eliminate_zeros()
        has = np.diff(t.indptr) > 0
        out.update(_metrics(top[has], t[has], k, f"{name}:"))
    return out


def _metrics(top: np.ndarray, truth: sp.csr_matrix, k: int, prefix: str) -> dict[str, float]:
    n = len(top)
    if n == 0:
        return {f"{prefix}Recall@{k}": float("nan"), f"{prefix}NDCG@{k}": float("nan"),
                f"{prefix}n_users": 0}  # fmt: skip
    m = ranking_metrics(top, truth, (k,))
    return {
        f"{prefix}Recall@{k}": m[f"Recall@{k}"],
        f"{prefix}NDCG@{k}": m[f"NDCG@{k}"],
        f"{prefix}n_users": n,
    }
