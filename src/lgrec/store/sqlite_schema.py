"""SQLite plumbing of the feedback store: the schema and its migrations, the writers' lock,
the statement that inserts an event.

* The schema is versioned with ``PRAGMA user_version``; :func:`migrate` runs the pending
  migrations of :data:`MIGRATIONS` in one transaction when a file is opened.
* Writers of every process queue on an ``flock`` of ``<file>.lock`` (:func:`open_lock_file`,
  :func:`flocked`), so a waiting writer wakes the moment the lock is released instead of
  polling SQLite's busy handler.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lgrec.errors import DataError
from lgrec.store.records import EventRow, check_replay

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


log = logging.getLogger(__name__)

MIGRATIONS: tuple[str, ...] = (
    # version 0 -> 1: initial schema
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id TEXT NOT NULL CHECK (length(user_id) > 0),
        item_id TEXT NOT NULL CHECK (length(item_id) > 0),
        event TEXT NOT NULL CHECK (event IN ('click', 'purchase', 'rating', 'view', 'like')),
        value REAL,
        ts REAL NOT NULL,
        idempotency_key TEXT UNIQUE,
        received_at REAL NOT NULL
    );
    CREATE INDEX events_user ON events (user_id, id);
    CREATE TABLE users (
        user_id TEXT PRIMARY KEY CHECK (length(user_id) > 0),
        text TEXT,
        created_at REAL NOT NULL,
        attributes TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE items (
        item_id TEXT PRIMARY KEY CHECK (length(item_id) > 0),
        title TEXT,
        description TEXT,
        categories TEXT NOT NULL DEFAULT '[]',
        created_at REAL NOT NULL
    );
    """,
    # version 1 -> 2: erased users (lgrec.privacy.tombstones: hashes, never the ids)
    """
    CREATE TABLE tombstones (
        user_hash TEXT PRIMARY KEY CHECK (length(user_hash) = 64),
        erased_at REAL NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, path: str | Path = "") -> int:
    """Bring the schema of ``conn`` up to :data:`SCHEMA_VERSION`; return the version found.

    Migration ``k`` upgrades ``user_version`` ``k`` to ``k + 1``; pending migrations run in one
    transaction, so a crash leaves the file at the old version. A file whose version is newer
    than this code raises :class:`DataError` (it was written by a newer lgrec).
    """
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        raise DataError(
            f"feedback store {path}: schema version {found} is newer than this lgrec supports "
            f"({SCHEMA_VERSION}); upgrade lgrec"
        )
    if found < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # re-read under the write lock: another process may have migrated meanwhile
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            for version in range(current, SCHEMA_VERSION):
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                log.info("feedback store %s: migrated schema %d -> %d", path, version, version + 1)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return found


def open_lock_file(path: Path) -> int | None:
    """File descriptor of ``<path>.lock`` for :func:`flocked`; None where ``flock`` is missing
    (Windows) or the folder is read-only (then SQLite's busy handler alone orders writers)."""
    if fcntl is None:
        return None
    try:
        return os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        log.warning("feedback store %s: no lock file (%s); writers poll SQLite's lock", path, e)
        return None


@contextmanager
def flocked(fd: int | None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``fd`` (no-op for None)."""
    if fd is None:
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


# ---- rows ------------------------------------------------------------------------------
def insert_event(conn: sqlite3.Connection, row: EventRow) -> tuple[int, bool]:
    """Insert ``row`` unless its idempotency key is stored; a stored key must be a true
    replay (:func:`check_replay`), else :class:`ConflictError`."""
    ts = time.time() if row.ts is None else row.ts
    cur = conn.execute(
        "INSERT INTO events (user_id, item_id, event, value, ts, idempotency_key, received_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(idempotency_key) DO NOTHING RETURNING id",
        (row.user_id, row.item_id, row.event, row.value, ts, row.idempotency_key, time.time()),
    )
    got = cur.fetchone()
    if got is not None:
        return int(got[0]), True
    first = conn.execute(
        "SELECT id, user_id, item_id, event, value, ts FROM events WHERE idempotency_key = ?",
        (row.idempotency_key,),
    ).fetchone()
    check_replay(dict(first), row)
    return int(first[0]), False
