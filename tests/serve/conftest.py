"""Fixtures for the serving tests: a tiny LMGCN bundle trained on synthetic, topical data.

Three topics (space, romance, cooking) of 12 items each; every user mostly interacts with one
topic. Item text is real English, encoded by the packaged MiniLM encoder, so text queries,
text neighbours and explanations have something true to find.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from serve_fixtures import API_KEY, make_dataset


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory) -> None:
    os.environ.setdefault("LGREC_CACHE_DIR", str(tmp_path_factory.mktemp("lgrec-cache")))


@pytest.fixture(scope="session")
def dataset():
    return make_dataset()


@pytest.fixture(scope="session")
def bundle(tmp_path_factory, dataset) -> Path:
    """A saved LMGCN bundle (model + items/users tables + dataset.json)."""
    import torch

    from lgrec.models.lmgcn import LMGCN
    from lgrec.pipeline import save_bundle
    from lgrec.text.encoder import TextEncoder

    torch.set_num_threads(1)
    emb = TextEncoder().encode(dataset.item_text())
    model = LMGCN(spectral_k=16, rank=16, reg=0.3, rating_head=False, semantic_k=5, seed=0)
    model.fit(dataset, item_emb=emb)
    return save_bundle(model, dataset, tmp_path_factory.mktemp("bundle") / "lmgcn")


@pytest.fixture()
def make_client(bundle, tmp_path):
    """Factory: a TestClient on the bundle with a fresh store (options passed to settings)."""
    from fastapi.testclient import TestClient

    from lgrec.serve.app import ServeSettings, create_app

    clients = []

    def make(**kw) -> TestClient:
        kw.setdefault("api_key", API_KEY)
        kw.setdefault("store", str(tmp_path / f"store{len(clients)}.sqlite"))
        app = create_app(ServeSettings(model=str(bundle), **kw))
        c = TestClient(app, raise_server_exceptions=False)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.app.state.serve.close()


@pytest.fixture()
def client(make_client):
    return make_client()
