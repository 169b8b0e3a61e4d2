"""implicit (Frederickson): ALS (Hu, Koren & Volinsky 2008) and BPR (Rendle et al. 2009).

Both are trained on the binary users × items training matrix. ALS minimises

.. math::

    \\sum_{u,i} c_{ui} (p_{ui} - \\mathbf x_u^\\top \\mathbf y_i)^2
    + \\lambda (\\lVert X \\rVert^2 + \\lVert Y \\rVert^2), \\quad c_{ui} = 1 + \\alpha r_{ui},

and BPR maximises :math:`\\sum \\ln \\sigma(\\hat x_{ui} - \\hat x_{uj}) - \\lambda \\lVert\\Theta
\\rVert^2` with SGD over sampled (user, positive, negative) triples; implicit's BPR carries an
item bias as an extra factor whose user side is fixed to 1, so ``user_factors @ item_factors.T``
is its score either way.

Hyper-parameters come from a small grid scored on the validation split (Recall@20), then the
chosen configuration is refitted on train + valid. ``run_peers.py`` starts these runs with
``OPENBLAS_NUM_THREADS=1``, as implicit asks (its own threads would compete with BLAS's).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from common import FactorScorer, PeerFit, grid_search, product_grid, threads, timed

from lgrec.data.dataset import Dataset, Split

ALS_GRID = {
    "factors": [64, 128],
    "regularization": [0.01, 0.1, 1.0, 10.0, 100.0],
    "alpha": [1.0, 10.0],
}
BPR_GRID = {
    "factors": [64, 128],
    "regularization": [0.001, 0.01],
    "learning_rate": [0.0025, 0.005, 0.01],
}


def _matrix(data: Dataset):
    x = data.matrix("binary")
    return x.astype(np.float32)


def _als(data: Dataset, cfg: dict[str, Any], seed: int = 0) -> FactorScorer:
    from implicit.cpu.als import AlternatingLeastSquares

    m = AlternatingLeastSquares(
        factors=cfg["factors"],
        regularization=cfg["regularization"],
        alpha=cfg["alpha"],
        iterations=cfg.get("iterations", 15),
        num_threads=threads(),
        random_state=seed,
    )
    m.fit(_matrix(data), show_progress=False)
    return FactorScorer(np.asarray(m.user_factors), np.asarray(m.item_factors))


def _bpr(data: Dataset, cfg: dict[str, Any], seed: int = 0) -> FactorScorer:
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    m = BayesianPersonalizedRanking(
        factors=cfg["factors"],
        learning_rate=cfg["learning_rate"],
        regularization=cfg["regularization"],
        iterations=cfg.get("iterations", 100),
        num_threads=threads(),
        random_state=seed,
    )
    m.fit(_matrix(data), show_progress=False)
    return FactorScorer(np.asarray(m.user_factors), np.asarray(m.item_factors))


def _run(fit, grid: list[dict[str, Any]], split: Split) -> PeerFit:
    best, table, tune_s = grid_search(grid, fit, split)
    model, fit_s = timed(lambda: fit(split.full_train, best))
    return PeerFit(model, best, tune_s, fit_s, {"grid": table})


def fit_als(split: Split, opts: dict[str, Any]) -> PeerFit:
    """implicit ALS (15 iterations) tuned over :data:`ALS_GRID` (or ``opts["grid"]``)."""
    grid = product_grid(opts.get("grid") or ALS_GRID)
    return _run(lambda d, c: _als(d, c, opts.get("seed", 0)), grid, split)


def fit_bpr(split: Split, opts: dict[str, Any]) -> PeerFit:
    """implicit BPR (100 iterations) tuned over :data:`BPR_GRID` (or ``opts["grid"]``)."""
    grid = product_grid(opts.get("grid") or BPR_GRID)
    return _run(lambda d, c: _bpr(d, c, opts.get("seed", 0)), grid, split)
