"""Graph store on FalkorDB over its own Redis protocol (PyPI ``falkordb`` client).

``uri`` is ``redis://HOST:PORT`` (``rediss://`` for TLS); the graph is one named key of that
server (``graph``, default ``lgrec``), so lgrec's nodes never share a graph with another
application's unless told to. Credentials are Redis's: a password (``requirepass``) and,
with Redis ACLs, a user name.

* Read-only is FalkorDB's: :meth:`~lgrec.store.GraphStore.query` without ``write=True`` is
  sent as ``GRAPH.RO_QUERY``, which the server refuses to run when the statement writes.
* Parameters travel as a ``CYPHER name=value ...`` prefix written by
  :func:`lgrec.store.cypher_text.inline_params` (every string escaped).
* Timeouts: ``timeout`` bounds connecting and every reply on the socket (a server that
  stopped answering fails the call with :class:`~lgrec.store.GraphStoreError` instead of
  hanging it); ``query_timeout`` is FalkorDB's own limit on a read-only query.
* Bulk loads go in ``UNWIND`` batches of at most ``batch_size`` rows and
  :data:`MAX_BYTES` bytes.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np

from lgrec.errors import ConfigError
from lgrec.store.cypher_text import (
    COO_BY_USER,
    coo_from_user_lists,
    falkordb_indexes,
    inline_params,
    table_batches,
)
from lgrec.store.graphdb import GraphStore, GraphStoreError, GraphTables, WriteQueryError

log = logging.getLogger(__name__)

MAX_BYTES = 8 << 20
"""Largest bulk-load message (8 MiB): bounds the memory of one batch on both sides."""


class FalkorGraphStore(GraphStore):
    """Graph store in one graph of a FalkorDB server.

    Args:
        uri: ``redis://HOST:PORT`` (``rediss://`` for TLS).
        user, password: Redis credentials (``user=None``: the default user).
        graph: name of the graph (a Redis key) holding lgrec's nodes.
        timeout: seconds to connect and to wait for any reply.
        query_timeout: seconds a read-only query may run on the server (None: its setting).
        create_schema: create the key indexes on connect.
    """

    backend = "falkordb"

    def __init__(
        self,
        uri: str = "redis://127.0.0.1:6379",
        user: str | None = None,
        password: str | None = None,
        *,
        graph: str = "lgrec",
        timeout: float = 60.0,
        query_timeout: float | None = None,
        create_schema: bool = True,
    ) -> None:
        super().__init__()
        import falkordb
        import redis

        parts = urlsplit(uri)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ConfigError(
                f"FalkorGraphStore: uri must be redis://HOST:PORT or rediss://HOST:PORT, "
                f"got {uri!r}"
            )
        if not timeout > 0 or (query_timeout is not None and not query_timeout > 0):
            raise ConfigError(
                f"FalkorGraphStore: timeouts must be > 0 seconds, got timeout={timeout!r}, "
                f"query_timeout={query_timeout!r}"
            )
        if not graph or not isinstance(graph, str):
            raise ConfigError(f"FalkorGraphStore: graph must be a non-empty name, got {graph!r}")
        self.uri, self.graph_name = uri, graph
        self._redis_errors = (redis.exceptions.RedisError, OSError)
        self._query_timeout = None if query_timeout is None else int(query_timeout * 1000)
        try:
            self._db = falkordb.FalkorDB(
                host=parts.hostname,
                port=parts.port or 6379,
                username=user or (unquote(parts.username) if parts.username else None),
                password=password or (unquote(parts.password) if parts.password else None),
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                ssl=parts.scheme == "rediss",
            )
            self._db.connection.ping()
        except self._redis_errors as e:
            raise GraphStoreError(f"cannot reach FalkorDB at {_safe(uri)}: {e}") from e
        self._graph = self._db.select_graph(graph)
        self._finalizer = weakref.finalize(self, self._db.connection.close)
        if create_schema:
            self.create_schema()

    def __repr__(self) -> str:
        return f"FalkorGraphStore({_safe(self.uri)!r}, graph={self.graph_name!r})"

    def _call(self, cypher: str, params: dict[str, Any], *, read_only: bool):
        if not self._finalizer.alive:
            raise GraphStoreError(f"{self!r} is closed")
        text = inline_params(cypher, params)
        try:
            if read_only:
                return self._graph.ro_query(text, timeout=self._query_timeout)
            return self._graph.query(text)
        except self._redis_errors as e:
            if "empty key" in str(e):
                raise GraphStoreError(
                    f"no graph {self.graph_name!r} on FalkorDB at {_safe(self.uri)}; write one "
                    "with `lgrec graph export --uri URI --database NAME`"
                ) from e
            if read_only and "RO_QUERY" in str(e).upper():
                raise WriteQueryError(
                    f"query() is read-only and FalkorDB refused a write in {cypher[:120]!r}: "
                    f"{e}; pass write=True to run it"
                ) from e
            raise GraphStoreError(f"FalkorDB rejected {cypher[:200]!r}: {e}") from e

    def _rows(self, result: Any) -> list[dict[str, Any]]:
        cols = [name for _, name in result.header]
        return [{c: _plain(v) for c, v in zip(cols, row)} for row in result.result_set]

    def _run(self, cypher: str, params: dict[str, Any], *, write: bool) -> list[dict[str, Any]]:
        with self._lock:
            return self._rows(self._call(cypher, params, read_only=False))

    def _run_read_only(self, cypher: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        with self._lock:
            return self._rows(self._call(cypher, params, read_only=True))

    def create_schema(self) -> None:
        with self._lock:
            falkordb_indexes(self._run)

    def _bulk_load(self, tables: GraphTables, batch_size: int) -> None:
        with self._lock:
            for n, (name, text, _) in enumerate(table_batches(tables, batch_size, MAX_BYTES), 1):
                self._call(text, {}, read_only=False)
                log.debug("UNWIND %s: batch %d", name, n)

    def interactions_coo(self) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            found = self._rows(self._call(COO_BY_USER, {}, read_only=True))
        return coo_from_user_lists(found)

    def close(self) -> None:
        with self._lock:
            self._finalizer()


def _safe(uri: str) -> str:
    """``uri`` without its password (for messages and logs)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return parts._replace(netloc=user + netloc).geturl()


def _plain(value: Any) -> Any:
    """FalkorDB values as plain Python: nodes/edges → property dicts, paths →
    ``{"nodes": [...], "rels": [...]}``, lists and maps recursively."""
    from falkordb import Edge, Node, Path

    if isinstance(value, Node | Edge):
        return {k: _plain(v) for k, v in value.properties.items()}
    if isinstance(value, Path):
        nodes, rels = value.nodes(), value.edges()
        return {"nodes": [_plain(n) for n in nodes], "rels": [_plain(r) for r in rels]}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
