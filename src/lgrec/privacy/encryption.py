"""Encryption at rest of the feedback store: SQLCipher (AES-256) through ``sqlcipher3``.

With ``LGREC_FEEDBACK_KEY`` set (or ``FeedbackStore(path, key=...)``) the store is an SQLCipher
database: every page of the file and of its write-ahead log is encrypted with AES-256-CBC and
authenticated with HMAC-SHA512; only the first 16 bytes of the file (the random salt) are in
clear. The key is derived from the passphrase exactly as SQLCipher 4 does itself —
``K = PBKDF2-HMAC-SHA512(passphrase, salt, 256 000 iterations, 32 bytes)`` — but once per
process and salt (~0.3 s), then handed to every new connection as a raw key, so the server's
per-thread connections open in microseconds. The ``sqlcipher`` shell opens the same file with
``PRAGMA key = 'passphrase'``.

Opening an encrypted store without the key, or with another key, raises :class:`DataError`
naming ``LGREC_FEEDBACK_KEY``; so does opening a plain store with a key set (nothing is
encrypted or rewritten behind the user's back: :func:`encrypt_store` makes an encrypted copy).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import threading
from pathlib import Path
from typing import Any

from lgrec.errors import ConfigError, DataError

KEY_ENV = "LGREC_FEEDBACK_KEY"
KDF_ITERATIONS = 256_000
SQLITE_HEADER = b"SQLite format 3\x00"
_DERIVED: dict[tuple[bytes, bytes], bytes] = {}
_HEADERS: dict[tuple[int, int], bytes] = {}  # (device, inode) -> first 16 bytes (_header)
_DERIVED_LOCK = threading.Lock()


def feedback_key(explicit: str | None = None) -> str | None:
    """The store passphrase: ``explicit``, else ``$LGREC_FEEDBACK_KEY``, else None (plain)."""
    key = explicit if explicit is not None else os.environ.get(KEY_ENV)
    return key or None


def _header(path: Path, *, fresh: bool = False) -> bytes | None:
    """The first 16 bytes of ``path``; None when the file is missing or still empty.

    Read once per file (device, inode) and process, then remembered (``fresh`` reads again).
    Closing *any* descriptor of a file drops every POSIX lock the process holds on it, SQLite's
    locks of the process's open connections included; another process would then take the
    database for unused and delete its write-ahead log under those connections, whose later
    commits nobody else would ever see. A database's first 16 bytes never change, so one read,
    before this process opens any connection to the file, is enough; :func:`connect` records
    the header of a file it creates itself."""
    try:
        st = os.stat(path)  # no descriptor: locks kept
    except FileNotFoundError:
        return None
    tag = (st.st_dev, st.st_ino)
    with _DERIVED_LOCK:
        if not fresh and tag in _HEADERS:
            return _HEADERS[tag]
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except FileNotFoundError:
        return None
    if len(head) != 16:
        return None
    with _DERIVED_LOCK:
        _HEADERS[tag] = head
    return head


def _remember_header(path: Path, head: bytes) -> None:
    """Record the header of a file this process has just created (see :func:`_header`)."""
    st = os.stat(path)
    with _DERIVED_LOCK:
        _HEADERS.setdefault((st.st_dev, st.st_ino), head)


def is_encrypted(path: str | Path) -> bool:
    """Whether ``path`` is a non-empty file that does not start with SQLite's plain header."""
    head = _header(Path(path))
    return head is not None and head != SQLITE_HEADER


def _sqlcipher() -> Any:
    try:
        from sqlcipher3 import dbapi2
    except ImportError:
        raise ConfigError(
            f"{KEY_ENV} is set but SQLCipher is not installed: pip install sqlcipher3-binary "
            "(or the 'privacy' extra of lgrec)"
        ) from None
    return dbapi2


def derive_key(passphrase: str, salt: bytes) -> bytes:
    """``PBKDF2-HMAC-SHA512(passphrase, salt, 256 000, 32)`` (cached per process)."""
    secret = passphrase.encode("utf-8")
    tag = (hashlib.sha256(secret).digest(), salt)
    with _DERIVED_LOCK:
        if tag not in _DERIVED:
            _DERIVED[tag] = hashlib.pbkdf2_hmac("sha512", secret, salt, KDF_ITERATIONS, 32)
        return _DERIVED[tag]


def connect(
    path: str | Path, key: str | None, *, timeout: float = 30.0, read_only: bool = False
) -> Any:
    """A DB-API connection to the store at ``path`` (autocommit, any thread): plain SQLite
    without ``key``, SQLCipher with it (module docstring). Raises :class:`DataError` when the
    file's encryption does not match the key."""
    path = Path(path)
    target, kw = str(path), {}
    if read_only:
        target, kw = f"file:{path.resolve()}?mode=ro", {"uri": True}
    opts = dict(timeout=timeout, isolation_level=None, check_same_thread=False, **kw)
    if key is None:
        return _connect_plain(path, target, opts)
    dbapi2 = _sqlcipher()
    for attempt in range(3):  # a new file's salt may be written by another process meanwhile
        head = _header(path, fresh=attempt > 0)
        if head == SQLITE_HEADER:
            raise DataError(
                f"feedback store {path} is not encrypted, but {KEY_ENV} is set: unset it to "
                "open this store, or make an encrypted copy (lgrec.privacy.encryption."
                "encrypt_store)"
            )
        salt = head if head is not None else secrets.token_bytes(16)
        raw = derive_key(key, salt).hex() + ("" if head is not None else salt.hex())
        conn = dbapi2.connect(target, **opts)
        conn.execute("PRAGMA cipher_log_level = NONE")  # a wrong key is our error, not a log
        conn.execute(f"PRAGMA key = \"x'{raw}'\"")
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            if head is None:
                _remember_header(path, salt)
            return conn
        except dbapi2.DatabaseError:
            conn.close()
            if head is not None:
                raise DataError(
                    f"feedback store {path}: the key in {KEY_ENV} does not decrypt it "
                    "(wrong key, or a damaged file)"
                ) from None
    raise DataError(f"feedback store {path}: cannot open it with the key (salt changed)")


def _connect_plain(path: Path, target: str, opts: dict[str, Any]) -> sqlite3.Connection:
    """A plain SQLite connection; an encrypted file (SQLite reads it as "not a database")
    raises :class:`DataError` naming the key variable. The file's header is not read here:
    see :func:`_header`."""
    conn = sqlite3.connect(target, **opts)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as e:
        conn.close()
        if "not a database" not in str(e):
            raise
        raise DataError(
            f"feedback store {path} is encrypted (or is not a SQLite file): set {KEY_ENV} "
            "to its key to open it"
        ) from None
    return conn


def row_class(conn: Any) -> Any:
    """The ``Row`` factory of ``conn``'s driver (``sqlite3`` or ``sqlcipher3``)."""
    if isinstance(conn, sqlite3.Connection):
        return sqlite3.Row
    return _sqlcipher().Row


def db_errors(encrypted: bool = False) -> tuple[type[BaseException], ...]:
    """The errors a store connection raises when its database fails: the DB-API error classes
    (plain and SQLCipher) and, on an ``encrypted`` store, :class:`MemoryError`
    (:data:`UNDECRYPTABLE`)."""
    try:
        from sqlcipher3 import dbapi2
    except ImportError:
        return (sqlite3.Error,)
    return (sqlite3.Error, dbapi2.Error) + ((MemoryError,) if encrypted else ())


UNDECRYPTABLE = (
    "a page of the file does not decrypt with the key: the file is damaged or was overwritten "
    "(SQLCipher reports this as out of memory)"
)
"""What a :class:`MemoryError` of an encrypted store's connection means. SQLCipher decrypts
each page as SQLite's pager reads it; a page that fails its HMAC check makes the codec return
no page, which the pager reports as ``SQLITE_NOMEM`` (``CODEC1(..., rc = SQLITE_NOMEM_BKPT)``
in ``readDbPage``), and the DB-API driver raises ``SQLITE_NOMEM`` as :class:`MemoryError`.
A connection that opens the file anew fails on page 1 instead, with "file is not a
database"."""


def encrypt_store(src: str | Path, dst: str | Path, key: str) -> Path:
    """Write an encrypted copy of the plain store ``src`` to the new file ``dst``
    (``sqlcipher_export``); ``src`` is left as it is."""
    src, dst = Path(src), Path(dst)
    if dst.exists():
        raise ConfigError(f"encrypt_store: {dst} exists; choose a new file")
    if is_encrypted(src):
        raise DataError(f"encrypt_store: {src} is already encrypted")
    conn = connect(dst, key)
    try:
        conn.execute("ATTACH DATABASE ? AS plain KEY ''", (str(src),))
        conn.execute("SELECT sqlcipher_export('main', 'plain')")
        version = conn.execute("PRAGMA plain.user_version").fetchone()[0]
        conn.execute(f"PRAGMA main.user_version = {int(version)}")
        conn.execute("DETACH DATABASE plain")
    finally:
        conn.close()
    return dst
