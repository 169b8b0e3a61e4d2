"""A logistic-regression category head: item categories from item features.

An alternative to the closed-form ridge head (:func:`lgrec.models.heads.fit_category_head`)
with the same contract, ``(W, b, chosen regularisation)`` such that the logits of item i are
x_i W + b, so a model can take either as a constructor choice.

One-vs-rest L2 logistic regression on standardised features z_i = (x_i − μ) / σ (μ, σ over the
labelled items): for every category c with both labelled positives and negatives,

    min_{w_c, b_c}  Σ_i ℓ(y_ic, z_i w_c + b_c) + ‖w_c‖² / (2C),   ℓ(y, s) = log(1 + e^s) − y s,

which is scikit-learn's ``LogisticRegression(C=C)`` (the bias is not penalised). All categories
are solved together, full batch, by L-BFGS on one D × C matrix. P(c | i) = σ(z_i w_c + b_c); a
category no labelled item has gets a large negative bias, one every labelled item has a large
positive one.

C is chosen by top-1 accuracy (the top-scored category is one of the item's categories) on a
seeded ``valid_frac`` of the labelled items, fitting on the rest; the head is then refitted on
every labelled item with that C. Unlabelled items (rows of zeros in ``y``) take no part, so the
items whose categories are to be predicted are never used to choose C.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from lgrec.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["fit_logistic_category_head", "top1_accuracy"]

#: the bias of a category that is never / always present among the labelled items
_CONSTANT_LOGIT = 30.0


def top1_accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Share of rows whose highest-scored column is one of the row's true columns."""
    return float(y.gather(1, logits.argmax(1, keepdim=True)).gt(0).double().mean())


def _solve(
    z: torch.Tensor, y: torch.Tensor, c: float, init: tuple[torch.Tensor, torch.Tensor] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The L2 logistic regressions of the module docstring for every column of ``y`` at once
    (``y`` must have positives and negatives in every column). Objective divided by n."""
    n = z.shape[0]
    if init is None:
        prev = y.mean(0).clamp(1e-3, 1 - 1e-3)
        w0, b0 = torch.zeros(z.shape[1], y.shape[1], dtype=z.dtype), torch.log(prev / (1 - prev))
    else:
        w0, b0 = init
    w, b = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [w, b], max_iter=500, tolerance_grad=1e-7, tolerance_change=1e-10,
        history_size=20, line_search_fn="strong_wolfe",
    )  # fmt: skip
    bce = torch.nn.BCEWithLogitsLoss(reduction="sum")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (bce(z @ w + b, y) + (w * w).sum() / (2 * c)) / n
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def _fit(
    z: torch.Tensor, y: torch.Tensor, c: float, init=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (D × C) and biases (C) on standardised ``z``; constant columns get ±30 biases."""
    pos = y.sum(0)
    free = (pos > 0) & (pos < len(y))
    w = torch.zeros(z.shape[1], y.shape[1], dtype=z.dtype)
    b = torch.where(pos > 0, _CONSTANT_LOGIT, -_CONSTANT_LOGIT).to(z.dtype)
    if free.any():
        sub = None if init is None else (init[0][:, free], init[1][free])
        w[:, free], b[free] = _solve(z, y[:, free], c, sub)
    return w, b


def fit_logistic_category_head(
    x: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    *,
    cs: tuple[float, ...] | list[float] = (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0),
    valid_frac: float = 0.2,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Fit the head of the module docstring on the labelled rows of ``y``.

    Args:
        x: item features, I × D.
        y: category indicators, I × C (rows of zeros: unlabelled, not used).
        cs: the grid of inverse regularisation strengths C; one value skips the validation.
        valid_frac: share of the labelled items held out to choose C.
        seed: seeds the validation split.

    Returns:
        ``(W, b, C)``: logits x W + b (float32, standardisation folded in) and the chosen C.
    """
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(y), dtype=torch.float64).gt(0).double()
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ConfigError(
            f"fit_logistic_category_head: x {tuple(x.shape)} and y {tuple(y.shape)} must be "
            "matrices with one row per item"
        )
    if not cs or any(not c > 0 for c in cs):
        raise ConfigError(f"fit_logistic_category_head: cs must be positive numbers, got {cs!r}")
    if not 0.0 < valid_frac < 1.0:
        raise ConfigError(
            f"fit_logistic_category_head: valid_frac must be in (0, 1), got {valid_frac}"
        )
    labelled = torch.nonzero(y.sum(1) > 0).ravel().numpy()
    if len(labelled) < 5:
        raise ConfigError(
            f"fit_logistic_category_head: {len(labelled)} labelled items; at least 5 needed"
        )
    xl, yl = x[labelled], y[labelled]
    mu, sd = xl.mean(0), xl.std(0, correction=0).clamp(min=1e-6)
    z = (xl - mu) / sd
    c_best = float(cs[0])
    if len(cs) > 1:
        perm = np.random.default_rng(seed).permutation(len(labelled))
        n_val = max(1, round(valid_frac * len(labelled)))
        va, tr = torch.from_numpy(perm[:n_val]), torch.from_numpy(perm[n_val:])
        accs, init = [], None
        for c in sorted(float(v) for v in cs):  # warm start along the path
            init = _fit(z[tr], yl[tr], c, init)
            accs.append((top1_accuracy(z[va] @ init[0] + init[1], yl[va]), c))
        c_best = max(accs, key=lambda a: a[0])[1]  # first best: the strongest regularisation
        log.info("logistic category head: validation top-1 %s; C = %g",
                 {c: round(a, 4) for a, c in accs}, c_best)  # fmt: skip
    w, b = _fit(z, yl, c_best)
    w_x = w / sd[:, None]
    return w_x.float(), (b - mu @ w_x).float(), c_best
