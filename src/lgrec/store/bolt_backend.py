"""Graph store on a Bolt server (Neo4j 5, or FalkorDB started with ``BOLT_PORT``) through the
official ``neo4j`` Python driver.

Bulk loading sends ``UNWIND $rows AS r ...`` batches (``batch_size`` rows per round trip,
each batch its own auto-commit transaction), never one query per row; nodes are matched
through the unique ``id``/``name`` constraints (Neo4j) or indexes (FalkorDB) that
:meth:`BoltGraphStore.create_schema` creates.

Dialects. ``dialect="auto"`` (default) sends one probe, ``RETURN $p`` with a string holding
quotes and a backslash, and picks ``"neo4j"`` when the value comes back intact (parameters
travel as Bolt parameters), else ``"falkordb"``.

Read-only. On Neo4j, :meth:`~lgrec.store.GraphStore.query` runs in a read transaction of a
``READ_ACCESS`` session (``session.execute_read``): the server refuses writes there
(``Neo.ClientError.Statement.AccessMode``). FalkorDB's Bolt layer runs every statement as
``GRAPH.QUERY`` whatever the access mode, so it cannot refuse a write: ``query()`` without
``write=True`` raises :class:`~lgrec.errors.ConfigError` there and points to the
``falkordb`` backend (its Redis protocol, ``GRAPH.RO_QUERY``). lgrec's own reads (two-hop
candidates, explanations, counts) still run.

Timeouts. ``connection_timeout`` bounds connecting, the Bolt handshake and getting a
connection from the pool (``connection_acquisition_timeout``), so a server that stopped
answering fails a new client with :class:`~lgrec.store.GraphStoreError` instead of hanging
it; ``query_timeout`` is Neo4j's transaction timeout for every statement.

FalkorDB's Bolt layer (4.x, "experimental", removed from FalkorDB in 2026) has quirks this
backend works around:

* it pastes string parameters into the query text without escaping, so a quote breaks the
  query or injects Cypher. The store never sends it Bolt parameters: it writes them itself as
  a ``CYPHER name=value ...`` prefix (:func:`lgrec.store.cypher_text.inline_params`);
* it takes the graph name from the first *key* of the request metadata, so sessions are
  opened without database or access mode and every query reaches its graph ``falkordb``;
* it hangs, Redis included, after a client's GOODBYE, which the driver sends on ``close()``
  and from its finaliser when a program exits without closing: the store closes the sockets
  without one, in :meth:`BoltGraphStore.close` and in a finaliser of its own that runs first
  (at garbage collection or interpreter exit); connections are never retired by age;
* it counts buffered bytes in 16 bits: a request over 64 KiB can hang and a reply record
  over 64 KiB is garbled. Requests are capped at :data:`FALKORDB_MAX_BYTES` (bulk batches
  are cut by size) and :meth:`BoltGraphStore.interactions_coo` reads 1,000 items a record;
* it listens on every interface (``BOLT_PORT`` takes no address) and ``BOLT_PORT`` must fit a
  signed 16-bit int (≤ 32767), else Bolt silently stays off;
* a pattern's parallel edges collapse into one unless the query uses the edge variable
  (``count(*)`` then undercounts), so queries that must see every edge return a property
  of it;
* transactions are no-ops (every statement commits at once).
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

import numpy as np

from lgrec.errors import ConfigError, DataError
from lgrec.store.cypher_text import (
    BULK,
    COO_BY_USER,
    UNIQUE_KEYS,
    coo_from_user_lists,
    falkordb_indexes,
    inline_params,
    rows,
    table_batches,
    tables_in_order,
)
from lgrec.store.graphdb import (
    GraphStore,
    GraphStoreError,
    GraphTables,
    WriteQueryError,
)

log = logging.getLogger(__name__)

_PROBE = 'it\'s a "probe" \\ '
FALKORDB_MAX_BYTES = 60_000
"""Largest message sent to FalkorDB: its Bolt reader counts buffered bytes in 16 bits and waits
forever for data it already has once a message passes 64 KiB."""
_TEN_YEARS = 10 * 365 * 24 * 3600.0


class _Driver:
    """The driver and how to close it; kept apart from the store so that a finaliser can
    close it without holding the store alive."""

    def __init__(self) -> None:
        self.driver: Any = None
        self.falkordb = False

    def close(self) -> None:
        driver, self.driver = self.driver, None
        if driver is None:
            return
        if self.falkordb:
            _close_without_goodbye(driver)
        driver.close()


class BoltGraphStore(GraphStore):
    """Graph store on a Bolt server.

    Args:
        uri: ``bolt://host:port`` (or ``neo4j://`` for a Neo4j cluster).
        user, password: basic-auth credentials; ``user=None`` connects without auth (FalkorDB
            without ``requirepass``). FalkorDB's Bolt layer takes the user ``falkordb`` with
            the server's ``requirepass`` password.
        database: Neo4j database name (server default when None; ignored by FalkorDB).
        dialect: ``"auto"``, ``"neo4j"`` or ``"falkordb"`` (see module docstring).
        connection_timeout: seconds to connect, shake hands and get a pooled connection.
        query_timeout: seconds a statement may run on Neo4j (its transaction timeout; None:
            the server's setting).
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
        query_timeout: float | None = None,
        create_schema: bool = True,
    ) -> None:
        super().__init__()
        import neo4j

        if dialect not in ("auto", "neo4j", "falkordb"):
            raise ConfigError(
                f"BoltGraphStore: dialect must be 'auto', 'neo4j' or 'falkordb', got {dialect!r}"
            )
        if not connection_timeout > 0 or (query_timeout is not None and not query_timeout > 0):
            raise ConfigError(
                f"BoltGraphStore: timeouts must be > 0 seconds, got connection_timeout="
                f"{connection_timeout!r}, query_timeout={query_timeout!r}"
            )
        self._neo4j = neo4j
        self.uri, self.database = uri, database
        self._auth = None if user is None else neo4j.basic_auth(user, password or "")
        self._timeout = float(connection_timeout)
        self._query_timeout = query_timeout
        self._conn = _Driver()
        self._finalizer = weakref.finalize(self, self._conn.close)
        self.dialect = dialect
        self._connect(falkordb=dialect == "falkordb")
        if dialect == "auto":
            self.dialect = self._probe()
            if self.dialect == "falkordb":  # reconnect with its settings
                self._conn.falkordb = True
                self._conn.close()
                self._connect(falkordb=True)
        if self.dialect == "falkordb" and database:
            log.warning(
                "FalkorDB's Bolt layer ignores database=%r; using its graph 'falkordb'", database
            )
        if create_schema:
            self.create_schema()

    def __repr__(self) -> str:
        return f"BoltGraphStore({self.uri!r}, dialect={self.dialect!r})"

    @property
    def _driver(self) -> Any:
        if self._conn.driver is None:
            raise GraphStoreError(f"{self!r} is closed")
        return self._conn.driver

    def _connect(self, *, falkordb: bool) -> None:
        neo4j = self._neo4j
        # FalkorDB hangs on a GOODBYE; never let the driver retire connections by age
        kw = {"max_connection_lifetime": _TEN_YEARS} if falkordb else {}
        self._conn.falkordb = falkordb
        try:
            self._conn.driver = neo4j.GraphDatabase.driver(
                self.uri,
                auth=self._auth,
                connection_timeout=self._timeout,
                connection_acquisition_timeout=self._timeout,
                **kw,
            )
            self._conn.driver.verify_connectivity()
        except (
            neo4j.exceptions.Neo4jError,
            neo4j.exceptions.DriverError,
            OSError,
            ValueError,
        ) as e:
            self._conn.close()
            raise GraphStoreError(f"cannot reach the Bolt server at {self.uri}: {e}") from e

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

    def _statement(self, cypher: str, params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        if self.dialect == "falkordb":
            cypher = inline_params(cypher, params)
            size = len(cypher.encode())
            if size > FALKORDB_MAX_BYTES:
                raise DataError(
                    f"query of {size:,} bytes (parameters included) is over {FALKORDB_MAX_BYTES:,}:"
                    " FalkorDB's Bolt layer can hang on messages over 64 KiB; send smaller ones"
                )
            return cypher, {}
        return self._neo4j.Query(cypher, timeout=self._query_timeout), params

    def _run(self, cypher: str, params: dict[str, Any], *, write: bool) -> list[dict[str, Any]]:
        query, params = self._statement(cypher, params)
        try:
            with self._session(write) as s:
                return [record.data() for record in s.run(query, params)]
        except (self._neo4j.exceptions.Neo4jError, self._neo4j.exceptions.DriverError) as e:
            raise GraphStoreError(f"Bolt server {self.uri} rejected {cypher[:200]!r}: {e}") from e

    def _run_read_only(self, cypher: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.dialect == "falkordb":
            raise ConfigError(
                "FalkorDB's Bolt layer runs every statement as a write (GRAPH.QUERY) and cannot "
                "refuse one, so lgrec sends it no read-only query: connect to FalkorDB's Redis "
                "port instead (backend 'falkordb', uri redis://HOST:PORT), where reads run as "
                "GRAPH.RO_QUERY"
            )
        query, params = self._statement(cypher, params)

        def read(tx: Any) -> list[dict[str, Any]]:
            return [record.data() for record in tx.run(query, params)]

        try:
            with self._session(False) as s:
                return s.execute_read(read)
        except self._neo4j.exceptions.Neo4jError as e:
            if "AccessMode" in str(getattr(e, "code", "")):
                raise WriteQueryError(
                    f"query() is read-only and the server refused a write in {cypher[:120]!r}: "
                    f"{e}; pass write=True to run it"
                ) from e
            raise GraphStoreError(f"Bolt server {self.uri} rejected {cypher[:200]!r}: {e}") from e
        except self._neo4j.exceptions.DriverError as e:
            raise GraphStoreError(f"Bolt server {self.uri} failed on {cypher[:200]!r}: {e}") from e

    def create_schema(self) -> None:
        with self._lock:
            if self.dialect == "falkordb":
                falkordb_indexes(self._run)
                return
            for label, prop in UNIQUE_KEYS:
                self._run(
                    f"CREATE CONSTRAINT lgrec_{label.lower()}_{prop} IF NOT EXISTS "
                    f"FOR (n:{label}) REQUIRE n.{prop} IS UNIQUE",
                    {},
                    write=True,
                )

    def _bulk_load(self, tables: GraphTables, batch_size: int) -> None:
        with self._lock:
            if self.dialect == "falkordb":
                batches = table_batches(tables, batch_size, FALKORDB_MAX_BYTES)
            else:
                batches = (
                    (name, BULK[name], {"rows": rows(df.iloc[k : k + batch_size])})
                    for name, df in tables_in_order(tables)
                    for k in range(0, len(df), batch_size)
                )
            for n, (name, cypher, params) in enumerate(batches, 1):
                self._run(cypher, params, write=True)
                log.debug("UNWIND %s: batch %d", name, n)

    def interactions_coo(self) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            found = self._run(COO_BY_USER, {}, write=False)
        return coo_from_user_lists(found)

    def close(self) -> None:
        with self._lock:
            self._finalizer()


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
