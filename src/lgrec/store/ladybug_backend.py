"""Embedded graph store on LadybugDB (PyPI ``ladybug``, the maintained fork of Kùzu).

The database lives in a directory (``<path>/graph.lbug`` plus its write-ahead log). Node
and relationship tables are typed (see :data:`SCHEMA`); bulk loading writes each table to a
Parquet file and runs ``COPY <table> FROM '<file>'``, which loads MovieLens-1M (one million
interactions) in seconds.

One process may open a directory read-write at a time (LadybugDB holds a file lock).

Read-only is LadybugDB's: a store opened with ``read_only=True`` is a read-only database, and
:meth:`~lgrec.store.GraphStore.query` on a writable one runs in a ``BEGIN TRANSACTION READ
ONLY`` transaction; either way the engine refuses every write. The statement is always
prepared (one statement, never a ``;``-separated script that could end the transaction).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lgrec.errors import ConfigError, DataError
from lgrec.store.cypher_text import tables_in_order
from lgrec.store.graphdb import (
    COO_QUERY,
    GraphStore,
    GraphStoreError,
    GraphTables,
    WriteQueryError,
    _sorted_pairs,
)

log = logging.getLogger(__name__)

SCHEMA = (
    "CREATE NODE TABLE IF NOT EXISTS User(id STRING, idx INT64, PRIMARY KEY(id))",
    "CREATE NODE TABLE IF NOT EXISTS Item("
    "id STRING, idx INT64, title STRING, categories STRING[], PRIMARY KEY(id))",
    "CREATE NODE TABLE IF NOT EXISTS Category(name STRING, PRIMARY KEY(name))",
    "CREATE REL TABLE IF NOT EXISTS INTERACTED_WITH("
    "FROM User TO Item, event STRING, rating DOUBLE, ts DOUBLE)",
    "CREATE REL TABLE IF NOT EXISTS SIMILAR_TO(FROM Item TO Item, score DOUBLE)",
    "CREATE REL TABLE IF NOT EXISTS IN_CATEGORY(FROM Item TO Category)",
    "CREATE REL TABLE IF NOT EXISTS FRIEND(FROM User TO User)",
)

_ARROW_TYPES = {
    "id": pa.string(),
    "idx": pa.int64(),
    "title": pa.string(),
    "categories": pa.list_(pa.string()),
    "name": pa.string(),
    "src": pa.string(),
    "dst": pa.string(),
    "event": pa.string(),
    "rating": pa.float64(),
    "ts": pa.float64(),
    "score": pa.float64(),
}


class LadybugGraphStore(GraphStore):
    """Graph store in a LadybugDB directory.

    Args:
        path: directory of the database (created when absent).
        buffer_pool_size: bytes of page cache (default 1 GiB; LadybugDB's own default is 80%
            of RAM, too greedy on a shared machine). A query that touches more pages than
            this fails with "buffer pool is full": raise it (``--buffer-pool-mb``).
        max_threads: threads per query (0 = all cores).
        read_only: open without write access (several processes may then share it).
        create_schema: create the tables when missing (ignored when ``read_only``).
    """

    backend = "ladybug"

    def __init__(
        self,
        path: str | Path,
        *,
        buffer_pool_size: int = 1 << 30,
        max_threads: int = 0,
        read_only: bool = False,
        create_schema: bool = True,
    ) -> None:
        super().__init__()
        import ladybug

        if int(buffer_pool_size) < 1 << 20:
            raise ConfigError(
                f"LadybugDB buffer pool of {buffer_pool_size} bytes is too small; give ≥ 1 MiB"
            )
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise DataError(f"graph store path {self.path} is a file; expected a directory")
        if read_only and not (self.path / "graph.lbug").exists():  # nothing to read: say so
            raise ConfigError(
                f"{self.path}: no LadybugDB store there (graph.lbug); write one with "
                "`lgrec graph export --path DIR`"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self.read_only = read_only
        try:
            self._db = ladybug.Database(
                str(self.path / "graph.lbug"),
                buffer_pool_size=int(buffer_pool_size),
                max_num_threads=int(max_threads),
                read_only=read_only,
            )
            self._conn = ladybug.Connection(self._db)
        except RuntimeError as e:
            hint = ""
            if "different version" in str(e):  # written by another ladybug (pyproject pin)
                hint = "; it was written by another LadybugDB version: export it again into a "
                hint += "new directory (lgrec graph export --path NEW_DIR)"
            raise GraphStoreError(f"cannot open LadybugDB store in {self.path}: {e}{hint}") from e
        if create_schema and not read_only:
            self.create_schema()

    def __repr__(self) -> str:
        return f"LadybugGraphStore({str(self.path)!r})"

    def create_schema(self) -> None:
        with self._lock:
            for statement in SCHEMA:
                self._run(statement, {}, write=True)

    def _execute(self, cypher: str, params: dict[str, Any]):
        if self._conn is None:
            raise GraphStoreError(f"{self!r} is closed")
        try:
            result = self._conn.execute(cypher, params)
        except (RuntimeError, ValueError, TypeError) as e:
            raise _error(cypher, params, e) from e
        if isinstance(result, list):  # several statements: keep the last result
            for r in result[:-1]:
                r.close()
            result = result[-1]
        return result

    def _run(self, cypher: str, params: dict[str, Any], *, write: bool) -> list[dict[str, Any]]:
        with self._lock:
            result = self._execute(cypher, params)
            try:
                cols = result.get_column_names()
                rows = []
                while result.has_next():
                    rows.append({c: _plain(v) for c, v in zip(cols, result.get_next())})
                return rows
            finally:
                result.close()

    def _run_read_only(self, cypher: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        # with parameters LadybugDB prepares the text, and a prepared statement is exactly
        # one statement: no "...; COMMIT; CREATE ..." can leave the read-only transaction
        one = {**params, _ONE_STATEMENT: 0}
        with self._lock:
            if self.read_only:
                return self._run(cypher, one, write=False)
            self._run("BEGIN TRANSACTION READ ONLY", {}, write=False)
            try:
                return self._run(cypher, one, write=False)
            finally:
                self._rollback()

    def _rollback(self) -> None:
        """End the read-only transaction (a failed statement has already ended it)."""
        try:
            self._run("ROLLBACK", {}, write=False)
        except GraphStoreError as e:
            if "No active transaction" not in str(e):
                raise

    def _bulk_load(self, tables: GraphTables, batch_size: int) -> None:
        with self._lock, tempfile.TemporaryDirectory(dir=self.path, prefix=".load-") as tmp:
            for name, df in tables_in_order(tables):
                if not len(df):
                    continue
                schema = pa.schema([(c, _ARROW_TYPES[c]) for c in df.columns])
                file = Path(tmp) / f"{name}.parquet"
                if "'" in file.as_posix():
                    raise DataError(f"load_dataset: the store path {file} must not contain a quote")
                table = pa.Table.from_pandas(df, schema=schema, preserve_index=False)
                pq.write_table(table, file, row_group_size=batch_size)
                self._run(f"COPY {name} FROM '{file.as_posix()}'", {}, write=True)
                log.debug("COPY %s: %d rows", name, len(df))

    def interactions_coo(self) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            result = self._execute(COO_QUERY, {})
            try:
                table = result.get_as_arrow()
            finally:
                result.close()
        u = table.column("u").to_numpy().astype(np.int64, copy=False)
        i = table.column("i").to_numpy().astype(np.int64, copy=False)
        return _sorted_pairs(u, i)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._db.close()
                self._conn = None


_ONE_STATEMENT = "_lgrec_one_statement"
"""An unused parameter that makes LadybugDB prepare (and so parse as one statement) a query."""


def _error(cypher: str, params: dict[str, Any], e: Exception) -> Exception:
    """LadybugDB's exception as lgrec's: refused writes, scripts, parameter type mismatches."""
    msg = str(e)
    if "read-only" in msg:
        return WriteQueryError(
            f"query() is read-only and LadybugDB refused a write in {cypher[:120]!r}: {msg}; "
            "pass write=True to a store opened for writing to run it"
        )
    if "prepare multiple statements" in msg:
        return DataError(f"query() takes one statement, got several: {cypher[:120]!r}")
    numeric = sorted(k for k, v in params.items() if isinstance(v, int | float) and k[0] != "_")
    if "Conversion exception" in msg and numeric:
        return DataError(
            f"LadybugDB could not compare a property with the numeric parameter(s) {numeric} "
            f"in {cypher[:120]!r} ({msg}): lgrec's ids (User.id, Item.id, Category.name) are "
            "strings; pass them as strings (--param name:str=VALUE)"
        )
    if "buffer pool is full" in msg:
        return GraphStoreError(
            f"LadybugDB ran out of its buffer pool on {cypher[:120]!r} ({msg}); give it more "
            "page cache (--buffer-pool-mb, buffer_pool_size)"
        )
    return GraphStoreError(f"LadybugDB rejected {cypher[:200]!r}: {msg}")


def _plain(value: Any) -> Any:
    """LadybugDB values as plain Python: nodes/relationships → property dicts, paths →
    ``{"nodes": [...], "rels": [...]}`` (internal ``_ID``/``_LABEL`` keys dropped)."""
    if isinstance(value, dict):
        if "_NODES" in value and "_RELS" in value:
            return {
                "nodes": [_plain(n) for n in value["_NODES"]],
                "rels": [_plain(r) for r in value["_RELS"]],
            }
        if "_LABEL" in value and "_ID" in value:
            return {
                k: _plain(v) for k, v in value.items() if not k.startswith("_") and v is not None
            }
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
