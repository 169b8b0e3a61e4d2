"""LMGCN's parts: the closed-form layer, the feature blocks, fold-in and cold-item calibration."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lgrec.errors import ConfigError
from lgrec.models import LMGCN
from lgrec.models.bilinear import BilinearRidge
from lgrec.models.coldcal import match_percentiles
from lgrec.models.features import item_features
from lgrec.models.newusers import history_vectors
from tests.conftest import make_planted, split_last

PARTS = dict(spectral_k=16, rank=None, reg=0.3, semantic_k=5, rating_head=False)


def _implicit(ds):
    return ds.with_interactions(ds.interactions.assign(rating=1.0), name=ds.name)


def test_bilinear_ridge_solves_the_normal_equations():
    rng = np.random.default_rng(0)
    h, x = rng.standard_normal((40, 6)), rng.standard_normal((30, 5))
    r = sp.random(40, 30, density=0.2, random_state=0, format="csr")
    r.data[:] = 1.0
    lam = 0.7
    w = BilinearRidge(h, r, x).solve(lam)
    # ∂/∂W ‖R − H W Xᵀ‖² + λ‖W‖² = 0  ⇔  HᵀH W XᵀX + λW = HᵀRX
    lhs = h.T @ h @ w @ x.T @ x + lam * w
    np.testing.assert_allclose(lhs, h.T @ r.toarray() @ x, atol=1e-8)
    assert BilinearRidge.factor(w, None)[1] is None  # exact: user side H W, item side X
    a, b = BilinearRidge.factor(w, 5)  # full rank by SVD
    np.testing.assert_allclose(a @ b.T, w, atol=1e-5)
    a2, b2 = BilinearRidge.factor(w, 2)  # truncated: rank 2, the best rank-2 approximation
    assert a2.shape == (6, 2) and np.linalg.matrix_rank(a2 @ b2.T) == 2


def test_leave_one_out_correction_removes_each_items_own_share():
    # one user, one item: with the correction the cross term Hᵀ R X loses w_u x_iᵀ x_i
    x = np.array([[1.0, 2.0]])
    r = sp.csr_matrix(np.ones((1, 1)))
    h = x.copy()  # h_u = x_i (weight 1)
    plain = BilinearRidge(h, r, x)
    loo = BilinearRidge(h, r, x, c=np.array([1.0]), n_hist=2)
    assert np.abs(plain.m_).sum() > 0 and np.abs(loo.m_).sum() < 1e-12


def test_feature_blocks_follow_the_parts(planted, planted_text_emb):
    x = planted.matrix("binary")
    full, sem = item_features(x, planted_text_emb, spectral_k=8, semantic_k=5,
                              item_graph=sp.identity(planted.n_items, format="csr"))  # fmt: skip
    assert list(full.blocks) == ["text", "text@graph", "text@semantic", "text@kg", "spectral"]
    assert sem is not None and full.x.shape == (planted.n_items, 16 * 4 + 8)
    off, _ = item_features(x, planted_text_emb, text_blocks=False, spectral_k=8)
    assert list(off.blocks) == ["spectral"]
    none, _ = item_features(x, planted_text_emb, spectral_k=8, semantic_k=0)
    assert "text@semantic" not in none.blocks
    cols = full.graph_columns()
    assert len(cols) == 16 + 8  # text@graph and spectral come from the interactions


def test_ablation_settings_are_constructor_choices(planted_split, planted_text_emb):
    s = planted_split
    m = LMGCN(**{**PARTS, "text": False, "profiles": False, "filter_weight": 0.0}).fit(
        s.train, valid=s.valid, item_emb=planted_text_emb
    )
    assert list(m.blocks_) == ["spectral"] and m.filter_ is None and "profile" not in m.user_map_
    with pytest.raises(ConfigError, match="spectral block"):
        LMGCN(text=False, spectral_k=0).fit(s.train, item_emb=planted_text_emb)
    with pytest.raises(ConfigError, match="cold"):
        LMGCN(cold="boost").fit(s.train, item_emb=planted_text_emb)
    with pytest.raises(ConfigError, match="cold_grid keys"):
        LMGCN(cold_grid={"lambda": (1.0,)}).fit(s.train, item_emb=planted_text_emb)


def test_text_off_leaves_text_out_of_the_blended_filter_too(planted_split, planted_text_emb):
    # the blended graph filter's semantic term (γ · r_u S̃) is built from the text: with
    # text=False it must be off, or "blend without text" still ranks with the language model
    s = planted_split
    kw = {**PARTS, "filter_params": {"semantic_weight": 0.5, "k": 8}, "filter_weight": 1.0}
    on = LMGCN(**kw).fit(s.train, valid=s.valid, item_emb=planted_text_emb)
    off = LMGCN(**kw, text=False).fit(s.train, valid=s.valid, item_emb=planted_text_emb)
    assert on.filter_.gamma_ == 0.5 and off.filter_.gamma_ == 0.0
    # the text-free filter does not depend on the embeddings at all
    noise = np.random.default_rng(1).standard_normal(planted_text_emb.shape).astype(np.float32)
    off2 = LMGCN(**kw, text=False).fit(s.train, valid=s.valid, item_emb=noise)
    users = torch.arange(20)
    torch.testing.assert_close(off.filter_._score_block(users), off2.filter_._score_block(users))


def test_fold_in_reproduces_training_users_exactly(planted_text_emb):
    ds = _implicit(make_planted())
    split = split_last(ds)
    m = LMGCN(**PARTS, filter_weight=0.0).fit(split.train, valid=split.valid,
                                              item_emb=planted_text_emb)  # fmt: skip
    rows = split.train.matrix("binary")[:10]
    torch.testing.assert_close(history_vectors(m, rows), m.user_emb_[:10], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(m.fold_in(rows), m.score(np.arange(10)), rtol=1e-4, atol=1e-4)


def _text_planted():
    """The planted data set with a sentence per user naming their topic, and the topics' words."""
    import pandas as pd

    ds = make_planted()
    words = {0: "space rockets and galaxies", 1: "love stories and weddings", 2: "ghosts, zombies"}
    likes = [f"I like {words[u % 3]}" for u in range(ds.n_users)]
    users = pd.DataFrame({"user_id": ds.users["user_id"], "text": likes})
    ds = type(ds)(ds.interactions, ds.items, users, name="planted", rating_scale=(1.0, 5.0))
    return ds, words


def test_fold_in_from_text_alone_finds_the_users_topic(planted_text_emb):
    from lgrec.text.encoder import TextEncoder

    ds, words = _text_planted()
    emb = TextEncoder().encode(ds.item_text())
    m = LMGCN(**PARTS).fit(ds, item_emb=emb)
    assert m.user_text_map_ is not None
    new = [f"I like {words[t]}" for t in (0, 1, 2)] * 3
    s = m.fold_in(sp.csr_matrix((9, ds.n_items)), new)
    top = torch.topk(s, 5, dim=1).indices.numpy() // 20
    assert (top == (np.arange(9) % 3)[:, None]).mean() > 0.8


def test_percentile_matching_places_cold_items_on_the_warm_scale():
    final = torch.tensor([[10.0, 20.0, 30.0, 40.0, -5.0, -5.0]])
    side = torch.tensor([[1.0, 2.0, 3.0, 4.0, 3.5, 0.5]])  # cold item 4 is between warm 2 and 3
    out = match_percentiles(final[:, :4], side[:, :4], side[:, 4:])
    assert out[0, 0] == 40.0  # three warm items below it: the warm score at rank 3 (of 0..3)
    assert out[0, 1] == 10.0  # below every warm item: the lowest warm score
    assert match_percentiles(final[:, :4], side[:, :4], side[:, 4:], offset=-0.25)[0, 0] == 30.0


def test_percentile_levels_can_be_handed_out_in_another_order():
    # the side features give the levels {40, 10}; order_by says cold item 1 is the better one
    final = torch.tensor([[10.0, 20.0, 30.0, 40.0], [1.0, 2.0, 3.0, 4.0]])
    side = torch.tensor([[1.0, 2.0, 3.0, 4.0, 3.5, 0.5], [1.0, 2.0, 3.0, 4.0, 2.5, 1.5]])
    by = torch.tensor([[0.1, 0.9], [0.2, 0.2]])  # row 1: a tie keeps the item order
    out = match_percentiles(final, side[:, :4], side[:, 4:], order_by=by)
    assert out.tolist() == [[10.0, 40.0], [3.0, 2.0]]
    plain = match_percentiles(final, side[:, :4], side[:, 4:])
    assert sorted(out[0].tolist()) == sorted(plain[0].tolist())  # the same levels, reassigned


def test_cold_items_are_ordered_by_the_blended_score(planted, planted_text_emb):
    # "percentile" ranks the cold items among themselves as the raw blended score does, with
    # the levels of "percentile-side" (which ranks them by the side features alone)
    cold = np.array([3, 4, 23, 24, 43, 44])
    train = planted.subset(~planted.interactions["item"].isin(cold).to_numpy())
    m = LMGCN(**PARTS, cold="raw").fit(train, item_emb=planted_text_emb)
    users = torch.arange(planted.n_users)
    raw = m.score(users)[:, cold]
    m.cold = "percentile-side"
    side = m.score(users)[:, cold]
    m.cold = "percentile"
    new = m.score(users)[:, cold]
    assert torch.equal(new.sort(1).values, side.sort(1).values)

    def by_raw(s: torch.Tensor) -> torch.Tensor:  # s's values in the raw score's order
        return s.gather(1, raw.argsort(dim=1, descending=True, stable=True))

    assert (by_raw(new).diff(dim=1) <= 0).all()  # non-increasing: ordered as raw is
    assert (by_raw(side).diff(dim=1) > 0).any()  # the side features order them otherwise


def test_cold_items_compete_with_warm_ones(planted, planted_text_emb):
    # 6 of 60 items have no training interaction; percentile-matched, they enter the top-10
    # lists of the users of their topic at least as often as with the model's raw scores
    cold = np.array([3, 4, 23, 24, 43, 44])
    keep = ~planted.interactions["item"].isin(cold).to_numpy()
    train = planted.subset(keep)
    users = np.arange(planted.n_users)
    share = {}
    for mode in ("percentile", "raw"):
        m = LMGCN(**PARTS, cold=mode).fit(train, item_emb=planted_text_emb)
        top = m.recommend(users, k=10)[0].numpy()
        is_cold = np.isin(top, cold)
        share[mode] = is_cold.mean()
        if mode == "percentile":  # and they go to the right users
            assert ((top[is_cold] // 20) == np.repeat(users % 3, is_cold.sum(1))).mean() > 0.8
    assert share["percentile"] >= share["raw"] and share["percentile"] > 0.1


def test_items_without_text_fields_leave_the_text_blocks_out(planted_split, caplog):
    train = planted_split.train
    bare = type(train)(train.interactions, train.items[["item_id"]], train.users, name="ids")
    emb = np.random.default_rng(0).standard_normal((bare.n_items, 8)).astype(np.float32)
    m = LMGCN(**PARTS, filter_weight=0.0).fit(bare, item_emb=emb)  # "text" of the ids
    assert not m.text_used_ and "none of the text fields" in caplog.text
    assert set(m.blocks_) == {"spectral"}
    assert set(LMGCN(**PARTS, filter_weight=0.0).fit(train, item_emb=emb).blocks_) > {"text"}


def test_refit_reuses_the_cold_parts_choices(planted, planted_text_emb, caplog):
    # the side map (λ, α) chosen at fit time travel in refit_params; the refit does not search
    cold = np.array([3, 4, 23, 24])
    train = planted.subset(~planted.interactions["item"].isin(cold).to_numpy())
    with caplog.at_level("INFO", logger="lgrec.models.coldstart"):
        m = LMGCN(**PARTS).fit(train, item_emb=planted_text_emb)
        searched = caplog.text.count("cold-start map")  # the side map's and the filter's
        caplog.clear()
        grid = m.refit_params()["cold_grid"]
        assert len(grid["lambdas"]) == len(grid["alphas"]) == 1
        assert grid["lambdas"][0] in (1.0, 10.0, 100.0, 1000.0)
        r = LMGCN(**m.refit_params()).fit(train, item_emb=planted_text_emb)
    assert caplog.text.count("cold-start map") == searched - 1  # the side map did not search
    assert r.side_choice_ == m.side_choice_
    torch.testing.assert_close(r.item_emb_[cold], m.item_emb_[cold])
