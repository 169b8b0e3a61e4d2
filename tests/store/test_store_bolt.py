"""Bolt specifics: parameter literals for FalkorDB, dialect probing, connection errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lgrec.errors import ConfigError, DataError
from lgrec.store.bolt_backend import (
    BoltGraphStore,
    _close_without_goodbye,
    _row_literals,
    _rows,
    cypher_literal,
    inline_params,
)
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


def test_falkordb_is_detected_and_round_trips_values(falkordb_uri):
    store = BoltGraphStore(falkordb_uri)
    try:
        assert store.dialect == "falkordb"
        values = {"s": "q'\"\\", "f": 0.1 + 0.2, "big": 2**53 + 1, "neg": -7, "l": ["a", "b"]}
        row = store.query("RETURN $s AS s, $f AS f, $big AS big, $neg AS neg, $l AS l", values)
        assert row == [values]
    finally:
        store.close()


def test_native_parameters_path_runs_on_a_real_server(falkordb_uri):
    # dialect="neo4j" sends Bolt parameters as they are; FalkorDB handles quote-free ones
    store = BoltGraphStore(falkordb_uri, dialect="neo4j", create_schema=False)
    try:
        assert store.query("RETURN $n + 1 AS n, $s AS s", {"n": 41, "s": "plain"}) == [
            {"n": 42, "s": "plain"}
        ]
    finally:
        _close_without_goodbye(store._driver)  # FalkorDB hangs on GOODBYE (module docstring)
        store.close()
    # the server is still up: a second client connects and queries
    store = BoltGraphStore(falkordb_uri)
    try:
        assert store.query("RETURN 1 AS one") == [{"one": 1}]
    finally:
        store.close()


def test_unreachable_server_and_bad_dialect(free_port):
    with pytest.raises(GraphStoreError, match="cannot reach"):
        BoltGraphStore(f"bolt://127.0.0.1:{free_port()}", connection_timeout=2.0)
    with pytest.raises(ConfigError, match="dialect"):
        BoltGraphStore("bolt://127.0.0.1:1", dialect="cypher9")


def test_falkordb_size_limits(falkordb_uri, make_dataset):
    store = BoltGraphStore(falkordb_uri)
    try:
        with pytest.raises(DataError, match="64 KiB"):
            store.query("RETURN $p AS p", {"p": "x" * 70_000})
        # long titles: the load is cut into several messages below the limit, none is lost
        items = [f"i{k}" for k in range(40)]
        titles = {i: f"{i} " + "é'x\\" * 1_000 for i in items}
        ds = make_dataset(["a", "b"], items, [("a", i) for i in items], titles=titles)
        counts = store.load_dataset(ds)
        assert counts["Item"] == 40 and counts["INTERACTED_WITH"] == 40
        got = store.query("MATCH (i:Item {id: 'i17'}) RETURN i.title AS t")
        assert got == [{"t": titles["i17"]}]
        assert store.query("RETURN 1 AS one") == [{"one": 1}]  # the server still answers
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
    assert _row_literals(df).to_pylist() == [cypher_literal(list(r)) for r in _rows(df)]
    with pytest.raises(DataError, match="NaN"):
        _row_literals(pd.DataFrame({"s": [1.0, float("nan")]}))
