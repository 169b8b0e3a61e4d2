"""Setting up the PostgreSQL feedback store: the driver, URL checks, schema migrations.

The store itself is :class:`lgrec.store.postgres.PostgresFeedbackStore`. Its tables are
``lgrec_events``, ``lgrec_users``, ``lgrec_items``, ``lgrec_tombstones`` (the SQLite store's
schema, with a ``seq`` identity column standing in for SQLite's rowid) and ``lgrec_schema``
(the schema version).
"""

from __future__ import annotations

import logging
from typing import Any

from lgrec.errors import ConfigError, DataError
from lgrec.store.records import EVENT_TYPES

log = logging.getLogger(__name__)

LOCK_CLASS = 0x6C677263  # "lgrc": high 32 bits of lgrec's advisory-lock keys
MIGRATE_KEY = LOCK_CLASS << 32  # migrations (tables may not exist yet)
_EVENT_CHECK = ", ".join(f"'{e}'" for e in EVENT_TYPES)

_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # version 0 -> 1: initial schema (the SQLite store's, with a seq column as users/items rowid)
    (
        f"""CREATE TABLE lgrec_events (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            user_id text NOT NULL CHECK (length(user_id) > 0),
            item_id text NOT NULL CHECK (length(item_id) > 0),
            event text NOT NULL CHECK (event IN ({_EVENT_CHECK})),
            value double precision,
            ts double precision NOT NULL,
            idempotency_key text UNIQUE,
            received_at double precision NOT NULL
        )""",
        "CREATE INDEX lgrec_events_user ON lgrec_events (user_id, id)",
        """CREATE TABLE lgrec_users (
            seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
            user_id text PRIMARY KEY CHECK (length(user_id) > 0),
            text text,
            created_at double precision NOT NULL,
            attributes jsonb NOT NULL DEFAULT '{}'
        )""",
        """CREATE TABLE lgrec_items (
            seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
            item_id text PRIMARY KEY CHECK (length(item_id) > 0),
            title text,
            description text,
            categories jsonb NOT NULL DEFAULT '[]',
            created_at double precision NOT NULL
        )""",
    ),
    # version 1 -> 2: erased users (lgrec.privacy.tombstones: hashes, never the ids)
    (
        """CREATE TABLE lgrec_tombstones (
            seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
            user_hash text PRIMARY KEY CHECK (length(user_hash) = 64),
            erased_at double precision NOT NULL
        )""",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)


def import_psycopg() -> Any:
    try:
        import psycopg
        import psycopg_pool  # noqa: F401
    except ImportError as e:
        raise ConfigError(
            f"the PostgreSQL feedback store needs psycopg 3 and psycopg-pool ({e}); "
            "install them with: pip install 'lgrec[postgres]'"
        ) from None
    return psycopg


def safe_location(url: str) -> str:
    """``url`` as ``postgresql://user@host:port/db`` for messages (never a password)."""
    from psycopg.conninfo import conninfo_to_dict

    d = conninfo_to_dict(url)
    user = f"{d['user']}@" if d.get("user") else ""
    port = f":{d['port']}" if d.get("port") else ""
    return f"postgresql://{user}{d.get('host', '')}{port}/{d.get('dbname', '')}"


def check_url(url: str) -> dict[str, str]:
    """The libpq parameters of ``url``; :class:`ConfigError` when it carries a password."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except Exception as e:  # psycopg.ProgrammingError: unparsable
        raise ConfigError(f"feedback store: not a valid PostgreSQL URL ({e})") from None
    if "password" in params:
        raise ConfigError(
            "feedback store: the PostgreSQL URL contains a password; remove it and put it in "
            "the environment (PGPASSWORD) or a password file (PGPASSFILE, ~/.pgpass)"
        )
    return params


def migrate(conn: Any, location: str = "") -> int:
    """Bring the schema up to :data:`SCHEMA_VERSION` (one transaction, under an advisory lock,
    so concurrent servers migrate once); return the version found. A database whose version
    is newer than this code raises :class:`DataError`. No DDL runs when it is current (a role
    without CREATE may then use the store)."""
    found = _schema_version(conn)
    if found == SCHEMA_VERSION:
        return found
    psycopg = import_psycopg()
    # The lock is taken before the transaction begins, not inside it: a transaction refreshes
    # its catalogue caches when it starts, and one that began before a concurrent migration
    # committed would still not see that migration's tables after waiting for an advisory lock.
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_KEY,))
    try:
        found = _migrate_locked(conn, location, psycopg)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATE_KEY,))
    if found > SCHEMA_VERSION:
        raise DataError(
            f"feedback store {location}: schema version {found} is newer than this lgrec "
            f"supports ({SCHEMA_VERSION}); upgrade lgrec"
        )
    return found


def _migrate_locked(conn: Any, location: str, psycopg: Any) -> int:
    """:func:`migrate` holding the migration lock; the version found."""
    with conn.transaction():
        current = _schema_version(conn)  # re-read under the lock
        if current < SCHEMA_VERSION:
            try:
                conn.execute("CREATE TABLE IF NOT EXISTS lgrec_schema (version integer NOT NULL)")
                for version in range(current, SCHEMA_VERSION):
                    for statement in _MIGRATIONS[version]:
                        conn.execute(statement)
                    log.info("feedback store %s: migrated schema %d -> %d", location, version,
                             version + 1)  # fmt: skip
                conn.execute("DELETE FROM lgrec_schema")
                conn.execute("INSERT INTO lgrec_schema VALUES (%s)", (SCHEMA_VERSION,))
            except psycopg.errors.DuplicateTable as e:
                raise DataError(
                    f"feedback store {location}: {e.diag.message_primary}, but lgrec's schema "
                    "table is missing: the tables were not made by lgrec; use another "
                    "database or schema (?options=-csearch_path%3Dname)"
                ) from None
    return current


def _schema_version(conn: Any) -> int:
    if conn.execute("SELECT to_regclass('lgrec_schema')").fetchone()[0] is None:
        return 0
    row = conn.execute("SELECT max(version) FROM lgrec_schema").fetchone()
    return int(row[0] or 0)
