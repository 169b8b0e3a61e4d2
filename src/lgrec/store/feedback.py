"""Durable feedback store: events, users and items in one SQLite file.

The file is opened in WAL mode with ``synchronous=FULL``: when :meth:`FeedbackStore.add_event`
returns, the event is in the write-ahead log and has been fsync'ed, so it survives the process
being killed (``kill -9``) and a power loss. The schema is versioned with ``PRAGMA
user_version`` and upgraded by :func:`migrate` when the file is opened.

Thread safety: every thread gets its own SQLite connection (``threading.local``), so a FastAPI
app can call the store from its thread pool. WAL lets readers run while one writer commits;
writers queue on a thread lock and an ``flock`` of ``<file>.lock`` (shared by every process),
then take the database lock with ``BEGIN IMMEDIATE`` (SQLite waits up to ``timeout`` seconds
for writers that do not use the lock file). One ``FeedbackStore`` object may be shared by all
threads of a process, and several processes may open the same file.

Errors (the contract every feedback store keeps, whatever its database): invalid input raises
:class:`~lgrec.errors.DataError` and stores nothing; a create of an id that exists
(``exist_ok=False``) raises :class:`~lgrec.errors.AlreadyExistsError`, decided by the
database's unique key, so of several processes creating one id exactly one succeeds; an
idempotency key already used for another event raises :class:`~lgrec.errors.ConflictError`;
a closed, locked or failing database raises :class:`~lgrec.errors.StoreUnavailableError`.

A replaced file: each process remembers the (device, inode) of the file it opened at ``path``
(:mod:`lgrec.store.file_identity`). Every write transaction checks, after its ``COMMIT`` and
before it returns, that ``path`` still names that file, and so does every new connection: a
file deleted and re-created, renamed over or restored from a backup under a running server
makes the store unavailable for good (:class:`~lgrec.errors.StoreUnavailableError` saying the
server must be restarted), so nothing that landed in the orphaned file is acknowledged.

Encryption at rest: with ``LGREC_FEEDBACK_KEY`` set (or ``key=``) the file is an SQLCipher
database (:mod:`lgrec.privacy.encryption`); everything above holds unchanged.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from lgrec.errors import DataError, StoreUnavailableError
from lgrec.privacy.encryption import (
    UNDECRYPTABLE,
    connect,
    db_errors,
    feedback_key,
    row_class,
)
from lgrec.privacy.store import ErasureStoreMixin
from lgrec.store.dialect import Dialect
from lgrec.store.file_identity import FileIdentity
from lgrec.store.records import EVENT_COLUMNS, EVENT_TYPES, EventRow
from lgrec.store.sqlite_schema import (
    SCHEMA_VERSION,
    flocked,
    insert_event,
    migrate,
    open_lock_file,
)
from lgrec.store.template import FeedbackStoreBase, guarded

log = logging.getLogger(__name__)
__all__ = ["EVENT_COLUMNS", "EVENT_TYPES", "SCHEMA_VERSION", "FeedbackStore", "migrate"]


class FeedbackStore(ErasureStoreMixin, FeedbackStoreBase):
    """Events, users and items in a SQLite file (see module docstring for durability/threads).

    The store's logic is :class:`~lgrec.store.template.FeedbackStoreBase`'s; this class gives
    it SQLite's connections, write transaction and fault mapping.

    Args:
        path: the SQLite file; created (with parent folders) when absent.
        timeout: seconds a writer waits for another writer's lock before failing.
        key: SQLCipher passphrase (default: ``LGREC_FEEDBACK_KEY``; none: a plain file).
    """

    dialect = Dialect(mark="?")

    def __init__(self, path: str | Path, *, timeout: float = 30.0, key: str | None = None) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.timeout = timeout
        self._key = feedback_key(key)  # None: plain SQLite (lgrec.privacy.encryption)
        # sqlite3's and SQLCipher's (unrelated classes); SQLCipher's MemoryError (_fault)
        self._fault_types = db_errors(encrypted=self._key is not None)
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._closed = self._ready = False
        self._identity = FileIdentity(self.path)  # the file this process opened (replaced?)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wlock = threading.Lock()
        self._lock_fd = open_lock_file(self.path)
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        self._ready = True

    @guarded
    def _open(self) -> None:
        """Bring the schema up to date and read the tables' watermarks: a file damaged beyond
        its first page fails here, naming the file (:meth:`_fault`), not at the first
        request."""
        migrate(self._conn(), self.path)
        self.watermarks()

    def _fault(self, error: BaseException) -> BaseException | None:
        """A failing database (locked past ``timeout``, I/O error, disk full, corrupt file) is
        :class:`StoreUnavailableError` naming the store, not a bare sqlite3 error; an integrity
        error passes unchanged; a file replaced under the server says so (:meth:`_write`).
        A :class:`MemoryError` (only handed over for an encrypted
        store) is SQLCipher's page that does not decrypt
        (:data:`~lgrec.privacy.encryption.UNDECRYPTABLE`)."""
        if type(error).__name__ == "IntegrityError":
            return None
        try:  # a file replaced under the server often fails this way first (its -wal/-shm)
            self._identity.check()
        except StoreUnavailableError as replaced:
            return replaced
        cause = UNDECRYPTABLE if isinstance(error, MemoryError) else error
        return StoreUnavailableError(f"feedback store {self.path}: {cause}")

    # ---- connections -------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreUnavailableError(f"feedback store {self.path} is closed")
        conn = getattr(self._local, "conn", None)
        if self._identity.replaced is not None:
            self._drop(conn)  # this thread's connection to the orphaned file
            raise StoreUnavailableError(self._identity.replaced)
        if conn is None:
            try:
                conn = connect(self.path, self._key, timeout=self.timeout)
            except DataError as e:  # not a (decryptable) database
                self._unusable(str(e), e)
            try:
                self._identity.check()  # the file this connection opened is the store's
            except StoreUnavailableError:
                conn.close()
                raise
            conn.row_factory = row_class(conn)
            self._enable_wal(conn)
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA secure_delete=ON")  # erased rows are zeroed, not just freed
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def _drop(self, conn: sqlite3.Connection | None) -> None:
        """Close this thread's connection ``conn`` (if any) and forget it. Each thread closes
        its own: closing a connection another thread may be using is not safe."""
        if conn is None:
            return
        self._local.conn = None
        with self._conns_lock:
            if conn in self._conns:
                self._conns.remove(conn)
        conn.close()

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switch ``conn``'s file to WAL mode (a no-op once it is), or close ``conn`` and
        raise (:meth:`_unusable`): SQLite reports a file it cannot switch as an error (a
        read-only file, a folder where the -wal/-shm files cannot be created) or by answering
        the mode it kept."""
        error: BaseException | None = None
        try:
            mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
            cause = f"got {mode}"
        except db_errors() as e:  # a MemoryError passes (SQLCipher: UNDECRYPTABLE)
            mode, cause, error = "", str(e), e
        if mode.lower() != "wal":
            conn.close()
            self._unusable(
                f"feedback store {self.path}: cannot enable WAL mode ({cause}): SQLite must "
                f"write the file and create {self.path}-wal and {self.path}-shm beside it "
                "(is the file, its folder or its file system read-only?)",
                error,
            )

    def _unusable(self, message: str, cause: BaseException | None = None) -> NoReturn:
        """Raise ``message``: a :class:`DataError` while the store is being opened (the file
        given is not one it can use), a :class:`StoreUnavailableError` afterwards (the store
        failed under a running server: not the client's mistake)."""
        error = StoreUnavailableError if self._ready else DataError
        raise error(message) from cause

    def read_only_connection(self) -> sqlite3.Connection:
        """A new read-only connection to the file (with the key, if encrypted); the caller
        closes it."""
        return connect(self.path, self._key, timeout=self.timeout, read_only=True)

    @property
    def encrypted(self) -> bool:
        """Whether the file is SQLCipher-encrypted."""
        return self._key is not None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: ``BEGIN IMMEDIATE`` … ``COMMIT`` (rolled back on error).

        Writers queue first on a thread lock and an ``flock`` of ``<file>.lock`` shared by
        every process that opens the store: a waiting writer wakes the moment the lock is
        released. Without it SQLite's busy handler polls with sleeps of up to 100 ms, which
        made the p99 of concurrent feedback writes from two server workers ~0.3 s. The kernel
        drops the ``flock`` of a killed process; SQLite's own lock stays the safety net.

        After ``COMMIT``, and before the caller can acknowledge anything, one ``os.stat``
        checks that ``path`` still names the file this process opened
        (:class:`~lgrec.store.file_identity.FileIdentity`): if it was replaced, the commit
        went to the orphaned file and :class:`StoreUnavailableError` is raised instead."""
        conn = self._conn()
        with self._wlock, flocked(self._lock_fd):
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        try:
            self._identity.check()
        except StoreUnavailableError:
            self._drop(conn)
            raise

    def close(self) -> None:
        """Close every connection this object opened (from any thread)."""
        with self._conns_lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
            if self._lock_fd is not None and not self._closed:
                os.close(self._lock_fd)
            self._closed = True

    # ---- the primitives of FeedbackStoreBase ----------------------------------------------
    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        cur = self._conn().cursor()
        cur.row_factory = None  # plain tuples (~20 µs for a few new events)
        return cur.execute(sql, args).fetchall()

    def _dicts(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self._conn().execute(sql, args).fetchall()]

    def _insert_event(self, conn: sqlite3.Connection, row: EventRow) -> tuple[int, bool]:
        return insert_event(conn, row)
