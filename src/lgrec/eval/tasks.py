"""Evaluation of the graph side tasks: friend recovery and item-category prediction.

Friend recovery (link prediction): a seeded share of friendships is hidden
(:func:`lgrec.graph.social.split_edges`); a recommender that only knows the other edges lists
top-k candidate friends for every user with a hidden friend, and the lists are scored against
the hidden friends exactly like item ranking (:func:`lgrec.eval.metrics.ranking_metrics`:
Recall@k = hits / |hidden friends of u|, NDCG@k, ...).

Category prediction (node classification): the category labels of a seeded share of items
are removed (:func:`holdout_categories`); a model predicts a score per category for each
held-out item. With T_i the true set and the ranked categories c_1, c_2, … of item i:

    Accuracy@1 = mean_i [c_1 ∈ T_i]          HitRate@3 = mean_i [{c_1, c_2, c_3} ∩ T_i ≠ ∅]
    P_i = {c_1, …, c_|T_i|}  (predict as many categories as the item truly has)
    micro-F1 = 2 Σ_i |P_i ∩ T_i| / (Σ_i |P_i| + Σ_i |T_i|)
    macro-F1 = mean_c 2 TP_c / (2 TP_c + FP_c + FN_c)   over categories with TP+FP+FN > 0

Baselines score categories by similarity-weighted votes of labelled items,
score_ic = Σ_{j ∈ N_k(i)} sim(i, j) · y_jc (text kNN on item embeddings, or any item graph),
or by a one-vs-rest logistic regression on the item embeddings.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lgrec.data.dataset import Dataset
from lgrec.errors import ConfigError, DataError
from lgrec.eval.metrics import check_ks, ranking_metrics
from lgrec.graph.social import check_edges, social_adjacency

log = logging.getLogger(__name__)


# ---- friend recovery -----------------------------------------------------------------------
def evaluate_friend_recovery(
    model: Any,
    known_edges: np.ndarray,
    hidden_edges: np.ndarray,
    n_users: int,
    *,
    ks: int | Sequence[int] = (10, 20),
    block_size: int = 1024,
) -> dict[str, float]:
    """Ranking metrics of recovering ``hidden_edges`` with ``model.recommend(users, k)``.

    ``model`` returns (ids, scores) arrays of shape (len(users), k) and must exclude the
    user and the ``known_edges`` (as :class:`lgrec.models.friends.FriendRecommender` does);
    hidden pairs that are also known are not counted. Evaluated users: those with at least one
    hidden friend. Returns the metrics of :func:`ranking_metrics` plus ``n_users``.
    """
    ks_t = check_ks(ks)
    known = social_adjacency(check_edges(known_edges, n_users, "known_edges"), n_users)
    truth = social_adjacency(check_edges(hidden_edges, n_users, "hidden_edges"), n_users)
    truth = (truth - truth.multiply(known)).tocsr()
    truth.eliminate_zeros()
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    if not len(users):
        raise DataError("evaluate_friend_recovery: no hidden friendship left to recover")
    k = ks_t[-1]
    tops = []
    for s in range(0, len(users), block_size):
        ids, _ = model.recommend(users[s : s + block_size], k)
        ids = np.asarray(ids, dtype=np.int64)
        if ids.shape != (len(users[s : s + block_size]), min(k, n_users - 1)):
            raise DataError(f"evaluate_friend_recovery: recommend returned shape {ids.shape}")
        tops.append(ids)
    top = np.concatenate(tops)
    if top.shape[1] < k:
        top = np.pad(top, ((0, 0), (0, k - top.shape[1])), constant_values=-1)
    out = ranking_metrics(top, truth[users], ks_t)
    out["n_users"] = len(users)
    return out


# ---- category prediction -------------------------------------------------------------------
def holdout_categories(
    ds: Dataset, *, frac: float = 0.2, seed: int = 0
) -> tuple[Dataset, np.ndarray]:
    """A copy of ``ds`` whose items table has empty category lists for a seeded ``frac`` of
    the items that have categories; returns (copy, held-out item ids, sorted)."""
    if not 0.0 < frac < 1.0:
        raise ConfigError(f"holdout_categories: frac must be strictly between 0 and 1, got {frac}")
    _, y = ds.categories()
    labelled = np.flatnonzero(np.diff(y.indptr) > 0)
    if len(labelled) < 2:
        raise DataError(f"holdout_categories: {ds.name!r} has fewer than 2 items with categories")
    rng = np.random.default_rng(seed)
    n = max(1, round(frac * len(labelled)))
    held = np.sort(rng.choice(labelled, n, replace=False))
    items = ds.items.copy()
    cats = items["categories"].to_numpy(dtype=object).copy()
    cats[held] = [[] for _ in range(len(held))]
    items["categories"] = cats
    return replace(ds, items=items), held


def category_truth(ds: Dataset, items: np.ndarray, vocab: Sequence[str]) -> sp.csr_matrix:
    """Binary (len(items), len(vocab)) matrix of the true categories of ``items`` in ``ds``."""
    v, y = ds.categories()
    cols = pd.Index(list(vocab)).get_indexer(v)
    if (cols < 0).any():
        raise DataError(f"category_truth: categories {np.asarray(v)[cols < 0][:5]} not in vocab")
    y = sp.csr_matrix(y[np.asarray(items)])
    return sp.csr_matrix((y.data, cols[y.indices], y.indptr), shape=(y.shape[0], len(vocab)))


def align_scores(scores: np.ndarray, vocab: Sequence[str], target: Sequence[str]) -> np.ndarray:
    """Reorder score columns from ``vocab`` to ``target``; absent categories get -inf."""
    out = np.full((scores.shape[0], len(target)), -np.inf, dtype=np.float64)
    pos = pd.Index(list(vocab)).get_indexer(list(target))
    ok = pos >= 0
    out[:, ok] = np.asarray(scores, dtype=np.float64)[:, pos[ok]]
    return out


def category_metrics(scores: np.ndarray, truth: sp.spmatrix) -> dict[str, float]:
    """Accuracy@1, HitRate@3, micro-/macro-F1 (top-|T_i|) of ``scores`` (n × C) vs ``truth``.

    Items without a true category are ignored. Ties are broken by the lower category index.
    """
    truth = sp.csr_matrix(truth, dtype=np.float32)
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != truth.shape:
        raise DataError(f"category_metrics: scores {s.shape} and truth {truth.shape} differ")
    n_true = np.diff(truth.indptr)
    keep = n_true > 0
    s, truth, n_true = s[keep], truth[keep], n_true[keep]
    if not len(s):
        raise DataError("category_metrics: no item with a true category")
    s = np.where(np.isnan(s), -np.inf, s)
    order = np.argsort(-s, axis=1, kind="stable")
    t = truth.toarray() > 0
    hit = np.take_along_axis(t, order, axis=1)  # hit[i, r] = rank-r category is true
    pred = np.zeros_like(t)
    rank_ok = np.arange(t.shape[1])[None, :] < n_true[:, None]
    np.put_along_axis(pred, order, rank_ok, axis=1)
    tp, fp, fn = (pred & t).sum(0), (pred & ~t).sum(0), (~pred & t).sum(0)
    used = (tp + fp + fn) > 0
    macro = float((2 * tp[used] / (2 * tp[used] + fp[used] + fn[used])).mean())
    micro = float(2 * tp.sum() / (pred.sum() + t.sum()))
    return {
        "Accuracy@1": float(hit[:, 0].mean()),
        "HitRate@3": float(hit[:, :3].any(1).mean()),
        "micro-F1": micro,
        "macro-F1": macro,
        "n_items": len(s),
    }


def model_category_scores(model: Any, items: np.ndarray, target: Sequence[str]) -> np.ndarray:
    """Category probabilities of a model with a category head (LMGCN ``cat_logits_``),
    aligned to ``target`` categories."""
    logits = getattr(model, "cat_logits_", None)
    if logits is None:
        raise ConfigError(f"{type(model).__name__} has no category head (cat_logits_)")
    import torch

    p = torch.softmax(logits[np.asarray(items)].float(), dim=1).numpy()
    return align_scores(p, model.categories_, target)


def knn_category_scores(
    sim: np.ndarray | sp.spmatrix, y: sp.spmatrix, *, k: int | None = 20
) -> np.ndarray:
    """score_ic = Σ_{j ∈ N_k(i)} sim_ij · y_jc over the ``k`` most similar labelled items.

    ``sim`` is (n_query × I) (dense, or sparse such as rows of an item graph); ``y`` is the
    I × C label matrix with zero rows for unlabelled items, which never vote.
    """
    y = sp.csr_matrix(y, dtype=np.float32)
    labelled = np.diff(y.indptr) > 0
    s = sim.toarray() if sp.issparse(sim) else np.array(sim, dtype=np.float32)
    s = np.where(labelled[None, :], s, -np.inf)
    if k is not None and k < s.shape[1]:
        cut = -np.partition(-s, k - 1, axis=1)[:, k - 1 : k]
        s = np.where(s >= cut, s, -np.inf)
    s = np.where(np.isfinite(s) & (s > 0), s, 0.0).astype(np.float32)
    return np.asarray((sp.csr_matrix(s) @ y).toarray())


def text_category_scores(
    emb: np.ndarray,
    y: sp.spmatrix,
    items: np.ndarray,
    *,
    method: str = "knn",
    k: int = 20,
    c: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """Text-only baselines on item embeddings: cosine kNN votes (``"knn"``) or one-vs-rest
    logistic regression (``"logreg"``, scikit-learn, inverse regularisation ``c``) trained on
    the labelled items; returns (len(items), C) scores."""
    e = np.asarray(emb, dtype=np.float32)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    y = sp.csr_matrix(y, dtype=np.float32)
    items = np.asarray(items)
    if method == "knn":
        return knn_category_scores(e[items] @ e.T, y, k=k)
    if method != "logreg":
        raise ConfigError(f"text_category_scores: method={method!r}; expected 'knn' or 'logreg'")
    from sklearn.linear_model import LogisticRegression

    labelled = np.flatnonzero(np.diff(y.indptr) > 0)
    yl = y[labelled].toarray() > 0
    out = np.zeros((len(items), y.shape[1]))
    for col in np.flatnonzero(yl.any(0) & ~yl.all(0)):  # one small model per category
        clf = LogisticRegression(C=c, max_iter=1000, random_state=seed)
        clf.fit(e[labelled], yl[:, col])
        out[:, col] = clf.predict_proba(e[items])[:, 1]
    out[:, yl.all(0)] = 1.0
    return out
