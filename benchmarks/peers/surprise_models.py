"""Surprise (Hug 2020): SVD (Funk; Koren et al. 2009) and SVD++ (Koren 2008) on ratings.

Both predict an explicit rating,

.. math::

    \\hat r_{ui} = \\mu + b_u + b_i + \\mathbf q_i^\\top \\mathbf p_u
    \\quad\\text{(SVD)}, \\qquad
    \\hat r_{ui} = \\mu + b_u + b_i + \\mathbf q_i^\\top
        \\Big(\\mathbf p_u + |N(u)|^{-1/2} \\sum_{j \\in N(u)} \\mathbf y_j\\Big)
    \\quad\\text{(SVD++)},

trained by SGD on the squared error with L2 penalties. After fitting, the learned arrays
(``pu``, ``qi``, ``bu``, ``bi``, ``yj``) are mapped from Surprise's inner ids to lgrec's ids
and wrapped in a :class:`common.FactorScorer`, so all items are scored with one matrix product
(the SVD++ implicit term is folded into the user vector with one sparse product). Ranking
uses the predicted rating; RMSE/MAE use the same predictions, clipped to the rating scale as
Surprise does. Users/items unknown to Surprise get zero factors and biases, which is what
Surprise's own ``predict`` falls back to.

Hyper-parameters are chosen by validation RMSE (their training objective), then refitted on
train + valid.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from common import (
    FactorScorer,
    PeerFit,
    grid_search,
    product_grid,
    rating_rmse,
    scatter_rows,
    timed,
)

from lgrec.data.dataset import Dataset, Split

SVD_GRID = {"n_factors": [50, 100], "reg_all": [0.02, 0.05, 0.1], "n_epochs": [20, 40]}
SVDPP_GRID = {"n_factors": [20], "reg_all": [0.02, 0.05], "n_epochs": [20]}


def _trainset(data: Dataset):
    from surprise import Dataset as SDataset
    from surprise import Reader

    df = data.interactions[["user", "item", "rating"]]
    lo, hi = data.rating_scale or (float(df["rating"].min()), float(df["rating"].max()))
    return SDataset.load_from_df(df, Reader(rating_scale=(lo, hi))).build_full_trainset()


def _id_maps(ts) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(raw user ids, inner user ids, raw item ids, inner item ids) as arrays."""
    u = ts._raw2inner_id_users
    i = ts._raw2inner_id_items
    return (
        np.fromiter(u.keys(), dtype=np.int64, count=len(u)),
        np.fromiter(u.values(), dtype=np.int64, count=len(u)),
        np.fromiter(i.keys(), dtype=np.int64, count=len(i)),
        np.fromiter(i.values(), dtype=np.int64, count=len(i)),
    )


def _to_scorer(algo, ts, data: Dataset, plus_plus: bool) -> FactorScorer:
    ru, iu, ri, ii = _id_maps(ts)
    pu = np.asarray(algo.pu)[iu]
    if plus_plus:  # p_u + |N(u)|^{-1/2} sum_j y_j over the user's training items
        inner_u = np.full(data.n_users, -1, dtype=np.int64)
        inner_u[ru] = iu
        inner_i = np.full(data.n_items, -1, dtype=np.int64)
        inner_i[ri] = ii
        x = data.matrix("binary").tocoo()
        n = sp.csr_matrix(
            (np.ones(x.nnz, dtype=np.float64), (inner_u[x.row], inner_i[x.col])),
            shape=(ts.n_users, ts.n_items),
        )
        counts = np.asarray(n.sum(1)).ravel()
        implicit = (n @ np.asarray(algo.yj)) / np.sqrt(np.maximum(counts, 1.0))[:, None]
        pu = pu + implicit[iu]
    return FactorScorer(
        scatter_rows(pu, ru, data.n_users),
        scatter_rows(np.asarray(algo.qi)[ii], ri, data.n_items),
        user_bias=scatter_rows(np.asarray(algo.bu)[iu], ru, data.n_users),
        item_bias=scatter_rows(np.asarray(algo.bi)[ii], ri, data.n_items),
        offset=ts.global_mean,
        rating=True,
    )


def _fit_one(data: Dataset, cfg: dict[str, Any], seed: int, plus_plus: bool) -> FactorScorer:
    from surprise import SVD, SVDpp

    ts = _trainset(data)
    klass = SVDpp if plus_plus else SVD
    algo = klass(random_state=seed, **cfg)
    algo.fit(ts)
    return _to_scorer(algo, ts, data, plus_plus)


def _run(split: Split, opts: dict[str, Any], plus_plus: bool) -> PeerFit:
    seed = opts.get("seed", 0)
    grid = product_grid(opts.get("grid") or (SVDPP_GRID if plus_plus else SVD_GRID))
    best, table, tune_s = grid_search(
        grid,
        lambda d, c: _fit_one(d, c, seed, plus_plus),
        split,
        score=rating_rmse,
        higher_is_better=False,
    )
    model, fit_s = timed(lambda: _fit_one(split.full_train, best, seed, plus_plus))
    return PeerFit(model, best, tune_s, fit_s, {"grid": table, "tuned_on": "valid RMSE"})


def fit_svd(split: Split, opts: dict[str, Any]) -> PeerFit:
    """Surprise SVD tuned over :data:`SVD_GRID` on validation RMSE."""
    return _run(split, opts, plus_plus=False)


def fit_svdpp(split: Split, opts: dict[str, Any]) -> PeerFit:
    """Surprise SVD++ tuned over :data:`SVDPP_GRID` on validation RMSE."""
    return _run(split, opts, plus_plus=True)
