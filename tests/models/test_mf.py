"""BPRMF and BiasedMF on planted taste clusters: ranking, ratings, early stopping, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from lgrec.data.dataset import Dataset
from lgrec.errors import ConfigError, DataError
from lgrec.models.base import Recommender
from lgrec.models.mf import BPRMF, BiasedMF

PER_TOPIC = 20


def _planted(
    n_users: int = 60, per_user: int = 8, rating_scale=(1.0, 5.0), seed: int = 0
) -> Dataset:
    """User u likes topic u % 3 (ratings 4–5) and has two disliked other-topic items (1–2)."""
    rng = np.random.default_rng(seed)
    topic = np.repeat(np.arange(3), PER_TOPIC)
    users, items, ratings = [], [], []
    for u in range(n_users):
        own = rng.choice(np.flatnonzero(topic == u % 3), per_user, replace=False)
        other = rng.choice(np.flatnonzero(topic != u % 3), 2, replace=False)
        users += [u] * (per_user + 2)
        items += [*own, *other]
        ratings += [*rng.integers(4, 6, per_user), *rng.integers(1, 3, 2)]
    df = pd.DataFrame(
        {
            "user": users,
            "item": items,
            "rating": np.array(ratings, dtype=np.float32),
            "timestamp": np.arange(len(users)),
            "event": "rating",
        }
    )
    return Dataset(
        df,
        pd.DataFrame({"item_id": [f"i{i}" for i in range(3 * PER_TOPIC)]}),
        pd.DataFrame({"user_id": [f"u{u}" for u in range(n_users)]}),
        rating_scale=rating_scale,
    )


def _topic_precision(model: Recommender, ds: Dataset, k: int = 5) -> float:
    users = np.arange(ds.n_users)
    top, _ = model.recommend(users, k=k)
    return float((top.numpy() // PER_TOPIC == (users % 3)[:, None]).mean())


def _split(ds: Dataset) -> tuple[Dataset, Dataset]:
    held = (np.arange(len(ds)) % 10) == 0  # one own-topic item per user
    return ds.subset(~held), ds.subset(held)


# ---- BPRMF --------------------------------------------------------------------------------
def test_bprmf_ranks_planted_topic_first():
    ds = _planted()
    liked = ds.subset(ds.ratings >= 4)  # implicit feedback: the positive events only
    m = BPRMF(factors=8, epochs=20, lr=0.02, reg=1e-2, batch_size=256).fit(liked)
    assert _topic_precision(m, liked) > 0.95  # chance is 1/3


def test_bprmf_early_stopping_keeps_best_epoch():
    train, valid = _split(_planted())
    m = BPRMF(factors=8, epochs=40, lr=0.02, batch_size=256, eval_every=2, patience=2)
    m.fit(train, valid=valid)
    hist = m.history_
    assert hist and all(h["epoch"] % 2 == 0 or h["epoch"] == 40 for h in hist)
    best = max(hist, key=lambda h: h["ndcg@10"])
    assert m.best_epoch_ == best["epoch"]
    again = m._valid_metrics(train.matrix("binary"), valid.matrix("binary"))
    assert again["ndcg@10"] == pytest.approx(best["ndcg@10"])
    assert 0.0 <= again["recall@20"] <= 1.0


def test_bprmf_deterministic_and_round_trip(tmp_path):
    ds = _planted()
    kw = dict(factors=4, epochs=3, batch_size=128, seed=3)
    a, b = BPRMF(**kw).fit(ds), BPRMF(**kw).fit(ds)
    users = torch.arange(ds.n_users)
    assert torch.equal(a.score(users), b.score(users))
    assert not torch.equal(a.score(users), BPRMF(**{**kw, "seed": 4}).fit(ds).score(users))
    a.save(tmp_path / "bpr")
    c = Recommender.load(tmp_path / "bpr")
    assert isinstance(c, BPRMF) and c.get_params() == a.get_params()
    assert torch.equal(a.score(users), c.score(users))
    assert torch.equal(a.recommend(users, k=5)[0], c.recommend(users, k=5)[0])


@pytest.mark.parametrize(
    "kw",
    [
        {"factors": -1},
        {"factors": 0},
        {"epochs": 0},
        {"lr": 0.0},
        {"reg": -0.1},
        {"batch_size": 0},
        {"neg": 0},
        {"monitor": "auc"},
        {"factors": "8"},
    ],
)
def test_bprmf_bad_args(kw):
    with pytest.raises(ConfigError):
        BPRMF(**kw).fit(_planted())


# ---- BiasedMF ------------------------------------------------------------------------------
def test_biasedmf_learns_ratings():
    ds = _planted()
    m = BiasedMF(factors=4, epochs=150, lr=0.05, reg=0.02).fit(ds)
    assert m.has_rating_head
    pred = m.predict_rating(ds.user_ids.copy(), ds.item_ids.copy()).numpy()
    rmse = np.sqrt(np.mean((pred - ds.ratings) ** 2))
    assert rmse < 0.6 * ds.ratings.std()  # well below predicting the mean
    # unseen items: own topic predicted higher than other topics for every user
    s = m.score(np.arange(ds.n_users)).numpy()
    topic = np.arange(ds.n_items) // PER_TOPIC
    users = np.arange(ds.n_users)
    own = np.where(topic[None, :] == (users % 3)[:, None], s, np.nan)
    other = np.where(topic[None, :] != (users % 3)[:, None], s, np.nan)
    assert np.mean(np.nanmean(own, 1) > np.nanmean(other, 1)) > 0.9


def test_biasedmf_score_is_unclipped_prediction_and_clipping():
    ds = _planted(rating_scale=(2.0, 4.0))  # ratings 1..5 exceed the declared scale
    m = BiasedMF(factors=4, epochs=100, lr=0.05, reg=0.01).fit(ds)
    users = np.repeat(np.arange(ds.n_users), ds.n_items)
    items = np.tile(np.arange(ds.n_items), ds.n_users)
    pred = m.predict_rating(users, items).numpy()
    assert pred.min() >= 2.0 and pred.max() <= 4.0
    assert np.isclose(pred, 2.0).any() and np.isclose(pred, 4.0).any()
    raw = m.score(np.arange(ds.n_users)).numpy().ravel()
    np.testing.assert_allclose(pred, np.clip(raw, 2.0, 4.0), atol=1e-5)
    assert raw.max() > 4.0
    # broadcasting one user against many items
    one = m.predict_rating(5, np.arange(ds.n_items)).numpy()
    np.testing.assert_allclose(one, pred[5 * ds.n_items : 6 * ds.n_items], atol=1e-6)
    with pytest.raises(ConfigError, match="same length"):
        m.predict_rating([0, 1], [0, 1, 2])


def test_biasedmf_early_stopping_and_round_trip(tmp_path):
    train, valid = _split(_planted())
    m = BiasedMF(factors=4, epochs=200, lr=0.1, reg=0.0, eval_every=5, patience=3)
    m.fit(train, valid=valid)
    best = min(m.history_, key=lambda h: h["rmse"])
    assert m.best_epoch_ == best["epoch"] < 200  # no regularisation: it overfits and stops
    pred = m.predict_rating(valid.user_ids.copy(), valid.item_ids.copy()).numpy()
    assert np.sqrt(np.mean((pred - valid.ratings) ** 2)) == pytest.approx(best["rmse"], rel=1e-5)
    m.save(tmp_path / "bmf")
    m2 = Recommender.load(tmp_path / "bmf")
    assert isinstance(m2, BiasedMF) and m2.rating_scale_ == m.rating_scale_
    users = torch.arange(train.n_users)
    assert torch.equal(m.score(users), m2.score(users))
    u, i = valid.user_ids.copy(), valid.item_ids.copy()
    assert torch.equal(m.predict_rating(u, i), m2.predict_rating(u, i))


def test_biasedmf_needs_ratings():
    ds = _planted()
    implicit = ds.with_interactions(ds.interactions.assign(rating=1.0))
    with pytest.raises(DataError, match="explicit ratings"):
        BiasedMF().fit(implicit)


@pytest.mark.parametrize("kw", [{"factors": -2}, {"epochs": 0}, {"lr": -1.0}, {"reg": -1.0}])
def test_biasedmf_bad_args(kw):
    with pytest.raises(ConfigError):
        BiasedMF(**kw).fit(_planted())


# ---- real data ------------------------------------------------------------------------------
@pytest.mark.integration
def test_ml100k_u1_reference_numbers():
    """Tuned defaults on ML-100K u1: BiasedMF RMSE ≈ 0.93, BPRMF NDCG@10 well above popularity."""
    from lgrec.data.movielens import load_movielens
    from lgrec.data.split import split_fixed
    from lgrec.models.popularity import Popularity
    from lgrec.train.validation import validation_metrics
    from lgrec.utils import data_dir

    path = data_dir() / "ml-100k"
    if not (path / "u1.base").is_file():
        pytest.skip(f"ML-100K not found under {path}")
    split = split_fixed(load_movielens(path, fold="u1"))
    train, test = split.train, split.test
    bmf = BiasedMF().fit(train)
    pred = bmf.predict_rating(test.user_ids.copy(), test.item_ids.copy()).numpy()
    assert np.sqrt(np.mean((pred - test.ratings) ** 2)) < 0.94
    x, tx = train.matrix("binary"), test.matrix("binary")
    ndcg = {
        name: validation_metrics(m.fit(train)._score_block, x, tx, k=10)["NDCG@10"]
        for name, m in (("pop", Popularity()), ("bpr", BPRMF()))
    }
    assert ndcg["bpr"] > ndcg["pop"] + 0.12


def test_fit_restores_torch_threads():
    n = torch.get_num_threads()
    BPRMF(factors=2, epochs=1).fit(_planted())
    BiasedMF(factors=2, epochs=1).fit(_planted())
    assert torch.get_num_threads() == n
