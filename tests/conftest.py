"""Shared synthetic data: users in taste clusters, items with cluster-specific text.

``planted_split`` builds a small data set where each user mostly likes items of one of three
topics (space adventure, romantic comedy, horror); item titles and categories name the topic,
so both the collaborative signal and the text carry the structure that models should find.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lgrec.data.dataset import Dataset, Split

TOPICS = [
    ("Sci-Fi", ["Star", "Galaxy", "Rocket", "Planet", "Alien", "Orbit", "Nebula", "Comet"]),
    ("Romance", ["Love", "Wedding", "Kiss", "Heart", "Date", "Paris", "Valentine", "Bride"]),
    ("Horror", ["Ghost", "Zombie", "Haunted", "Blood", "Curse", "Demon", "Witch", "Grave"]),
]


def make_planted(
    n_users: int = 90,
    items_per_topic: int = 20,
    per_user: int = 14,
    noise: float = 0.1,
    seed: int = 0,
) -> Dataset:
    """A Dataset with 3 planted taste clusters (see module docstring); ratings 1..5."""
    rng = np.random.default_rng(seed)
    n_items = items_per_topic * len(TOPICS)
    topic_of_item = np.repeat(np.arange(len(TOPICS)), items_per_topic)
    users, items, ratings = [], [], []
    for u in range(n_users):
        t = u % len(TOPICS)
        own = np.flatnonzero(topic_of_item == t)
        other = np.flatnonzero(topic_of_item != t)
        n_noise = round(per_user * noise)
        pop = 1.0 / np.arange(1, len(own) + 1)  # a popularity skew inside each topic
        chosen = rng.choice(own, per_user - n_noise, replace=False, p=pop / pop.sum())
        chosen = np.concatenate([chosen, rng.choice(other, n_noise, replace=False)])
        users += [u] * len(chosen)
        items += chosen.tolist()
        ratings += np.where(
            topic_of_item[chosen] == t,
            rng.integers(4, 6, len(chosen)),
            rng.integers(1, 3, len(chosen)),
        ).tolist()
    df = pd.DataFrame(
        {
            "user": np.array(users, dtype=np.int32),
            "item": np.array(items, dtype=np.int32),
            "rating": np.array(ratings, dtype=np.float32),
            "timestamp": np.arange(len(users), dtype=np.int64),
            "event": "rating",
        }
    )
    titles, cats = [], []
    for i in range(n_items):
        name, words = TOPICS[topic_of_item[i]]
        titles.append(
            f"{words[i % len(words)]} {['Returns', 'Rising', 'Story', 'Night'][i % 4]} {i}"
        )
        cats.append([name])
    items_df = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n_items)],
            "title": titles,
            "categories": cats,
            "description": [f"A {TOPICS[t][0].lower()} film." for t in topic_of_item],
        }
    )
    users_df = pd.DataFrame({"user_id": [f"u{u}" for u in range(n_users)]})
    return Dataset(df, items_df, users_df, name="planted", rating_scale=(1.0, 5.0))


def split_last(ds: Dataset, n_test: int = 3, n_valid: int = 2) -> Split:
    """Per user: last ``n_test`` interactions → test, the ``n_valid`` before → valid."""
    df = ds.interactions
    rank = df.groupby("user").cumcount(ascending=False).to_numpy()
    test = rank < n_test
    valid = (rank >= n_test) & (rank < n_test + n_valid)
    return Split(train=ds.subset(~test & ~valid), test=ds.subset(test), valid=ds.subset(valid))


@pytest.fixture(scope="session")
def planted() -> Dataset:
    return make_planted()


@pytest.fixture(scope="session")
def planted_split(planted: Dataset) -> Split:
    return split_last(planted)


@pytest.fixture(scope="session")
def planted_text_emb(planted: Dataset) -> np.ndarray:
    """Deterministic 'text embeddings': topic one-hot + small noise, unit-normalised rows."""
    rng = np.random.default_rng(1)
    topic = planted.items["categories"].map(lambda c: ["Sci-Fi", "Romance", "Horror"].index(c[0]))
    e = np.eye(3, 16, dtype=np.float32)[topic.to_numpy()] + 0.2 * rng.standard_normal(
        (planted.n_items, 16)
    ).astype(np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def topic_precision(model, ds: Dataset, k: int = 5) -> float:
    """Share of top-k recommendations that are of the user's own planted topic."""
    users = np.arange(ds.n_users)
    top, _ = model.recommend(users, k=k)
    topic_of_item = np.repeat(np.arange(3), ds.n_items // 3)
    return float((topic_of_item[top.numpy()] == (users % 3)[:, None]).mean())


@pytest.fixture
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LGREC_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def planted_social():
    """A small planted data set with a social graph (``meta["social_edges"]``)."""
    ds = make_planted(n_users=30, items_per_topic=8, per_user=8)
    a, b = np.triu_indices(ds.n_users, 1)
    pairs = np.stack([a, b], axis=1)[(a % 3 == b % 3) & ((a + b) % 4 == 0)]
    return replace(ds, meta={"social_edges": pairs})


# ---- PostgreSQL (the feedback store's second backend) -------------------------------------------
_db_names = itertools.count()


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for the session (``tests/pg_server.py``); its password is in
    ``PGPASSWORD`` meanwhile. Skipped only when the binaries are missing and cannot be
    installed (not root); as root, a failed install fails the tests."""
    from tests.pg_server import PostgresServer

    try:
        server = PostgresServer()
    except RuntimeError as e:
        if os.geteuid() == 0:
            raise
        pytest.skip(f"no PostgreSQL server: {e}")
    before = os.environ.get("PGPASSWORD")
    with server:
        os.environ["PGPASSWORD"] = server.password
        try:
            yield server
        finally:
            if before is None:
                os.environ.pop("PGPASSWORD", None)
            else:
                os.environ["PGPASSWORD"] = before


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """URL (no password) of a fresh, empty schema on the session's PostgreSQL server."""
    return postgres_server.create_schema(f"lgrec_test_{next(_db_names)}")
