"""The feedback store's logic, written once: :class:`FeedbackStoreBase` implements the whole
store interface (:mod:`lgrec.store.base`: the guarantees) as template methods over a few
primitives each backend supplies — a write transaction, reads of tuples and of dicts, the event
insert — and the SQL dialect in which the backends differ (:mod:`lgrec.store.dialect`).
Validation, idempotency, erasure and the refusal of erased users, the users/items upserts and
every read are therefore the same code for SQLite, SQLCipher and PostgreSQL.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from functools import wraps
from typing import Any

import pandas as pd

from lgrec.errors import AlreadyExistsError, DataError
from lgrec.store.dialect import (
    COLUMNS,
    FIELDS,
    JSON_FIELDS,
    Dialect,
    decoded,
    excluded,
    watermarks_sql,
)
from lgrec.store.records import (
    EVENT_COLUMNS,
    EventRow,
    check_id,
    event_query,
    events_frame,
    to_json,
    validate_event,
    validate_events,
)

log = logging.getLogger(__name__)


def guarded(method: Callable) -> Callable:
    """Run a store method with its backend's fault mapping: an error of type
    ``self._fault_types`` becomes ``self._fault(error)`` (a
    :class:`~lgrec.errors.StoreUnavailableError` naming the store), or passes unchanged when
    that returns ``None``. Costs nothing when no error is raised."""

    @wraps(method)
    def wrapped(self: FeedbackStoreBase, *args: Any, **kw: Any) -> Any:
        try:
            return method(self, *args, **kw)
        except self._fault_types as e:
            fault = self._fault(e)
            if fault is None:
                raise
            raise fault from e

    return wrapped


class FeedbackStoreBase(ABC):
    """What the server, ``lgrec retrain`` and the tests use of a feedback store (the
    guarantees: :mod:`lgrec.store.base`), implemented once over the backend's primitives.

    ``watermarks`` is ``(max event id, max users seq, max items seq, max tombstones seq)``;
    the last three grow with every new user, item and erased user (``delete_user``,
    ``tombstones``, ``is_erased``: :mod:`lgrec.privacy.tombstones`).
    """

    location: str
    """Where the data lives, for messages and logs (a file path, or a URL without password)."""
    dialect: Dialect
    _fault_types: tuple[type[BaseException], ...] = ()
    """Driver errors :func:`guarded` hands to :meth:`_fault` (none: the backend maps its own)."""

    # ---- what a backend supplies ---------------------------------------------------------
    @abstractmethod
    def _write(self) -> AbstractContextManager[Any]:
        """One write transaction under the store's writer lock; yields the connection."""

    @abstractmethod
    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        """The rows of one read query as plain tuples."""

    @abstractmethod
    def _dicts(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """The rows of one read query as dicts (column → value)."""

    @abstractmethod
    def _insert_event(self, conn: Any, row: EventRow) -> tuple[int, bool]:
        """Insert a validated event in the open write transaction: ``(id, True)``, or for a
        stored idempotency key ``(its id, False)`` after
        :func:`~lgrec.store.records.check_replay`."""

    @abstractmethod
    def close(self) -> None:
        """Close the store's connections; later calls raise StoreUnavailableError."""

    @abstractmethod
    def _after_erasure(self) -> None:
        """What the database needs once :meth:`delete_user` committed."""

    def _fault(self, error: BaseException) -> BaseException | None:
        """The error to raise for a driver ``error`` (:func:`guarded`); ``None``: re-raise it."""
        return None

    def __enter__(self) -> FeedbackStoreBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- events --------------------------------------------------------------------------
    @guarded
    def add_event(
        self,
        user_id: str,
        item_id: str,
        event: str,
        value: float | None = None,
        ts: float | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[int, bool]:
        """Store one event durably; return ``(id, created)``.

        A repeated ``idempotency_key`` stores nothing and returns the id of the first event
        with that key and ``created=False`` (a key reused for another event raises
        :class:`~lgrec.errors.ConflictError`). Invalid input raises :class:`DataError`, an
        erased user :class:`~lgrec.privacy.tombstones.ErasedUserError`; both store nothing.
        """
        row = validate_event(user_id, item_id, event, value, ts, idempotency_key, where="add_event")
        with self._write() as conn:
            self._refuse_erased(conn, row.user_id)
            return self._insert_event(conn, row)

    @guarded
    def add_events(self, events: Iterable[Mapping[str, Any]]) -> list[tuple[int, bool]]:
        """Store many events in one transaction; return ``(id, created)`` for each.

        Each mapping has the keyword arguments of :meth:`add_event`. Every event is validated
        before anything is written: one bad event (or key conflict) rejects the whole call.
        """
        rows = validate_events(events)
        if not rows:
            return []
        with self._write() as conn:
            for uid in {row.user_id for row in rows}:
                self._refuse_erased(conn, uid)
            return [self._insert_event(conn, row) for row in rows]

    def events(
        self, since_id: int = 0, user_id: str | None = None, limit: int | None = None
    ) -> pd.DataFrame:
        """Events with ``id > since_id`` (optionally of one user), oldest first.

        Columns: ``id, user_id, item_id, event, value, ts, idempotency_key, received_at``.
        """
        return events_frame(self.event_rows(since_id, user_id, limit, EVENT_COLUMNS))

    @guarded
    def event_rows(
        self,
        since_id: int = 0,
        user_id: str | None = None,
        limit: int | None = None,
        columns: Sequence[str] = ("id", "user_id", "item_id", "event", "value"),
    ) -> list[tuple]:
        """Like :meth:`events` but plain tuples of ``columns``, oldest first: the fast path
        for a server applying a few new events per request (no DataFrame)."""
        d = self.dialect
        return self._rows(
            *event_query(d.table("events"), d.mark, since_id, user_id, limit, columns)
        )

    @guarded
    def get_event(self, event_id: int) -> dict[str, Any] | None:
        """The stored event with this id (columns of :meth:`events`), or None."""
        d = self.dialect
        sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM {d.table('events')} WHERE id = {d.mark}"
        rows = self._dicts(sql, (int(event_id),))
        return rows[0] if rows else None

    @guarded
    def count(self, user_id: str | None = None) -> int:
        """Number of stored events (of one user when given)."""
        d = self.dialect
        sql = f"SELECT count(*) FROM {d.table('events')}"
        if user_id is None:
            return int(self._rows(sql)[0][0])
        return int(self._rows(f"{sql} WHERE user_id = {d.mark}", (str(user_id),))[0][0])

    @guarded
    def watermarks(self) -> tuple[int, int, int, int]:
        """``(max event id, max users seq, max items seq, max tombstones seq)`` in one read of
        four indexes (microseconds); they only grow (only an erasure deletes rows, and it adds
        a tombstone)."""
        row = self._rows(watermarks_sql(self.dialect))[0]
        return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0), int(row[3] or 0)

    # ---- erased users (lgrec.privacy.tombstones) -------------------------------------------
    @guarded
    def delete_user(self, user_id: str) -> dict[str, int]:
        """Erase a user: delete their events and record and add their tombstone, in one
        transaction; return ``{"events": n deleted, "user": 0/1, "tombstone": 1 new / 0 old}``.
        Idempotent; afterwards the store refuses this id (:meth:`_refuse_erased`)."""
        from lgrec.privacy.tombstones import tombstone_hash

        uid = str(user_id)
        if not uid.strip():
            raise DataError(f"delete_user: user_id must be a non-empty string, got {user_id!r}")
        d = self.dialect
        args = (tombstone_hash(uid), time.time()) if d.now is None else (tombstone_hash(uid),)
        with self._write() as conn:
            n = [
                conn.execute(f"DELETE FROM {d.table(t)} WHERE user_id = {d.mark}", (uid,)).rowcount
                for t in ("events", "users")
            ]
            new = conn.execute(
                f"INSERT INTO {d.table('tombstones')} (user_hash, erased_at) VALUES "
                f"({d.mark}, {d.now or d.mark}) ON CONFLICT (user_hash) DO NOTHING",
                args,
            ).rowcount
        self._after_erasure()
        log.info("feedback store %s: erased a user (%d events)", self.location, n[0])
        return {"events": int(n[0]), "user": int(n[1]), "tombstone": int(new)}

    def _tombstone_sql(self) -> str:
        d = self.dialect
        return f"SELECT 1 FROM {d.table('tombstones')} WHERE user_hash = {d.mark}"

    def _refuse_erased(self, conn: Any, user_id: str) -> None:
        """:class:`~lgrec.privacy.tombstones.ErasedUserError` when ``user_id`` has a tombstone."""
        from lgrec.privacy.tombstones import ErasedUserError, tombstone_hash

        if conn.execute(self._tombstone_sql(), (tombstone_hash(user_id),)).fetchone() is not None:
            raise ErasedUserError(
                f"user {user_id!r} was erased (right to be forgotten); its id cannot be used again"
            )

    @guarded
    def tombstones(self) -> frozenset[str]:
        """Hashes of every erased user id (:func:`lgrec.privacy.tombstones.tombstone_hash`)."""
        return frozenset(
            r[0] for r in self._rows(f"SELECT user_hash FROM {self.dialect.table('tombstones')}")
        )

    @guarded
    def is_erased(self, user_id: str) -> bool:
        """Whether ``user_id`` has a tombstone."""
        from lgrec.privacy.tombstones import tombstone_hash

        return bool(self._rows(self._tombstone_sql(), (tombstone_hash(str(user_id)),)))

    # ---- users and items -----------------------------------------------------------------
    @guarded
    def add_user(
        self,
        user_id: str,
        text: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        *,
        exist_ok: bool = True,
    ) -> bool:
        """Insert a user, or update a known one; return True when the user is new.

        ``attributes`` must be JSON-serialisable; an update keeps ``created_at``. With
        ``exist_ok=False`` a known id raises :class:`AlreadyExistsError` and changes nothing:
        the table's primary key decides, so of concurrent creators (threads, processes or
        servers) exactly one succeeds. An erased id is refused.
        """
        uid = check_id(user_id, "user_id", "add_user")
        attrs = to_json(dict(attributes or {}), "attributes", "add_user")
        with self._write() as conn:
            self._refuse_erased(conn, uid)
            return self._upsert(conn, "user", (uid, text, attrs), exist_ok)

    @guarded
    def add_item(
        self,
        item_id: str,
        title: str | None = None,
        description: str | None = None,
        categories: Sequence[str] | None = None,
        *,
        exist_ok: bool = True,
    ) -> bool:
        """Insert an item, or update a known one; return True when the item is new
        (``exist_ok=False``: a known id raises :class:`AlreadyExistsError`, as in
        :meth:`add_user`)."""
        iid = check_id(item_id, "item_id", "add_item")
        if isinstance(categories, str):
            raise DataError("add_item: categories must be a list of strings, not one string")
        cats = to_json([str(c) for c in categories or ()], "categories", "add_item")
        with self._write() as conn:
            return self._upsert(conn, "item", (iid, title, description, cats), exist_ok)

    def _upsert(self, conn: Any, kind: str, row: tuple, exist_ok: bool) -> bool:
        """Insert ``row`` (the values of the ``kind``'s fields) with ``created_at`` now, or
        update a known key's fields (``exist_ok``; ``created_at`` kept) or refuse it
        (:class:`AlreadyExistsError`, decided by the primary key). True when the key was new."""
        d = self.dialect
        key, *fields = FIELDS[kind]
        table = d.table(kind + "s")
        known = conn.execute(f"SELECT 1 FROM {table} WHERE {key} = {d.mark}", row[:1]).fetchone()
        marks = [d.json_mark if f in JSON_FIELDS else d.mark for f in FIELDS[kind]]
        args = (*row, time.time()) if d.now is None else row
        sql = (
            f"INSERT INTO {table} ({key}, {', '.join(fields)}, created_at) "
            f"VALUES ({', '.join(marks)}, {d.now or d.mark}) ON CONFLICT ({key}) "
        )
        if exist_ok:
            conn.execute(sql + "DO UPDATE SET " + excluded(fields), args)
        elif conn.execute(sql + "DO NOTHING", args).rowcount == 0:
            raise AlreadyExistsError(f"{kind} {row[0]!r} already exists")
        return known is None

    @guarded
    def get_user(self, user_id: str) -> dict[str, Any] | None:
        """The user as a dict (``attributes`` decoded), or None when unknown."""
        return self._get("user", user_id)

    @guarded
    def get_item(self, item_id: str) -> dict[str, Any] | None:
        """The item as a dict (``categories`` decoded), or None when unknown."""
        return self._get("item", item_id)

    @guarded
    def list_users(self, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """Users ordered by id, byte-wise (``limit``/``offset`` page through them)."""
        return self._list("user", limit, offset)

    @guarded
    def list_items(self, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """Items ordered by id, byte-wise (``limit``/``offset`` page through them)."""
        return self._list("item", limit, offset)

    def _select(self, kind: str) -> str:
        return f"SELECT {', '.join(COLUMNS[kind])} FROM {self.dialect.table(kind + 's')}"

    def _get(self, kind: str, key: str) -> dict[str, Any] | None:
        sql = f"{self._select(kind)} WHERE {kind}_id = {self.dialect.mark}"
        rows = self._dicts(sql, (str(key),))
        return decoded(rows[0]) if rows else None

    def _list(self, kind: str, limit: int | None, offset: int) -> list[dict[str, Any]]:
        d = self.dialect
        sql = f"{self._select(kind)} ORDER BY {kind}_id{d.collate} LIMIT {d.mark} OFFSET {d.mark}"
        n = d.all_rows if limit is None else int(limit)
        return [decoded(r) for r in self._dicts(sql, (n, int(offset)))]
