"""User profiles on tiny hand-checked data sets (no language model needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lgrec.data.dataset import Dataset
from lgrec.errors import ConfigError, DataError
from lgrec.text.profiles import (
    fold_in_profile,
    history_profiles,
    interaction_weights,
    profile_texts,
    user_text_profiles,
)

ITEMS = pd.DataFrame(
    {
        "item_id": ["m0", "m1", "m2", "m3"],
        "title": ["Alpha (1990)", "Beta (1991)", "Gamma (1992)", None],
        "categories": [["Drama", "Comedy"], ["Drama"], ["Horror"], ["Comedy"]],
    }
)


def make(rows, users_text=None, n_users=3) -> Dataset:
    """rows: (user, item, rating, timestamp)."""
    df = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    df = df.astype({"user": "int32", "item": "int32", "rating": "float32", "timestamp": "int64"})
    df["event"] = "rating"
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(n_users)]})
    if users_text is not None:
        users["text"] = users_text
    return Dataset(df, ITEMS.copy(), users, name="tiny")


# user 0: ratings 5, 3, 1 (mean 3) → ρ = 3, 1, 0.1; user 1: ratings 4, 2 (mean 3) → ρ = 2, 0.1
EXPLICIT = [(0, 0, 5, 10), (0, 1, 3, 20), (0, 2, 1, 30), (1, 3, 4, 5), (1, 0, 2, 7)]
E = np.eye(4, dtype=np.float32)  # item i ↦ basis vector i, so profiles show the weights


def unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def test_rating_weighted_means():
    P = history_profiles(make(EXPLICIT), E)
    assert P.shape == (3, 4) and P.dtype == np.float32
    np.testing.assert_allclose(P[0], unit([3, 1, 0.1, 0]), atol=1e-6)
    np.testing.assert_allclose(P[1], unit([0.1, 0, 0, 2]), atol=1e-6)
    np.testing.assert_array_equal(P[2], 0)  # no history


def test_recency_half_life():
    # user 0: t_max = 30, ages 20, 10, 0 with h = 10 → decay 1/4, 1/2, 1
    P = history_profiles(make(EXPLICIT), E, half_life=10)
    np.testing.assert_allclose(P[0], unit([3 / 4, 1 / 2, 0.1, 0]), atol=1e-6)
    # user 1: t_max = 7; item 3 is 2 older → 2^(-0.2)
    np.testing.assert_allclose(P[1], unit([0.1, 0, 0, 2 * 2**-0.2]), atol=1e-6)
    w = interaction_weights(make(EXPLICIT), half_life=10, rating_weight=False)
    np.testing.assert_allclose(w[:3], [0.25, 0.5, 1.0])


def test_unweighted_and_repeats_add_up():
    rows = [(0, 0, 1, 1), (0, 0, 1, 2), (0, 1, 1, 3)]  # implicit, item 0 twice
    P = history_profiles(make(rows), E)
    np.testing.assert_allclose(P[0], unit([2, 1, 0, 0]), atol=1e-6)
    P = history_profiles(make(EXPLICIT), E, rating_weight=False)
    np.testing.assert_allclose(P[0], unit([1, 1, 1, 0]), atol=1e-6)


def test_non_orthogonal_embeddings():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(4, 5)).astype(np.float32)
    P = history_profiles(make(EXPLICIT), emb)
    np.testing.assert_allclose(P[0], unit(3 * emb[0] + emb[1] + 0.1 * emb[2]), atol=1e-5)


def test_history_errors():
    ds = make(EXPLICIT)
    with pytest.raises(DataError, match=r"item_emb has shape \(3, 4\); expected \(4, d\)"):
        history_profiles(ds, np.zeros((3, 4)))
    with pytest.raises(DataError, match="NaN"):
        history_profiles(ds, np.full((4, 2), np.nan))
    with pytest.raises(ConfigError, match="half_life"):
        history_profiles(ds, E, half_life=0)


def test_profile_texts_explicit():
    texts = profile_texts(make(EXPLICIT, users_text=["From Oslo.", None, "I love jazz."]))
    # user 0 category weights: Drama 3 + 1, Comedy 3, Horror 0.1; enjoyed = rated ≥ mean 3
    assert texts[0] == (
        "Likes Drama, Comedy, Horror. Enjoyed: Alpha (1990), Beta (1991). From Oslo."
    )
    # user 1: Comedy 2 (m3) + 0.1 (m0), Drama 0.1; m3 has no title → its id
    assert texts[1] == "Likes Comedy, Drama. Enjoyed: m3."
    assert texts[2] == "I love jazz."
    short = profile_texts(make(EXPLICIT), n_categories=1, n_titles=1)
    assert short[0] == "Likes Drama. Enjoyed: Alpha (1990)."
    assert short[2] == ""
    assert profile_texts(make(EXPLICIT), n_categories=0, n_titles=0) == ["", "", ""]


def test_profile_texts_implicit_uses_recency():
    rows = [(0, 2, 1, 1), (0, 0, 1, 3), (0, 1, 1, 2), (0, 0, 1, 4)]
    texts = profile_texts(make(rows), n_titles=2)
    assert texts[0] == "Likes Drama, Comedy, Horror. Recent: Alpha (1990), Beta (1991)."
    with pytest.raises(ConfigError, match="n_titles"):
        profile_texts(make(rows), n_titles=-1)


class HashEncoder:
    """A deterministic stand-in for TextEncoder: unit vectors from text hashes."""

    def __init__(self, dim=4):
        self.dim = dim
        self.seen: list[str] = []

    def encode(self, texts):
        self.seen.extend(texts)
        out = np.stack(
            [np.random.default_rng(abs(hash(t)) % 2**32).normal(size=self.dim) for t in texts]
        )
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def test_user_text_profiles_mixes_history_and_text():
    ds = make(EXPLICIT, users_text=[None, None, "I love jazz."])
    enc = HashEncoder()
    texts = profile_texts(ds)
    hist = history_profiles(ds, E)
    P = user_text_profiles(ds, enc, alpha=0.3, item_emb=E)
    assert "" not in enc.seen  # empty profiles are not encoded
    T = enc.encode(texts)
    for u in range(2):
        np.testing.assert_allclose(P[u], unit(0.3 * hist[u] + 0.7 * T[u]), atol=1e-6)
    np.testing.assert_allclose(P[2], T[2], atol=1e-6)  # no history: text only
    np.testing.assert_allclose(user_text_profiles(ds, enc, alpha=1.0, item_emb=E), hist, atol=1e-6)
    # item_emb=None encodes the item texts with the same encoder
    P2 = user_text_profiles(ds, enc, alpha=1.0)
    np.testing.assert_allclose(P2, history_profiles(ds, enc.encode(ds.item_text())), atol=1e-6)
    with pytest.raises(ConfigError, match="alpha"):
        user_text_profiles(ds, enc, alpha=1.5, item_emb=E)
    with pytest.raises(DataError, match="same encoder"):
        user_text_profiles(ds, HashEncoder(dim=3), item_emb=E)


def test_fold_in_is_exact_with_scaled_weights():
    rows = [(0, 0, 1, 0), (0, 1, 1, 10)]
    old = make(rows)
    new = make([*rows, (0, 2, 1, 30)])
    h = 20.0
    w_old = interaction_weights(old, half_life=h)
    s_old = w_old @ E[[0, 1]]
    p_old = history_profiles(old, E, half_life=h)[0]
    gamma = 2 ** (-(30 - 10) / h)  # the latest time moved on by 20
    p = fold_in_profile(p_old, E[2], 1.0 / np.linalg.norm(s_old), decay=gamma)
    np.testing.assert_allclose(p, history_profiles(new, E, half_life=h)[0], atol=1e-6)


def test_fold_in_cold_user_and_errors():
    p = fold_in_profile(np.zeros(4), E[[1, 3]], [1.0, 3.0])
    np.testing.assert_allclose(p, unit([0, 1, 0, 3]), atol=1e-6)
    np.testing.assert_array_equal(fold_in_profile(np.zeros(4), E[0], -0.0), 0)
    with pytest.raises(DataError, match="expected \\(n, 4\\)"):
        fold_in_profile(np.zeros(4), np.zeros((2, 3)), 1.0)
    with pytest.raises(DataError, match="one per item row"):
        fold_in_profile(np.zeros(4), E[:2], [1.0, 2.0, 3.0])
    with pytest.raises(DataError, match="expected \\(d,\\)"):
        fold_in_profile(np.zeros((2, 4)), E[0], 1.0)
