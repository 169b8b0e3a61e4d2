"""The cold-start ridge map: pseudo-cold Recall by hand, and λ chosen by ranking quality."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from lgrec.models.coldstart import _pseudo_cold_recall, fit_cold_map, neighbour_estimate


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


def _toy(seed=0, n=300):
    rng = np.random.default_rng(seed)
    f = torch.from_numpy(rng.normal(size=(n, 8)))
    t = torch.nn.functional.normalize(f.float(), dim=1)
    u = torch.from_numpy(rng.normal(size=(50, 4))).float()
    return rng, f, t, u


def _seen(u, e):
    s = (u @ e.T).numpy()
    return sp.csr_matrix((s > np.quantile(s, 0.9, axis=1, keepdims=True)).astype(np.float32))


def test_ranking_criterion_recovers_a_linear_map_and_picks_from_the_grid():
    rng, f, t, u = _toy()
    w_true = torch.from_numpy(rng.normal(size=(8, 4)))
    e = (f @ w_true).float()
    grid = (1e-3, 1e4)
    cm = fit_cold_map(f, t, e, lambdas=grid, alphas=(0.0, 1.0), user_emb=u, seen=_seen(u, e))
    # a huge ridge shrinks the map to ~0 and ranks at random; the exact linear map beats
    # any neighbour average
    assert (cm.lam, cm.alpha) == (1e-3, 0.0)
    torch.testing.assert_close(cm.w, w_true.float(), atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(cm.embed(f, t, t, e), e, atol=1e-3, rtol=1e-3)
    cm_mse = fit_cold_map(f, t, e, lambdas=grid, alphas=(0.0, 1.0))
    assert (cm_mse.lam, cm_mse.alpha) == (1e-3, 0.0)


def test_neighbours_chosen_when_embeddings_are_not_linear_in_the_text():
    rng = np.random.default_rng(1)
    # 30 tight text clusters in 8 dimensions, each with an arbitrary embedding: no linear map
    # fits 30 arbitrary values, but an item's text neighbours share its embedding
    centres = rng.normal(size=(30, 8))
    cluster = np.repeat(np.arange(30), 10)
    f = torch.from_numpy(centres[cluster] + 0.01 * rng.normal(size=(300, 8)))
    t = torch.nn.functional.normalize(f.float(), dim=1)
    e = torch.from_numpy(rng.normal(size=(30, 4))).float()[cluster] * 3
    u = torch.from_numpy(rng.normal(size=(50, 4))).float()
    cm = fit_cold_map(f, t, e, lambdas=(1.0,), alphas=(0.0, 1.0), k=5, user_emb=u, seen=_seen(u, e))
    assert cm.alpha == 1.0
    nb = neighbour_estimate(t[:5], t[5:], e[5:], k=5, tau=0.01)  # cluster 0 keeps 5 members
    torch.testing.assert_close(nb, e[:5])
