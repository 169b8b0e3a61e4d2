"""The graph filter's spectrum data-parallel: ``torchrun --nproc-per-node=2``, gloo on CPU.

One torchrun launch (``tests/train/graphfilter_worker.py``) fits a :class:`GraphFilter` in 2
processes, each holding the whole data as under ``lgrec train --distributed``. Its σ must be
the single-process :func:`sharded_spectrum` of all users to 10⁻¹⁰ (the same products summed
in another order), and both processes must hold the same filter. Against the single-process
fit (scikit-learn's ``randomized_svd``, another random start and float32 arithmetic) the fits
agree to the randomized method's accuracy, not bit for bit: the singular values are compared
with the exact SVD's, and the test Recall@20 must agree within 0.01 (module constant
:data:`RECALL_TOL`, justified there).
"""

from __future__ import annotations

import numpy as np
import pytest

from lgrec.graph.bipartite import normalized_biadjacency
from lgrec.train.distributed_spectrum import sharded_spectrum
from tests.train.graphfilter_worker import FIT, data, fitted, summary
from tests.train.torchrun import run_workers

#: The ideal term uses k = 16 singular vectors of which 13 lie in a flat band of noise
#: (σ₄ … σ₁₆ = 0.88 … 0.75 against the planted 2.63, 1.99, 1.95): there any randomized method
#: returns an arbitrary mix of the band's vectors, so the scores differ between random starts.
#: Measured, single process, seeds 0–4: test Recall@20 0.6217–0.6272 (a range of 0.0056, i.e.
#: 10 of the 1,800 per-user thirds); 2 processes: 0.6244. The test allows 0.01.
RECALL_TOL = 0.01


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    return run_workers("tests.train.graphfilter_worker", tmp_path_factory.mktemp("graphfilter"))


@pytest.fixture(scope="module")
def single() -> dict:
    """The single-process fits of the worker's data (no process group: randomized_svd)."""
    split = data()
    gf, linear = fitted(split)
    return {**summary(gf, linear, split), "train": split.train.matrix("binary")}


def test_two_processes_compute_the_spectrum_from_their_users(ranks, single):
    x = single["train"]
    k, a, b = FIT["k"], FIT["user_exp"], FIT["item_exp"]
    sig, _, _ = sharded_spectrum(x, k, a, b, oversample=10, seed=0)  # one process, all users
    for rk in ranks:
        assert rk["shards"].tolist() == [2, 2]  # both fits took the sharded path …
        assert int(rk["spectra"]) == 2  # … once each (k = 16, and σ_max alone for k = 0)
        assert np.abs(rk["sigma"] - sig).max() / sig[0] < 1e-10
        assert abs(float(rk["scale"]) * sig[0] - 1.0) < 1e-10  # the 1/σ_max scale
    for name in ("sigma", "v", "setting", "scores", "recall"):  # one filter on every process
        assert np.array_equal(ranks[0][name], ranks[1][name]), name
    assert single["shards"].tolist() == [1, 1]  # no process group: randomized_svd


def test_two_processes_fit_the_single_process_filter(ranks, single):
    x = single["train"]
    rn = normalized_biadjacency(x, FIT["user_exp"], FIT["item_exp"]).toarray()
    exact = np.linalg.svd(rn.astype(np.float64), compute_uv=False)[: FIT["k"]]
    assert exact[3] / exact[2] < 0.5  # 3 planted tastes, then the flat band of noise
    for fit in (ranks[0], single):
        err = np.abs(fit["sigma"] - exact) / exact[0]
        assert err[:3].max() < 1e-5  # above the gap: to float32 round-off (randomized_svd)
        assert err.max() < 1e-2  # in the band: the randomized methods' accuracy
    np.testing.assert_allclose(ranks[0]["linear_scale"], single["linear_scale"], rtol=1e-6)
    assert ranks[0]["setting"].tolist() == single["setting"].tolist()  # (16, 0.3, 0.0)
    assert abs(float(ranks[0]["recall"]) - float(single["recall"])) <= RECALL_TOL
    assert float(single["recall"]) > 0.5  # the filter found the planted tastes
