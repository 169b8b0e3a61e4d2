"""cornac (Salah, Truong & Lauw 2020): MF, biased matrix factorisation on explicit ratings.

.. math::

    \\hat r_{ui} = \\mu + b_u + b_i + \\mathbf p_u^\\top \\mathbf q_i, \\qquad
    \\min \\sum_{(u,i)} (r_{ui} - \\hat r_{ui})^2
        + \\lambda (\\lVert \\mathbf p_u \\rVert^2 + \\lVert \\mathbf q_i \\rVert^2
        + b_u^2 + b_i^2),

trained by SGD (cornac's Cython ``MF``, ``use_bias=True``). The fitted ``u_factors``,
``i_factors``, ``u_biases``, ``i_biases`` and ``global_mean`` are mapped from cornac's ids to
lgrec's and wrapped in a :class:`common.FactorScorer` (checked equal to ``MF.score``).
Hyper-parameters are chosen by validation RMSE, then refitted on train + valid.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from common import (
    FactorScorer,
    PeerFit,
    grid_search,
    product_grid,
    rating_rmse,
    scatter_rows,
    threads,
    timed,
)

from lgrec.data.dataset import Dataset, Split

MF_GRID = {"k": [10, 50], "lambda_reg": [0.01, 0.02, 0.05], "max_iter": [20, 50]}


def _fit_one(data: Dataset, cfg: dict[str, Any], seed: int) -> FactorScorer:
    from cornac.data import Dataset as CDataset
    from cornac.models import MF

    df = data.interactions
    triples = list(
        zip(
            df["user"].to_numpy(np.int64).tolist(),
            df["item"].to_numpy(np.int64).tolist(),
            df["rating"].to_numpy(np.float64).tolist(),
        )
    )  # cornac's input format is a list of (user, item, rating) tuples
    ts = CDataset.from_uir(triples, seed=seed)
    m = MF(
        learning_rate=0.01, use_bias=True, early_stop=False, num_threads=threads(), seed=seed, **cfg
    ).fit(ts)
    ru = np.fromiter(ts.uid_map.keys(), dtype=np.int64, count=len(ts.uid_map))
    iu = np.fromiter(ts.uid_map.values(), dtype=np.int64, count=len(ts.uid_map))
    ri = np.fromiter(ts.iid_map.keys(), dtype=np.int64, count=len(ts.iid_map))
    ii = np.fromiter(ts.iid_map.values(), dtype=np.int64, count=len(ts.iid_map))
    return FactorScorer(
        scatter_rows(m.u_factors[iu], ru, data.n_users),
        scatter_rows(m.i_factors[ii], ri, data.n_items),
        user_bias=scatter_rows(m.u_biases[iu], ru, data.n_users),
        item_bias=scatter_rows(m.i_biases[ii], ri, data.n_items),
        offset=float(m.global_mean),
        rating=True,
    )


def fit_mf(split: Split, opts: dict[str, Any]) -> PeerFit:
    """cornac MF tuned over :data:`MF_GRID` on validation RMSE."""
    seed = opts.get("seed", 0)
    grid = product_grid(opts.get("grid") or MF_GRID)
    best, table, tune_s = grid_search(
        grid, lambda d, c: _fit_one(d, c, seed), split, score=rating_rmse, higher_is_better=False
    )
    model, fit_s = timed(lambda: _fit_one(split.full_train, best, seed))
    return PeerFit(model, best, tune_s, fit_s, {"grid": table, "tuned_on": "valid RMSE"})
