"""GF-CF (Shen et al., CIKM 2021): a linear filter plus an ideal low-pass filter, no training.

With the binary training matrix :math:`R` (users × items), degrees :math:`D_U, D_I` and the
normalised matrix :math:`\\tilde R = D_U^{-1/2} R D_I^{-1/2}`, a user's row :math:`r_u` is
scored by

.. math::

    s_u = r_u \\tilde P + \\alpha \\, r_u D_I^{-1/2} \\bar V \\bar V^\\top D_I^{1/2},
    \\qquad \\tilde P = \\tilde R^\\top \\tilde R,

where :math:`\\bar V` holds the top-:math:`k` right singular vectors of :math:`\\tilde R`. The
first term is the linear filter (normalised item–item co-occurrence), the second the ideal
low-pass filter. This follows the authors' ``GF_CF`` class (``sparsesvd`` there, SciPy's
``svds`` here); items with no training interaction get :math:`D_I^{\\pm 1/2} = 0` instead of
the reference code's infinities.

Memory: for at most ``dense_max`` items (20 000) :math:`\\tilde P` is one dense item × item
array, as in the reference code; above that it stays a SciPy sparse matrix, and user rows are
scored in blocks, so no dense users × items or items × items array is built on large data.
:math:`k` and :math:`\\alpha` are chosen on the validation split (Recall@20); the filter is then
rebuilt from train + valid.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from common import PeerFit, valid_score
from scipy.sparse.linalg import svds

from lgrec.data.dataset import Dataset, Split

log = logging.getLogger("peers.gfcf")

DEFAULTS = {"ks": [16, 32, 64, 128, 256], "alphas": [0.0, 0.1, 0.3, 0.5, 1.0], "dense_max": 20_000}


class GFCF:
    """The GF-CF scorer (module doc); ``alpha`` and ``k`` may be changed after ``fit``."""

    def __init__(self, k: int = 256, alpha: float = 0.3, dense_max: int = 20_000, seed: int = 0):
        self.k, self.alpha, self.dense_max, self.seed = k, alpha, dense_max, seed

    def fit(self, data: Dataset, k_max: int | None = None) -> GFCF:
        """Normalise the training matrix, build the linear filter, take ``k_max`` (≥ k) SVD."""
        r = data.matrix("binary").astype(np.float64).tocsr()
        self.n_users_, self.n_items_ = r.shape
        du = np.asarray(r.sum(1)).ravel()
        di = np.asarray(r.sum(0)).ravel()
        du_is = np.divide(1.0, np.sqrt(du), out=np.zeros_like(du), where=du > 0)
        self.di_is = np.divide(1.0, np.sqrt(di), out=np.zeros_like(di), where=di > 0)
        self.di_s = np.sqrt(di)
        rn = (sp.diags(du_is) @ r @ sp.diags(self.di_is)).tocsr()
        rn32 = rn.astype(np.float32)
        p = (rn32.T @ rn32).tocsr()
        self.p_ = p.toarray().astype(np.float32) if self.n_items_ <= self.dense_max else p
        k_max = min(k_max or self.k, min(r.shape) - 1)
        rng = np.random.default_rng(self.seed)
        v0 = rng.random(min(rn.shape))
        _, s, vt = svds(rn, k=k_max, v0=v0)
        order = np.argsort(-s)  # svds returns singular values in ascending order
        self.vt_ = vt[order].astype(np.float32)  # (k_max, I), largest first
        self.r_ = r.astype(np.float32)
        return self

    def score(self, users: torch.Tensor) -> torch.Tensor:
        """(len(users), I) scores of the module doc."""
        u = np.asarray(users, dtype=np.int64)
        rb = self.r_[u]
        lin = rb @ self.p_
        lin = lin.toarray() if sp.issparse(lin) else np.asarray(lin)
        out = torch.from_numpy(np.ascontiguousarray(lin, dtype=np.float32))
        if self.alpha:
            vt = self.vt_[: self.k]
            low = (rb @ sp.diags(self.di_is.astype(np.float32))) @ vt.T  # (B, k)
            ideal = np.asarray(low) @ (vt * self.di_s.astype(np.float32)[None, :])
            out += self.alpha * torch.from_numpy(np.ascontiguousarray(ideal, dtype=np.float32))
        return out


def fit_gfcf(split: Split, opts: dict[str, Any]) -> PeerFit:
    """Grid over ``ks`` × ``alphas`` on validation (one SVD of the largest k), then refit.

    With a single (k, alpha) pair nothing is tuned: the filter is built once, on train + valid.
    """
    cfg = {**DEFAULTS, **{k: v for k, v in opts.items() if k in DEFAULTS}}
    seed = opts.get("seed", 0)
    t0 = time.perf_counter()
    table, best, best_v = [], None, -1.0
    if len(cfg["ks"]) == 1 and len(cfg["alphas"]) == 1:  # nothing to choose: no tuning fit
        best = {"k": cfg["ks"][0], "alpha": cfg["alphas"][0]}
        cfg["alphas"] = []
    else:
        model = GFCF(dense_max=cfg["dense_max"], seed=seed)
        model.fit(split.train, k_max=max(cfg["ks"]))
        log.info("filter on train built in %.1f s", time.perf_counter() - t0)
    for alpha in cfg["alphas"]:
        for k in cfg["ks"] if alpha else cfg["ks"][:1]:  # alpha = 0 does not use k
            model.k, model.alpha = min(k, model.vt_.shape[0]), alpha
            v = valid_score(model, split)
            table.append({"k": model.k, "alpha": alpha, "valid": v})
            log.info("k=%d alpha=%.2f valid Recall@20 %.4f", model.k, alpha, v)
            if v > best_v:
                best, best_v = {"k": model.k, "alpha": alpha}, v
    tune_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    final = GFCF(k=best["k"], alpha=best["alpha"], dense_max=cfg["dense_max"], seed=seed)
    final.fit(split.full_train)
    fit_s = time.perf_counter() - t1
    dense = final.n_items_ <= cfg["dense_max"]
    return PeerFit(
        final,
        {**best, "item_item": "dense" if dense else "sparse"},
        tune_s,
        fit_s,
        {"grid": table, "valid_best": best_v if table else None},
    )
