"""Protocols with a fake model whose fixed scores give hand-computable rankings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from lgrec.data.dataset import Dataset, Split
from lgrec.errors import ConfigError, DataError
from lgrec.eval.metrics import ranking_metrics
from lgrec.eval.protocol import (
    evaluate_click,
    evaluate_model,
    evaluate_ranking,
    evaluate_rating,
    sample_unseen,
)
from lgrec.models.base import Recommender


class FixedScores(Recommender):
    """Test double: ``score`` returns rows of a fixed (users × items) matrix."""

    name = "fixed-scores-test"

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = scores

    def fit(self, data: Dataset, *, valid: Dataset | None = None) -> FixedScores:
        self._remember(data)
        return self

    def _score_block(self, users: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.scores, dtype=torch.float32)[users]


class RatingModel(FixedScores):
    has_rating_head = True

    def predict_rating(self, users, items) -> torch.Tensor:
        return torch.full((len(users),), 6.0)  # always 6 stars (above a 1..5 scale)


class ClickModel(FixedScores):
    def predict_click(self, users, items) -> torch.Tensor:
        s = torch.as_tensor(self.scores, dtype=torch.float32)
        return s[torch.as_tensor(users), torch.as_tensor(items)]


def make_ds(pairs, n_users: int, n_items: int, ratings=None, scale=None, name="") -> Dataset:
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    n = len(pairs)
    inter = pd.DataFrame(
        {
            "user": pairs[:, 0].astype(np.int32),
            "item": pairs[:, 1].astype(np.int32),
            "rating": np.ones(n, np.float32)
            if ratings is None
            else np.asarray(ratings, np.float32),
            "timestamp": np.arange(n, dtype=np.int64),
            "event": ["rating"] * n,
        }
    )
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)]})
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(n_users)]})
    return Dataset(inter, items, users, name=name, rating_scale=scale)


# 3 users × 6 items; every user ranks items 0 > 1 > 2 > 3 > 4 > 5 (scores 6 .. 1)
SCORES = np.tile(np.arange(6, 0, -1, dtype=np.float32), (3, 1))
TRAIN = make_ds([(0, 0), (0, 1), (1, 3), (2, 0)], 3, 6, name="train")
# user 1's test item 3 is also a training item: dropped from the truth
TEST = make_ds([(0, 2), (0, 5), (1, 3), (1, 4), (2, 1)], 3, 6, name="test")


def test_train_items_excluded_and_repeated_test_items_dropped() -> None:
    model = FixedScores(SCORES).fit(TRAIN)
    m = evaluate_ranking(model, TRAIN, TEST, ks=(1, 2, 4))
    # user 0: train {0,1} masked -> list [2, 3]; truth {2, 5}: Recall@1 = Recall@2 = 1/2
    # user 1: train {3} masked -> list [0, 1]; truth {4} (3 dropped): no hit
    # user 2: train {0} masked -> list [1, 2]; truth {1}: hit at rank 1
    assert m["n_users"] == 3
    assert m["Recall@1"] == pytest.approx((1 / 2 + 0 + 1) / 3)
    assert m["Recall@2"] == pytest.approx((1 / 2 + 0 + 1) / 3)
    assert m["Precision@2"] == pytest.approx((1 / 2 + 0 + 1 / 2) / 3)
    assert m["coverage@2"] == pytest.approx(4 / 6)  # items {0, 1, 2, 3}
    # @4: user 1's list [0, 1, 2, 4] hits 4; with 3 kept in the truth Recall would be 1/2
    assert m["Recall@4"] == pytest.approx((2 / 2 + 1 / 1 + 1 / 1) / 3)
    assert m["eval_s"] >= 0


def test_exclusion_built_from_train_even_if_model_saw_nothing() -> None:
    empty = make_ds(np.zeros((0, 2)), 3, 6)
    model = FixedScores(SCORES).fit(empty)  # model's own seen matrix is empty
    assert evaluate_ranking(model, TRAIN, TEST, ks=1)["Recall@1"] == pytest.approx((1 / 2 + 1) / 3)


def test_candidates_restrict_ranking_and_truth() -> None:
    model = FixedScores(SCORES).fit(TRAIN)
    m = evaluate_ranking(model, TRAIN, TEST, ks=(1,), candidates=[4, 5])
    # truth within candidates: user 0 {5}, user 1 {4}, user 2 none -> 2 users
    # lists over {4, 5}: both users get [4] -> user 1 hits, user 0 misses
    assert m["n_users"] == 2
    assert m["Recall@1"] == pytest.approx(0.5)
    assert m["coverage@1"] == pytest.approx(0.5)  # 1 of 2 candidates


def test_users_argument_and_padding_when_all_candidates_seen() -> None:
    model = FixedScores(SCORES).fit(TRAIN)
    m = evaluate_ranking(model, TRAIN, TEST, ks=(1,), users=[2])
    assert m["n_users"] == 1 and m["Recall@1"] == pytest.approx(1.0)
    # user 2 ranks candidates {0, 1}, 0 is seen -> list [1, -1]: Precision@2 = 1/2
    m = evaluate_ranking(model, TRAIN, TEST, ks=(2,), users=[2], candidates=[0, 1])
    assert m["Precision@2"] == pytest.approx(0.5)


def test_blocked_ranking_matches_recommend() -> None:
    rng = np.random.default_rng(1)
    n_users, n_items = 50, 80
    tr = sp.random(n_users, n_items, density=0.1, random_state=2, format="coo")
    te = sp.random(n_users, n_items, density=0.05, random_state=3, format="coo")
    train = make_ds(np.c_[tr.row, tr.col], n_users, n_items)
    test = make_ds(np.c_[te.row, te.col], n_users, n_items)
    model = FixedScores(rng.random((n_users, n_items)).astype(np.float32)).fit(train)
    small = evaluate_ranking(model, train, test, ks=(5, 10), block_size=7)
    big = evaluate_ranking(model, train, test, ks=(5, 10), block_size=1024)
    truth = test.matrix() - test.matrix().multiply(train.matrix())
    ids, _ = model.recommend(np.arange(n_users), k=10, exclude_seen=True)
    ref = ranking_metrics(ids.numpy(), sp.csr_matrix(truth), ks=(5, 10))
    for key, v in ref.items():
        assert small[key] == pytest.approx(v) and big[key] == pytest.approx(v), key


def test_ranking_bad_inputs() -> None:
    model = FixedScores(SCORES).fit(TRAIN)
    with pytest.raises(ConfigError, match="ks"):
        evaluate_ranking(model, TRAIN, TEST, ks=0)
    with pytest.raises(ConfigError, match="block_size"):
        evaluate_ranking(model, TRAIN, TEST, block_size=0)
    with pytest.raises(ConfigError, match="candidates"):
        evaluate_ranking(model, TRAIN, TEST, candidates=[9])
    other = make_ds([(0, 0)], 3, 7)
    with pytest.raises(DataError, match="id space"):
        evaluate_ranking(model, TRAIN, other)
    one_nan = SCORES.copy()
    one_nan[1, 4] = np.nan
    with pytest.raises(DataError, match="NaN"):
        evaluate_ranking(FixedScores(one_nan).fit(TRAIN), TRAIN, TEST)


def test_rating_clipped_to_scale_and_empty_without_head() -> None:
    test = make_ds([(0, 2), (1, 4)], 3, 6, ratings=[5.0, 3.0], scale=(1.0, 5.0))
    model = RatingModel(SCORES).fit(TRAIN)
    # predictions 6 clipped to 5: errors 0 and 2 -> RMSE sqrt(4/2), MAE 1
    m = evaluate_rating(model, test)
    assert m["RMSE"] == pytest.approx(np.sqrt(2.0))
    assert m["MAE"] == pytest.approx(1.0)
    assert evaluate_rating(FixedScores(SCORES).fit(TRAIN), test) == {}


def test_sample_unseen_never_picks_seen_and_is_uniform() -> None:
    rng = np.random.default_rng(0)
    seen = sp.random(40, 30, density=0.5, random_state=5, format="csr")
    seen.data[:] = 1
    seen = sp.lil_matrix(seen)
    seen[0, :] = 1
    seen[0, 17] = 0  # user 0 has exactly one unseen item
    seen[2, :] = 1  # user 2 has seen everything
    seen = sp.csr_matrix(seen)
    seen.eliminate_zeros()
    users = rng.integers(3, 40, size=20_000)
    users[:500] = 0
    items = sample_unseen(seen, users, rng)
    assert np.asarray(seen[users, items]).ravel().sum() == 0
    assert (items[users == 0] == 17).all()
    # user 3's unseen items are drawn about equally often
    free = np.setdiff1d(np.arange(30), seen[3].indices)
    counts = np.bincount(items[users == 3], minlength=30)[free]
    assert counts.min() > 0.5 * counts.mean()
    with pytest.raises(DataError, match="every item"):
        sample_unseen(seen, np.array([2]), rng)


def random_train_test(n_users: int, n_items: int, d_train: float, d_test: float, seed: int):
    """Random train and test interactions (test pairs never in train), as Datasets and COO."""
    tr = sp.random(n_users, n_items, density=d_train, random_state=seed, format="csr")
    te = sp.random(n_users, n_items, density=d_test, random_state=seed + 1, format="csr")
    tr.data[:] = 1.0
    te = (te - te.multiply(tr)).tocsr()
    te.eliminate_zeros()
    te, tr = te.tocoo(), tr.tocoo()
    train = make_ds(np.c_[tr.row, tr.col], n_users, n_items)
    test = make_ds(np.c_[te.row, te.col], n_users, n_items)
    return train, test, tr, te


def test_click_perfect_and_constant_models() -> None:
    n_users, n_items = 20, 30
    train, test, tr, te = random_train_test(n_users, n_items, 0.2, 0.1, seed=7)
    # test items score 1, other items 0, but TRAIN items score 2: AUC is 1 only if no
    # negative is ever a training (or test) item
    s = np.zeros((n_users, n_items), dtype=np.float32)
    s[te.row, te.col] = 1.0
    s[tr.row, tr.col] = 2.0
    m = evaluate_click(ClickModel(s).fit(train), train, test, seed=3)
    assert m["AUC"] == pytest.approx(1.0)
    assert m["Accuracy"] == pytest.approx(1.0)  # median threshold splits 1s from 0s
    assert m["Accuracy@0.5"] == pytest.approx(1.0)
    assert m["n_pairs"] == 2 * te.nnz
    flat = evaluate_click(FixedScores(np.ones_like(s)).fit(train), train, test)
    assert flat["AUC"] == pytest.approx(0.5) and flat["Accuracy"] == pytest.approx(0.5)
    assert "Accuracy@0.5" not in flat
    with pytest.raises(ConfigError, match="threshold"):
        evaluate_click(FixedScores(s).fit(train), train, test, threshold="mean")


def test_evaluate_model_scores_clicks_in_the_ranking_pass() -> None:
    """evaluate_model reads the click pairs' scores off the ranking's score rows; the metrics
    equal the separate evaluate_click / evaluate_ranking calls, with the model scored once."""
    rng = np.random.default_rng(4)
    n_users, n_items = 40, 25
    train, test, _, te = random_train_test(n_users, n_items, 0.25, 0.12, seed=1)
    s = rng.standard_normal((n_users, n_items)).astype(np.float32)
    s[te.row, te.col] += 0.8  # informative but imperfect: AUC strictly between 0.5 and 1
    calls = []

    class Counting(FixedScores):
        def _score_block(self, users):
            calls.append(len(users))
            return super()._score_block(users)

    model = Counting(s).fit(train)
    got = evaluate_model(model, Split(train=train, test=test), ks=(5,), seed=9, block_size=7)
    n_ranked = sum(calls)
    ref = evaluate_click(FixedScores(s).fit(train), train, test, seed=9)
    assert 0.55 < ref["AUC"] < 0.99
    assert got["AUC"] == pytest.approx(ref["AUC"]) and got["Accuracy"] == ref["Accuracy"]
    assert got["n_pairs"] == ref["n_pairs"]
    rank = evaluate_ranking(FixedScores(s).fit(train), train, test, ks=(5,))
    assert got["Recall@5"] == pytest.approx(rank["Recall@5"])
    assert n_ranked == rank["n_users"]  # every evaluated user scored once, clicks included


def test_evaluate_model_with_cold_split() -> None:
    split = Split(train=TRAIN, test=TEST, cold_items=np.array([4, 5]), kind="cold")
    model = FixedScores(SCORES).fit(TRAIN)
    m = evaluate_model(model, split, ks=(1,), cold=True)
    # cold_: ranking over {4, 5} only (see test_candidates_...): Recall@1 = 1/2
    assert m["cold_Recall@1"] == pytest.approx(0.5) and m["cold_n_users"] == 2
    # cold_all_: all items ranked, truth = cold test items; lists [2], [0], no hit
    assert m["cold_all_Recall@1"] == pytest.approx(0.0) and m["cold_all_n_users"] == 2
    assert {"Recall@1", "AUC", "Accuracy", "eval_s"} <= set(m)
    assert "RMSE" not in m
    with pytest.raises(ConfigError, match="cold_items"):
        evaluate_model(model, Split(train=TRAIN, test=TEST), cold=True)
