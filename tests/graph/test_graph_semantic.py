"""Semantic kNN, category graph and normalisation against brute-force dense computations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lgrec.errors import ConfigError
from lgrec.graph.semantic import (
    category_graph,
    normalize_graph,
    semantic_knn,
    symmetrize_graph,
)


def _dense_knn(emb: np.ndarray, k: int, threshold: float, exclude_self: bool) -> np.ndarray:
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    s = e @ e.T
    if exclude_self:
        np.fill_diagonal(s, -np.inf)
    out = np.zeros_like(s)
    for i in range(len(s)):
        top = np.argsort(-s[i], kind="stable")[:k]
        top = top[s[i, top] >= threshold]
        out[i, top] = s[i, top]
    return out


@pytest.fixture
def emb() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(60, 8))


@pytest.mark.parametrize("k,threshold", [(5, 0.0), (3, 0.3), (10, -1.0)])
@pytest.mark.parametrize("exclude_self", [True, False])
def test_semantic_knn_matches_dense(emb, k, threshold, exclude_self):
    got = semantic_knn(
        emb, k=k, threshold=threshold, exclude_self=exclude_self, symmetrize="none", block_size=7
    )
    want = _dense_knn(emb, k, threshold, exclude_self)
    np.testing.assert_allclose(got.toarray(), want, atol=1e-5)
    counts = np.diff(got.indptr)
    assert counts.max() <= k
    if exclude_self:
        assert np.all(got.diagonal() == 0)
    else:
        np.testing.assert_allclose(got.diagonal(), 1.0, atol=1e-5)
    assert np.all(got.data >= threshold - 1e-6)


def test_semantic_knn_block_size_invariant(emb):
    a = semantic_knn(emb, k=6, block_size=1)
    for bs in (5, 17, 60, 1000):
        b = semantic_knn(emb, k=6, block_size=bs)
        assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
        np.testing.assert_allclose(a.data, b.data, rtol=1e-6)  # BLAS kernels differ by ulps


def test_semantic_knn_scale_invariant_and_torch_input(emb):
    import torch

    a = semantic_knn(emb, k=4)
    b = semantic_knn(torch.as_tensor(emb * 3.0), k=4)
    np.testing.assert_allclose(a.toarray(), b.toarray(), atol=1e-6)


@pytest.mark.parametrize("how", ["max", "mean", "min"])
def test_symmetrize_modes(emb, how):
    d = _dense_knn(emb, 4, -1.0, True)
    got = semantic_knn(emb, k=4, threshold=-1.0, symmetrize=how).toarray()
    present, present_t = d != 0, d.T != 0
    if how == "max":
        want = np.where(present, d, d.T)
        assert np.array_equal(got != 0, present | present_t)
    elif how == "mean":
        want = (d + d.T) / 2
    else:
        want = np.where(present & present_t, d, 0.0)
        assert np.array_equal(got != 0, present & present_t)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(got, got.T, atol=1e-6)


def test_symmetrize_max_keeps_negative_one_sided_edge():
    a = sp.csr_matrix(np.array([[0.0, -0.5], [0.0, 0.0]]))
    out = symmetrize_graph(a, "max").toarray()
    np.testing.assert_allclose(out, [[0.0, -0.5], [-0.5, 0.0]])


def test_semantic_knn_small_and_zero_rows():
    emb = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    a = semantic_knn(emb, k=5, threshold=0.1, symmetrize="none")
    assert a.shape == (3, 3)
    assert a[1].nnz == 0  # zero embedding: similarity 0 < threshold
    assert a[0, 2] == pytest.approx(np.sqrt(0.5), abs=1e-6)
    assert semantic_knn(np.ones((1, 4)), k=3).nnz == 0


@pytest.mark.parametrize(
    "kw", [{"k": 0}, {"k": -2}, {"k": 2.5}, {"block_size": 0}, {"symmetrize": "both"}]
)
def test_semantic_knn_bad_args(emb, kw):
    with pytest.raises(ConfigError):
        semantic_knn(emb, **kw)


def test_semantic_knn_bad_shape():
    with pytest.raises(ConfigError, match="2-D"):
        semantic_knn(np.ones(5))


def _cats() -> sp.csr_matrix:
    rng = np.random.default_rng(1)
    m = (rng.random((40, 6)) < 0.3).astype(np.float32)
    m[0] = 0  # an item without categories
    return sp.csr_matrix(m)


@pytest.mark.parametrize("kind", ["jaccard", "inverse_size"])
def test_category_graph_matches_dense(kind):
    m = _cats()
    d = m.toarray()
    inter = d @ d.T
    if kind == "jaccard":
        n = d.sum(1)
        union = n[:, None] + n[None, :] - inter
        want = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    else:
        want = (d / np.maximum(d.sum(0), 1)) @ d.T
    np.fill_diagonal(want, 0)
    got = category_graph(m, max_per_category=None, kind=kind, weight=2.0, block_size=7)
    np.testing.assert_allclose(got.toarray(), 2.0 * want, atol=1e-6)
    assert got[0].nnz == 0


def test_category_graph_bounded_and_strongest_kept():
    # one huge category plus a small one: items 0..4 share both, so they must be kept.
    n = 300
    m = np.zeros((n, 2), dtype=np.float32)
    m[:, 0] = 1
    m[:5, 1] = 1
    a = category_graph(sp.csr_matrix(m), max_per_category=10, symmetrize="none", block_size=64)
    assert np.diff(a.indptr).max() == 10
    for i in range(5):
        strong = set(range(5)) - {i}
        assert strong <= set(a[i].indices.tolist())
    # ties among the 295 equal co-members are spread out, not all on the lowest ids
    indeg = np.bincount(a[5:].indices, minlength=n)
    assert indeg.max() < 40
    b = category_graph(sp.csr_matrix(m), max_per_category=10, symmetrize="none", block_size=7)
    assert (a != b).nnz == 0
    sym = category_graph(sp.csr_matrix(m), max_per_category=10)
    assert (sym != sym.T).nnz == 0


def test_category_graph_bad_args():
    with pytest.raises(ConfigError, match="max_per_category"):
        category_graph(_cats(), max_per_category=0)
    with pytest.raises(ConfigError, match="kind"):
        category_graph(_cats(), kind="cosine")


def test_normalize_graph():
    rng = np.random.default_rng(2)
    d = rng.random((8, 8)) * (rng.random((8, 8)) < 0.5)
    d = d + d.T
    d[3] = 0
    d[:, 3] = 0
    deg = d.sum(1)
    inv = np.divide(1, np.sqrt(deg), out=np.zeros_like(deg), where=deg > 0)
    got = normalize_graph(sp.csr_matrix(d), "sym").toarray()
    np.testing.assert_allclose(got, inv[:, None] * d * inv[None, :], atol=1e-6)
    row = normalize_graph(sp.csr_matrix(d), "row").toarray()
    np.testing.assert_allclose(row.sum(1)[deg > 0], 1.0, atol=1e-6)
    assert np.all(row[3] == 0)
    with pytest.raises(ConfigError):
        normalize_graph(sp.csr_matrix(d), "left")
