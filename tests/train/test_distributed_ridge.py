"""LMGCN's closed-form core fitted data-parallel: ``torchrun --nproc-per-node=2``, gloo on CPU.

One torchrun launch (``tests/train/ridge_worker.py``) fits the ridge with the whole problem on
each process and with the users sharded; both must give the single-process W*(λ) to 10⁻⁸
relative (float64 sums in another order: about 10⁻¹⁵ expected). The same launch computes the
top singular pairs of the normalised interactions with the users sharded, which must equal the
single-process computation to 10⁻⁸ and the exact SVD to the randomized method's accuracy.
"""

from __future__ import annotations

import numpy as np
import pytest

from lgrec.graph.bipartite import normalized_biadjacency
from lgrec.models.bilinear import BilinearRidge, RidgeStatistics
from lgrec.train.distributed_spectrum import sharded_spectrum
from tests.train.ridge_worker import SPECTRUM, planted, problem, solutions, user_features
from tests.train.torchrun import run_workers

TOL = 1e-8


def rel(a: np.ndarray, b: np.ndarray) -> float:
    """Largest relative Frobenius difference over the stacked solutions."""
    return max(float(np.linalg.norm(x - y) / np.linalg.norm(y)) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    return run_workers("tests.train.ridge_worker", tmp_path_factory.mktemp("ridge"))


def test_two_processes_solve_the_single_process_ridge(ranks):
    r, x = problem()
    h, c = user_features(r, x)
    ref = solutions(BilinearRidge(h, r, x, c=c, n_hist=x.shape[1]))
    ref_plain = solutions(BilinearRidge(h, r, x))
    (lo0, hi0), (lo1, hi1) = (rk["users"].tolist() for rk in ranks)
    assert (lo0, hi0, hi1) == (0, lo1, r.shape[0]) and 0 < lo1 < r.shape[0]  # two real shards
    # the shards' own features: h row for row as the whole's; c summed over the shards (the
    # all-reduce of 2 float64 vectors is that sum) as the whole's c to float64 round-off
    # (user_history_features sums c in float64), so the sharded fit is the whole's too
    shards = [user_features(r[lo:hi], x) for lo, hi in ((lo0, hi0), (lo1, hi1))]
    assert np.array_equal(np.vstack([s[0] for s in shards]), h)
    np.testing.assert_allclose(shards[0][1] + shards[1][1], c, rtol=1e-13)
    for rk in ranks:
        assert int(rk["reduced"]) == 3  # every fit went through the all-reduce
        assert rel(rk["whole"], ref) < TOL
        assert rel(rk["sharded"], ref) < TOL
        assert rel(rk["plain"], ref_plain) < TOL
    # the leave-one-out correction matters here, so the comparison can tell the two apart
    assert rel(ref_plain, ref) > 1e-3


def test_two_processes_find_the_single_process_spectrum(ranks):
    g = planted()
    sig, v, deg = sharded_spectrum(g, **SPECTRUM)  # one process, all users
    assert np.array_equal(deg, np.asarray(g.sum(0)).ravel())
    rn = normalized_biadjacency(g, SPECTRUM["user_exp"], SPECTRUM["item_exp"]).toarray()
    _, s_exact, vt = np.linalg.svd(rn.astype(np.float64))
    k = SPECTRUM["k"]
    # randomized subspace iteration: σ_k to 10⁻⁵, the subspace to (σ_{k+1}/σ_k)^{2(n_iter+1)}
    assert np.abs(sig - s_exact[:k]).max() / s_exact[0] < 1e-5
    assert np.linalg.norm(v @ v.T - vt[:k].T @ vt[:k]) < 1e-2
    assert s_exact[k] / s_exact[k - 1] < 0.7  # the planted gap the accuracy above relies on
    for rk in ranks:
        assert np.array_equal(rk["degrees"], deg)  # integer counts: summed exactly
        assert np.abs(rk["sigma"] - sig).max() / sig[0] < TOL
        assert np.linalg.norm(rk["v"] @ rk["v"].T - v @ v.T) < TOL
    assert np.array_equal(ranks[0]["v"], ranks[1]["v"])  # every process holds the same V


def test_statistics_of_shards_add_up_to_the_whole():
    r, x = problem(seed=3)
    h, c = user_features(r, x)
    whole = RidgeStatistics.of(h, r, x, c, x.shape[1])
    parts = [
        RidgeStatistics.of(h[:120], r[:120], x, c, x.shape[1], items=slice(0, 40)),
        RidgeStatistics.of(h[120:], r[120:], x, c, x.shape[1], items=slice(40, None)),
    ]
    total = parts[0] + parts[1]
    for name in ("hth", "hrx", "xtx", "xcx"):
        np.testing.assert_allclose(getattr(total, name), getattr(whole, name), rtol=1e-12,
                                   atol=1e-12 * np.abs(getattr(whole, name)).max())  # fmt: skip
    assert np.array_equal(whole.unflat(whole.flat()).hrx, whole.hrx)
    ref = BilinearRidge(h, r, x, c=c, n_hist=x.shape[1])
    same = BilinearRidge.from_statistics(whole)  # the same sums: the same solver, bit for bit
    assert np.array_equal(same.solve(ref.scale_), ref.solve(ref.scale_))
    assert rel(solutions(BilinearRidge.from_statistics(total)), solutions(ref)) < TOL


def test_bad_statistics_are_refused_with_the_name_of_what_is_wrong():
    r, x = problem()
    h, c = user_features(r, x)
    st = RidgeStatistics.of(h, r, x, c, x.shape[1])
    with pytest.raises(ValueError, match="xtx has shape"):
        BilinearRidge.from_statistics(RidgeStatistics(st.hth, st.hrx, st.xtx[:5], st.xcx, 12))
    with pytest.raises(ValueError, match="shapes do not match"):
        RidgeStatistics.of(h[:10], r, x)
    with pytest.raises(ValueError, match="c has shape"):
        RidgeStatistics.of(h, r, x, c[:5], x.shape[1])
    with pytest.raises(ValueError, match="different problems"):
        _ = st + RidgeStatistics.of(h, r, x)
    with pytest.raises(ValueError, match="numbers for"):
        st.unflat(st.flat()[:-1])
    with pytest.raises(ValueError, match="k \\+ oversample"):
        sharded_spectrum(r, k=90)
