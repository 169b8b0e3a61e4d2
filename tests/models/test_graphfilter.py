"""GraphFilter: closed-form scores match the dense formula; validation picks from the grid."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
import torch

from lgrec.errors import ConfigError
from lgrec.models import GraphFilter, Recommender
from tests.conftest import make_planted, split_last, topic_precision


def _dense_rn(r: np.ndarray, a: float, b: float) -> np.ndarray:
    """R̃ = D_U^{-a} R D_I^{-b} / σ_max(·), densely."""
    du, di = r.sum(1), r.sum(0)
    rn = r / np.maximum(du, 1)[:, None] ** a / np.maximum(di, 1)[None, :] ** b
    return rn / np.linalg.norm(rn, 2)


@pytest.mark.parametrize("exps", [(0.5, 0.5), (0.3, 0.4), (0.0, 1.0)])
def test_linear_filter_matches_dense_formula(planted_split, exps):
    train = planted_split.train
    m = GraphFilter(k=0, alpha=0.0, user_exp=exps[0], item_exp=exps[1]).fit(train)
    r = train.matrix().toarray().astype(np.float64)
    rn = _dense_rn(r, *exps)
    expected = r @ rn.T @ rn
    got = m.score(np.arange(train.n_users)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    if exps == (0.5, 0.5):  # the symmetric normalisation has σ_max = 1: no rescaling needed
        assert m.scale_ == 1.0


def test_ideal_filter_and_grid_choice(planted_split, planted):
    m = GraphFilter(k=(2, 4, 8), alpha=(0.0, 0.5), sharpen=0.0, k_limit=0).fit(
        planted_split.train, valid=planted_split.valid
    )
    assert len(m.search_) == 6
    best = max(m.search_, key=lambda r: r["valid_Recall@20"])
    assert (m.k_, m.alpha_) == (best["k"], best["alpha"])
    assert topic_precision(m, planted) > 0.8
    params = m.refit_params()
    assert params["k"] == m.k_ and params["alpha"] == m.alpha_


def test_k_grid_grows_past_its_top_while_validation_improves():
    split = split_last(make_planted(n_users=60, items_per_topic=30, per_user=10))
    fit = {"alpha": (0.5, 1.0), "sharpen": 0.0}
    fixed = GraphFilter(k=(1,), k_limit=0, **fit).fit(split.train, valid=split.valid)
    assert fixed.k_ == 1 and {r["k"] for r in fixed.search_} == {1}  # stuck at the edge
    m = GraphFilter(k=(1,), k_limit=64, **fit).fit(split.train, valid=split.valid)
    recall = {r["k"]: r["valid_Recall@20"] for r in m.search_}
    ks = sorted(recall)
    assert ks[:2] == [1, 2] and all(b == 2 * a for a, b in itertools.pairwise(ks))  # doubling
    assert m.k_ > 1 and recall[m.k_] == max(recall.values()) > recall[1]
    assert ks[-1] < 64 and recall[ks[-1]] <= recall[m.k_]  # stopped when it stopped improving


def _dense_blurred(train, m) -> tuple[np.ndarray, np.ndarray]:
    """(x = linear + α · ideal, P = R̃ᵀR̃), densely, for the model's own V_k and exponents."""
    r = train.matrix().toarray().astype(np.float64)
    rn = _dense_rn(r, m.user_exp_, m.item_exp_)
    p = rn.T @ rn
    v = m.vk_.numpy().astype(np.float64)
    di = r.sum(0)
    db = di**m.item_exp_
    with np.errstate(divide="ignore"):
        dinv = np.where(di > 0, 1 / db, 0.0)
    ideal = (r * dinv) @ v @ v.T * db
    return r @ p + m.alpha_ * ideal, p


@pytest.mark.parametrize("exps", [(0.5, 0.5), (0.3, 0.4)])
def test_sharpening_is_the_rk4_step_on_the_top_eigenvectors(planted_split, exps):
    train = planted_split.train
    k, h = min(train.n_users, train.n_items) - 1, 1.5
    m = GraphFilter(k=k, alpha=0.3, sharpen=h, user_exp=exps[0], item_exp=exps[1]).fit(train)
    x, p = _dense_blurred(train, m)
    hp = h * p
    poly = np.eye(len(p)) - hp + hp @ hp / 2 - hp @ hp @ hp / 6 + hp @ hp @ hp @ hp / 24
    v = m.vk_.numpy().astype(np.float64)
    expected = x + x @ v @ v.T @ (poly - np.eye(len(p)))  # x p_h(P) on span(V_k), x elsewhere
    got = m.score(np.arange(train.n_users)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)
    # k is all but one dimension here, so this is nearly the full x p_h(P) (BSPM's step)
    full = x @ poly
    assert np.abs(got - full).max() < 0.05 * np.abs(full).max()
    assert np.abs(got - x).max() > 0.1 * np.abs(x).max()  # and sharpening changed the scores


def test_sharpening_is_chosen_on_validation_after_k_and_alpha(planted_split, tmp_path):
    m = GraphFilter(k=(4, 8), alpha=(0.0, 0.5), sharpen=(0.0, 1.0, 2.0)).fit(
        planted_split.train, valid=planted_split.valid
    )
    first, second = m.search_[:4], m.search_[4:]
    assert {r["sharpen"] for r in first} == {0.0} and [r["sharpen"] for r in second] == [0, 1, 2]
    best1 = max(first, key=lambda r: r["valid_Recall@20"])
    assert all((r["k"], r["alpha"]) == (best1["k"], best1["alpha"]) for r in second)
    best2 = max(second, key=lambda r: r["valid_Recall@20"])
    assert m.h_ == best2["sharpen"] and m.refit_params()["sharpen"] == m.h_
    users = torch.arange(15)
    sharp = GraphFilter(k=8, alpha=0.5, sharpen=2.0).fit(planted_split.train)
    sharp.save(tmp_path / "sharp")
    assert torch.allclose(Recommender.load(tmp_path / "sharp").score(users), sharp.score(users))


def test_semantic_filter_and_round_trip(planted_split, planted_text_emb, tmp_path):
    m = GraphFilter(k=4, alpha=0.5, semantic_weight=0.3, semantic_k=5).fit(
        planted_split.train, item_emb=planted_text_emb
    )
    base = GraphFilter(k=4, alpha=0.5).fit(planted_split.train)
    users = torch.arange(20)
    assert not torch.allclose(m.score(users), base.score(users))
    m.save(tmp_path / "gf")
    back = Recommender.load(tmp_path / "gf")
    assert torch.allclose(back.score(users), m.score(users))


def test_bad_grid_values():
    with pytest.raises(ConfigError):
        GraphFilter(alpha=-1.0).fit(None)  # type: ignore[arg-type]


def test_needs_text_only_with_a_semantic_weight(planted_split):
    from lgrec.config import RunConfig
    from lgrec.pipeline import Prepared, fit_model

    assert not GraphFilter().needs_text
    assert GraphFilter(semantic_weight=(0.0, 0.3)).needs_text
    # the pipeline does not encode item text for a model that will not use it
    prep = Prepared(data=planted_split.train, split=planted_split, report=None)
    model, _ = fit_model(GraphFilter(k=4, alpha=0.5), prep, RunConfig(refit=False))
    assert prep.item_emb is None and model.score([0]).shape[1] == planted_split.train.n_items


def test_sharpened_filter_scores_any_history_row(planted_split):
    """The server scores a user's current history through a shallow copy of the filter
    (``lgrec.serve.online.filter_row_scores``); with sharpening it equals ``score``."""
    from lgrec.serve.online import filter_row_scores

    m = GraphFilter(k=8, alpha=0.5, sharpen=1.5).fit(planted_split.train)
    for u in (0, 7):
        row = m.x_[u]
        np.testing.assert_allclose(
            filter_row_scores(m, row).numpy(), m.score([u])[0].numpy(), rtol=1e-5, atol=1e-6
        )


COLD = np.array([3, 4, 23, 24, 43, 44])  # two items of each planted topic, held out entirely


def _without_cold(planted):
    return planted.subset(~planted.interactions["item"].isin(COLD).to_numpy())


@pytest.mark.parametrize("with_text", [True, False])
def test_cold_items_scored_through_regressed_spectral_coordinates(
    planted, planted_text_emb, with_text, tmp_path
):
    train = _without_cold(planted)
    emb = planted_text_emb if with_text else None  # without text: categories alone
    m = GraphFilter(k=8, alpha=0.5, sharpen=0.0).fit(train, item_emb=emb)
    assert m.cold_items_.tolist() == COLD.tolist()
    users = np.arange(planted.n_users)
    s = m.score(users)
    # exactly the ideal term read at q̂: α (x D^{-1/2} V_k) q̂ᵀ, and nothing else (no linear term)
    x = train.matrix().toarray().astype(np.float64)
    di = x.sum(0)
    with np.errstate(divide="ignore"):
        dinv = np.where(di > 0, di**-m.item_exp_, 0.0)
    expected = m.alpha_ * (x * dinv) @ m.vk_.numpy() @ m.cold_q_.numpy().T
    np.testing.assert_allclose(s[:, COLD].numpy(), expected, rtol=1e-4, atol=1e-5)
    # warm columns are untouched by the cold map
    m_plain = GraphFilter(k=8, alpha=0.5, sharpen=0.0).fit(train)
    if with_text:
        warm = np.setdiff1d(np.arange(planted.n_items), COLD)
        torch.testing.assert_close(s[:, warm], m_plain.score(users)[:, warm])
    # users rank the cold items of their own topic first
    top, _ = m.recommend(users, k=2, candidates=COLD)
    assert ((top.numpy() // 20) == (users % 3)[:, None]).mean() > 0.8
    m.save(tmp_path / "gf")
    torch.testing.assert_close(Recommender.load(tmp_path / "gf").score(users), s)


def test_no_cold_map_without_side_features_or_ideal_term(planted, planted_text_emb):
    train = _without_cold(planted)
    bare = replace(train, items=train.items[["item_id"]])  # no categories, title or year
    m = GraphFilter(k=8, alpha=0.5, sharpen=0.0).fit(bare)
    assert m.cold_items_ is None
    assert (m.score([0, 1])[:, COLD] == 0).all()  # no interaction, no feature: no score
    no_ideal = GraphFilter(k=8, alpha=0.0).fit(train, item_emb=planted_text_emb)
    assert no_ideal.cold_items_ is None


def test_pipeline_encodes_text_for_a_cold_split(planted):
    from lgrec.config import RunConfig
    from lgrec.data.split import split_cold_items
    from lgrec.pipeline import Prepared, fit_model

    split = split_cold_items(planted, item_frac=0.1, seed=0)
    prep = Prepared(data=planted, split=split, report=None)
    model, _ = fit_model(GraphFilter(k=8, alpha=0.5), prep, RunConfig(refit=False))
    assert prep.item_emb is not None  # the cold items are placed from their text
    assert sorted(model.cold_items_.tolist()) == sorted(split.cold_items.tolist())


def test_normalisation_exponents_chosen_on_validation_and_saved(planted_split, tmp_path):
    m = GraphFilter(k=8, alpha=0.5, sharpen=0.0, user_exp=(0.3, 0.5), item_exp=(0.4, 0.5)).fit(
        planted_split.train, valid=planted_split.valid
    )
    pairs = [(r["user_exp"], r["item_exp"]) for r in m.search_]
    assert pairs == [(0.3, 0.4), (0.3, 0.5), (0.5, 0.4), (0.5, 0.5)]
    best = max(m.search_, key=lambda r: r["valid_Recall@20"])  # first of equals wins
    assert (m.user_exp_, m.item_exp_) == (best["user_exp"], best["item_exp"])
    params = m.refit_params()
    assert (params["user_exp"], params["item_exp"]) == (m.user_exp_, m.item_exp_)
    # the chosen pair's spectrum is the one kept
    ref = GraphFilter(k=8, alpha=0.5, sharpen=0.0, user_exp=m.user_exp_, item_exp=m.item_exp_)
    users = torch.arange(20)
    torch.testing.assert_close(m.score(users), ref.fit(planted_split.train).score(users))
    m.save(tmp_path / "gf")
    back = Recommender.load(tmp_path / "gf")
    assert (back.user_exp_, back.item_exp_) == (m.user_exp_, m.item_exp_)
    torch.testing.assert_close(back.score(users), m.score(users))


def test_bundle_without_exponents_loads_with_the_symmetric_normalisation(planted_split, tmp_path):
    import json

    m = GraphFilter(k=8, alpha=0.5, sharpen=1.0, user_exp=0.5, item_exp=0.5).fit(
        planted_split.train
    )
    m.save(tmp_path / "gf")
    cfg_path = tmp_path / "gf" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    text = json.dumps(cfg)  # an older bundle: no exponents anywhere, the class defaults differ
    for key in ("user_exp_", "item_exp_", "scale_"):
        assert key in text
    _strip(cfg, {"user_exp", "item_exp", "user_exp_", "item_exp_", "scale_"})
    cfg_path.write_text(json.dumps(cfg))
    back = Recommender.load(tmp_path / "gf")
    assert (back.user_exp_, back.item_exp_) == (0.5, 0.5)
    torch.testing.assert_close(back.score(torch.arange(10)), m.score(torch.arange(10)))


def _strip(obj, keys: set[str]) -> None:
    """Remove ``keys`` from every dict nested in ``obj``."""
    if isinstance(obj, dict):
        for k in list(obj):
            if k in keys:
                del obj[k]
            else:
                _strip(obj[k], keys)
    elif isinstance(obj, list):
        for v in obj:
            _strip(v, keys)
