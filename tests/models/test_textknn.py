"""TextKNN: brute-force scores, planted topics, cold items, encoder wiring, persistence."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import torch

import lgrec.text.encoder as encoder_mod
from lgrec.data.dataset import Dataset
from lgrec.errors import ConfigError, DataError
from lgrec.models.base import Recommender
from lgrec.models.textknn import TextKNN

TOPICS = ("space", "love", "ghost")
PER_TOPIC = 15


def _planted(cold_item: int | None = None, seed: int = 0) -> tuple[Dataset, np.ndarray]:
    """User u likes topic u % 3; embeddings are topic one-hot plus noise."""
    rng = np.random.default_rng(seed)
    n_users, n_items = 45, PER_TOPIC * len(TOPICS)
    topic = np.repeat(np.arange(len(TOPICS)), PER_TOPIC)
    rows = []
    for u in range(n_users):
        own = np.flatnonzero(topic == u % 3)
        own = own[own != cold_item]
        rows += [(u, i) for i in rng.choice(own, 6, replace=False)]
    u, i = np.array(rows).T
    df = pd.DataFrame(
        {"user": u, "item": i, "rating": 1.0, "timestamp": np.arange(len(u)), "event": "click"}
    )
    items = pd.DataFrame(
        {
            "item_id": [f"i{j}" for j in range(n_items)],
            "title": [f"{TOPICS[t]} story {j}" for j, t in enumerate(topic)],
        }
    )
    ds = Dataset(df, items, pd.DataFrame({"user_id": [f"u{k}" for k in range(n_users)]}))
    emb = np.eye(3, 8)[topic] + 0.15 * rng.standard_normal((n_items, 8))
    return ds, emb.astype(np.float32)


def _topic_precision(model: TextKNN, ds: Dataset, k: int = 5) -> float:
    users = np.arange(ds.n_users)
    top, _ = model.recommend(users, k=k)
    return float((top.numpy() // PER_TOPIC == (users % 3)[:, None]).mean())


@pytest.mark.parametrize("k", [3, 10])
def test_knn_scores_match_brute_force(k):
    ds, emb = _planted()
    m = TextKNN(k=k).fit(ds, item_emb=emb)
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    s = e @ e.T
    np.fill_diagonal(s, -np.inf)
    sim = np.zeros_like(s)
    for i in range(len(s)):
        nb = np.argsort(-s[i])[:k]
        nb = nb[s[i, nb] >= 0]
        sim[i, nb] = s[i, nb]
    x = ds.matrix("binary").toarray()
    np.testing.assert_allclose(m.score(np.arange(ds.n_users)).numpy(), x @ sim.T, atol=1e-5)


def test_mean_mode_is_profile_cosine():
    ds, emb = _planted()
    m = TextKNN(mode="mean").fit(ds, item_emb=emb)
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    x = ds.matrix("binary").toarray()
    prof = x @ e
    prof /= np.linalg.norm(prof, axis=1, keepdims=True)
    np.testing.assert_allclose(m.score(np.arange(ds.n_users)).numpy(), prof @ e.T, atol=1e-5)


@pytest.mark.parametrize("mode", ["knn", "mean"])
def test_planted_topics_ranked_first(mode):
    ds, emb = _planted()
    m = TextKNN(k=10, mode=mode).fit(ds, item_emb=emb)
    assert _topic_precision(m, ds) > 0.95


def test_cold_item_scored_by_text():
    cold = 3  # a "space" item nobody has interacted with
    ds, emb = _planted(cold_item=cold)
    assert cold not in set(ds.item_ids.tolist())
    m = TextKNN(k=10).fit(ds, item_emb=emb)
    s = m.score(np.arange(ds.n_users)).numpy()
    space_users = np.arange(0, ds.n_users, 3)
    other_topic = np.arange(PER_TOPIC, ds.n_items)
    assert np.all(s[space_users, cold] > 0)
    assert np.all(s[space_users, cold] > s[space_users][:, other_topic].max(1))


def test_save_load_round_trip(tmp_path):
    ds, emb = _planted()
    for mode in ("knn", "mean"):
        m = TextKNN(k=7, mode=mode).fit(ds, item_emb=emb)
        m.save(tmp_path / mode)
        m2 = Recommender.load(tmp_path / mode)
        assert isinstance(m2, TextKNN) and m2.mode == mode and m2.k == 7
        users = torch.arange(ds.n_users)
        assert torch.equal(m.score(users), m2.score(users))
        assert torch.equal(m.text_emb_, m2.text_emb_)


class _FakeEncoder:
    """Stands in for TextEncoder: bag of topic words → one-hot, no model download."""

    calls: ClassVar[list[list[str]]] = []

    def __init__(self, model=None, *, batch_size: int = 64, **kw) -> None:
        self.model, self.batch_size = model, batch_size

    def encode(self, texts, use_cache: bool = True, **kw) -> np.ndarray:
        _FakeEncoder.calls.append(list(texts))
        out = np.array([[t.lower().count(w) for w in TOPICS] + [0.1] for t in texts], np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_encodes_item_text_and_uses_query(monkeypatch):
    monkeypatch.setattr(encoder_mod, "TextEncoder", _FakeEncoder)
    _FakeEncoder.calls = []
    ds, _ = _planted()
    m = TextKNN(k=10, text_model="fake-model", fields=("title",)).fit(ds)
    assert _FakeEncoder.calls[0] == ds.item_text(("title",))
    assert m.text_model_ == "fake-model"
    assert _topic_precision(m, ds) > 0.95
    # a space fan asking for ghosts gets ghost items first
    top, _ = m.recommend([0], k=5, query="ghost", query_weight=5.0)
    assert np.all(top.numpy() // PER_TOPIC == 2)


@pytest.mark.parametrize(
    "kw", [{"k": 0}, {"k": -3}, {"k": 2.5}, {"mode": "sum"}, {"batch_size": 0}]
)
def test_bad_args(kw):
    ds, emb = _planted()
    with pytest.raises(ConfigError):
        TextKNN(**kw).fit(ds, item_emb=emb)


def test_wrong_embedding_shape():
    ds, emb = _planted()
    with pytest.raises(DataError, match="one row per item"):
        TextKNN().fit(ds, item_emb=emb[:-1])
