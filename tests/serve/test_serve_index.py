"""Candidate retrieval with FAISS (`lgrec serve --index faiss`): the inner-product transform,
recall against exact top-100, the serving path (bias, seen items, runtime items), fallbacks."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from serve_fixtures import AUTH

from lgrec.errors import ConfigError
from lgrec.serve.index import (
    FaissIndex,
    IndexSettings,
    augment,
    candidate_scores,
    parse_index_options,
    query_vector,
)
from lgrec.serve.state import ServeState
from lgrec.store import FeedbackStore


def clustered(n: int, d: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Items around 64 centres with spread norms, biases, and 50 users near the centres."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((64, d)).astype(np.float32)
    items = centres[rng.integers(0, 64, n)] + 0.3 * rng.standard_normal((n, d))
    items *= rng.uniform(0.5, 1.5, (n, 1))
    users = centres[rng.integers(0, 64, 50)] + 0.3 * rng.standard_normal((50, d))
    bias = 0.2 * rng.standard_normal(n)
    return items.astype(np.float32), bias.astype(np.float32), users.astype(np.float32)


def test_transform_turns_top_inner_products_into_nearest_neighbours():
    items, bias, users = clustered(500)
    x = augment(items, bias)
    norms = np.linalg.norm(x, axis=1)
    assert np.allclose(norms, norms.max(), rtol=1e-5)  # every x̃ on the sphere of radius M
    for u in users[:5]:
        q = query_vector(u, with_bias=True, radius=float(norms.max()))[0]
        assert np.isclose(np.linalg.norm(q), norms.max())
        dist = ((x - q) ** 2).sum(1)
        score = items @ u + bias
        assert np.array_equal(np.argsort(dist)[:20], np.argsort(-score)[:20])


@pytest.mark.parametrize(
    "settings",
    [IndexSettings(method="hnsw"), IndexSettings(method="ivf", nprobe=32), IndexSettings()],
    ids=["hnsw", "ivf-nprobe-32", "default"],
)
def test_recall_of_top_100_against_exact(settings, tmp_cache):
    items, bias, users = clustered(20_000)
    index = FaissIndex(items, bias, settings, threads=1)
    recalls = []
    for u in users:
        got, s = candidate_scores(index, u, items, bias, 100, np.empty(0, dtype=np.int64))
        exact = np.argsort(-(items @ u + bias))[:100]
        recalls.append(len(set(got) & set(exact)) / 100)
        assert np.allclose(s, items[got] @ u + bias[got], atol=1e-5)  # scores are exact
        assert np.all(np.diff(s) <= 0)
    assert np.mean(recalls) >= 0.99


def test_index_is_cached_by_content(tmp_cache, caplog):
    items, bias, _ = clustered(3000)
    with caplog.at_level(logging.INFO, logger="lgrec.serve.index"):
        FaissIndex(items, bias, IndexSettings(), threads=1)
        FaissIndex(items, bias, IndexSettings(nprobe=8), threads=1)  # search-only change
        FaissIndex(items * 2, bias, IndexSettings(), threads=1)
    msgs = [r.getMessage() for r in caplog.records]
    assert [("built" in m, "loaded" in m) for m in msgs if "FAISS ivf index" in m] == [
        (True, False), (False, True), (True, False),
    ]  # fmt: skip
    assert len(list((tmp_cache / "faiss").glob("*.index"))) == 2


def test_index_options():
    assert parse_index_options("method=ivf, nprobe=64") == IndexSettings(method="ivf", nprobe=64)
    assert parse_index_options(None) == IndexSettings()
    for bad, msg in [("metod=ivf", "key one of"), ("nprobe=x", "not an integer"),
                     ("method=lsh", "'hnsw' or 'ivf'"), ("candidates=0", "≥ 1")]:  # fmt: skip
        with pytest.raises(ConfigError, match=msg):
            parse_index_options(bad)


@pytest.fixture(scope="module")
def mf_bundle(dataset, tmp_path_factory):
    """A BPR-MF bundle (item biases: the ``[u, 1]`` part of the transform is used)."""
    from lgrec.models.mf import BPRMF
    from lgrec.pipeline import save_bundle

    torch.set_num_threads(1)
    model = BPRMF(factors=8, epochs=15, batch_size=128, eval_every=1000, seed=0).fit(dataset)
    return save_bundle(model, dataset, tmp_path_factory.mktemp("mf") / "bprmf")


def test_served_rankings_equal_exact_ones(mf_bundle, dataset, tmp_path, tmp_cache):
    exact = ServeState(mf_bundle, FeedbackStore(tmp_path / "a.sqlite"))
    ann = ServeState(mf_bundle, FeedbackStore(tmp_path / "b.sqlite"), index="faiss",
                     index_settings=IndexSettings(candidates=5))  # fmt: skip
    assert ann.index is not None and exact.index is None and ann.b is not None
    for st in (exact, ann):  # online state moves both the same way
        st.add_feedback("u1", "rom-14", "like")
        st.add_item("coo-new", "Noodle Soup", "A cooking show about ramen recipes.", ["Cooking"])
    assert ann.index.n_indexed == dataset.n_items and ann.n_items == dataset.n_items + 1
    for u in range(0, dataset.n_users, 4):
        for exclude in (True, False):
            want = exact.recommend(u, 10, exclude_seen=exclude)
            got = ann.recommend(u, 10, exclude_seen=exclude)
            assert got[0].tolist() == want[0].tolist()
            assert np.allclose(got[1], want[1], atol=1e-5)
    full, _ = ann.recommend(ann.user_index("u1"), ann.n_items)
    assert ann.item_index("coo-new") in full  # runtime items are candidates too
    assert ann.item_index("rom-14") not in full  # seen online
    q = ann.recommend(0, 5, query="pasta recipes")  # a query is scored exactly
    assert q[0].tolist() == exact.recommend(0, 5, query="pasta recipes")[0].tolist()
    exact.close()
    ann.close()


def test_blended_model_falls_back_to_exact_with_a_log_line(bundle, tmp_path, caplog, tmp_cache):
    with caplog.at_level(logging.WARNING, logger="lgrec.serve.index"):
        st = ServeState(bundle, FeedbackStore(tmp_path / "s.sqlite"), index="faiss")
    assert st.filter is not None and st.index is None
    assert "not one dot product" in caplog.text and "exact scoring" in caplog.text
    st.close()


def test_http_recommend_with_the_index(make_client, mf_bundle, tmp_path, tmp_cache):
    from fastapi.testclient import TestClient

    from lgrec.serve.app import ServeSettings, create_app

    with pytest.raises(ConfigError, match="key one of"):
        create_app(ServeSettings(model=str(mf_bundle), store=str(tmp_path / "x.sqlite"),
                                 index="faiss", index_options="efsearch=3"))  # fmt: skip
    apps = [
        create_app(ServeSettings(model=str(mf_bundle), store=str(tmp_path / f"{i}.sqlite"),
                                 index=i, index_options=o, api_key=AUTH["X-API-Key"]))
        for i, o in (("exact", None), ("faiss", "method=ivf,nprobe=4,candidates=3"))
    ]  # fmt: skip
    exact, ann = (TestClient(a) for a in apps)
    for user in ("u0", "u7", "u30"):
        a = exact.get("/recommend", params={"user": user, "k": 7}).json()["items"]
        b = ann.get("/recommend", params={"user": user, "k": 7}).json()["items"]
        assert [i["item_id"] for i in a] == [i["item_id"] for i in b]
    for a in apps:
        a.state.serve.close()
