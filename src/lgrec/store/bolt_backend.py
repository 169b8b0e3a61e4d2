"""Graph store on a Bolt server (Neo4j 5, or FalkorDB started with ``BOLT_PORT``) through the
official ``neo4j`` Python driver.

Bulk loading sends ``UNWIND $rows AS r ...`` batches (``batch_size`` rows per round trip,
each batch its own auto-commit transaction), never one query per row; nodes are matched
through the unique ``id``/``name`` constraints (Neo4j) or indexes (FalkorDB) that
:meth:`BoltGraphStore.create_schema` creates.

Dialects. ``dialect="auto"`` (default) sends one probe, ``RETURN $p`` with a string holding
quotes and a backslash, and picks ``"neo4j"`` when the value comes back intact (parameters
travel as Bolt parameters; reads run in READ sessions on ``database``), else ``"falkordb"``.

FalkorDB's Bolt layer (4.x, "experimental") has quirks this backend works around:

* it pastes string parameters into the query text without escaping, so a quote breaks the
  query or injects Cypher. The store never sends it Bolt parameters: it writes them itself as
  a ``CYPHER name=value ...`` prefix (FalkorDB's native parameter syntax) with every string
  escaped by :func:`cypher_literal`;
* it takes the graph name from the first *key* of the request metadata, so sessions are
  opened without database or access mode and every query reaches its graph ``falkordb``;
* it hangs, Redis included, after a client's GOODBYE: :meth:`BoltGraphStore.close` closes
  the sockets without one, and connections are never retired by age;
* it counts buffered bytes in 16 bits: a request over 64 KiB can hang and a reply record
  over 64 KiB is garbled. Requests are capped at :data:`FALKORDB_MAX_BYTES` (bulk batches
  are cut by size) and :meth:`BoltGraphStore.interactions_coo` reads 1,000 items a record;
* ``BOLT_PORT`` must fit a signed 16-bit int (≤ 32767), else Bolt silently stays off;
* a pattern's parallel edges collapse into one unless the query uses the edge variable
  (``count(*)`` then undercounts), so queries that must see every edge return a property
  of it;
* transactions are no-ops (every statement commits at once).
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lgrec.errors import ConfigError, DataError
from lgrec.store.graphdb import GraphStore, GraphStoreError, GraphTables, _sorted_pairs

log = logging.getLogger(__name__)

_PROBE = 'it\'s a "probe" \\ '
FALKORDB_MAX_BYTES = 60_000
"""Largest message sent to FalkorDB: its Bolt reader counts buffered bytes in 16 bits and waits
forever for data it already has once a message passes 64 KiB."""
_TEN_YEARS = 10 * 365 * 24 * 3600.0
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_UNIQUE = (("User", "id"), ("Item", "id"), ("Category", "name"))
_COO_BY_USER = (
    "MATCH (u:User)-[r:INTERACTED_WITH]->(i:Item) WITH u, i, r "  # r kept: see COO_QUERY
    "WITH u, collect(i.idx) AS items UNWIND range(0, size(items) - 1, 1000) AS k "
    "RETURN u.idx AS u, items[k..k + 1000] AS items"
)
_BULK = {
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


class BoltGraphStore(GraphStore):
    """Graph store on a Bolt server.

    Args:
        uri: ``bolt://host:port`` (or ``neo4j://`` for a Neo4j cluster).
        user, password: basic-auth credentials; ``user=None`` connects without auth (FalkorDB
            without ``requirepass``).
        database: Neo4j database name (server default when None; ignored by FalkorDB).
        dialect: ``"auto"``, ``"neo4j"`` or ``"falkordb"`` (see module docstring).
        connection_timeout: seconds to wait for the server.
        create_schema: create constraints/indexes on connect.
    """

    backend = "bolt"

    def __init__(
        self,
        uri: str = "bolt://127.0.0.1:7687",
        user: str | None = None,
        password: str | None = None,
        *,
        database: str | None = None,
        dialect: str = "auto",
        connection_timeout: float = 10.0,
        create_schema: bool = True,
    ) -> None:
        super().__init__()
        import neo4j

        if dialect not in ("auto", "neo4j", "falkordb"):
            raise ConfigError(
                f"BoltGraphStore: dialect must be 'auto', 'neo4j' or 'falkordb', got {dialect!r}"
            )
        self._neo4j = neo4j
        self.uri, self.database = uri, database
        self._auth = None if user is None else neo4j.basic_auth(user, password or "")
        self._timeout = connection_timeout
        self._driver = self._connect(falkordb=dialect == "falkordb")
        self.dialect = self._probe() if dialect == "auto" else dialect
        if dialect == "auto" and self.dialect == "falkordb":  # reconnect with its settings
            _close_without_goodbye(self._driver)
            self._driver = self._connect(falkordb=True)
        if self.dialect == "falkordb" and database:
            log.warning(
                "FalkorDB's Bolt layer ignores database=%r; using its graph 'falkordb'", database
            )
        if create_schema:
            self.create_schema()

    def __repr__(self) -> str:
        return f"BoltGraphStore({self.uri!r}, dialect={self.dialect!r})"

    def _connect(self, *, falkordb: bool):
        neo4j = self._neo4j
        # FalkorDB hangs on a GOODBYE; never let the driver retire connections by age
        kw = {"max_connection_lifetime": _TEN_YEARS} if falkordb else {}
        try:
            driver = neo4j.GraphDatabase.driver(
                self.uri, auth=self._auth, connection_timeout=self._timeout, **kw
            )
            driver.verify_connectivity()
        except (
            neo4j.exceptions.Neo4jError,
            neo4j.exceptions.DriverError,
            OSError,
            ValueError,
        ) as e:
            raise GraphStoreError(f"cannot reach the Bolt server at {self.uri}: {e}") from e
        return driver

    def _probe(self) -> str:
        try:
            with self._driver.session(database=self.database) as s:
                got = s.run("RETURN $p AS p", p=_PROBE).single()
            ok = got is not None and got["p"] == _PROBE
        except self._neo4j.exceptions.Neo4jError:
            ok = False
        dialect = "neo4j" if ok else "falkordb"
        log.info("Bolt server at %s: %s dialect", self.uri, dialect)
        return dialect

    def _session(self, write: bool):
        if self.dialect == "falkordb":
            return self._driver.session()
        mode = self._neo4j.WRITE_ACCESS if write else self._neo4j.READ_ACCESS
        return self._driver.session(database=self.database, default_access_mode=mode)

    def _run(self, cypher: str, params: dict[str, Any], *, write: bool) -> list[dict[str, Any]]:
        if self.dialect == "falkordb":
            cypher, params = inline_params(cypher, params), {}
            size = len(cypher.encode())
            if size > FALKORDB_MAX_BYTES:
                raise DataError(
                    f"query of {size:,} bytes (parameters included) is over {FALKORDB_MAX_BYTES:,}:"
                    " FalkorDB's Bolt layer can hang on messages over 64 KiB; send smaller ones"
                )
        try:
            with self._session(write) as s:
                return [record.data() for record in s.run(cypher, params)]
        except (self._neo4j.exceptions.Neo4jError, self._neo4j.exceptions.DriverError) as e:
            raise GraphStoreError(f"Bolt server {self.uri} rejected {cypher[:200]!r}: {e}") from e

    def create_schema(self) -> None:
        with self._lock:
            if self.dialect == "neo4j":
                for label, prop in _UNIQUE:
                    self._run(
                        f"CREATE CONSTRAINT lgrec_{label.lower()}_{prop} IF NOT EXISTS "
                        f"FOR (n:{label}) REQUIRE n.{prop} IS UNIQUE",
                        {},
                        write=True,
                    )
                return
            have = {
                (r["label"], p)
                for r in self._run("CALL db.indexes()", {}, write=False)
                for p in r.get("properties") or ()
            }
            for label, prop in _UNIQUE:
                if (label, prop) not in have:
                    self._run(f"CREATE INDEX FOR (n:{label}) ON (n.{prop})", {}, write=True)

    def _bulk_load(self, tables: GraphTables, batch_size: int) -> None:
        order = (
            ("User", tables.users),
            ("Item", tables.items),
            ("Category", tables.categories),
            ("INTERACTED_WITH", tables.interacted),
            ("SIMILAR_TO", tables.similar),
            ("IN_CATEGORY", tables.in_category),
            ("FRIEND", tables.friend),
        )
        with self._lock:
            for name, df in order:
                batches = (
                    self._falkordb_batches(_BULK[name], df, batch_size)
                    if self.dialect == "falkordb"
                    else (
                        (_BULK[name], {"rows": _rows(df.iloc[k : k + batch_size])})
                        for k in range(0, len(df), batch_size)
                    )
                )
                n = 0
                for cypher, params in batches:
                    self._run(cypher, params, write=True)
                    n += 1
                log.debug("UNWIND %s: %d rows in %d batches", name, len(df), n)

    @staticmethod
    def _falkordb_batches(statement: str, df: pd.DataFrame, batch_size: int):
        """``(CYPHER rows=[...] statement, {})`` messages of at most ``batch_size`` rows and
        :data:`FALKORDB_MAX_BYTES` bytes; row literals are built column-wise."""
        head, tail = "CYPHER rows=[", "] " + statement
        budget = FALKORDB_MAX_BYTES - len(head) - len(tail.encode())
        lits = _row_literals(df)
        sizes = pc.binary_length(lits).to_numpy(zero_copy_only=False).astype(np.int64) + 2
        if len(sizes) and sizes.max() > budget:
            raise DataError(
                f"a row of {sizes.max():,} bytes is too large for FalkorDB's Bolt layer"
            )
        ends = np.cumsum(sizes)
        start = 0
        while start < len(lits):
            done = ends[start - 1] if start else 0
            stop = min(int(np.searchsorted(ends, done + budget, "right")), start + batch_size)
            yield head + ", ".join(lits[start:stop].to_pylist()) + tail, {}
            start = stop

    def interactions_coo(self) -> tuple[np.ndarray, np.ndarray]:
        # one record per user and 1,000 items: ~10× fewer records than one per edge, and each
        # stays far below the 64 KiB a FalkorDB reply may hold
        rows = self.query(_COO_BY_USER)
        items = [r["items"] for r in rows]
        lengths = np.fromiter((len(x) for x in items), np.int64, len(items))
        u = np.repeat(np.fromiter((r["u"] for r in rows), np.int64, len(rows)), lengths)
        i = np.fromiter(itertools.chain.from_iterable(items), np.int64, int(lengths.sum()))
        return _sorted_pairs(u, i)

    def clear(self) -> None:
        with self._lock:
            self._run("MATCH (n) DETACH DELETE n", {}, write=True)

    def close(self) -> None:
        with self._lock:
            if self.dialect == "falkordb":
                _close_without_goodbye(self._driver)
            self._driver.close()


def _close_without_goodbye(driver) -> None:
    """Close the driver's sockets without the Bolt GOODBYE message.

    FalkorDB 4.x frees the client on GOODBYE but leaves its socket in the event loop, and the
    whole server (Redis included) hangs on the next event of that socket. A plain socket close
    takes its clean disconnect path instead. Uses the driver's pool (``neo4j`` 5/6 layout);
    when that layout is absent, nothing is done and ``driver.close()`` follows as usual.
    """
    pool = getattr(driver, "_pool", None)
    for connections in list(getattr(pool, "connections", {}).values()):
        for connection in list(connections):
            kill = getattr(connection, "kill", None)
            if kill is not None:
                kill()


def _row_literals(df: pd.DataFrame) -> pa.Array:
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
            lit = pa.array([cypher_literal(v) for v in _rows(df[[c]])], pa.string())
            lit = pc.utf8_slice_codeunits(lit, 1, -1)  # drop the one-element row brackets
        parts.append(lit)
    return pc.binary_join_element_wise("[", pc.binary_join_element_wise(*parts, ", "), "]", "")


def _rows(df: pd.DataFrame) -> list[tuple]:
    """Rows of ``df`` as tuples of plain Python values, missing values (NaN/NA) as None."""
    cols = (df[c].astype(object).where(df[c].notna(), None).tolist() for c in df.columns)
    return list(zip(*cols))
