"""Metrics against hand-computed values, brute-force references and bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from lgrec.errors import ConfigError, DataError
from lgrec.eval.metrics import accuracy, auc, coverage, mae, ranking_metrics, rmse


def _truth(rel: list[list[int]], n_items: int) -> sp.csr_matrix:
    rows = np.repeat(np.arange(len(rel)), [len(r) for r in rel])
    cols = np.array([i for r in rel for i in r], dtype=np.int64)
    return sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(rel), n_items))


# user 0: relevant {1, 5}, list [1, 2, 5] -> hits at ranks 1 and 3
# user 1: relevant {0, 6, 8}, list [3, 4, 0] -> one hit at rank 3
# user 2: no relevant items -> not averaged
# user 3: relevant {2}, list [9, 8, 7] -> no hit
TOPK = np.array([[1, 2, 5], [3, 4, 0], [0, 1, 2], [9, 8, 7]])
TRUTH = _truth([[1, 5], [0, 6, 8], [], [2]], n_items=10)


def test_ranking_metrics_hand_computed() -> None:
    m = ranking_metrics(TOPK, TRUTH, ks=(1, 3))
    # NDCG@3, user 0: DCG = 1/log2(2) + 1/log2(4) = 1 + 0.5 = 1.5;
    #                 IDCG (min(2, 3) = 2 items) = 1 + 1/log2(3) = 1.6309 -> 0.91972
    # NDCG@3, user 1: DCG = 1/log2(4) = 0.5; IDCG (3 items) = 1 + 1/log2(3) + 0.5 -> 0.23464
    ndcg0 = 1.5 / (1 + 1 / math.log2(3))
    ndcg1 = 0.5 / (1 + 1 / math.log2(3) + 0.5)
    expected = {
        "Recall@3": (2 / 2 + 1 / 3 + 0) / 3,  # hits / |rel|
        "Precision@3": (2 / 3 + 1 / 3 + 0) / 3,  # hits / k
        "NDCG@3": (ndcg0 + ndcg1 + 0) / 3,
        "HitRate@3": (1 + 1 + 0) / 3,
        "MRR@3": (1 / 1 + 1 / 3 + 0) / 3,  # first hits at ranks 1 and 3
        "Recall@1": (1 / 2 + 0 + 0) / 3,
        "Precision@1": (1 + 0 + 0) / 3,
        "NDCG@1": (1 + 0 + 0) / 3,  # one relevant slot: IDCG@1 = 1
        "HitRate@1": 1 / 3,
        "MRR@1": 1 / 3,
    }
    assert set(m) == set(expected)
    for key, v in expected.items():
        assert m[key] == pytest.approx(v, abs=1e-12), key
    assert m["NDCG@3"] == pytest.approx(0.384786, abs=1e-6)


def test_per_user_arrays() -> None:
    summary, arrays = ranking_metrics(TOPK, TRUTH, ks=3, per_user=True)
    np.testing.assert_array_equal(arrays["users"], [0, 1, 3])
    np.testing.assert_allclose(arrays["Recall@3"], [1.0, 1 / 3, 0.0])
    np.testing.assert_allclose(arrays["MRR@3"], [1.0, 1 / 3, 0.0])
    assert summary["Recall@3"] == pytest.approx(arrays["Recall@3"].mean())


def _reference(topk: np.ndarray, truth: sp.csr_matrix, k: int) -> dict[str, float]:
    """Straightforward per-user loop (LightGCN's formulas) as a reference."""
    vals: dict[str, list[float]] = {
        m: [] for m in ("Recall", "Precision", "NDCG", "HitRate", "MRR")
    }
    for u in range(truth.shape[0]):
        rel = set(truth[u].indices.tolist())
        if not rel:
            continue
        hits = [1.0 if i in rel else 0.0 for i in topk[u, :k]]
        dcg = sum(h / math.log2(j + 2) for j, h in enumerate(hits))
        idcg = sum(1 / math.log2(j + 2) for j in range(min(len(rel), k)))
        first = next((j + 1 for j, h in enumerate(hits) if h), None)
        vals["Recall"].append(sum(hits) / len(rel))
        vals["Precision"].append(sum(hits) / k)
        vals["NDCG"].append(dcg / idcg)
        vals["HitRate"].append(float(any(hits)))
        vals["MRR"].append(1 / first if first else 0.0)
    return {f"{m}@{k}": float(np.mean(v)) for m, v in vals.items()}


def test_ranking_metrics_match_loop_reference() -> None:
    rng = np.random.default_rng(3)
    n_users, n_items = 60, 40
    truth = sp.random(n_users, n_items, density=0.08, random_state=4, format="csr")
    topk = np.stack([rng.permutation(n_items)[:20] for _ in range(n_users)])
    m = ranking_metrics(topk, truth, ks=(5, 20))
    for k in (5, 20):
        for key, v in _reference(topk, truth, k).items():
            assert m[key] == pytest.approx(v, abs=1e-12), key


def test_short_lists_and_padding_never_hit() -> None:
    truth = _truth([[0, 1]], n_items=4)
    # list of length 2 padded with -1, evaluated at k = 4 (> K = 3): precision still / k
    m = ranking_metrics(np.array([[1, -1, -1]]), truth, ks=(4,))
    assert m["Recall@4"] == pytest.approx(0.5)
    assert m["Precision@4"] == pytest.approx(0.25)
    assert m["MRR@4"] == pytest.approx(1.0)


def test_no_relevant_users_gives_zeros() -> None:
    m = ranking_metrics(np.array([[0, 1]]), sp.csr_matrix((1, 3)), ks=2)
    assert m["Recall@2"] == 0.0 and m["NDCG@2"] == 0.0


@pytest.mark.parametrize("ks", [0, -3, (10, 0), (), 2.5])
def test_bad_k_raises_config_error(ks) -> None:
    with pytest.raises(ConfigError, match="ks"):
        ranking_metrics(TOPK, TRUTH, ks=ks)


def test_ranking_input_errors() -> None:
    with pytest.raises(DataError, match="rows"):
        ranking_metrics(TOPK[:2], TRUTH, ks=3)
    with pytest.raises(DataError, match="item id 12"):
        ranking_metrics(np.array([[12, 0, 0]] * 4), TRUTH, ks=3)
    with pytest.raises(DataError, match="integer"):
        ranking_metrics(TOPK.astype(float), TRUTH, ks=3)
    with pytest.raises(DataError, match="2-D"):
        ranking_metrics(TOPK.ravel(), TRUTH, ks=3)
    with pytest.raises(DataError, match=r"scipy\.sparse"):
        ranking_metrics(TOPK, TRUTH.toarray(), ks=3)


def test_coverage() -> None:
    # items {0, 1, 2} appear; padding ignored -> 3 of 10
    assert coverage(np.array([[0, 1], [1, 2], [2, -1]]), 10) == pytest.approx(0.3)
    with pytest.raises(ConfigError, match="n_items"):
        coverage(np.array([[0]]), 0)
    with pytest.raises(DataError, match="outside"):
        coverage(np.array([[5]]), 5)


def test_rmse_mae_accuracy_hand_computed() -> None:
    pred, true = np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 5.0])  # errors 0, 1, 2
    assert rmse(pred, true) == pytest.approx(math.sqrt((0 + 1 + 4) / 3))
    assert mae(pred, true) == pytest.approx((0 + 1 + 2) / 3)
    assert accuracy(np.array([1, 0, 1, 1]), np.array([1, 1, 1, 0])) == pytest.approx(0.5)


def test_auc_hand_computed_and_ties() -> None:
    # positives 0.35, 0.8 vs negatives 0.1, 0.4: 3 of 4 pairs ordered correctly
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    assert auc(np.array([1.0, 1.0]), np.array([1, 0])) == pytest.approx(0.5)  # a tie counts 1/2


def test_auc_matches_pairwise_count() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 15, size=300).astype(float)  # many ties
    labels = rng.random(300) < 0.4
    pos, neg = scores[labels], scores[~labels]
    brute = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (
        len(pos) * len(neg)
    )
    assert auc(scores, labels) == pytest.approx(brute, abs=1e-12)


@pytest.mark.parametrize("fn,name", [(rmse, "RMSE"), (mae, "MAE"), (auc, "AUC")])
def test_nan_predictions_name_the_metric(fn, name) -> None:
    with pytest.raises(DataError, match=f"{name}.*NaN"):
        fn(np.array([np.nan, 1.0]), np.array([1.0, 0.0]))


@pytest.mark.parametrize("fn", [rmse, mae, auc, accuracy])
def test_shape_mismatch(fn) -> None:
    with pytest.raises(DataError, match="shape"):
        fn(np.array([1.0, 0.0, 1.0]), np.array([1.0, 0.0]))


def test_auc_needs_both_classes_and_binary_labels() -> None:
    with pytest.raises(DataError, match="both classes"):
        auc(np.array([0.2, 0.3]), np.array([1, 1]))
    with pytest.raises(DataError, match="0/1"):
        auc(np.array([0.2, 0.3]), np.array([2, 0]))
