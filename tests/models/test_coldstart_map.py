"""The cold-start ridge map: pseudo-cold Recall by hand, and λ chosen by ranking quality."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from lgrec.models.coldstart import _pseudo_cold_recall, fit_ridge_map


def test_pseudo_cold_recall_by_hand():
    users = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    items = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    # user 0 likes item 1 (ranked last of 3 -> miss at k=1); user 1 likes item 1 (ranked 1st)
    seen = sp.csr_matrix(np.array([[0, 1, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float32))
    total, n = _pseudo_cold_recall(users, seen, items, k=1)
    assert n == 2  # user 2 has no relevant item and is not counted
    assert total == 1.0  # 0 + 1
    total, n = _pseudo_cold_recall(users, seen, items, k=3)
    assert (total, n) == (2.0, 2)


def test_ranking_criterion_recovers_a_linear_map_and_picks_from_the_grid():
    rng = np.random.default_rng(0)
    f = torch.from_numpy(rng.normal(size=(300, 8)))
    w_true = torch.from_numpy(rng.normal(size=(8, 4)))
    e = (f @ w_true).float()
    u = torch.from_numpy(rng.normal(size=(50, 4))).float()
    s = (u @ e.T).numpy()
    seen = sp.csr_matrix((s > np.quantile(s, 0.9, axis=1, keepdims=True)).astype(np.float32))
    grid = (1e-3, 1e4)
    w, lam = fit_ridge_map(f, e, lambdas=grid, user_emb=u, seen=seen)
    assert lam == 1e-3  # a huge ridge shrinks the map to ~0 and ranks at random
    torch.testing.assert_close(w, w_true.float(), atol=1e-3, rtol=1e-3)
    w_mse, lam_mse = fit_ridge_map(f, e, lambdas=grid)
    assert lam_mse == 1e-3
