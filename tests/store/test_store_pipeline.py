"""Graph store wiring: export (interactions + semantic links + friends), query, train from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lgrec.cli import main
from lgrec.errors import ConfigError
from lgrec.graph.semantic import semantic_knn
from lgrec.graphcli import export_dataset, parse_params, store_dataset, train_part
from lgrec.models import LightGCN
from tests.conftest import make_planted, split_last


def test_export_counts_and_queries(graph_store, planted_social):
    ds = planted_social
    split = split_last(ds, n_test=2, n_valid=0)
    train = split.train
    emb = np.random.default_rng(0).standard_normal((ds.n_items, 8)).astype(np.float32)
    info = export_dataset(train, graph_store, similar_k=3, item_emb=emb)
    sim = semantic_knn(emb, k=3)
    edges = ds.meta["social_edges"]
    assert info["User"] == ds.n_users and info["Item"] == ds.n_items
    assert info["INTERACTED_WITH"] == len(train)
    assert info["SIMILAR_TO"] == sim.nnz and info["FRIEND"] == len(edges)
    assert info["Category"] == 3 and info["IN_CATEGORY"] == ds.n_items
    assert info["load_s"] >= 0 and "knn_s" in info
    # a parameterised read query agrees with the data set
    u = 4
    rows = graph_store.query(
        "MATCH (u:User {id: $u})-[:INTERACTED_WITH]->(i:Item) RETURN i.idx AS i", {"u": f"u{u}"}
    )
    assert sorted(r["i"] for r in rows) == sorted(train.item_ids[train.user_ids == u].tolist())
    rows = graph_store.query(
        "MATCH (u:User {id: $u})-[:FRIEND]->(v:User) RETURN v.idx AS v", {"u": f"u{u}"}
    )
    assert sorted(r["v"] for r in rows) == sorted(edges[edges[:, 0] == u, 1].tolist())


def test_training_from_store_equals_training_from_files(graph_store, planted_social):
    split = split_last(planted_social, n_test=2, n_valid=0)
    train = split.train
    export_dataset(train, graph_store, similar_k=0)
    back = store_dataset(graph_store, train)
    assert back.n_users == train.n_users and back.n_items == train.n_items
    assert (back.matrix("count") != train.matrix("count")).nnz == 0
    kw = dict(dim=8, epochs=6, batch_size=64, seed=3)
    from_store = LightGCN(**kw).fit(back)
    from_files = LightGCN(**kw).fit(train)
    users = torch.arange(train.n_users)
    torch.testing.assert_close(from_store.score(users), from_files.score(users))


def write_lastfm(root: Path, ds) -> Path:
    """``ds`` in LightGCN's Last.fm layout (1-based ids, tab-separated)."""
    d = root / "lastfm"
    d.mkdir(parents=True)
    df = ds.interactions
    test = np.zeros(len(df), dtype=bool)
    test[::5] = True
    rows = [f"{u + 1}\t{i + 1}\t{int(r) * 10}" for u, i, r in zip(df.user, df.item, df.rating)]
    (d / "data1.txt").write_text("\n".join(r for r, t in zip(rows, test) if not t) + "\n")
    (d / "test1.txt").write_text("\n".join(r for r, t in zip(rows, test) if t) + "\n")
    e = ds.meta["social_edges"] + 1
    (d / "trustnetwork.txt").write_text("".join(f"{a}\t{b}\n" for a, b in e))
    return d


def test_cli_export_then_query_round_trip(tmp_path, planted_social, capsys):
    data = write_lastfm(tmp_path / "data", planted_social)
    db = tmp_path / "db"
    n_train = len(planted_social) - len(range(0, len(planted_social), 5))
    assert main(["graph", "export", "--dataset", str(data), "--path", str(db)]) == 0
    out = capsys.readouterr().out
    assert f"INTERACTED_WITH={n_train:,}" in out
    assert f"FRIEND={len(planted_social.meta['social_edges']):,}" in out
    assert "SIMILAR_TO=0" in out  # Last.fm items have no text to mine
    # exporting into a non-empty store needs --replace
    assert main(["graph", "export", "--dataset", str(data), "--path", str(db)]) == 2
    assert "already holds" in capsys.readouterr().err
    args = ["graph", "export", "--dataset", str(data), "--path", str(db)]
    assert main([*args, "--replace", "--all-folds"]) == 0
    assert f"INTERACTED_WITH={len(planted_social):,}" in capsys.readouterr().out

    q = "MATCH (u:User {id: $u})-[:FRIEND]->(v:User) RETURN v.id AS friend ORDER BY friend"
    assert main(["graph", "query", q, "--path", str(db), "--param", "u=1", "--json"]) == 0
    got = [json.loads(line)["friend"] for line in capsys.readouterr().out.splitlines()]
    e = planted_social.meta["social_edges"]
    assert got == sorted(str(b + 1) for b in e[e[:, 0] == 0, 1])
    count = "MATCH (n:User) RETURN count(n) AS n"
    assert main(["graph", "query", count, "--path", str(db)]) == 0
    assert str(planted_social.n_users) in capsys.readouterr().out
    # read-only: writes are refused with a message, not run
    assert main(["graph", "query", "MATCH (n:User) DETACH DELETE n", "--path", str(db)]) == 2
    assert "read-only" in capsys.readouterr().err
    assert main(["graph", "query", count, "--path", str(tmp_path / "none")]) == 2
    assert "no LadybugDB store" in capsys.readouterr().err


def test_cli_query_params_buffer_pool_and_secrets(tmp_path, capsys):
    from dataclasses import replace

    ds = make_planted(n_users=130, items_per_topic=4, per_user=4)  # user ids 1..130
    data = write_lastfm(tmp_path / "data", replace(ds, meta={"social_edges": np.array([[0, 1]])}))
    db = tmp_path / "db"
    assert main(["graph", "export", "--dataset", str(data), "--path", str(db)]) == 0
    capsys.readouterr()
    q = ["graph", "query", "--path", str(db), "--json"]
    # issue 17 item 13: an id given as --param u=128 is the text "128" on every backend
    by_id = "MATCH (u:User) WHERE u.id = $u RETURN u.idx AS idx"
    for uid in ("1", "128"):
        assert main([*q, by_id, "--param", f"u={uid}"]) == 0
        assert json.loads(capsys.readouterr().out) == {"idx": int(uid) - 1}
    assert (
        main([*q, "MATCH (u:User) RETURN u.id AS id ORDER BY id LIMIT $k", "--param", "k:int=2"])
        == 0
    )
    assert len(capsys.readouterr().out.splitlines()) == 2
    # the buffer pool is a flag: too small fails with a message naming it
    distinct = "UNWIND range(1, 1000000) AS k RETURN count(DISTINCT k) AS n"
    assert main([*q, distinct, "--buffer-pool-mb", "8"]) == 2
    assert "--buffer-pool-mb" in capsys.readouterr().err
    assert main([*q, distinct, "--buffer-pool-mb", "256"]) == 0
    assert json.loads(capsys.readouterr().out) == {"n": 1_000_000}
    # secrets never on the command line
    assert main([*q, "RETURN 1 AS one", "--password", "hunter2"]) == 2
    assert "LGREC_GRAPH_PASSWORD" in capsys.readouterr().err
    assert main(["graph", "query", "RETURN 1", "--uri", "http://x:1"]) == 2
    assert "redis://" in capsys.readouterr().err


def test_cli_export_and_query_on_a_falkordb_server(
    tmp_path, planted_social, capsys, monkeypatch, falkordb_server
):
    data = write_lastfm(tmp_path / "data", planted_social)
    monkeypatch.setenv("LGREC_GRAPH_PASSWORD", falkordb_server.password)
    where = ["--uri", falkordb_server.uri, "--database", "recs"]
    assert main(["graph", "export", "--dataset", str(data), *where]) == 0
    assert "→ falkordb" in capsys.readouterr().out
    by_id = ["graph", "query", "MATCH (u:User {id: $u}) RETURN u.idx AS idx", "--json", *where]
    assert main([*by_id, "--param", "u=3"]) == 0  # a text id, as on LadybugDB
    assert json.loads(capsys.readouterr().out) == {"idx": 2}
    args = ["graph", "query", "MATCH (u:User) RETURN count(u) AS n", "--json", *where]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == {"n": planted_social.n_users}
    pwfile = tmp_path / "pw"
    pwfile.write_text(falkordb_server.password + "\n")
    monkeypatch.delenv("LGREC_GRAPH_PASSWORD")
    assert main([*args[:-2], "--uri", falkordb_server.uri, "--password-file", str(pwfile)]) == 2
    assert "no graph 'lgrec' on FalkorDB" in capsys.readouterr().err  # logged in, wrong graph
    assert main([*args, "--password-file", str(pwfile)]) == 0
    assert json.loads(capsys.readouterr().out) == {"n": planted_social.n_users}
    assert main(args) == 2  # no password at all: refused by the server
    assert "cannot reach FalkorDB" in capsys.readouterr().err


def test_train_part_and_params():
    ds = make_planted(n_users=9, items_per_topic=4, per_user=4)
    assert train_part(ds) is ds  # no fold column: everything is training data
    got = parse_params(["k:int=5", "u=42", "t=Toy Story", "f:float=1", "b:bool=true", "s:str=1"])
    assert got == {"k": 5, "u": "42", "t": "Toy Story", "f": 1.0, "b": True, "s": "1"}
    for bad in ("novalue", "1x=3", "u:date=1", "k:int=x"):
        with pytest.raises(ConfigError, match="--param"):
            parse_params([bad])


def test_cli_recommend_friends(tmp_path, planted_social, capsys):
    data = write_lastfm(tmp_path / "data", planted_social)
    assert main(["recommend", "--friends", "--dataset", str(data), "--user", "1", "-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("friend suggestions for user 1") and len(lines) == 4
    suggested = {line.split()[2] for line in lines[1:]}
    e = planted_social.meta["social_edges"]
    friends = {str(b + 1) for b in e[e[:, 0] == 0, 1]} | {str(a + 1) for a in e[e[:, 1] == 0, 0]}
    assert len(suggested) == 3 and not suggested & (friends | {"1"})
    assert main(["recommend", "--user", "1"]) == 2
    assert "--model is required" in capsys.readouterr().err
    assert main(["recommend", "--friends", "--user", "1"]) == 2
    assert "--dataset" in capsys.readouterr().err


def test_cli_export_reports_each_stage(tmp_path, planted_social, monkeypatch):
    """`lgrec graph export` wraps each long stage in a progress report (lgrec.progress.working,
    whose lines and bars tests/test_progress.py checks): loading and writing at least."""
    import contextlib

    import lgrec.graphcli as graphcli

    seen: list[str] = []

    @contextlib.contextmanager
    def record(desc, expect=None):
        seen.append(desc)
        yield

    monkeypatch.setattr(graphcli, "working", record)
    data = write_lastfm(tmp_path / "data", planted_social)
    assert main(["graph", "export", "--dataset", str(data), "--path", str(tmp_path / "db")]) == 0
    n = len(planted_social.interactions) - len(range(0, len(planted_social), 5))
    assert seen[0] == f"graph export: loading {data}", seen
    assert any(d.startswith("graph export: writing") and f"{n:,} interactions to ladybug" in d
               for d in seen), seen  # fmt: skip
