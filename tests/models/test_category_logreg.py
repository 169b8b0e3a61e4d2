"""The logistic-regression category head (lgrec.models.category_logreg)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from lgrec.errors import ConfigError
from lgrec.models.category_logreg import fit_logistic_category_head, top1_accuracy


def _planted(n: int = 400, d: int = 12, c: int = 4, seed: int = 0):
    """Items whose categories are (noisily) linear in their features; a few multi-label."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * rng.uniform(0.5, 20.0, size=d) + rng.normal(size=d) * 5
    w = rng.normal(size=(d, c))
    s = (x - x.mean(0)) / x.std(0) @ w + rng.normal(scale=0.8, size=(n, c))
    y = np.zeros((n, c))
    y[np.arange(n), s.argmax(1)] = 1
    y[s > np.quantile(s, 0.9)] = 1
    return x, y


def test_same_solution_as_scikit_learn_at_a_fixed_c():
    x, y = _planted()
    w, b, c = fit_logistic_category_head(x, y, cs=[0.1])
    assert c == 0.1
    ours = (torch.from_numpy(x).float() @ w + b).numpy()
    z = (x - x.mean(0)) / x.std(0)
    for col in range(y.shape[1]):
        ref = LogisticRegression(C=0.1, max_iter=5000, tol=1e-10).fit(z, y[:, col])
        np.testing.assert_allclose(ours[:, col], ref.decision_function(z), atol=2e-3)


def test_learns_held_out_items_and_ignores_unlabelled_rows():
    x, y = _planted(n=600)
    held = np.arange(500, 600)
    known = y.copy()
    known[held] = 0  # unlabelled: never used for fitting or for choosing C
    w, b, c = fit_logistic_category_head(x, known, seed=1)
    logits = torch.from_numpy(x[held]).float() @ w + b
    acc = top1_accuracy(logits, torch.from_numpy(y[held]))
    prior = y[:500].sum(0).argmax()
    assert acc > 0.75 > y[held, prior].mean() + 0.2  # far above always naming the top category
    # unlabelled items take no part (not in the standardisation, the fit or the choice of C)
    x2 = x.copy()
    x2[held] = np.random.default_rng(5).normal(scale=1e3, size=x2[held].shape)
    w2, b2, c2 = fit_logistic_category_head(x2, known, seed=1)
    assert c2 == c and torch.equal(w2, w) and torch.equal(b2, b)


def test_constant_categories_and_bad_input():
    x, y = _planted(c=3)
    y = np.hstack([y, np.zeros((len(y), 1)), np.ones((len(y), 1))])  # never / always
    w, b, _ = fit_logistic_category_head(x, y, cs=[1.0])
    logits = torch.from_numpy(x).float() @ w + b
    assert (logits[:, 3] < -20).all() and (logits[:, 4] > 20).all()
    with pytest.raises(ConfigError, match="cs must be positive"):
        fit_logistic_category_head(x, y, cs=[0.0])
    with pytest.raises(ConfigError, match="one row per item"):
        fit_logistic_category_head(x, y[:-1])
    with pytest.raises(ConfigError, match="at least 5"):
        fit_logistic_category_head(x, np.zeros_like(y))
