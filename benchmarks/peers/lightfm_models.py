"""LightFM (Kula 2015) with the WARP loss, pure collaborative and with item features.

LightFM represents a user and an item as sums of their features' embeddings,

.. math::

    \\mathbf q_i = \\sum_{f \\in F_i} w_{if} \\mathbf e_f, \\qquad
    s_{ui} = \\mathbf p_u^\\top \\mathbf q_i + b_i + b_u ,

and WARP (Weston et al. 2011) samples negatives until one violates the margin, weighting the
update by :math:`\\log\\lfloor (|I|-1)/N \\rfloor` for :math:`N` draws. *Pure*: each item has
only its identity feature. *With features*: identity plus its categories (MovieLens genres),
each row normalised to sum to 1 as ``lightfm.data.Dataset`` does by default.

Settings: 64 components, learning rate 0.05, no L2 penalty, ``max_sampled=10`` (LightFM's
defaults except the dimension). The number of epochs is chosen on the validation split
(Recall@20 every ``eval_every`` epochs, stop after ``patience`` checks without a gain, at most
``epochs`` epochs or ``max_train_s`` seconds), then the model is refitted on train + valid for
that many epochs. Scores come from ``get_user_representations`` /
``get_item_representations``, so ranking all items is one matrix product.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
from common import EarlyStop, FactorScorer, PeerFit, threads

from lgrec.data.dataset import Dataset, Split

log = logging.getLogger("peers.lightfm")

DEFAULTS = {
    "no_components": 64,
    "learning_rate": 0.05,
    "max_sampled": 10,
    "epochs": 100,
    "eval_every": 5,
    "patience": 3,
    "max_train_s": None,
}


def item_features(data: Dataset) -> sp.csr_matrix:
    """[identity | categories], each row normalised to sum 1."""
    _, cats = data.categories()
    x = sp.hstack([sp.identity(data.n_items, format="csr", dtype=np.float32), cats]).tocsr()
    rows = np.asarray(x.sum(1)).ravel()
    return (sp.diags(1.0 / rows) @ x).astype(np.float32).tocsr()


def _scorer(model, feats: sp.csr_matrix | None) -> FactorScorer:
    ib, ie = model.get_item_representations(feats)
    ub, ue = model.get_user_representations()
    return FactorScorer(ue, ie, item_bias=ib, user_bias=ub)


def _train(
    data: Dataset, cfg: dict[str, Any], feats, seed: int, epochs: int, on_epoch=None
) -> FactorScorer:
    from lightfm import LightFM

    model = LightFM(
        no_components=cfg["no_components"],
        loss="warp",
        learning_rate=cfg["learning_rate"],
        max_sampled=cfg["max_sampled"],
        random_state=seed,
    )
    x = data.matrix("binary").tocoo()
    for epoch in range(1, epochs + 1):
        model.fit_partial(x, item_features=feats, epochs=1, num_threads=threads())
        if on_epoch is not None and on_epoch(epoch, lambda: _scorer(model, feats)):
            break
    return _scorer(model, feats)


def _fit(split: Split, opts: dict[str, Any], with_features: bool) -> PeerFit:
    cfg = {**DEFAULTS, **{k: v for k, v in opts.items() if k in DEFAULTS}}
    seed = opts.get("seed", 0)
    feats = item_features(split.train) if with_features else None
    t_start = time.perf_counter()
    budget = cfg["max_train_s"]
    stop = EarlyStop(
        split, cfg["eval_every"], cfg["patience"], None if budget is None else t_start + budget
    )
    _train(split.train, cfg, feats, seed, cfg["epochs"], stop)
    tune_s = time.perf_counter() - t_start
    best_epoch = max(stop.best_epoch, 1)
    t0 = time.perf_counter()
    model = _train(split.full_train, cfg, feats, seed, best_epoch)
    fit_s = time.perf_counter() - t0
    params = {
        **cfg,
        "epochs": best_epoch,
        "item_features": "identity+categories" if feats is not None else "identity",
    }
    extra = {
        "s_per_epoch": fit_s / best_epoch,
        "valid_best": stop.best,
        "valid_curve": stop.curve,
    }
    return PeerFit(model, params, tune_s, fit_s, extra)


def fit_warp(split: Split, opts: dict[str, Any]) -> PeerFit:
    """LightFM WARP, identity features only."""
    return _fit(split, opts, with_features=False)


def fit_warp_features(split: Split, opts: dict[str, Any]) -> PeerFit:
    """LightFM WARP with identity + category item features."""
    return _fit(split, opts, with_features=True)
