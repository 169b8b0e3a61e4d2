"""Evaluation protocols: full ranking, rating prediction, a balanced click task, cold start.

Models are used only through :class:`lgrec.models.base.Recommender` (``score``,
``predict_rating``, ``has_rating_head`` and an optional ``predict_click``), so every model,
baseline or ours, is evaluated by the same code.

Full ranking (LightGCN protocol): every user with at least one test item ranks *all* items
(or only ``candidates``) except the items in their training history; the top-``k`` lists are
scored by :func:`lgrec.eval.metrics.ranking_metrics`. Users are processed in blocks with
``torch.topk``, so memory is O(block · items) and never users × items. Ties are broken by
item index, lower first (:func:`lgrec.ranking.topk_stable`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from lgrec.data.dataset import Dataset, Split
from lgrec.errors import ConfigError, DataError
from lgrec.eval.metrics import accuracy, auc, check_ks, coverage, mae, ranking_metrics, rmse
from lgrec.models.base import Recommender
from lgrec.progress import progress
from lgrec.ranking import topk_stable

__all__ = [
    "evaluate_click",
    "evaluate_model",
    "evaluate_ranking",
    "evaluate_rating",
    "sample_unseen",
]

log = logging.getLogger(__name__)


def evaluate_ranking(
    model: Recommender,
    train: Dataset,
    test: Dataset,
    *,
    ks: int | Sequence[int] = (10, 20),
    users: Any | None = None,
    candidates: Any | None = None,
    block_size: int = 1024,
) -> dict[str, float]:
    """Full-ranking metrics of ``model`` on ``test``, excluding each user's training items.

    Protocol:

    * Relevant items :math:`R_u` are the user's test items **minus their training items**
      (an item seen in training is masked from the ranking, so it could never be a hit; keeping
      it would only lower recall for every model alike). With ``candidates``, :math:`R_u` is
      further restricted to the candidate items.
    * Evaluated users: those with :math:`|R_u| \\ge 1`, intersected with ``users`` when given.
    * Ranking: ``model.score`` per block of ``block_size`` users; the items in ``train`` (and
      in the model's own seen matrix ``seen_``, when it has one) are set to :math:`-\\infty`;
      the top :math:`\\max(ks)` are taken over all items, or over
      ``candidates`` only (e.g. the cold-start items). Masked items never enter a list: a list
      shorter than ``k`` is padded with ``-1``. Equal scores rank by item index, lower
      first (:func:`lgrec.ranking.topk_stable`), so ties never depend on the thread count.

    Returns the metrics of :func:`~lgrec.eval.metrics.ranking_metrics` plus ``coverage@k``
    (share of the catalogue, or of the candidates, in any top-``k`` list), ``n_users`` and
    ``eval_s`` (wall-clock seconds).
    """
    return _ranking_pass(model, train, test, ks, users, candidates, block_size)[0]


def _ranking_pass(
    model: Recommender,
    train: Dataset,
    test: Dataset,
    ks: int | Sequence[int],
    users: Any | None,
    candidates: Any | None,
    block_size: int,
    pairs: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[dict[str, float], np.ndarray | None]:
    """:func:`evaluate_ranking`; with ``pairs = (users, items)`` also the model's score of each
    pair, read off the same score rows (one scoring pass serves ranking and clicks)."""
    t0 = time.perf_counter()
    ks_t = check_ks(ks)
    if not isinstance(block_size, int) or block_size <= 0:
        raise ConfigError(f"block_size must be a positive integer, got {block_size!r}")
    n_users, n_items = _check_spaces(model, train, test)
    train_m = train.matrix("binary")
    truth = test.matrix("binary")
    truth = (truth - truth.multiply(train_m)).tocsr()  # drop test items already in train
    truth.eliminate_zeros()
    cand = None
    if candidates is not None:
        cand = _ids(candidates, n_items, "candidates")
        if len(cand) == 0:
            raise ConfigError("candidates is empty: give at least one item id to rank")
        keep = np.zeros(n_items, dtype=np.float32)
        keep[cand] = 1.0
        truth = truth.multiply(keep[None, :]).tocsr()
        truth.eliminate_zeros()
    eval_users = np.flatnonzero(np.diff(truth.indptr) > 0)
    if users is not None:
        eval_users = np.intersect1d(eval_users, _ids(users, n_users, "users"))

    seen = train_m
    model_seen = getattr(model, "seen_", None)
    if sp.issparse(model_seen) and model_seen.shape == train_m.shape:
        seen = (train_m + model_seen).tocsr()
    k_max = ks_t[-1]
    pair_scores = None
    if pairs is not None:
        pair_scores = np.full(len(pairs[0]), np.nan)
        pairs = (np.asarray(pairs[0]), np.asarray(pairs[1]), pair_scores)
    top = _topk_blocks(model, eval_users, seen, cand, k_max, block_size, pairs)

    sub_truth = truth[eval_users]
    out = ranking_metrics(top, sub_truth, ks_t)
    n_cov = n_items if cand is None else len(cand)
    for k in ks_t:
        ids = top[:, :k]
        if cand is not None:  # coverage of the candidate set: map ids to candidate positions
            ids = np.where(ids >= 0, np.searchsorted(cand, np.maximum(ids, 0)), -1)
        out[f"coverage@{k}"] = coverage(ids, n_cov)
    out["n_users"] = len(eval_users)
    out["eval_s"] = time.perf_counter() - t0
    return out, pair_scores


def _topk_blocks(
    model: Recommender,
    users: np.ndarray,
    seen: sp.csr_matrix,
    cand: np.ndarray | None,
    k: int,
    block_size: int,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """(len(users), k) top item ids per user, masked items excluded, ``-1`` padded.

    ``pairs = (pair users, pair items, out)``: the raw score of every pair whose user is in
    ``users`` (sorted ascending) is written to ``out`` as its block goes by; the rest stay NaN.
    """
    if pairs is not None:
        p_order = np.argsort(pairs[0], kind="stable")
        p_users = pairs[0][p_order]
    n_rank = seen.shape[1] if cand is None else len(cand)
    kk = min(k, n_rank)
    cand_t = None if cand is None else torch.from_numpy(cand)
    top = np.full((len(users), k), -1, dtype=np.int64)
    blocks = range(0, len(users), block_size)
    # one reusable buffer: masking must not write into the model's tensors, and reusing it
    # avoids allocating (and page-faulting) a fresh block × items copy per block
    buf = torch.empty((min(block_size, len(users)), seen.shape[1]), dtype=torch.float32)
    with torch.no_grad():
        for start in progress(blocks, desc="ranking", total=len(blocks), unit="blocks"):
            ub = users[start : start + block_size]
            raw = torch.as_tensor(model.score(torch.from_numpy(ub))).detach()
            if raw.shape != (len(ub), seen.shape[1]):
                raise DataError(
                    f"{type(model).__name__}.score returned shape {tuple(raw.shape)} for "
                    f"{len(ub)} users; expected ({len(ub)}, {seen.shape[1]})"
                )
            s = buf[: len(ub)]
            s.copy_(raw)
            del raw
            if torch.isnan(s.max()):  # max propagates NaN; 10x cheaper than isnan(s).any()
                raise DataError(f"{type(model).__name__}.score returned NaN scores")
            if pairs is not None:
                lo = np.searchsorted(p_users, ub[0], side="left")
                hi = np.searchsorted(p_users, ub[-1], side="right")
                sel = p_order[lo:hi]
                rows = np.searchsorted(ub, pairs[0][sel])
                inb = ub[np.minimum(rows, len(ub) - 1)] == pairs[0][sel]
                sel, rows = sel[inb], rows[inb]
                got = s[torch.from_numpy(rows), torch.from_numpy(pairs[1][sel])]
                pairs[2][sel] = got.double().numpy()
            m = seen[ub].tocoo()
            s[torch.from_numpy(m.row).long(), torch.from_numpy(m.col).long()] = -torch.inf
            if cand_t is not None:
                s = s[:, cand_t]
            sc, ix = topk_stable(s, kk)
            ids = ix if cand_t is None else cand_t[ix]
            ids[torch.isneginf(sc)] = -1  # only masked items were left: pad
            top[start : start + len(ub), :kk] = ids.numpy()
    return top


def evaluate_rating(
    model: Recommender, test: Dataset, *, block_size: int = 262_144
) -> dict[str, float]:
    """RMSE and MAE of ``model.predict_rating`` over the test pairs; ``{}`` without a rating head.

    Predictions are clipped to ``test.rating_scale`` when it is set (a model should not be
    penalised for predicting 5.3 stars on a 1..5 scale). Pairs are predicted in blocks.
    """
    if not getattr(model, "has_rating_head", False):
        return {}
    if len(test) == 0:
        raise DataError(f"evaluate_rating: test set {test.name!r} has no interactions")
    u, i, r = test.user_ids, test.item_ids, test.ratings
    pred = np.concatenate(
        [
            torch.as_tensor(model.predict_rating(u[s : s + block_size], i[s : s + block_size]))
            .detach()
            .float()
            .numpy()
            .ravel()
            for s in range(0, len(u), block_size)
        ]
    )
    if test.rating_scale is not None:
        lo, hi = test.rating_scale
        pred = np.clip(pred, lo, hi)
    return {"RMSE": rmse(pred, r), "MAE": mae(pred, r)}


def evaluate_click(
    model: Recommender,
    train: Dataset,
    test: Dataset,
    *,
    seed: int = 0,
    threshold: str | float = "median",
    block_size: int = 1024,
) -> dict[str, float]:
    """A balanced click task: test pairs versus one sampled unseen item per pair.

    Positives are the distinct test (user, item) pairs not already in ``train``. For each, one
    negative item is drawn uniformly from the items the user has in neither train nor test
    (:func:`sample_unseen`; users who have seen every item are dropped). Returns

    * ``AUC`` of ``model.score`` on the labelled pairs (:func:`~lgrec.eval.metrics.auc`);
    * ``Accuracy``: predict "click" when the score is above the threshold, by default the
      median score of the labelled set (model-agnostic: scores need not be probabilities;
      ties at the median count as "no click"); a float uses that fixed score threshold;
    * ``Accuracy@0.5`` when the model has ``predict_click(users, items)`` returning
      probabilities: click when :math:`p \\ge 0.5`;
    * ``n_pairs``: the number of labelled pairs (2 per positive).
    """
    if not (threshold == "median" or isinstance(threshold, int | float)):
        raise ConfigError(f"threshold must be 'median' or a number, got {threshold!r}")
    users, items, labels = click_pairs(model, train, test, seed)
    scores = model.score_pairs(users, items, block_size).double().numpy()
    return _click_metrics(model, users, items, labels, scores, threshold)


def click_pairs(
    model: Recommender, train: Dataset, test: Dataset, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(users, items, labels)`` of :func:`evaluate_click`'s balanced task: every distinct
    test pair not in ``train`` (label 1), then one sampled unseen item per pair (label 0)."""
    _, n_items = _check_spaces(model, train, test)
    train_m = train.matrix("binary")
    pos = test.matrix("binary")
    pos = (pos - pos.multiply(train_m)).tocsr()
    pos.eliminate_zeros()
    seen = (train_m + test.matrix("binary")).tocsr()
    seen.data[:] = 1.0
    full = np.diff(seen.indptr) >= n_items
    coo = pos.tocoo()
    ok = ~full[coo.row]
    pu, pi = coo.row[ok].astype(np.int64), coo.col[ok].astype(np.int64)
    if len(pu) == 0:
        raise DataError(f"evaluate_click: test set {test.name!r} has no usable (user, item) pairs")
    ni = sample_unseen(seen, pu, np.random.default_rng(seed))
    users = np.concatenate([pu, pu])
    items = np.concatenate([pi, ni])
    labels = np.concatenate([np.ones(len(pu)), np.zeros(len(pu))])
    return users, items, labels


def _click_metrics(
    model: Recommender,
    users: np.ndarray,
    items: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: str | float,
) -> dict[str, float]:
    """The metrics of :func:`evaluate_click` from the pairs' scores."""
    thr = float(np.median(scores)) if threshold == "median" else float(threshold)
    out = {
        "AUC": auc(scores, labels),
        "Accuracy": accuracy((scores > thr).astype(np.float64), labels),
    }
    predict_click = getattr(model, "predict_click", None)
    if callable(predict_click):
        p = torch.as_tensor(predict_click(users, items)).detach().float().numpy().ravel()
        out["Accuracy@0.5"] = accuracy((p >= 0.5).astype(np.float64), labels)
    out["n_pairs"] = len(labels)
    return out


def sample_unseen(seen: sp.csr_matrix, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One item per entry of ``users``, uniform over the items that user has not seen.

    Exact and vectorised (no rejection loop): with user :math:`u`'s seen items sorted as
    :math:`s_0 < s_1 < \\dots`, draw :math:`r \\sim U\\{0, \\dots, I - |S_u| - 1\\}`; the
    :math:`r`-th unseen item is :math:`r + j`, where :math:`j = |\\{t : s_t - t \\le r\\}|`
    (:math:`s_t - t` counts unseen items below :math:`s_t`, non-decreasing in :math:`t`),
    found for all draws at once by one ``searchsorted`` over keys
    :math:`u \\cdot (I + 1) + (s_t - t)`. Every user must have an unseen item.
    """
    seen = sp.csr_matrix(seen)
    seen.sum_duplicates()
    seen.sort_indices()
    n_items = seen.shape[1]
    n_seen = np.diff(seen.indptr)
    n_free = n_items - n_seen[users]
    if (n_free <= 0).any():
        bad = users[n_free <= 0][:5].tolist()
        raise DataError(f"sample_unseen: user(s) {bad} have seen every item; nothing to sample")
    r = np.floor(rng.random(len(users)) * n_free).astype(np.int64)
    pos_in_row = np.arange(seen.nnz, dtype=np.int64) - np.repeat(seen.indptr[:-1], n_seen)
    row = np.repeat(np.arange(seen.shape[0], dtype=np.int64), n_seen)
    keys = row * (n_items + 1) + (seen.indices.astype(np.int64) - pos_in_row)
    j = np.searchsorted(keys, users * (n_items + 1) + r, side="right") - seen.indptr[users]
    return r + j


def evaluate_model(
    model: Recommender,
    split: Split,
    *,
    ks: int | Sequence[int] = (10, 20),
    cold: bool = False,
    seed: int = 0,
    block_size: int = 1024,
) -> dict[str, float]:
    """Ranking + rating + click metrics of ``model`` on ``split.test`` in one dictionary.

    The exclusion set is ``split.full_train`` (train + valid), the user's whole known history.
    With ``cold=True`` (needs ``split.cold_items``) two cold-start rankings are added for the
    test interactions on cold items: ``cold_*`` ranks only the cold items (candidates) and
    ``cold_all_*`` ranks all items, the harder and more realistic setting. ``eval_s`` is
    the total time of all parts.
    """
    t0 = time.perf_counter()
    hist = split.full_train
    try:
        clicks = click_pairs(model, hist, split.test, seed)
    except DataError as e:  # e.g. every test pair is also a training pair
        log.warning("click evaluation skipped: %s", e)
        clicks = None
    pairs = None if clicks is None else clicks[:2]
    out, scores = _ranking_pass(model, hist, split.test, ks, None, None, block_size, pairs)
    out.update(evaluate_rating(model, split.test))
    if clicks is not None:
        miss = np.isnan(scores)  # pairs of users the ranking skipped (none, by construction)
        if miss.any():
            scores[miss] = model.score_pairs(clicks[0][miss], clicks[1][miss], block_size).numpy()
        out.update(_click_metrics(model, *clicks, scores, "median"))
    if cold:
        cold_items = np.asarray(split.cold_items, dtype=np.int64)
        if len(cold_items) == 0:
            raise ConfigError("cold=True but split.cold_items is empty: use a cold-start split")
        cold_test = split.test.subset(np.isin(split.test.item_ids, cold_items))
        parts = {
            "cold_": {"candidates": cold_items},
            "cold_all_": {},
        }
        for prefix, kw in parts.items():
            res = evaluate_ranking(model, hist, cold_test, ks=ks, block_size=block_size, **kw)
            out.update({prefix + key: v for key, v in res.items()})
    out["eval_s"] = time.perf_counter() - t0
    return out


def _check_spaces(model: Recommender, train: Dataset, test: Dataset) -> tuple[int, int]:
    """Check model, train and test share one id space; return (n_users, n_items)."""
    n_users, n_items = train.n_users, train.n_items
    if (test.n_users, test.n_items) != (n_users, n_items):
        raise DataError(
            f"train {train.name!r} has {n_users} users × {n_items} items but test "
            f"{test.name!r} has {test.n_users} × {test.n_items}; they must share one id space"
        )
    m_users, m_items = getattr(model, "n_users_", n_users), getattr(model, "n_items_", n_items)
    if (m_users, m_items) != (n_users, n_items):
        raise DataError(
            f"{type(model).__name__} was fitted on {m_users} users × {m_items} items but the "
            f"data has {n_users} × {n_items}; evaluate on the data set it was trained on"
        )
    return n_users, n_items


def _ids(x: Any, upper: int, what: str) -> np.ndarray:
    """Sorted unique int64 ids from ``x``, each in ``0..upper-1``."""
    a = np.asarray(x.numpy() if isinstance(x, torch.Tensor) else x)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ConfigError(f"{what} must be integer ids, got dtype {a.dtype}")
    a = np.unique(a.astype(np.int64).ravel())
    if a.size and (a[0] < 0 or a[-1] >= upper):
        raise ConfigError(f"{what}: ids must lie in 0..{upper - 1}, got {a[0]}..{a[-1]}")
    return a
