"""Cypher as text for FalkorDB: parameter literals, bulk-load statements, bounded batches.

FalkorDB takes parameters as a ``CYPHER name=value ...`` prefix of the query text (its native
syntax, over its Redis protocol and its Bolt layer alike). :func:`cypher_literal` writes each
value so that no string can end its literal (``\\`` and ``'`` escaped); :func:`literal_batches`
cuts a bulk load into ``UNWIND`` messages of bounded size, built column-wise in Arrow
(:func:`row_literals`). :func:`falkordb_indexes` creates the key indexes. Used by
:mod:`lgrec.store.falkordb_backend` and :mod:`lgrec.store.bolt_backend`.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lgrec.errors import DataError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
UNIQUE_KEYS = (("User", "id"), ("Item", "id"), ("Category", "name"))
"""The key property of each node label (unique constraints on Neo4j, indexes on FalkorDB)."""
COO_BY_USER = (
    "MATCH (u:User)-[r:INTERACTED_WITH]->(i:Item) WITH u, i, r "  # r kept: see COO_QUERY
    "WITH u, collect(i.idx) AS items UNWIND range(0, size(items) - 1, 1000) AS k "
    "RETURN u.idx AS u, items[k..k + 1000] AS items"
)
"""Every ``INTERACTED_WITH`` edge, one record per user and 1,000 items: ~10× fewer records
than one per edge, each far below the 64 KiB a FalkorDB Bolt reply may hold."""
BULK = {
    "User": "UNWIND $rows AS r CREATE (:User {id: r[0], idx: r[1]})",
    "Item": "UNWIND $rows AS r CREATE (:Item {id: r[0], idx: r[1], title: r[2], categories: r[3]})",
    "Category": "UNWIND $rows AS r CREATE (:Category {name: r[0]})",
    "INTERACTED_WITH": "UNWIND $rows AS r MATCH (u:User {id: r[0]}), (i:Item {id: r[1]}) "
    "CREATE (u)-[:INTERACTED_WITH {event: r[2], rating: r[3], ts: r[4]}]->(i)",
    "SIMILAR_TO": "UNWIND $rows AS r MATCH (a:Item {id: r[0]}), (b:Item {id: r[1]}) "
    "CREATE (a)-[:SIMILAR_TO {score: r[2]}]->(b)",
    "IN_CATEGORY": "UNWIND $rows AS r MATCH (a:Item {id: r[0]}), (c:Category {name: r[1]}) "
    "CREATE (a)-[:IN_CATEGORY]->(c)",
    "FRIEND": "UNWIND $rows AS r MATCH (a:User {id: r[0]}), (b:User {id: r[1]}) "
    "CREATE (a)-[:FRIEND]->(b)",
}
"""One ``UNWIND $rows`` statement per table of :class:`~lgrec.store.graphdb.GraphTables`."""


def cypher_literal(value: Any) -> str:
    """A Cypher literal for a parameter value (FalkorDB ``CYPHER`` prefix syntax).

    Strings are single-quoted with ``\\`` and ``'`` escaped, so no value can end the literal;
    lists/tuples and dicts (identifier keys) recurse; NaN/inf and other types raise
    :class:`DataError`.
    """
    if value is None:
        return "null"
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        f = float(value)
        if not math.isfinite(f):
            raise DataError(f"query parameter {value!r}: NaN/infinite values cannot be sent")
        return repr(f)
    if isinstance(value, str):
        if "\x00" in value:
            raise DataError(f"query parameter {value[:40]!r}: strings must not contain NUL")
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, list | tuple | np.ndarray):
        return "[" + ", ".join(cypher_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_ident(k)}: {cypher_literal(v)}" for k, v in value.items()) + "}"
    raise DataError(f"query parameter of type {type(value).__name__} is not supported")


def _ident(name: Any) -> str:
    if not isinstance(name, str) or not _IDENT.match(name):
        raise DataError(
            f"query parameter name {name!r} must be an identifier ([A-Za-z_][A-Za-z0-9_]*)"
        )
    return name


def inline_params(cypher: str, params: dict[str, Any]) -> str:
    """``cypher`` prefixed with ``CYPHER k=v ...`` (values from :func:`cypher_literal`)."""
    if not params:
        return cypher
    return (
        "CYPHER "
        + " ".join(f"{_ident(k)}={cypher_literal(v)}" for k, v in params.items())
        + " "
        + cypher
    )


def tables_in_order(tables: Any) -> Iterator[tuple[str, pd.DataFrame]]:
    """``(name, table)`` of :class:`~lgrec.store.graphdb.GraphTables`, nodes first."""
    for name, field in _TABLE_FIELD.items():
        yield name, getattr(tables, field)


def table_batches(
    tables: Any, batch_size: int, max_bytes: int
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(table name, query text, {})`` messages loading every table of ``tables``, nodes
    first (see :func:`literal_batches`)."""
    for name, df in tables_in_order(tables):
        for text in literal_batches(BULK[name], df, batch_size, max_bytes):
            yield name, text, {}


_TABLE_FIELD = {
    "User": "users",
    "Item": "items",
    "Category": "categories",
    "INTERACTED_WITH": "interacted",
    "SIMILAR_TO": "similar",
    "IN_CATEGORY": "in_category",
    "FRIEND": "friend",
}


def literal_batches(
    statement: str, df: pd.DataFrame, batch_size: int, max_bytes: int
) -> Iterator[str]:
    """``CYPHER rows=[...] statement`` texts of at most ``batch_size`` rows and ``max_bytes``
    bytes each; row literals are built column-wise (:func:`row_literals`)."""
    head, tail = "CYPHER rows=[", "] " + statement
    budget = max_bytes - len(head) - len(tail.encode())
    lits = row_literals(df)
    sizes = pc.binary_length(lits).to_numpy(zero_copy_only=False).astype(np.int64) + 2
    if len(sizes) and sizes.max() > budget:
        raise DataError(f"a row of {sizes.max():,} bytes is over the {max_bytes:,}-byte limit")
    ends = np.cumsum(sizes)
    start = 0
    while start < len(lits):
        done = ends[start - 1] if start else 0
        stop = min(int(np.searchsorted(ends, done + budget, "right")), start + batch_size)
        yield head + ", ".join(lits[start:stop].to_pylist()) + tail
        start = stop


def falkordb_indexes(run: Callable[..., list[dict[str, Any]]]) -> None:
    """Create FalkorDB's range index on each key of :data:`UNIQUE_KEYS` that lacks one;
    ``run(cypher, params, write=...)`` runs a statement."""
    have = {
        (r["label"], p)
        for r in run("CALL db.indexes()", {}, write=False)
        for p in r.get("properties") or ()
    }
    for label, prop in UNIQUE_KEYS:
        if (label, prop) not in have:
            run(f"CREATE INDEX FOR (n:{label}) ON (n.{prop})", {}, write=True)


def row_literals(df: pd.DataFrame) -> pa.Array:
    """One Cypher list literal per row of ``df`` (``[v1, v2, ...]``) as an Arrow string array,
    built column by column in Arrow: strings escaped as in :func:`cypher_literal`, floats via
    ``repr`` (shortest round-trip form), lists and other values through :func:`cypher_literal`.
    """
    if not len(df):
        return pa.array([], pa.string())
    parts = []
    for c in df.columns:
        col = df[c]
        if pd.api.types.is_bool_dtype(col):
            lit = pc.if_else(pa.array(col), "true", "false")
        elif pd.api.types.is_integer_dtype(col):
            lit = pc.cast(pa.array(col), pa.string())
        elif pd.api.types.is_float_dtype(col):
            if not np.isfinite(col.to_numpy()).all():
                raise DataError(f"column {c!r} holds NaN/infinite values; they cannot be sent")
            lit = pa.array(list(map(repr, col.tolist())), pa.string())
        elif pd.api.types.infer_dtype(col, skipna=True) in ("string", "empty"):
            text = pa.array(col.astype(object).where(col.notna(), None), pa.string())
            if pc.any(pc.match_substring(text, "\x00")).as_py():
                raise DataError(f"column {c!r} holds a NUL character")
            esc = pc.replace_substring(text, "\\", "\\\\")
            esc = pc.replace_substring(esc, "'", "\\'")
            lit = pc.fill_null(pc.binary_join_element_wise("'", esc, "'", ""), "null")
        else:
            lit = pa.array([cypher_literal(v) for v in rows(df[[c]])], pa.string())
            lit = pc.utf8_slice_codeunits(lit, 1, -1)  # drop the one-element row brackets
        parts.append(lit)
    return pc.binary_join_element_wise("[", pc.binary_join_element_wise(*parts, ", "), "]", "")


def rows(df: pd.DataFrame) -> list[tuple]:
    """Rows of ``df`` as tuples of plain Python values, missing values (NaN/NA) as None."""
    cols = (df[c].astype(object).where(df[c].notna(), None).tolist() for c in df.columns)
    return list(zip(*cols))


def coo_from_user_lists(found: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(user idx, item idx) arrays from the records of :data:`COO_BY_USER`, sorted."""
    items = [r["items"] for r in found]
    lengths = np.fromiter((len(x) for x in items), np.int64, len(items))
    u = np.repeat(np.fromiter((r["u"] for r in found), np.int64, len(found)), lengths)
    i = np.fromiter(itertools.chain.from_iterable(items), np.int64, int(lengths.sum()))
    order = np.lexsort((i, u))
    return u[order], i[order]
