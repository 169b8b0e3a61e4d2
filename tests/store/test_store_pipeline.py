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
    assert main(["graph", "query", q, "--path", str(db), "--param", "u:str=1", "--json"]) == 0
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


def test_train_part_and_params():
    ds = make_planted(n_users=9, items_per_topic=4, per_user=4)
    assert train_part(ds) is ds  # no fold column: everything is training data
    assert parse_params(["k=5", "u:str=42", "t=Toy Story", "f:float=1", "b=true"]) == {
        "k": 5,
        "u": "42",
        "t": "Toy Story",
        "f": 1.0,
        "b": True,
    }
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
