"""The graph store contract, run against LadybugDB and FalkorDB (its Redis protocol)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp

from lgrec.errors import DataError, LgrecError, UnknownIdError
from lgrec.store import GraphStoreError, WriteQueryError

# ---- a hand-made graph with known answers ----------------------------------------------
#   alice: i1 (view + purchase), i2      bob: i1, i3, i4      carol: i2, i3, i5      dave: i6
#   SIMILAR_TO: i1→i5 0.9, i2→i6 0.5, i1→i2 0.7
USERS = ["alice", "bob", "carol", "dave"]
ITEMS = ["i1", "i2", "i3", "i4", "i5", "i6"]
PAIRS = [
    ("alice", "i1"), ("alice", "i1"), ("alice", "i2"),
    ("bob", "i1"), ("bob", "i3"), ("bob", "i4"),
    ("carol", "i2"), ("carol", "i3"), ("carol", "i5"),
    ("dave", "i6"),
]  # fmt: skip


def hand_graph(store, make_dataset):
    ds = make_dataset(USERS, ITEMS, PAIRS, categories={"i1": ["Drama"], "i5": ["Drama", "War"]})
    sim = sp.csr_matrix(([0.9, 0.5, 0.7], ([0, 1, 0], [4, 5, 1])), shape=(6, 6))
    return store.load_dataset(ds, similar=sim)


def test_hand_graph_two_hop_ranks_by_paths_plus_similarity(graph_store, make_dataset):
    hand_graph(graph_store, make_dataset)
    # collaborative paths: via i1→bob: i3, i4; via i2→carol: i3, i5 ⇒ i3:2, i4:1, i5:1
    # similarity from {i1, i2}: i5 +0.9, i6 +0.5 (i2 is seen)
    got = graph_store.neighbors_two_hop("alice", k=10)
    assert [i for i, _ in got] == ["i3", "i5", "i4", "i6"]
    np.testing.assert_allclose([s for _, s in got], [2.0, 1.9, 1.0, 0.5])
    assert [i for i, _ in graph_store.neighbors_two_hop("alice", k=2)] == ["i3", "i5"]
    # without similarity the tie i4/i5 (one path each) is broken by item id
    got = graph_store.neighbors_two_hop("alice", k=10, similar_weight=0.0)
    assert got == [("i3", 2.0), ("i4", 1.0), ("i5", 1.0)]
    # only the best co-user (bob and carol tie with one shared item; bob wins by id)
    got = graph_store.neighbors_two_hop("alice", k=10, max_co_users=1)
    assert [i for i, _ in got] == ["i3", "i4", "i5", "i6"]
    np.testing.assert_allclose([s for _, s in got], [1.0, 1.0, 0.9, 0.5])
    assert graph_store.neighbors_two_hop("dave", k=5) == []
    with pytest.raises(UnknownIdError, match="nobody"):
        graph_store.neighbors_two_hop("nobody")


def test_hand_graph_explain_paths(graph_store, make_dataset):
    hand_graph(graph_store, make_dataset)
    paths = graph_store.explain_paths("alice", "i5")
    assert paths == [
        {"kind": "similar", "path": ["alice", "i1", "i5"], "score": pytest.approx(0.9)},
        {"kind": "co_user", "path": ["alice", "i2", "carol", "i5"], "score": 1.0},
    ]
    paths = graph_store.explain_paths("alice", "i3")
    assert [p["path"] for p in paths] == [
        ["alice", "i1", "bob", "i3"],
        ["alice", "i2", "carol", "i3"],
    ]
    assert len(graph_store.explain_paths("alice", "i3", limit=1)) == 1
    assert graph_store.explain_paths("dave", "i3") == []


def _random_dataset(make_dataset, rng, n_users=25, n_items=18, n_inter=90):
    users = [f"u{k}" for k in range(n_users)]
    items = [f"m{k}" for k in range(n_items)]
    u = rng.integers(0, n_users, n_inter)
    i = rng.integers(0, n_items, n_inter)
    genres = ["Action", "Comedy", "Drama", "Sci-Fi"]
    cats = {it: list(rng.choice(genres, rng.integers(0, 3), replace=False)) for it in items}
    pairs = [(users[a], items[b]) for a, b in zip(u, i)]
    ds = make_dataset(users, items, pairs, categories=cats, titles={"m3": None})
    sim = sp.random(n_items, n_items, density=0.15, random_state=1, format="csr")
    return ds, sim


def test_two_hop_matches_sparse_algebra(graph_store, make_dataset):
    rng = np.random.default_rng(7)
    ds, sim = _random_dataset(make_dataset, rng)
    graph_store.load_dataset(ds, similar=sim, batch_size=16)
    B = ds.matrix("binary").tocsr()
    S = sim.tolil()
    S.setdiag(0)
    S = S.tocsr()
    for u in (0, 3, 11):
        overlap = (B @ B[u].T).toarray().ravel()  # |H(u) ∩ H(v)|
        overlap[u] = 0
        expected = B.T @ overlap + (B[u] @ S).toarray().ravel()
        seen = B[u].indices
        expected[seen] = 0
        got = dict(graph_store.neighbors_two_hop(ds.users["user_id"][u], k=ds.n_items))
        want = {ds.items["item_id"][j]: expected[j] for j in np.flatnonzero(expected > 0)}
        assert got.keys() == want.keys()
        np.testing.assert_allclose([got[k] for k in want], list(want.values()), rtol=1e-6)


def test_bulk_load_counts_and_coo(graph_store, make_dataset):
    rng = np.random.default_rng(3)
    ds, sim = _random_dataset(make_dataset, rng)
    social = np.array([[0, 1], [1, 0], [2, 5], [7, 3]])
    counts = graph_store.load_dataset(ds, similar=sim, social=social, batch_size=7)
    vocab, cat = ds.categories()
    S = sim.tocoo()
    assert counts == {
        "User": ds.n_users,
        "Item": ds.n_items,
        "Category": len(vocab),
        "INTERACTED_WITH": len(ds),
        "SIMILAR_TO": int(((S.row != S.col) & (S.data != 0)).sum()),
        "IN_CATEGORY": cat.nnz,
        "FRIEND": len(social),
    }
    n = graph_store.query("MATCH (u:User)-[:FRIEND]->(v:User) RETURN count(*) AS n")[0]["n"]
    assert n == len(social)
    u, i = graph_store.interactions_coo()
    order = np.lexsort((ds.item_ids, ds.user_ids))
    np.testing.assert_array_equal(u, ds.user_ids[order])
    np.testing.assert_array_equal(i, ds.item_ids[order])
    # edge properties survive the load
    row = ds.interactions.iloc[5]
    got = graph_store.query(
        "MATCH (u:User {id: $u})-[r:INTERACTED_WITH]->(i:Item {id: $i}) "
        "RETURN r.rating AS rating, r.ts AS ts, r.event AS event",
        {"u": ds.users["user_id"][row["user"]], "i": ds.items["item_id"][row["item"]]},
    )
    assert {"rating": float(row["rating"]), "ts": float(row["timestamp"]), "event": "rating"} in got
    item = graph_store.query("MATCH (i:Item {id: 'm2'}) RETURN i.categories AS c, i.idx AS idx")
    assert sorted(item[0]["c"]) == sorted(ds.items["categories"][2]) and item[0]["idx"] == 2
    assert graph_store.query("MATCH (i:Item {id: 'm3'}) RETURN i.title AS t") == [{"t": None}]
    with pytest.raises(DataError, match="already holds"):
        graph_store.load_dataset(ds)
    with pytest.raises(DataError, match="social"):
        graph_store.load_dataset(ds, social=np.array([0, 1, 2]))


NASTY = [
    "O'Brien",
    'say "hi"',
    "back\\slash\\",
    "x' }) MATCH (n) DETACH DELETE n //",
    "\\' RETURN 1 //",
    "line\nbreak\ttab é😀",
]


@pytest.mark.parametrize("title", NASTY)
def test_parameters_with_quotes_are_not_injected(graph_store, make_dataset, title):
    titles = {"i1": title, "i2": "Plain"}
    graph_store.load_dataset(make_dataset(["a"], ["i1", "i2"], [("a", "i1")], titles=titles))
    got = graph_store.query(
        "MATCH (i:Item) WHERE i.title = $t RETURN i.id AS id, i.title AS t", {"t": title}
    )
    assert got == [{"id": "i1", "t": title}]
    assert graph_store.query("RETURN $p AS p, $q AS q", {"p": title, "q": [title, "x", None]}) == [
        {"p": title, "q": [title, "x", None]}
    ]
    assert graph_store.counts()["Item"] == 2


# writes that a keyword filter let through (issue 17, item 9); the database must refuse them
SNEAKY_WRITES = [
    "MATCH (u:User) WHERE u.id = 'alice' WITH u LIMIT 1SET u.idx = -1 RETURN u.idx",
    "MATCH ()-[r:SIMILAR_TO]->() WITH r LIMIT 100000000DELETE r",
    "MATCH (u:User) WITH u LIMIT 1DETACH DELETE u",
    "MATCH (i:Item) WITH i LIMIT 1CREATE (i)-[:SIMILAR_TO {score: 1.0}]->(i)",
]
LADYBUG_WRITES = [
    "COMMENT ON TABLE User IS 'x'",
    "CREATE NODE TABLE Sneaky(id STRING, PRIMARY KEY(id))",
    "MATCH (u:User) RETURN count(u) AS n; COMMIT; CREATE (:Category {name: 'sneaky'})",
]
FALKORDB_WRITES = [  # FalkorDB's parser rejects "1SET": the same writes, spaced
    *(re.sub(r"(\d)([A-Z])", r"\1 \2", w) for w in SNEAKY_WRITES),
    "CALL db.idx.fulltext.createNodeIndex('Item', 'title')",
    "CREATE INDEX FOR (n:Item) ON (n.title)",
    "MATCH (u:User) WITH u LIMIT 1 MERGE (:Category {name: 'sneaky'}) RETURN 1",
]


def _snapshot(store) -> tuple:
    idx = store.query("MATCH (u:User) RETURN u.id AS id, u.idx AS idx ORDER BY id")
    return store.counts(), idx


def test_query_is_read_only_by_the_database(graph_store, make_dataset):
    hand_graph(graph_store, make_dataset)
    before = _snapshot(graph_store)
    ladybug = graph_store.backend == "ladybug"
    for cypher in SNEAKY_WRITES + (LADYBUG_WRITES if ladybug else FALKORDB_WRITES):
        with pytest.raises(LgrecError) as err:
            graph_store.query(cypher)
        if ladybug or cypher not in SNEAKY_WRITES:  # else: not valid Cypher for FalkorDB
            assert "read-only" in str(err.value) or "one statement" in str(err.value), cypher
    assert _snapshot(graph_store) == before
    if graph_store.backend == "falkordb":  # no index was made on Item.title
        titles = [r for r in graph_store.query("CALL db.indexes()") if r["label"] == "Item"]
        assert all("title" not in r["properties"] for r in titles)
    # write words as data are fine, and write=True writes
    assert graph_store.query("MATCH (i:Item) WHERE i.title = 'Delete Me' RETURN i.id AS id") == []
    assert graph_store.query("MATCH (c:Category) RETURN c.name AS created LIMIT 0") == []
    graph_store.query("CREATE (:Category {name: $n})", {"n": "Noir"}, write=True)
    assert graph_store.query("MATCH (c:Category {name: 'Noir'}) RETURN c.name AS n") == [
        {"n": "Noir"}
    ]


def test_ladybug_numeric_parameter_against_text_ids_is_a_clear_error(tmp_path, make_dataset):
    from lgrec.store import open_graph_store

    with open_graph_store("ladybug", path=tmp_path / "g", buffer_pool_size=64 << 20) as store:
        hand_graph(store, make_dataset)
        with pytest.raises(DataError, match=r"ids \(User.id, Item.id, Category.name\) are str"):
            store.query("MATCH (u:User) WHERE u.id = $u RETURN u.idx AS i", {"u": 128})
        assert store.query("MATCH (u:User) WHERE u.idx = $u RETURN u.id AS i", {"u": 1}) == [
            {"i": "bob"}
        ]


def test_read_only_ladybug_store_refuses_writes(tmp_path, make_dataset):
    from lgrec.store import open_graph_store

    path = tmp_path / "g"
    with open_graph_store("ladybug", path=path, buffer_pool_size=64 << 20) as store:
        hand_graph(store, make_dataset)
    with open_graph_store("ladybug", path=path, read_only=True, buffer_pool_size=64 << 20) as ro:
        before = _snapshot(ro)
        for cypher in [*SNEAKY_WRITES, *LADYBUG_WRITES]:
            with pytest.raises((WriteQueryError, DataError)):
                ro.query(cypher)
        with pytest.raises(WriteQueryError):  # even when the caller asks to write
            ro.query("CREATE (:Category {name: 'x'})", write=True)
        assert _snapshot(ro) == before


def test_add_user_item_interaction_and_query_back(graph_store, make_dataset):
    hand_graph(graph_store, make_dataset)
    idx = graph_store.add_item("i7", title="Brand new", categories=["Drama", "Noir"])
    assert idx == len(ITEMS)
    assert graph_store.add_item("i7") == idx  # idempotent
    graph_store.add_interaction("erin", "i7", "purchase", rating=4.5, ts=123.0)
    graph_store.add_interaction("alice", "i7", "click")
    got = graph_store.query(
        "MATCH (u:User {id: 'erin'})-[r:INTERACTED_WITH]->(i:Item {id: 'i7'}) "
        "RETURN u.idx AS u, r.event AS e, r.rating AS r, r.ts AS ts, i.title AS t"
    )
    assert got == [{"u": len(USERS), "e": "purchase", "r": 4.5, "ts": 123.0, "t": "Brand new"}]
    cats = graph_store.query(
        "MATCH (i:Item {id: 'i7'})-[:IN_CATEGORY]->(c:Category) RETURN c.name AS name ORDER BY name"
    )
    assert [r["name"] for r in cats] == ["Drama", "Noir"]
    assert graph_store.counts()["Category"] == 3  # Drama existed; Noir is new
    assert graph_store.add_user("erin") == len(USERS)
    # the new edges take part in recommendations: erin is now a co-user of alice via i7
    assert "i7" not in dict(graph_store.neighbors_two_hop("alice"))
    assert dict(graph_store.neighbors_two_hop("erin"))["i1"] == 1.0  # via i7 → alice → i1
    u, i = graph_store.interactions_coo()
    assert (len(USERS), idx) in set(zip(u.tolist(), i.tolist()))
    with pytest.raises(UnknownIdError, match="nope"):
        graph_store.add_interaction("erin", "nope")
    with pytest.raises(DataError, match="rating"):
        graph_store.add_interaction("erin", "i7", rating=float("nan"))
    with pytest.raises(DataError, match="user_id"):
        graph_store.add_user("  ")


def _add_foreign_nodes(store) -> None:
    """Another application's nodes in the same database: 7 customers, each owning accounts."""
    if store.backend == "ladybug":
        for ddl in (
            "CREATE NODE TABLE Customer(no INT64, PRIMARY KEY(no))",
            "CREATE NODE TABLE Account(no INT64, PRIMARY KEY(no))",
            "CREATE REL TABLE OWNS(FROM Customer TO Account)",
        ):
            store.query(ddl, write=True)
    store.query(
        "UNWIND range(0, 6) AS k CREATE (c:Customer {no: k}) "
        "CREATE (c)-[:OWNS]->(:Account {no: k})",
        write=True,
    )


def _foreign_counts(store) -> tuple[int, int, int]:
    c = store.query("MATCH (c:Customer) RETURN count(c) AS n")[0]["n"]
    a = store.query("MATCH (a:Account) RETURN count(a) AS n")[0]["n"]
    o = store.query("MATCH (:Customer)-[r:OWNS]->(:Account) RETURN count(r) AS n")[0]["n"]
    return c, a, o


def test_clear_deletes_only_lgrecs_nodes_in_batches(graph_store, make_dataset):
    _add_foreign_nodes(graph_store)
    hand_graph(graph_store, make_dataset)
    deleted = graph_store.clear(batch_size=2)  # 4 users, 6 items, 2 categories: several batches
    assert deleted == {"User": len(USERS), "Item": len(ITEMS), "Category": 2}
    assert set(graph_store.counts().values()) == {0}
    assert _foreign_counts(graph_store) == (7, 7, 7)
    hand_graph(graph_store, make_dataset)  # loading again works after clear()
    assert graph_store.counts()["User"] == len(USERS)
    with pytest.raises(DataError, match="batch_size"):
        graph_store.clear(batch_size=0)


def test_delete_user_removes_node_and_edges_only(graph_store, make_dataset):
    hand_graph(graph_store, make_dataset)
    graph_store.query(
        "MATCH (a:User {id: 'alice'}), (b:User {id: 'bob'}) CREATE (a)-[:FRIEND]->(b), "
        "(b)-[:FRIEND]->(a)",
        write=True,
    )
    before = graph_store.counts()
    assert graph_store.delete_user("alice") == 3 + 2  # 3 interactions, 2 friendships
    after = graph_store.counts()
    assert after["User"] == before["User"] - 1
    assert after["INTERACTED_WITH"] == before["INTERACTED_WITH"] - 3
    assert after["FRIEND"] == 0 and after["Item"] == before["Item"]
    assert graph_store.query("MATCH (u:User {id: 'alice'}) RETURN u.idx AS i") == []
    u, _ = graph_store.interactions_coo()
    assert 0 not in u.tolist()  # alice was idx 0
    assert graph_store.add_user("alice") == len(USERS)  # a returning user gets a new idx
    assert graph_store.delete_user("alice") == 0
    with pytest.raises(UnknownIdError, match="alice"):
        graph_store.delete_user("alice")
    # the rest of the graph still answers
    assert [i for i, _ in graph_store.neighbors_two_hop("bob", similar_weight=0.0)] == ["i2", "i5"]


def test_open_graph_store_rejects_unknown_backend_and_file_path(tmp_path):
    from lgrec.errors import ConfigError
    from lgrec.store import open_graph_store

    with pytest.raises(ConfigError, match="unknown backend 'sqlite'"):
        open_graph_store("sqlite", path=tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file"):
        open_graph_store("ladybug", path=tmp_path / "file")
    store = open_graph_store("ladybug", path=tmp_path / "g", buffer_pool_size=64 << 20)
    store.close()
    with pytest.raises(GraphStoreError, match="closed"):
        store.query("MATCH (u:User) RETURN count(u) AS n")


TWO_HOP = (
    "MATCH (u:User {id: $u})-[:INTERACTED_WITH]->(:Item)<-[:INTERACTED_WITH]-(v:User)"
    "-[:INTERACTED_WITH]->(j:Item) "
)
UNSEEN_FORMS = {  # three ways to ask for the unseen two-hop items
    "pattern predicate": TWO_HOP + "WHERE NOT (u)-[:INTERACTED_WITH]->(j)",
    "EXISTS subquery": TWO_HOP + "WHERE NOT EXISTS { MATCH (u)-[:INTERACTED_WITH]->(j) }",
    "collected history": "MATCH (u:User {id: $u})-[:INTERACTED_WITH]->(h:Item) "
    "WITH u, collect(h.id) AS seen "
    + TWO_HOP.replace("MATCH (u:User {id: $u})", "MATCH (u)")
    + "WHERE NOT j.id IN seen",
}


def test_unseen_item_filters_per_backend(graph_store, make_dataset):
    """What docs/graph.md says about "unseen items" Cypher on each backend: the forms that
    run give lgrec's answer; Neo4j 5's EXISTS subquery is a syntax error on FalkorDB."""
    hand_graph(graph_store, make_dataset)
    want = sorted(i for i, _ in graph_store.neighbors_two_hop("alice", similar_weight=0.0))
    ran = {}
    for name, cypher in UNSEEN_FORMS.items():
        try:
            rows = graph_store.query(cypher + " RETURN DISTINCT j.id AS j", {"u": "alice"})
        except GraphStoreError:
            ran[name] = False
            continue
        ran[name] = True
        assert sorted(r["j"] for r in rows) == want == ["i3", "i4", "i5"], name
    runs_everywhere = {"pattern predicate": True, "collected history": True}
    expected = {
        "ladybug": {**runs_everywhere, "EXISTS subquery": True},
        "falkordb": {**runs_everywhere, "EXISTS subquery": False},
    }
    assert ran == expected[graph_store.backend]


def test_filtered_chain_counts_match_brute_force(graph_store):
    """docs/graph.md, "LadybugDB 0.21-0.22 miscount filtered chains": rows and count(*) of a
    3-relationship chain with a relationship-property filter. LadybugDB 0.21.x and 0.22.0
    give 2 rows or count 2 here (0.20.4, the pinned version, and FalkorDB give 4): this
    fails if the pin moves to a version with the bug."""
    for item in ("101", "103"):
        graph_store.add_item(item)
    for user, item, rating in (("1", "101", 4.0), ("2", "101", 3.0), ("2", "103", 5.0)):
        graph_store.add_interaction(user, item, "rating", rating=rating)
    chain = (
        "MATCH (u:User)-[r1:INTERACTED_WITH]->(i:Item)<-[r2:INTERACTED_WITH]-(v:User)"
        "-[r3:INTERACTED_WITH]->(j:Item) WHERE r2.rating >= 4 "
    )
    rows = graph_store.query(chain + "RETURN u.id AS u, i.id AS i, v.id AS v, j.id AS j")
    got = sorted((r["u"], r["i"], r["v"], r["j"]) for r in rows)
    want = [("1", "101", "1", "101"), ("2", "101", "1", "101"), ("2", "103", "2", "101")]
    assert got == [*want, ("2", "103", "2", "103")]  # brute force (docs/graph.md)
    assert graph_store.query(chain + "RETURN count(*) AS n") == [{"n": 4}]
