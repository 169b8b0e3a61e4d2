"""Blocked co-occurrence graph against dense XᵀX."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lgrec.errors import ConfigError
from lgrec.graph.cooccurrence import cooccurrence, topk_per_row


@pytest.fixture
def x() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    return sp.csr_matrix((rng.random((50, 30)) < 0.2).astype(np.float32))


def _dense(x: sp.csr_matrix, normalize: str, min_count: int) -> np.ndarray:
    d = x.toarray()
    c = d.T @ d
    n = np.diag(c).copy()
    np.fill_diagonal(c, 0)
    c[c < min_count] = 0
    if normalize == "cosine":
        w = c / np.sqrt(np.outer(n, n) + 1e-30)
    elif normalize == "jaccard":
        w = c / np.maximum(n[:, None] + n[None, :] - c, 1e-30)
    else:
        w = c
    return np.where(c > 0, w, 0.0)


@pytest.mark.parametrize("normalize", ["cosine", "jaccard", "none"])
@pytest.mark.parametrize("min_count", [1, 2])
def test_cooccurrence_matches_dense_without_pruning(x, normalize, min_count):
    got = cooccurrence(x, k=None, min_count=min_count, normalize=normalize, block_size=7)
    np.testing.assert_allclose(got.toarray(), _dense(x, normalize, min_count), rtol=1e-5)
    assert np.all(got.diagonal() == 0)


def test_cooccurrence_topk_keeps_largest(x):
    full = _dense(x, "cosine", 1)
    got = cooccurrence(x, k=3, block_size=4)
    assert np.diff(got.indptr).max() <= 3
    for i in range(full.shape[0]):
        row = got[i]
        nz = np.count_nonzero(full[i])
        assert row.nnz == min(3, nz)
        if row.nnz:
            kth = np.sort(full[i])[::-1][row.nnz - 1]
            assert row.data.min() >= kth - 1e-6
            np.testing.assert_allclose(row.data, full[i, row.indices], rtol=1e-5)


def test_cooccurrence_block_invariant_and_binary(x):
    a = cooccurrence(x, k=5, block_size=1)
    b = cooccurrence(x, k=5, block_size=1000)
    assert (a != b).nnz == 0
    x3 = x * 3.0  # repeated events count once when binary
    assert (cooccurrence(x3, k=5) != a).nnz == 0


@pytest.mark.parametrize(
    "kw", [{"k": 0}, {"min_count": 0}, {"normalize": "pmi"}, {"block_size": 0}]
)
def test_cooccurrence_bad_args(x, kw):
    with pytest.raises(ConfigError):
        cooccurrence(x, **kw)


def test_topk_per_row_ties_and_tiebreak():
    m = sp.csr_matrix(np.array([[0.0, 1.0, 1.0, 1.0, 2.0]]))
    assert topk_per_row(m, 2).indices.tolist() == [1, 4]
    tb = np.array([5, 0, 1, 0])  # stored order: cols 1, 2, 3, 4
    assert topk_per_row(m, 2, tiebreak=tb).indices.tolist() == [2, 4]
    assert topk_per_row(m, None).nnz == 4


@pytest.mark.parametrize("k", [1, 3, 8])
def test_topk_per_row_matches_brute_force(k):
    rng = np.random.default_rng(5)
    d = np.round(rng.normal(size=(25, 12)), 1) * (rng.random((25, 12)) < 0.6)  # ties, negatives
    d[d == 0] = 0.5  # stored values everywhere the mask said so
    d[rng.random((25, 12)) < 0.4] = 0
    m = sp.csr_matrix(d)
    got = topk_per_row(m, k)
    for i in range(d.shape[0]):
        cols = np.flatnonzero(d[i])
        want = cols[np.lexsort((cols, -d[i, cols]))][:k]  # value desc, then column asc
        assert sorted(got[i].indices.tolist()) == sorted(want.tolist())
        np.testing.assert_allclose(got[i].toarray()[0, want], d[i, want], rtol=1e-6)
