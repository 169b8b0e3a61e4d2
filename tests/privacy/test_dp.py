"""User-level DP-SGD: exact per-user clipping, sensitivity, noise, accounting, the two models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lgrec.errors import ConfigError
from lgrec.models import Recommender
from lgrec.privacy.dp import add_noise, cap_per_owner, clipped_sum, plan_budget, user_rows
from lgrec.privacy.dp_models import DPBPRMF, DPLightGCN
from tests.conftest import make_planted, topic_precision


def _random_batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    n_items, n_users, rows = 7, 4, 40
    grads = torch.randn(rows, 3, generator=g)
    items = torch.randint(0, n_items, (rows,), generator=g)
    owners = torch.randint(0, n_users, (rows,), generator=g)
    return grads, items, owners, n_users, n_items


def test_clipped_sum_is_per_user_clipping_done_one_user_at_a_time():
    grads, items, owners, n_users, n_items = _random_batch()
    clip = 1.5
    got, norms = clipped_sum(grads, items, owners, n_users, n_items, clip)
    want = torch.zeros(n_items, 3)
    for u in range(n_users):  # the slow, obvious way
        g_u = torch.zeros(n_items, 3).index_add_(0, items[owners == u], grads[owners == u])
        assert math.isclose(float(g_u.norm()), float(norms[u]), rel_tol=1e-5)
        want += g_u * min(1.0, clip / float(g_u.norm()))
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("seed", range(5))
def test_one_user_moves_the_clipped_sum_by_at_most_c(seed):
    grads, items, owners, n_users, n_items = _random_batch(seed)
    grads = grads * 10  # everyone far above the bound
    clip = 0.7
    full, _ = clipped_sum(grads, items, owners, n_users, n_items, clip)
    keep = owners != 2  # the neighbouring batch: user 2's whole history removed
    without, _ = clipped_sum(grads[keep], items[keep], owners[keep], n_users, n_items, clip)
    assert float((full - without).norm()) <= clip + 1e-5
    assert float((full - without).norm()) > 0.5 * clip  # and the bound is what binds


def test_noise_has_the_calibrated_scale_on_every_coordinate():
    g = torch.Generator().manual_seed(0)
    zero = torch.zeros(400, 50)
    noisy = add_noise(zero, sigma=2.0, clip=0.5, gen=g)
    assert abs(float(noisy.std()) - 1.0) < 0.02 and abs(float(noisy.mean())) < 0.02
    assert (noisy != 0).all()  # untouched items get noise too
    assert torch.equal(add_noise(zero, 0.0, 0.5, g), zero)


def test_budget_meets_the_target_and_infinity_means_no_noise():
    b8, b1 = plan_budget(8.0, 1e-5, 0.2, 30), plan_budget(1.0, 1e-5, 0.2, 30)
    assert b8.steps == 150 and b8.epsilon <= 8.0 + 1e-6 and b8.epsilon > 7.5
    assert b1.epsilon <= 1.0 + 1e-6 and b1.noise_multiplier > b8.noise_multiplier > 0
    inf = plan_budget(None, 1e-5, 0.2, 30)
    assert inf.noise_multiplier == 0 and math.isinf(inf.epsilon)
    with pytest.raises(ConfigError, match="sample_rate"):
        plan_budget(1.0, 1e-5, 0.0, 30)
    with pytest.raises(ConfigError, match="epsilon"):
        plan_budget(-1.0, 1e-5, 0.2, 30)


def test_user_rows_and_caps_are_vectorised_csr_slices():
    x = sp.csr_matrix(np.array([[1, 0, 1, 1], [0, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32))
    owner, item = user_rows(x, np.array([2, 0]))
    assert owner.tolist() == [0, 1, 1, 1] and item.tolist() == [1, 0, 2, 3]
    keep = cap_per_owner(owner, 2, np.random.default_rng(0))
    assert np.bincount(owner[keep]).tolist() == [1, 2]


@pytest.mark.parametrize("cls", [DPBPRMF, DPLightGCN])
def test_a_users_loss_reads_no_other_users_data(cls):
    """The premise of the per-user argument: changing user 1's history changes nothing in
    user 0's gradient (for LightGCN: propagation is user-local)."""
    ds = make_planted(n_users=6, items_per_topic=4, per_user=4)
    model = cls(epsilon=None)
    x = ds.matrix("binary").tolil()
    model._remember(ds)
    theta = torch.nn.Parameter(torch.randn(ds.n_items, model._theta_width()))
    users = torch.nn.Parameter(torch.randn(ds.n_users, model._user_width()))
    b, owner = torch.tensor([0]), torch.zeros(3, dtype=torch.long)
    pos, neg = torch.tensor([0, 1, 2]), torch.tensor([5, 6, 7])

    def grads(m):
        users.grad = None
        loss, rows, _, _ = model._user_losses(theta, users, m.tocsr(), b, owner, pos, neg)
        loss.backward()
        return [r.grad.clone() for r in rows], users.grad.clone()

    before, u_before = grads(x)
    x[1, :] = 1  # user 1 now interacted with everything
    after, u_after = grads(x)
    for a, c in zip(before, after):
        torch.testing.assert_close(a, c)
    torch.testing.assert_close(u_before, u_after)


@pytest.fixture(scope="module")
def planted_data():
    return make_planted(n_users=90, items_per_topic=20, per_user=14)


@pytest.mark.parametrize("cls", [DPBPRMF, DPLightGCN])
def test_dp_models_learn_tastes_and_record_their_budget(cls, planted_data, tmp_path):
    torch.set_num_threads(1)
    kw = dict(epochs=40, sample_rate=0.3, clip=0.1, lr=0.02, user_lr=0.05, seed=0)
    plain = cls(epsilon=None, **kw).fit(planted_data)
    assert topic_precision(plain, planted_data) > 0.65  # chance is 1/3
    private = cls(epsilon=8.0, **kw).fit(planted_data)
    assert private.budget_.epsilon <= 8.0 + 1e-6 and private.budget_.noise_multiplier > 0
    assert not torch.allclose(plain.score([0]), private.score([0]))  # the noise is there
    assert topic_precision(private, planted_data) > 0.5
    private.save(tmp_path / "m")
    back = Recommender.load(tmp_path / "m")
    assert type(back) is cls and torch.equal(back.score([3]), private.score([3]))
    import json

    meta = json.loads((tmp_path / "m" / "config.json").read_text())["meta"]["dp"]
    assert meta["epsilon"] == private.budget_.epsilon and meta["delta"] == 1e-5
