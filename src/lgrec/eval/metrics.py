"""Evaluation metrics: pure, vectorised functions on NumPy arrays (no per-user Python loops).

Ranking metrics follow the protocol of LightGCN (He et al., SIGIR 2020) and RecBole. For a
user :math:`u` with relevant (held-out) items :math:`R_u`, a top-:math:`K` list
:math:`L_u = (l_1, \\dots, l_K)` (best first) and hit indicators
:math:`h_j = [l_j \\in R_u]`:

.. math::

    \\mathrm{Recall@}k   &= \\frac{\\sum_{j \\le k} h_j}{|R_u|}                       \\\\
    \\mathrm{Precision@}k &= \\frac{\\sum_{j \\le k} h_j}{k}                           \\\\
    \\mathrm{NDCG@}k     &= \\frac{\\sum_{j \\le k} h_j / \\log_2(j + 1)}
                                 {\\sum_{j \\le \\min(|R_u|, k)} 1 / \\log_2(j + 1)}   \\\\
    \\mathrm{HitRate@}k  &= [\\textstyle\\sum_{j \\le k} h_j > 0]                       \\\\
    \\mathrm{MRR@}k      &= 1 / \\min\\{j \\le k : h_j = 1\\} \\quad (0 \\text{ if no hit})

and every metric is the mean over users with :math:`|R_u| \\ge 1`. Recall divides by
:math:`|R_u|`, not :math:`\\min(|R_u|, k)`, exactly as LightGCN's published code does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, overload

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

from lgrec.errors import ConfigError, DataError

__all__ = [
    "accuracy",
    "auc",
    "check_ks",
    "coverage",
    "mae",
    "ranking_metrics",
    "rmse",
]

RANKING_METRICS = ("Recall", "Precision", "NDCG", "HitRate", "MRR")


def check_ks(ks: int | Sequence[int]) -> tuple[int, ...]:
    """Validate cut-offs: positive integers, returned sorted and de-duplicated."""
    ks_t = tuple(ks) if isinstance(ks, Sequence | np.ndarray) else (ks,)
    if not ks_t:
        raise ConfigError("ks must list at least one cut-off, e.g. ks=(10, 20)")
    for k in ks_t:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
            raise ConfigError(f"ks: every cut-off must be a positive integer, got {k!r}")
    return tuple(sorted({int(k) for k in ks_t}))


@overload
def ranking_metrics(
    topk: np.ndarray,
    truth: sp.spmatrix,
    ks: int | Sequence[int] = ...,
    *,
    per_user: Literal[False] = ...,
) -> dict[str, float]: ...


@overload
def ranking_metrics(
    topk: np.ndarray,
    truth: sp.spmatrix,
    ks: int | Sequence[int] = ...,
    *,
    per_user: Literal[True],
) -> tuple[dict[str, float], dict[str, np.ndarray]]: ...


def ranking_metrics(
    topk: np.ndarray,
    truth: sp.spmatrix,
    ks: int | Sequence[int] = (10, 20),
    *,
    per_user: bool = False,
) -> dict[str, float] | tuple[dict[str, float], dict[str, np.ndarray]]:
    """Recall, Precision, NDCG, HitRate and MRR at each cut-off in ``ks`` (module docstring).

    Args:
        topk: (U, K) integer item ids per user, best first. Negative entries (``-1``) are
            padding for lists shorter than ``K`` and never count as hits; when ``K < k`` the
            missing positions are treated as padding too (Precision still divides by ``k``).
        truth: (U, I) sparse matrix whose non-zeros are each user's relevant items; row ``u``
            belongs to row ``u`` of ``topk``.
        ks: cut-offs, positive integers.
        per_user: also return per-user values for significance tests.

    Returns:
        ``{"Recall@10": ..., "NDCG@20": ..., ...}`` averaged over users with at least one
        relevant item (0.0 for every metric when there is none); with ``per_user=True`` a
        pair ``(summary, arrays)`` where ``arrays["users"]`` are the row indices of those users
        and ``arrays["Recall@10"]`` etc. their values, in the same order.
    """
    ks_t = check_ks(ks)
    topk = np.asarray(topk)
    if topk.ndim != 2:
        raise DataError(
            f"ranking_metrics: topk must be a 2-D (users, K) array, got shape {topk.shape}"
        )
    if topk.size and not np.issubdtype(topk.dtype, np.integer):
        raise DataError(f"ranking_metrics: topk must hold integer item ids, got dtype {topk.dtype}")
    if not sp.issparse(truth):
        raise DataError(
            f"ranking_metrics: truth must be a scipy.sparse matrix, got {type(truth).__name__}"
        )
    n_users, n_items = truth.shape
    if topk.shape[0] != n_users:
        raise DataError(
            f"ranking_metrics: topk has {topk.shape[0]} rows but truth has {n_users}; "
            "row u of both must describe the same user"
        )
    if topk.size and int(topk.max()) >= n_items:
        raise DataError(
            f"ranking_metrics: topk holds item id {int(topk.max())} but truth has only "
            f"{n_items} item columns (valid ids 0..{n_items - 1}, -1 for padding)"
        )
    truth = sp.csr_matrix(truth, copy=True)
    truth.eliminate_zeros()
    truth.sort_indices()
    n_rel = np.diff(truth.indptr)
    users = np.flatnonzero(n_rel > 0)

    k_max = ks_t[-1]
    top = topk[users, :k_max].astype(np.int64, copy=False)
    if top.shape[1] < k_max:  # short lists: pad with "no item"
        top = np.pad(top, ((0, 0), (0, k_max - top.shape[1])), constant_values=-1)
    hit = _hits(top, users, truth)  # (n_eval, k_max) bool
    rel = n_rel[users].astype(np.float64)

    discount = 1.0 / np.log2(np.arange(2, k_max + 2))
    cum_hits = np.cumsum(hit, axis=1)
    cum_dcg = np.cumsum(hit * discount, axis=1)
    ideal = np.cumsum(discount)
    first = np.where(hit.any(1), hit.argmax(1) + 1, 0)  # 1-based rank of first hit, 0 = none

    arrays: dict[str, np.ndarray] = {"users": users}
    for k in ks_t:
        hits_k = cum_hits[:, k - 1].astype(np.float64)
        arrays[f"Recall@{k}"] = hits_k / rel
        arrays[f"Precision@{k}"] = hits_k / k
        idcg = ideal[np.minimum(rel, k).astype(np.int64) - 1]
        arrays[f"NDCG@{k}"] = cum_dcg[:, k - 1] / idcg
        arrays[f"HitRate@{k}"] = (hits_k > 0).astype(np.float64)
        in_k = (first > 0) & (first <= k)
        arrays[f"MRR@{k}"] = np.where(in_k, 1.0 / np.maximum(first, 1), 0.0)

    order = [f"{m}@{k}" for m in RANKING_METRICS for k in ks_t]
    summary = {key: float(arrays[key].mean()) if len(users) else 0.0 for key in order}
    if per_user:
        return summary, {"users": users, **{key: arrays[key] for key in order}}
    return summary


def _hits(top: np.ndarray, rows: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """Boolean (len(rows), K): is ``top[r, j]`` a relevant item of user ``rows[r]``?

    Relevant pairs are encoded as sorted keys ``u · I + i`` (CSR rows in order, sorted indices),
    so membership is one ``searchsorted`` over all positions at once.
    """
    n_items = truth.shape[1]
    keys = np.repeat(np.arange(truth.shape[0], dtype=np.int64), np.diff(truth.indptr))
    keys = keys * n_items + truth.indices.astype(np.int64)
    if not len(keys) or not top.size:
        return np.zeros(top.shape, dtype=bool)
    q = rows.astype(np.int64)[:, None] * n_items + top
    pos = np.minimum(np.searchsorted(keys, q), len(keys) - 1)
    return (keys[pos] == q) & (top >= 0)


def coverage(topk: np.ndarray, n_items: int) -> float:
    """Catalogue coverage: :math:`|\\bigcup_u L_u| / |I|`, the share of items in any list.

    Negative ids (padding) are ignored.
    """
    if isinstance(n_items, bool) or not isinstance(n_items, int | np.integer) or n_items <= 0:
        raise ConfigError(f"coverage: n_items must be a positive integer, got {n_items!r}")
    ids = np.asarray(topk).ravel()
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise DataError(f"coverage: topk must hold integer item ids, got dtype {ids.dtype}")
    ids = ids[ids >= 0]
    if ids.size and int(ids.max()) >= n_items:
        raise DataError(f"coverage: item id {int(ids.max())} is outside 0..{n_items - 1}")
    return float(len(np.unique(ids)) / n_items)


def rmse(pred: np.ndarray, true: np.ndarray) -> float:
    """Root mean squared error :math:`\\sqrt{\\frac1n \\sum_i (\\hat r_i - r_i)^2}`."""
    p, t = _pair("RMSE", pred, true)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def mae(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean absolute error :math:`\\frac1n \\sum_i |\\hat r_i - r_i|`."""
    p, t = _pair("MAE", pred, true)
    return float(np.mean(np.abs(p - t)))


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve via the Mann–Whitney rank statistic (ties averaged).

    .. math::

        \\mathrm{AUC} = \\frac{\\sum_{i \\in P} \\mathrm{rank}(s_i) - |P|(|P| + 1)/2}{|P|\\,|N|}

    where ranks are 1-based over all scores with ties given their average rank, which equals
    the probability that a random positive outscores a random negative (ties count ½).
    """
    s, y = _pair("AUC", scores, labels)
    y = _binary("AUC", y)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise DataError(f"AUC: labels need both classes, got {n_pos} positive and {n_neg} negative")
    ranks = rankdata(s, method="average")
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def accuracy(pred_labels: np.ndarray, labels: np.ndarray) -> float:
    """Share of predictions equal to the label: :math:`\\frac1n \\sum_i [\\hat y_i = y_i]`."""
    p, y = _pair("Accuracy", pred_labels, labels)
    return float(np.mean(p == y))


def _pair(metric: str, pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (prediction, target) pair of 1-D numeric arrays for ``metric``."""
    p = np.asarray(pred, dtype=np.float64).ravel() if _numeric(pred) else None
    t = np.asarray(true, dtype=np.float64).ravel() if _numeric(true) else None
    if p is None or t is None:
        raise DataError(f"{metric}: predictions and targets must be numeric arrays")
    if np.shape(pred) != np.shape(true):
        raise DataError(
            f"{metric}: predictions have shape {np.shape(pred)} but targets {np.shape(true)}; "
            "they must match"
        )
    if p.size == 0:
        raise DataError(f"{metric}: no values to evaluate (empty arrays)")
    if np.isnan(p).any():
        raise DataError(f"{metric}: predictions contain {int(np.isnan(p).sum())} NaN value(s)")
    if np.isnan(t).any():
        raise DataError(f"{metric}: targets contain {int(np.isnan(t).sum())} NaN value(s)")
    return p, t


def _numeric(x: np.ndarray) -> bool:
    a = np.asarray(x)
    return a.dtype.kind in "biuf"


def _binary(metric: str, y: np.ndarray) -> np.ndarray:
    if not np.isin(y, (0.0, 1.0)).all():
        raise DataError(f"{metric}: labels must be 0/1 (or bool), got values {np.unique(y)[:5]}")
    return y.astype(bool)
