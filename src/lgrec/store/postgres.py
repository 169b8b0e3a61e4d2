"""Durable feedback store in PostgreSQL (psycopg 3), shared by servers on several machines.

Same interface, guarantees and logic as the SQLite :class:`~lgrec.store.feedback.FeedbackStore`
(both are :class:`~lgrec.store.template.FeedbackStoreBase`; this module supplies PostgreSQL's
connections, transactions and SQL dialect), selected by a URL:
``lgrec serve --store postgresql://user@host:5432/db``.

* **Password** — never in the URL (refused, so it cannot leak through a command line or a
  process list): libpq reads it from ``PGPASSWORD`` or a password file (``PGPASSFILE``,
  ``~/.pgpass``, or ``passfile=`` in the URL's query).
* **Tables** — ``lgrec_events``, ``lgrec_users``, ``lgrec_items``, ``lgrec_tombstones`` and
  ``lgrec_schema`` (the schema version, upgraded by :func:`migrate` when the store is opened)
  in the connection's ``search_path``; pick a PostgreSQL schema with
  ``?options=-csearch_path%3Dname``.
* **Erasure** — ``delete_user`` deletes a user's events and record and adds a tombstone in
  one transaction, like the SQLite store
  (:mod:`lgrec.privacy.tombstones`); the deleted rows stay in PostgreSQL's dead tuples and
  write-ahead log until ``VACUUM`` and WAL recycling remove them (the SQLite store overwrites
  them at once with ``secure_delete``).
* **Durability** — every write is one transaction; ``COMMIT`` returns after the write-ahead
  log is flushed (``synchronous_commit`` is raised to ``on`` for this session when the
  server's default is ``off``), so an acknowledged event survives ``kill -9`` of any client
  and a crash of the database server.
* **Watermark** — ids come from an identity column, and a sequence hands out ids in call order
  but transactions may commit in another order: a reader that saw id 6 committed could later
  find id 5. So every write transaction first takes a transaction-level advisory lock (one per
  events table) and draws its ids inside it: writers commit one at a time, ids become visible
  in id order, and "apply every event with ``id > last``" misses none — the guarantee the
  server's fold-in (:mod:`lgrec.serve.sync`) relies on. Reads take no lock.
* **Connections** — a :class:`psycopg_pool.ConnectionPool` (thread-safe; a FastAPI thread
  pool shares one store). A database that cannot be reached raises
  :class:`~lgrec.errors.StoreUnavailableError` (HTTP 503) and makes the pool check its idle
  connections; reads are then retried once on a fresh connection, writes are not (their
  outcome is unknown: the client retries with its idempotency key).
* **Errors** — the SQLite store's contract (:mod:`lgrec.store.feedback`): invalid input is
  :class:`~lgrec.errors.DataError` (:mod:`lgrec.store.records` validates for both); a create
  of a known id (``exist_ok=False``) is :class:`~lgrec.errors.AlreadyExistsError`, decided by
  the primary key (``ON CONFLICT DO NOTHING``), so of concurrent creators on any number of
  servers exactly one succeeds; an idempotency key reused for another event is
  :class:`~lgrec.errors.ConflictError`; a closed store or a failing database is
  :class:`~lgrec.errors.StoreUnavailableError`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from lgrec.errors import ConfigError, StoreUnavailableError
from lgrec.store.dialect import Dialect
from lgrec.store.pg_setup import LOCK_CLASS, check_url, import_psycopg, migrate, safe_location
from lgrec.store.records import EventRow, check_replay
from lgrec.store.template import FeedbackStoreBase

log = logging.getLogger(__name__)

_NOW = "extract(epoch from clock_timestamp())"  # the database server's clock, in seconds


class PostgresFeedbackStore(FeedbackStoreBase):
    """Events, users and items in a PostgreSQL database (module docstring: durability,
    watermark, password, connections).

    Args:
        url: ``postgresql://user@host:port/dbname[?param=value…]`` without a password.
        pool_size: most connections this object opens (threads wait for a free one).
        timeout: seconds to wait for a connection (from the pool, or to the server at start)
            before :class:`~lgrec.errors.StoreUnavailableError`.
    """

    dialect = Dialect(
        mark="%s",
        prefix="lgrec_",
        json_mark="%s::jsonb",
        now=_NOW,
        seq="seq",
        collate=' COLLATE "C"',
        all_rows=None,
    )

    def __init__(self, url: str, *, pool_size: int = 8, timeout: float = 10.0) -> None:
        psycopg = import_psycopg()
        from psycopg_pool import ConnectionPool

        if pool_size < 1:
            raise ConfigError(f"PostgresFeedbackStore(pool_size={pool_size!r}): expected ≥ 1")
        check_url(url)
        self.url = url
        self.location = safe_location(url)
        self.timeout = timeout
        kwargs = {"autocommit": True, "application_name": "lgrec", "connect_timeout": 10}
        try:
            with psycopg.connect(url, **kwargs) as conn:
                migrate(conn, self.location)
                oid = conn.execute("SELECT 'lgrec_events'::regclass::oid").fetchone()[0]
        except psycopg.OperationalError as e:
            raise StoreUnavailableError(
                f"feedback store {self.location}: cannot connect: {str(e).strip()}"
            ) from None
        self._lock_key = (LOCK_CLASS << 32) | int(oid)  # one writer lock per events table
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs=kwargs,
            configure=_configure,
            timeout=timeout,
            name="lgrec-feedback",
            open=True,
        )
        self._closed = False

    # ---- connections -------------------------------------------------------------------
    @contextmanager
    def _connection(self) -> Iterator[Any]:
        """A pooled connection; connection failures become :class:`StoreUnavailableError`."""
        psycopg = import_psycopg()
        from psycopg_pool import PoolClosed, PoolTimeout

        if self._closed:
            raise StoreUnavailableError(f"feedback store {self.location} is closed")
        try:
            with self._pool.connection() as conn:
                yield conn
        except (psycopg.DatabaseError, PoolTimeout, PoolClosed) as e:
            if isinstance(e, psycopg.IntegrityError):
                raise  # a constraint the code did not foresee: a bug, not an outage
            if isinstance(e, psycopg.OperationalError) and not self._closed:
                self._pool.check()  # drop the pool's other broken connections (server restart)
            raise StoreUnavailableError(
                f"feedback store {self.location}: {str(e).strip() or type(e).__name__}"
            ) from e

    @contextmanager
    def _write(self) -> Iterator[Any]:
        """One write transaction holding the writer lock (module docstring: watermark)."""
        with self._connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            yield conn

    def _rows(self, sql: str, args: Sequence[Any] = (), *, row_factory: Any = None) -> list:
        """Rows of one query; retried once on a fresh connection when the first one broke."""
        for attempt in (0, 1):
            try:
                with self._connection() as conn:
                    cur = conn.cursor(row_factory=row_factory) if row_factory else conn.cursor()
                    return cur.execute(sql, args).fetchall()
            except StoreUnavailableError:
                if attempt:
                    raise
                log.warning("feedback store %s: connection lost, retrying once", self.location)
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the pool's connections."""
        if not self._closed:
            self._closed = True
            self._pool.close()

    # ---- the primitives of FeedbackStoreBase ----------------------------------------------
    def _after_erasure(self) -> None:
        """Nothing: the deleted rows go with ``VACUUM`` and WAL recycling (module docstring)."""

    def _dicts(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        from psycopg.rows import dict_row

        return self._rows(sql, args, row_factory=dict_row)

    def _insert_event(self, conn: Any, row: EventRow) -> tuple[int, bool]:
        """Insert one validated event row (under the writer lock); ``(id, created)``. A stored
        key must be a true replay (:func:`~lgrec.store.records.check_replay`)."""
        got = conn.execute(
            "INSERT INTO lgrec_events (user_id, item_id, event, value, ts, idempotency_key, "
            f"received_at) VALUES (%s, %s, %s, %s, coalesce(%s::double precision, {_NOW}), %s, "
            f"{_NOW}) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            tuple(row),
        ).fetchone()
        if got is not None:
            return int(got[0]), True
        from psycopg.rows import dict_row

        sql = (
            "SELECT id, user_id, item_id, event, value, ts FROM lgrec_events "
            "WHERE idempotency_key = %s"
        )
        first = conn.cursor(row_factory=dict_row).execute(sql, (row.idempotency_key,)).fetchone()
        check_replay(first, row)
        return int(first["id"]), False


def _configure(conn: Any) -> None:
    """Per new pooled connection: make sure a COMMIT waits for the WAL flush."""
    if conn.execute("SHOW synchronous_commit").fetchone()[0] == "off":
        conn.execute("SET synchronous_commit = on")
