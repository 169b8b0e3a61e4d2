"""GraphFilter: closed-form scores match the dense formula; validation picks from the grid."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from lgrec.errors import ConfigError
from lgrec.models import GraphFilter, Recommender
from tests.conftest import topic_precision


def test_linear_filter_matches_dense_formula(planted_split):
    train = planted_split.train
    m = GraphFilter(k=0, alpha=0.0).fit(train)
    r = train.matrix().toarray().astype(np.float64)
    du, di = r.sum(1), r.sum(0)
    rn = r / np.sqrt(np.maximum(du, 1))[:, None] / np.sqrt(np.maximum(di, 1))[None, :]
    expected = r @ rn.T @ rn
    got = m.score(np.arange(train.n_users)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_ideal_filter_and_grid_choice(planted_split, planted):
    m = GraphFilter(k=(2, 4, 8), alpha=(0.0, 0.5), sharpen=0.0).fit(
        planted_split.train, valid=planted_split.valid
    )
    assert len(m.search_) == 6
    best = max(m.search_, key=lambda r: r["valid_Recall@20"])
    assert (m.k_, m.alpha_) == (best["k"], best["alpha"])
    assert topic_precision(m, planted) > 0.8
    params = m.refit_params()
    assert params["k"] == m.k_ and params["alpha"] == m.alpha_


def _dense_blurred(train, m) -> tuple[np.ndarray, np.ndarray]:
    """(x = linear + α · ideal, P = R̃ᵀR̃), densely, for the model's own V_k."""
    r = train.matrix().toarray().astype(np.float64)
    du, di = r.sum(1), r.sum(0)
    rn = r / np.sqrt(np.maximum(du, 1))[:, None] / np.sqrt(np.maximum(di, 1))[None, :]
    p = rn.T @ rn
    v = m.vk_.numpy().astype(np.float64)
    dhalf = np.sqrt(di)
    with np.errstate(divide="ignore"):
        dinv = np.where(di > 0, 1 / dhalf, 0.0)
    ideal = (r * dinv) @ v @ v.T * dhalf
    return r @ p + m.alpha_ * ideal, p


def test_sharpening_is_the_rk4_step_on_the_top_eigenvectors(planted_split):
    train = planted_split.train
    k, h = min(train.n_users, train.n_items) - 1, 1.5
    m = GraphFilter(k=k, alpha=0.3, sharpen=h).fit(train)
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
        dinv = np.where(di > 0, di**-0.5, 0.0)
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
