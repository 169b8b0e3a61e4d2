"""LightGCN and the fused LMGCN: learning planted structure, heads, cold start, persistence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lgrec.errors import ConfigError, NotFittedError, UnknownIdError
from lgrec.models import LMGCN, LightGCN, Recommender
from tests.conftest import topic_precision

FAST = dict(dim=16, epochs=30, batch_size=256, lr=0.02, eval_every=5, patience=2)
LM_FAST = dict(spectral_k=16, reg=(0.1, 1.0), rank=16, semantic_k=5)


@pytest.fixture(scope="module")
def lightgcn(planted_split):
    return LightGCN(**FAST).fit(planted_split.train, valid=planted_split.valid)


@pytest.fixture(scope="module")
def lmgcn(planted_split, planted_text_emb):
    return LMGCN(**LM_FAST, rating_epochs=40).fit(
        planted_split.train, valid=planted_split.valid, item_emb=planted_text_emb
    )


def test_lightgcn_learns_planted_topics(lightgcn, planted):
    # chance is 1/3 of the catalogue; a working GNN recommends mostly the user's own topic
    assert topic_precision(lightgcn, planted) > 0.8
    assert lightgcn.train_log_.epochs_run >= 5
    assert lightgcn.train_log_.losses[-1] < lightgcn.train_log_.losses[0]


def test_lmgcn_learns_planted_topics_and_heads(lmgcn, planted, planted_split):
    assert topic_precision(lmgcn, planted) > 0.8
    test = planted_split.test
    pred = lmgcn.predict_rating(test.user_ids, test.item_ids).numpy()
    assert pred.min() >= 1.0 and pred.max() <= 5.0
    rmse = float(np.sqrt(((pred - test.ratings) ** 2).mean()))
    baseline = float(np.sqrt(((test.ratings - planted_split.train.ratings.mean()) ** 2).mean()))
    assert rmse < baseline  # the rating head beats predicting the global mean
    p = lmgcn.predict_click(test.user_ids, test.item_ids)
    assert ((p >= 0) & (p <= 1)).all()
    cats = lmgcn.predict_categories([0, 25, 50], k=1)
    assert [c[0][0] for c in cats] == ["Sci-Fi", "Romance", "Horror"]


def test_save_load_round_trip_scores_identical(lmgcn, lightgcn, tmp_path):
    for m in (lmgcn, lightgcn):
        m.save(tmp_path / m.name)
        back = Recommender.load(tmp_path / m.name)
        assert type(back) is type(m)
        users = torch.arange(10)
        assert torch.equal(back.score(users), m.score(users))
        a, b = back.recommend(users, k=5), m.recommend(users, k=5)
        assert torch.equal(a[0], b[0])
    back = Recommender.load(tmp_path / "lmgcn")
    assert torch.equal(back.predict_rating([1, 2], [3, 4]), lmgcn.predict_rating([1, 2], [3, 4]))
    assert back.predict_categories([0])[0][0][0] == "Sci-Fi"


def test_recommend_excludes_seen_and_validates(lightgcn, planted_split):
    top, scores = lightgcn.recommend([0, 1], k=10)
    seen = planted_split.train.matrix()
    for row, u in zip(top.numpy(), (0, 1)):
        assert not set(row) & set(seen[u].indices)
    assert (scores[:, :-1] >= scores[:, 1:]).all()
    with pytest.raises(ConfigError):
        lightgcn.recommend([0], k=-1)
    with pytest.raises(UnknownIdError):
        lightgcn.recommend([10_000], k=5)
    with pytest.raises(NotFittedError):
        LightGCN().recommend([0])


def test_lmgcn_recommends_cold_items_from_text(planted, planted_text_emb):
    # hold out 6 items entirely; their embeddings come from text + semantic neighbours only
    cold = np.array([3, 4, 23, 24, 43, 44])
    keep = ~planted.interactions["item"].isin(cold).to_numpy()
    model = LMGCN(**LM_FAST, rating_head=False).fit(planted.subset(keep), item_emb=planted_text_emb)
    users = np.arange(planted.n_users)
    top, _ = model.recommend(users, k=2, candidates=cold)
    topic = top.numpy() // 20
    assert (topic == (users % 3)[:, None]).mean() > 0.8


def test_bad_params_raise():
    with pytest.raises(ConfigError):
        LightGCN(dim=0).fit(None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        LightGCN(loss="hinge").fit(None)  # type: ignore[arg-type]


def test_load_rejects_non_model_dir(tmp_path):
    from lgrec.errors import ModelFileError

    with pytest.raises(ModelFileError):
        Recommender.load(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelFileError):
        Recommender.load(tmp_path)


def test_score_pairs_matches_full_score_rows(lmgcn):
    rng = np.random.default_rng(0)
    users = rng.integers(0, lmgcn.n_users_, 300)  # repeated users, unsorted
    items = rng.integers(0, lmgcn.n_items_, 300)
    full = lmgcn.score(np.arange(lmgcn.n_users_))
    for block in (1, 7, 1024):  # blocks of distinct users, one row each
        got = lmgcn.score_pairs(users, items, block_size=block)
        torch.testing.assert_close(got, full[users, items])
    with pytest.raises(ConfigError, match="3 users but 2 items"):
        lmgcn.score_pairs([0, 1, 2], [0, 1])
    with pytest.raises(UnknownIdError):
        lmgcn.score_pairs([0], [10_000])


def test_lmgcn_on_implicit_data_has_no_rating_head_and_evaluates(planted_split, planted_text_emb):
    from lgrec.eval import evaluate_model

    def implicit(d):
        inter = d.interactions.assign(rating=1.0)
        return d.with_interactions(inter, name=d.name)

    sp_ = planted_split
    split = type(sp_)(**{**vars(sp_), "train": implicit(sp_.train), "valid": implicit(sp_.valid)})
    m = LMGCN(**LM_FAST).fit(split.train, valid=split.valid, item_emb=planted_text_emb)
    assert not m.has_rating_head and LMGCN.has_rating_head
    with pytest.raises(NotImplementedError, match="without explicit ratings"):
        m.predict_rating([0], [0])
    res = evaluate_model(m, split)  # ranking and clicks, no RMSE
    assert "RMSE" not in res and res["Recall@20"] > 0


def test_logistic_category_head_is_a_constructor_choice(planted_split, planted_text_emb, tmp_path):
    # one-vs-rest: each category's probability on its own (no sum to 1), kept by save/load
    m = LMGCN(**LM_FAST, rating_head=False, category_head="logistic", filter_weight=0.0).fit(
        planted_split.train, item_emb=planted_text_emb
    )
    cats = m.predict_categories([0, 25, 50], k=3)
    assert [c[0][0] for c in cats] == ["Sci-Fi", "Romance", "Horror"]
    p = torch.sigmoid(m.cat_logits_[[0, 25, 50]])
    assert all(abs(c[0][1] - float(p[r].max())) < 1e-6 for r, c in enumerate(cats))
    assert not torch.allclose(p.sum(1), torch.ones(3))  # not a softmax
    m.save(tmp_path / "m")
    assert Recommender.load(tmp_path / "m").predict_categories([0, 25, 50], k=3) == cats
    with pytest.raises(ConfigError, match="category_head must be one of"):
        LMGCN(category_head="svm").fit(planted_split.train, item_emb=planted_text_emb)
