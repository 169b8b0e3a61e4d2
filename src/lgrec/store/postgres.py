"""Durable feedback store in PostgreSQL (psycopg 3), shared by servers on several machines.

Same interface and guarantees as the SQLite :class:`~lgrec.store.feedback.FeedbackStore`
(:class:`~lgrec.store.base.FeedbackStoreProtocol`), selected by a URL:
``lgrec serve --store postgresql://user@host:5432/db``.

* **Password** — never in the URL (refused, so it cannot leak through a command line or a
  process list): libpq reads it from ``PGPASSWORD`` or a password file (``PGPASSFILE``,
  ``~/.pgpass``, or ``passfile=`` in the URL's query).
* **Tables** — ``lgrec_events``, ``lgrec_users``, ``lgrec_items``, ``lgrec_tombstones`` and
  ``lgrec_schema`` (the schema version, upgraded by :func:`migrate` when the store is opened)
  in the connection's ``search_path``; pick a PostgreSQL schema with
  ``?options=-csearch_path%3Dname``.
* **Erasure** — :meth:`~PostgresFeedbackStore.delete_user` deletes a user's events and record
  and adds a tombstone in one transaction, like the SQLite store
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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd

from lgrec.errors import AlreadyExistsError, ConfigError, DataError, StoreUnavailableError
from lgrec.store.pg_setup import LOCK_CLASS, check_url, import_psycopg, migrate, safe_location
from lgrec.store.records import (
    EVENT_COLUMNS,
    EventRow,
    check_id,
    check_replay,
    events_frame,
    to_json,
    validate_event,
    validate_events,
)

log = logging.getLogger(__name__)

_NOW = "extract(epoch from clock_timestamp())"  # the database server's clock, in seconds


class PostgresFeedbackStore:
    """Events, users and items in a PostgreSQL database (module docstring: durability,
    watermark, password, connections).

    Args:
        url: ``postgresql://user@host:port/dbname[?param=value…]`` without a password.
        pool_size: most connections this object opens (threads wait for a free one).
        timeout: seconds to wait for a connection (from the pool, or to the server at start)
            before :class:`~lgrec.errors.StoreUnavailableError`.
    """

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

    def _read(self, sql: str, args: Sequence[Any] = (), *, row_factory: Any = None) -> list:
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

    def __enter__(self) -> PostgresFeedbackStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- events ------------------------------------------------------------------------
    def add_event(
        self,
        user_id: str,
        item_id: str,
        event: str,
        value: float | None = None,
        ts: float | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[int, bool]:
        """Store one event durably; return ``(id, created)`` (``created=False`` and the first
        event's id for a replayed ``idempotency_key``; a key reused for another event raises
        :class:`~lgrec.errors.ConflictError`). Invalid input raises :class:`DataError`; both
        store nothing."""
        row = validate_event(user_id, item_id, event, value, ts, idempotency_key, where="add_event")
        with self._write() as conn:
            _refuse_erased(conn, row[0])
            return _insert(conn, row)

    def add_events(self, events: Iterable[Mapping[str, Any]]) -> list[tuple[int, bool]]:
        """Store many events in one transaction (all validated first); ``(id, created)`` each."""
        rows = validate_events(events)
        if not rows:
            return []
        with self._write() as conn:
            for uid in {row[0] for row in rows}:
                _refuse_erased(conn, uid)
            return [_insert(conn, row) for row in rows]

    def events(
        self, since_id: int = 0, user_id: str | None = None, limit: int | None = None
    ) -> pd.DataFrame:
        """Events with ``id > since_id`` (optionally of one user), oldest first."""
        return events_frame(self.event_rows(since_id, user_id, limit, EVENT_COLUMNS))

    def event_rows(
        self,
        since_id: int = 0,
        user_id: str | None = None,
        limit: int | None = None,
        columns: Sequence[str] = ("id", "user_id", "item_id", "event", "value"),
    ) -> list[tuple]:
        """Plain tuples of ``columns`` for events with ``id > since_id``, oldest first."""
        bad = [c for c in columns if c not in EVENT_COLUMNS]
        if bad:
            raise DataError(f"event_rows: unknown column(s) {bad}; expected {list(EVENT_COLUMNS)}")
        sql = f"SELECT {', '.join(columns)} FROM lgrec_events WHERE id > %s"
        args: list[Any] = [int(since_id)]
        if user_id is not None:
            sql += " AND user_id = %s"
            args.append(str(user_id))
        sql += " ORDER BY id LIMIT %s"
        args.append(None if limit is None else int(limit))
        return self._read(sql, args)

    def get_event(self, event_id: int) -> dict[str, Any] | None:
        """The stored event with this id (columns of :meth:`events`), or None."""
        sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM lgrec_events WHERE id = %s"
        rows = self._dicts(sql, (int(event_id),))
        return rows[0] if rows else None

    def count(self, user_id: str | None = None) -> int:
        """Number of stored events (of one user when given)."""
        if user_id is None:
            return int(self._read("SELECT count(*) FROM lgrec_events")[0][0])
        sql = "SELECT count(*) FROM lgrec_events WHERE user_id = %s"
        return int(self._read(sql, (str(user_id),))[0][0])

    def watermarks(self) -> tuple[int, int, int, int]:
        """``(max event id, max users seq, max items seq, max tombstones seq)`` in one read of
        four indexes."""
        row = self._read(
            "SELECT (SELECT max(id) FROM lgrec_events), (SELECT max(seq) FROM lgrec_users), "
            "(SELECT max(seq) FROM lgrec_items), (SELECT max(seq) FROM lgrec_tombstones)"
        )[0]
        return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0), int(row[3] or 0)

    # ---- erasure (lgrec.privacy.tombstones) ----------------------------------------------
    def delete_user(self, user_id: str) -> dict[str, int]:
        """Erase a user in one transaction (same contract as the SQLite store's
        :meth:`~lgrec.privacy.store.ErasureStoreMixin.delete_user`)."""
        from lgrec.privacy.tombstones import tombstone_hash

        uid = str(user_id)
        if not uid.strip():
            raise DataError(f"delete_user: user_id must be a non-empty string, got {user_id!r}")
        with self._write() as conn:
            n_ev = conn.execute("DELETE FROM lgrec_events WHERE user_id = %s", (uid,)).rowcount
            n_user = conn.execute("DELETE FROM lgrec_users WHERE user_id = %s", (uid,)).rowcount
            new = conn.execute(
                "INSERT INTO lgrec_tombstones (user_hash, erased_at) "
                f"VALUES (%s, {_NOW}) ON CONFLICT (user_hash) DO NOTHING",
                (tombstone_hash(uid),),
            ).rowcount
        log.info("feedback store %s: erased a user (%d events)", self.location, n_ev)
        return {"events": int(n_ev), "user": int(n_user), "tombstone": int(new)}

    def tombstones(self) -> frozenset[str]:
        """Hashes of every erased user id."""
        return frozenset(r[0] for r in self._read("SELECT user_hash FROM lgrec_tombstones"))

    def is_erased(self, user_id: str) -> bool:
        """Whether ``user_id`` has a tombstone."""
        from lgrec.privacy.tombstones import tombstone_hash

        return bool(self._read(_TOMB_SQL, (tombstone_hash(str(user_id)),)))

    # ---- users and items ---------------------------------------------------------------
    def add_user(
        self,
        user_id: str,
        text: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        *,
        exist_ok: bool = True,
    ) -> bool:
        """Insert or update a user; True when new (an update keeps ``created_at``).
        ``exist_ok=False``: a known id raises :class:`AlreadyExistsError` and changes nothing."""
        uid = check_id(user_id, "user_id", "add_user")
        attrs = to_json(dict(attributes or {}), "attributes", "add_user")
        sql = (
            "INSERT INTO lgrec_users (user_id, text, created_at, attributes) "
            f"VALUES (%s, %s, {_NOW}, %s::jsonb) ON CONFLICT (user_id) "
        )
        update = "DO UPDATE SET text = excluded.text, attributes = excluded.attributes"
        with self._write() as conn:
            _refuse_erased(conn, uid)
            known = conn.execute("SELECT 1 FROM lgrec_users WHERE user_id = %s", (uid,)).fetchone()
            _upsert(conn, sql, update, (uid, text, attrs), exist_ok, f"user {uid!r}")
            return known is None

    def add_item(
        self,
        item_id: str,
        title: str | None = None,
        description: str | None = None,
        categories: Sequence[str] | None = None,
        *,
        exist_ok: bool = True,
    ) -> bool:
        """Insert or update an item; True when new (``exist_ok=False`` as in :meth:`add_user`)."""
        iid = check_id(item_id, "item_id", "add_item")
        if isinstance(categories, str):
            raise DataError("add_item: categories must be a list of strings, not one string")
        cats = to_json([str(c) for c in categories or ()], "categories", "add_item")
        sql = (
            "INSERT INTO lgrec_items (item_id, title, description, categories, created_at) "
            f"VALUES (%s, %s, %s, %s::jsonb, {_NOW}) ON CONFLICT (item_id) "
        )
        update = (
            "DO UPDATE SET title = excluded.title, description = excluded.description, "
            "categories = excluded.categories"
        )
        with self._write() as conn:
            known = conn.execute("SELECT 1 FROM lgrec_items WHERE item_id = %s", (iid,)).fetchone()
            _upsert(conn, sql, update, (iid, title, description, cats), exist_ok, f"item {iid!r}")
            return known is None

    def get_user(self, user_id: str) -> dict[str, Any] | None:
        """The user as a dict (``attributes`` decoded), or None when unknown."""
        rows = self._dicts(f"{_USER_SELECT} WHERE user_id = %s", (str(user_id),))
        return rows[0] if rows else None

    def get_item(self, item_id: str) -> dict[str, Any] | None:
        """The item as a dict (``categories`` decoded), or None when unknown."""
        rows = self._dicts(f"{_ITEM_SELECT} WHERE item_id = %s", (str(item_id),))
        return rows[0] if rows else None

    def list_users(self, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """Users ordered by id, byte-wise like SQLite (``limit``/``offset`` page through)."""
        sql = f'{_USER_SELECT} ORDER BY user_id COLLATE "C" LIMIT %s OFFSET %s'
        return self._dicts(sql, (None if limit is None else int(limit), int(offset)))

    def list_items(self, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """Items ordered by id, byte-wise like SQLite (``limit``/``offset`` page through)."""
        sql = f'{_ITEM_SELECT} ORDER BY item_id COLLATE "C" LIMIT %s OFFSET %s'
        return self._dicts(sql, (None if limit is None else int(limit), int(offset)))

    def _dicts(self, sql: str, args: Sequence[Any]) -> list[dict[str, Any]]:
        from psycopg.rows import dict_row

        return self._read(sql, args, row_factory=dict_row)


_USER_SELECT = "SELECT user_id, text, created_at, attributes FROM lgrec_users"
_ITEM_SELECT = "SELECT item_id, title, description, categories, created_at FROM lgrec_items"
_TOMB_SQL = "SELECT 1 FROM lgrec_tombstones WHERE user_hash = %s"


def _refuse_erased(conn: Any, user_id: str) -> None:
    """:class:`~lgrec.privacy.tombstones.ErasedUserError` when ``user_id`` has a tombstone."""
    from lgrec.privacy.tombstones import ErasedUserError, tombstone_hash

    if conn.execute(_TOMB_SQL, (tombstone_hash(user_id),)).fetchone() is not None:
        raise ErasedUserError(
            f"user {user_id!r} was erased (right to be forgotten); its id cannot be used again"
        )


def _configure(conn: Any) -> None:
    """Per new pooled connection: make sure a COMMIT waits for the WAL flush."""
    if conn.execute("SHOW synchronous_commit").fetchone()[0] == "off":
        conn.execute("SET synchronous_commit = on")


def _upsert(conn: Any, sql: str, update: str, row: tuple, exist_ok: bool, what: str) -> None:
    """``sql`` (an ``INSERT … ON CONFLICT (key)``) then ``update``, or with ``exist_ok=False``
    ``DO NOTHING``: no row inserted means the key exists (:class:`AlreadyExistsError`)."""
    if exist_ok:
        conn.execute(sql + update, row)
    elif conn.execute(sql + "DO NOTHING", row).rowcount == 0:
        raise AlreadyExistsError(f"{what} already exists")


def _insert(conn: Any, row: EventRow) -> tuple[int, bool]:
    """Insert one validated event row (under the writer lock); ``(id, created)``. A stored key
    must be a true replay (:func:`~lgrec.store.records.check_replay`)."""
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
        "SELECT id, user_id, item_id, event, value, ts FROM lgrec_events WHERE idempotency_key = %s"
    )
    first = conn.cursor(row_factory=dict_row).execute(sql, (row.idempotency_key,)).fetchone()
    check_replay(first, row)
    return int(first["id"]), False
