"""Rating autoencoders and the validated rating blend (lgrec.models.autorec / .rating)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lgrec.data.dataset import Split
from lgrec.errors import ConfigError
from lgrec.models.autorec import ItemAutoRec, KernelLinear, fit_item_autorec, predict
from lgrec.models.rating import RatingBlend, convex_blend, fit_rating_blend
from tests.conftest import make_planted

SMALL = {"autorec": {"hidden": 24, "n_hidden": 1, "kernel": False, "lam": 10.0}}


@pytest.fixture(scope="module")
def random_split() -> Split:
    """Planted ratings split at random (so train, valid and test share the rating pattern)."""
    ds = make_planted(n_users=240, per_user=20, noise=0.3, seed=3)
    r = np.random.default_rng(0).random(len(ds))
    return Split(
        train=ds.subset(r >= 0.3), valid=ds.subset((r >= 0.2) & (r < 0.3)), test=ds.subset(r < 0.2)
    )


def _pairs(d):
    return torch.as_tensor(d.user_ids).long(), torch.as_tensor(d.item_ids).long()


def _rmse(pred: torch.Tensor, d) -> float:
    return float(np.sqrt(((pred.clamp(1, 5).numpy() - d.ratings) ** 2).mean()))


def test_kernel_values_in_unit_interval_and_plain_layer_has_none():
    torch.manual_seed(0)
    layer = KernelLinear(7, 5, kernel=True)
    with torch.no_grad():
        layer.a.mul_(300.0)  # spread the points so some pairs fall outside the unit ball
        layer.c.mul_(300.0)
    k = layer.kernel().detach()
    assert k.shape == (7, 5)
    assert float(k.min()) >= 0.0 and float(k.max()) <= 1.0
    assert (k == 0).any() and (k > 0).any()
    w, pen = (t.detach() for t in layer.effective())
    assert torch.allclose(w, layer.weight * k)
    assert float(pen[1]) == pytest.approx(float((k**2).sum()), rel=1e-5)
    assert KernelLinear(7, 5, kernel=False).kernel() is None


@pytest.mark.parametrize("kernel", [False, True])
def test_autorec_beats_the_mean_and_predict_matches_dense_forward(random_split, kernel):
    s = random_split
    net, x, info = fit_item_autorec(
        s.train, s.valid, hidden=24, n_hidden=2 if kernel else 1, kernel=kernel, lam=5.0,
        lr=1e-2, epochs=150, seed=0,
    )  # fmt: skip
    assert 1 <= info["best_epoch"] <= info["epochs"] <= 150
    u, i = _pairs(s.test)
    pred = predict(net, x, u, i, block=7)  # several item blocks
    mean = torch.full((len(u),), float(s.train.ratings.mean()))
    assert _rmse(pred, s.test) < 0.9 * _rmse(mean, s.test)
    with torch.no_grad():  # the same numbers from one dense forward over all items
        h, _ = net.hidden(torch.as_tensor(x.toarray()))
        w_out, _ = net.out.effective()
        dense = h @ w_out + net.out.bias
    assert torch.allclose(pred, dense[i, u], atol=1e-5)


def test_convex_blend_recovers_a_convex_mixture_and_stays_convex():
    rng = np.random.default_rng(0)
    p = rng.normal(3, 1, size=(500, 3))
    w = convex_blend(p, 0.3 * p[:, 0] + 0.7 * p[:, 2])
    assert w[0] == 0.0 and np.allclose(w[1:], [0.3, 0.0, 0.7], atol=1e-3)
    w = convex_blend(p, 3 * p[:, 1] - 2 * p[:, 0])  # not convex: still a convex answer
    assert min(w[1:]) >= 0 and sum(w[1:]) == pytest.approx(1.0)


def test_blend_is_no_worse_on_valid_than_its_best_component(random_split, monkeypatch):
    s = random_split
    monkeypatch.setattr("lgrec.models.rating.AE_SETTINGS", SMALL)
    blend = fit_rating_blend(s.train, s.valid, None, names=("svdpp", "autorec"), dim=8, epochs=60)
    assert blend.names == ["svdpp", "autorec"] and set(blend.best_epochs) == set(blend.names)
    assert min(blend.weights[1:]) >= 0 and sum(blend.weights[1:]) == pytest.approx(1.0)
    u, i = _pairs(s.valid)
    with torch.no_grad():
        comp = blend.components(u, i)
        both = blend.predict(u, i)
    target = torch.tensor(s.valid.ratings)
    mse = lambda p: float(((p - target) ** 2).mean())  # noqa: E731
    assert mse(both) <= min(mse(comp[:, 0]), mse(comp[:, 1])) + 1e-4

    # persistence: tensors + JSON meta give the same predictions
    back = RatingBlend.from_state(blend.state(), blend.meta())
    assert back.names == blend.names and back.weights == blend.weights
    assert torch.allclose(back.predict(u, i), both)

    # a refit with given weights and per-component epochs keeps them
    again = fit_rating_blend(
        s.train, None, None, names=("svdpp", "autorec"), dim=8,
        epochs=blend.best_epochs, weights=blend.weights,
    )  # fmt: skip
    assert again.weights == blend.weights


def test_blend_checks_names_weights_and_skips_oversized_autoencoders(random_split):
    s = random_split
    with pytest.raises(ConfigError, match=r"unknown.*'nope'"):
        fit_rating_blend(s.train, s.valid, None, names=("svdpp", "nope"))
    with pytest.raises(ConfigError, match="3 weights needed"):
        fit_rating_blend(s.train, None, None, names=("svdpp", "autorec"), weights=[1.0], epochs=2)
    blend = fit_rating_blend(
        s.train, s.valid, None, names=("svdpp", "autorec"), dim=8, epochs=5, max_ae_params=10
    )
    assert blend.names == ["svdpp"] and not blend.nets and blend.weights == [0.0, 1.0]


def test_bundle_from_before_the_blend_loads_as_svdpp_only():
    head = {
        "user": torch.randn(4, 3),
        "item": torch.randn(5, 3),
        "bu": torch.randn(4),
        "bi": torch.randn(5),
        "mu": torch.tensor([3.5]),
    }
    old = RatingBlend.from_state({f"rating.{k}": v for k, v in head.items()}, None)
    assert old.names == ["svdpp"] and old.weights == [0.0, 1.0]
    u, i = torch.tensor([0, 3]), torch.tensor([4, 1])
    expect = 3.5 + head["bu"][u] + head["bi"][i] + (head["user"][u] * head["item"][i]).sum(1)
    assert torch.allclose(old.predict(u, i), expect)


def test_itemautorec_shapes():
    net = ItemAutoRec(n_users=11, hidden=4, n_hidden=2, kernel=True)
    h, pen = net.hidden(torch.rand(3, 11))
    assert h.shape == (3, 4) and pen.shape == (2,) and (pen > 0).all()
