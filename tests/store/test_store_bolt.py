"""Bolt specifics: parameter literals for FalkorDB, dialect probing, connection errors, the
store contract over FalkorDB's Bolt layer, read-only refusal, and clients that exit without
closing (against a real FalkorDB server on loopback, see ``start_falkordb.py``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lgrec.errors import ConfigError, DataError
from lgrec.store.bolt_backend import BoltGraphStore, _close_without_goodbye
from lgrec.store.cypher_text import cypher_literal, inline_params, row_literals, rows
from lgrec.store.graphdb import GraphStoreError


def test_cypher_literal_escapes_and_types():
    assert cypher_literal("it's") == "'it\\'s'"
    assert cypher_literal("a\\'b") == "'a\\\\\\'b'"
    assert cypher_literal([1, 2.5, None, True, "x"]) == "[1, 2.5, null, true, 'x']"
    assert cypher_literal({"k": (1e-7,)}) == "{k: [1e-07]}"
    for bad in (float("nan"), float("inf"), "nul\x00", {"not ident": 1}, object()):
        with pytest.raises(DataError):
            cypher_literal(bad)
    assert inline_params("RETURN $a", {"a": 1, "b": "x"}) == "CYPHER a=1 b='x' RETURN $a"
    with pytest.raises(DataError, match="identifier"):
        inline_params("RETURN 1", {"a b": 1})


def _open(server, **kw) -> BoltGraphStore:
    return BoltGraphStore(server.bolt_uri, "falkordb", server.password, **kw)


def test_falkordb_is_detected_and_round_trips_values(bolt_server):
    store = _open(bolt_server)
    try:
        assert store.dialect == "falkordb"
        values = {"s": "q'\"\\", "f": 0.1 + 0.2, "big": 2**53 + 1, "neg": -7, "l": ["a", "b"]}
        row = store._run(
            "RETURN $s AS s, $f AS f, $big AS big, $neg AS neg, $l AS l", values, write=False
        )
        assert row == [values]
    finally:
        store.close()


def test_native_parameters_path_runs_on_a_real_server(bolt_server):
    # dialect="neo4j" sends Bolt parameters as they are; FalkorDB handles quote-free ones
    store = _open(bolt_server, dialect="neo4j", create_schema=False)
    try:
        got = store._run("RETURN $n + 1 AS n, $s AS s", {"n": 41, "s": "plain"}, write=False)
        assert got == [{"n": 42, "s": "plain"}]
    finally:
        _close_without_goodbye(store._driver)  # FalkorDB hangs on GOODBYE (module docstring)
        store.close()
    # the server is still up: a second client connects and queries
    store = _open(bolt_server)
    try:
        assert store._run("RETURN 1 AS one", {}, write=False) == [{"one": 1}]
    finally:
        store.close()


def test_unreachable_server_and_bad_dialect(free_port):
    with pytest.raises(GraphStoreError, match="cannot reach"):
        BoltGraphStore(f"bolt://127.0.0.1:{free_port()}", connection_timeout=2.0)
    with pytest.raises(ConfigError, match="dialect"):
        BoltGraphStore("bolt://127.0.0.1:1", dialect="cypher9")


def test_falkordb_size_limits(bolt_server, make_dataset):
    store = _open(bolt_server)
    try:
        with pytest.raises(DataError, match="64 KiB"):
            store._run("RETURN $p AS p", {"p": "x" * 70_000}, write=False)
        # long titles: the load is cut into several messages below the limit, none is lost
        items = [f"i{k}" for k in range(40)]
        titles = {i: f"{i} " + "é'x\\" * 1_000 for i in items}
        ds = make_dataset(["a", "b"], items, [("a", i) for i in items], titles=titles)
        counts = store.load_dataset(ds)
        assert counts["Item"] == 40 and counts["INTERACTED_WITH"] == 40
        got = store._run("MATCH (i:Item {id: 'i17'}) RETURN i.title AS t", {}, write=False)
        assert got == [{"t": titles["i17"]}]
        assert store._run("RETURN 1 AS one", {}, write=False) == [{"one": 1}]  # still answers
    finally:
        store.close()


def test_column_wise_row_literals_match_cypher_literal():
    df = pd.DataFrame(
        {
            "id": ["a", "it's", "back\\slash", "é😀"],
            "idx": np.array([0, 1, 2, 2**40], dtype=np.int64),
            "title": ["x", None, "q\"'", ""],
            "cats": [["Drama"], [], ["a'b", "c"], []],
            "score": [0.1 + 0.2, 1e-7, -3.0, 2.5e300],
        }
    )
    assert row_literals(df).to_pylist() == [cypher_literal(list(r)) for r in rows(df)]
    with pytest.raises(DataError, match="NaN"):
        row_literals(pd.DataFrame({"s": [1.0, float("nan")]}))


def test_store_contract_over_bolt(bolt_server, make_dataset):
    from tests.store.test_store_graphdb import ITEMS, USERS, _foreign_counts, hand_graph

    store = _open(bolt_server)
    try:
        store._run(
            "UNWIND range(0, 6) AS k CREATE (c:Customer {no: k})-[:OWNS]->(:Account {no: k})",
            {},
            write=True,
        )
        counts = hand_graph(store, make_dataset)
        assert counts["User"] == len(USERS) and counts["INTERACTED_WITH"] == 10
        got = store.neighbors_two_hop("alice", k=10)
        assert [i for i, _ in got] == ["i3", "i5", "i4", "i6"]
        assert store.explain_paths("alice", "i5")[0]["path"] == ["alice", "i1", "i5"]
        u, _ = store.interactions_coo()
        assert len(u) == 10
        # FalkorDB's Bolt layer cannot refuse a write: query() refuses to pretend it can
        with pytest.raises(ConfigError, match=r"GRAPH\.RO_QUERY"):
            store.query("MATCH (u:User) RETURN count(u) AS n")
        assert store.delete_user("alice") == 3
        assert store.counts()["INTERACTED_WITH"] == 7
        assert store.clear(batch_size=3) == {"User": 3, "Item": len(ITEMS), "Category": 2}
        assert set(store.counts().values()) == {0}
        assert _foreign_counts(_Reader(store)) == (7, 7, 7)  # another application's nodes
    finally:
        store.close()


class _Reader:
    """``query`` through lgrec's own read path (FalkorDB's Bolt layer has no read-only one)."""

    def __init__(self, store):
        self.store = store

    def query(self, cypher, params=None):
        return self.store._run(cypher, params or {}, write=False)


CHILD = """
import sys
from lgrec.store import open_graph_store
backend, uri, password = sys.argv[1:4]
user = "falkordb" if backend == "bolt" else None
store = open_graph_store(backend, uri=uri, user=user, password=password)
print(store._run("RETURN 41 + 1 AS n", {}, write=False)[0]["n"])
# exits without close(): the driver's own finaliser would say GOODBYE
"""


@pytest.mark.parametrize("backend", ["bolt", "falkordb"])
def test_clients_exiting_without_close_do_not_hang_the_server(bolt_server, backend):
    import subprocess
    import sys

    from tests.store.conftest import launcher

    uri = bolt_server.bolt_uri if backend == "bolt" else bolt_server.uri
    for _ in range(2):  # each must get its answer; a hung server would stall the next one
        done = subprocess.run(
            [sys.executable, "-c", CHILD, backend, uri, bolt_server.password],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0 and done.stdout.strip() == "42", done.stderr[-2000:]
        # FalkorDB 4.x hangs, Redis included, after a Bolt GOODBYE: it must still answer
        assert launcher.redis_ping(bolt_server.redis_port, bolt_server.password, timeout=5)
    store = _open(bolt_server, connection_timeout=5)
    try:
        assert store._run("RETURN 1 AS one", {}, write=False) == [{"one": 1}]
    finally:
        store.close()


def test_a_hung_server_fails_clients_within_their_timeout(bolt_server):
    """A server that stops answering (here: frozen) fails new clients after their timeout."""
    import concurrent.futures

    from lgrec.store import open_graph_store

    attempts = {
        "bolt": lambda: open_graph_store(
            "bolt", uri=bolt_server.bolt_uri, user="falkordb", password=bolt_server.password,
            connection_timeout=2,
        ),
        "falkordb": lambda: open_graph_store(
            "falkordb", uri=bolt_server.uri, password=bolt_server.password, timeout=2
        ),
    }  # fmt: skip
    live = attempts["falkordb"]()  # a client connected before the server froze
    bolt_server.pause()
    try:
        with concurrent.futures.ThreadPoolExecutor(len(attempts) + 1) as pool:
            futures = [pool.submit(f) for f in attempts.values()]
            futures.append(pool.submit(live.query, "RETURN 1 AS one"))
            for future in futures:
                # the bound only tells a hang (the drivers' defaults wait 60 s or forever)
                # from the stores' own 2 s timeouts
                with pytest.raises(GraphStoreError, match=r"cannot reach|Timeout|timed out"):
                    future.result(timeout=45)
    finally:
        bolt_server.resume()
    assert live.query("RETURN 1 AS one") == [{"one": 1}]  # back once the server is
    live.close()
    for open_store in attempts.values():
        store = open_store()
        store.close()


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) of this namespace's sockets listening
    on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                addr, hexport = local.rsplit(":", 1)
                if state == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
                    found.append(addr)
    return found


def test_test_server_listens_on_loopback_only_and_wants_the_password(bolt_server):
    from tests.store.conftest import launcher

    loopback = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1
    for port in (bolt_server.redis_port, bolt_server.bolt_port):
        addrs = _listening(port)
        assert addrs and set(addrs) <= loopback, (port, addrs)
    assert not launcher.redis_ping(bolt_server.redis_port)  # no password: refused
    assert launcher.redis_ping(bolt_server.redis_port, bolt_server.password)
