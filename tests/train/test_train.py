"""Training stage: negative sampling, losses, early stopping, validation metrics."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lgrec.graph.bipartite import SparseOperator
from lgrec.train import (
    NegativeSampler,
    bpr_loss,
    softmax_loss,
    train_loop,
    validation_grid,
    validation_metrics,
)


@pytest.mark.parametrize("bitset_bytes", [0, 1 << 20])  # binary search / bitset membership
def test_negative_sampler_never_returns_seen_items(bitset_bytes):
    rng = np.random.default_rng(0)
    x = sp.random(50, 40, density=0.6, format="csr", random_state=0)
    x.data[:] = 1
    s = NegativeSampler(x, rng, max_bitset_bytes=bitset_bytes)
    assert (s.bits_ is not None) == (bitset_bytes > 0)
    uu, ii = np.divmod(np.arange(50 * 40), 40)
    np.testing.assert_array_equal(s.is_seen(uu, ii), x.toarray().ravel() > 0)
    users = np.repeat(np.arange(50), 20)
    neg = s.sample(users, 3)
    assert neg.shape == (1000, 3)
    dense = x.toarray().astype(bool)
    assert not dense[users[:, None], neg].any()


def test_losses_prefer_correct_order():
    pos, neg = torch.tensor([3.0, 2.0]), torch.tensor([0.0, -1.0])
    assert bpr_loss(pos, neg) < bpr_loss(neg, pos)
    u = torch.eye(4)
    good = softmax_loss(u, torch.eye(4), -torch.eye(4), tau=0.5)
    bad = softmax_loss(u, -torch.eye(4), torch.eye(4), tau=0.5)
    assert good < bad
    # a negative identical to the positive item is masked, not pushed away
    masked = softmax_loss(u, torch.eye(4), torch.eye(4), 0.5, torch.arange(4), torch.arange(4))
    assert torch.isfinite(masked)


def test_sparse_operator_gradient_matches_dense():
    a = sp.random(30, 30, density=0.2, random_state=1, format="csr", dtype=np.float32)
    for m in (a, a + a.T):
        op = SparseOperator(m)
        x = torch.randn(30, 4, requires_grad=True)
        (op @ x).pow(2).sum().backward()
        g_sparse = x.grad.clone()
        x.grad = None
        (torch.from_numpy(m.toarray()) @ x).pow(2).sum().backward()
        torch.testing.assert_close(g_sparse, x.grad)


def test_validation_metrics_by_hand():
    train = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    valid = sp.csr_matrix(np.array([[0, 1, 0, 1], [1, 0, 0, 0]], dtype=np.float32))
    scores = torch.tensor([[9.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0]])
    m = validation_metrics(lambda u: scores[u], train, valid, k=2)
    # user 0: item 0 is excluded → top-2 = [1, 2]: 1 hit of 2 relevant → recall 0.5
    # user 1: top-2 = [3, 2]: no hit → recall 0;  mean 0.25
    assert abs(m["Recall@2"] - 0.25) < 1e-9
    ndcg0 = 1.0 / (1.0 + 1 / np.log2(3))
    assert abs(m["NDCG@2"] - ndcg0 / 2) < 1e-9


def test_train_loop_early_stops_and_restores_best():
    w = torch.nn.Linear(1, 1, bias=False)
    calls = iter([0.5, 0.9, 0.4, 0.3, 0.2, 0.1])

    def step(idx):
        return (w.weight**2).sum()

    def validate():
        val = next(calls)
        if val == 0.9:
            validate.best = w.weight.detach().clone()
        return val

    log = train_loop(
        w,
        step,
        10,
        epochs=50,
        batch_size=5,
        lr=0.1,
        rng=np.random.default_rng(0),
        validate=validate,
        eval_every=1,
        patience=2,
    )
    assert log.best_epoch == 2 and log.epochs_run == 4 and log.best_valid == 0.9
    torch.testing.assert_close(w.weight.detach(), validate.best)


def test_validation_grid_equals_one_call_per_candidate():
    rng = np.random.default_rng(0)
    train = sp.random(60, 30, density=0.2, format="csr", random_state=1)
    valid = sp.random(60, 30, density=0.1, format="csr", random_state=2)
    valid = (valid - valid.multiply(train > 0)).tocsr()
    valid.eliminate_zeros()
    emb_u, emb_i = rng.normal(size=(60, 4)), rng.normal(size=(30, 4))
    weights = (0.0, 0.5, 2.0)

    def score_w(w):
        return lambda u: torch.from_numpy(emb_u[u.numpy()] @ emb_i.T + w * emb_i[:, 0])

    grid = validation_grid(
        lambda u: (score_w(w)(u) for w in weights), 3, train, valid, k=5, block_size=16
    )
    for w, got in zip(weights, grid):
        assert got == validation_metrics(score_w(w), train, valid, k=5, block_size=7)
    assert len({g["Recall@5"] for g in grid}) > 1  # the candidates really differ
    with pytest.raises(ValueError, match="gave 2 of 3"):
        validation_grid(lambda u: (score_w(w)(u) for w in weights[:2]), 3, train, valid)
