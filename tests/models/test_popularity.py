"""Popularity baseline: counts, identical rankings, seen exclusion, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from lgrec.data.dataset import Dataset
from lgrec.errors import NotFittedError
from lgrec.models.base import Recommender
from lgrec.models.popularity import Popularity


def _data(seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    n_users, n_items = 30, 12
    p = np.arange(n_items, 0, -1, dtype=float) ** 2  # item 0 most popular
    items = rng.choice(n_items, size=200, p=p / p.sum())
    users = rng.integers(0, n_users, size=200)
    df = pd.DataFrame(
        {"user": users, "item": items, "rating": 1.0, "timestamp": np.arange(200), "event": "click"}
    )
    return Dataset(
        df,
        pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)]}),
        pd.DataFrame({"user_id": [f"u{u}" for u in range(n_users)]}),
    )


def test_scores_are_counts_for_every_user():
    d = _data()
    m = Popularity().fit(d)
    want = np.bincount(d.item_ids, minlength=d.n_items)
    s = m.score([0, 5, 29])
    assert s.shape == (3, d.n_items)
    for row in s:
        np.testing.assert_array_equal(row.numpy(), want)
    np.testing.assert_array_equal(m.score([3], items=[1, 0]).numpy()[0], want[[1, 0]])


def test_recommend_most_popular_unseen():
    d = _data()
    m = Popularity().fit(d)
    counts = np.bincount(d.item_ids, minlength=d.n_items)
    seen = d.matrix("binary")
    ids, scores = m.recommend(np.arange(d.n_users), k=3)
    for u in range(d.n_users):
        unseen = np.setdiff1d(np.arange(d.n_items), seen[u].indices)
        best = np.sort(counts[unseen])[::-1][:3]
        np.testing.assert_array_equal(scores[u].numpy(), best)
        assert not set(ids[u].tolist()) & set(seen[u].indices.tolist())


def test_save_load_round_trip(tmp_path):
    d = _data()
    m = Popularity().fit(d)
    m.save(tmp_path / "pop")
    m2 = Recommender.load(tmp_path / "pop")
    assert isinstance(m2, Popularity)
    users = torch.arange(d.n_users)
    assert torch.equal(m.score(users), m2.score(users))
    a, b = m.recommend(users, k=4), m2.recommend(users, k=4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_not_fitted():
    with pytest.raises(NotFittedError):
        Popularity().score([0])
