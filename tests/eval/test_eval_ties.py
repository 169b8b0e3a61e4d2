"""Ties in evaluation and in ``Recommender.recommend``: equal scores rank by item index."""

from __future__ import annotations

import numpy as np
import torch

from lgrec.eval.protocol import _topk_blocks, evaluate_ranking
from tests.eval.test_eval_protocol import FixedScores, make_ds


def tied_model(n_users: int = 30, n_items: int = 500):
    """Two score levels per user; ~half the items tie on each, in a shuffled pattern."""
    rng = np.random.default_rng(0)
    scores = (rng.random((n_users, n_items)) < 0.5).astype(np.float32)
    train_pairs = [(u, i) for u in range(n_users) for i in rng.choice(n_items, 40, replace=False)]
    train = make_ds(train_pairs, n_users, n_items, name="train")
    return FixedScores(scores).fit(train), scores, train


def expected(scores: np.ndarray, train, k: int) -> np.ndarray:
    s = scores.copy()
    s[train.matrix("binary").toarray() > 0] = -np.inf
    return np.array([sorted(range(s.shape[1]), key=lambda i: (-r[i], i))[:k] for r in s])


def test_evaluation_breaks_ties_by_lower_item_index() -> None:
    model, scores, train = tied_model()
    want = expected(scores, train, 20)
    users = np.arange(scores.shape[0])
    for block in (7, 1024):  # the block size must not matter
        top = _topk_blocks(model, users, train.matrix("binary"), None, 20, block)
        assert np.array_equal(top, want)
    # a user whose test items are the 20 first of the order gets every hit; the next 20: none
    first = [(u, i) for u in users for i in want[u]]
    assert evaluate_ranking(model, train, make_ds(first, 30, 500), ks=20)["Recall@20"] == 1.0
    later = [(u, i) for u in users for i in expected(scores, train, 40)[u, 20:]]
    assert evaluate_ranking(model, train, make_ds(later, 30, 500), ks=20)["Recall@20"] == 0.0


def test_recommend_breaks_ties_by_item_index_even_with_shuffled_candidates() -> None:
    model, scores, train = tied_model()
    ids, _ = model.recommend(np.arange(30), k=20)
    assert np.array_equal(ids.numpy(), expected(scores, train, 20))
    cand = np.random.default_rng(1).permutation(np.arange(100, 300))
    ids, _ = model.recommend([3], k=10, candidates=torch.from_numpy(cand))
    s = scores[3].copy()
    s[train.matrix("binary")[3].toarray().ravel() > 0] = -np.inf
    want = sorted(range(100, 300), key=lambda i: (-s[i], i))[:10]
    assert ids[0].tolist() == want
