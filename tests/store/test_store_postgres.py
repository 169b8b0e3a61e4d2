"""PostgresFeedbackStore beyond the shared store tests: passwords, schema, commit order, faults.

Against a real PostgreSQL server (``postgres_server`` / ``postgres_url`` in tests/conftest.py).
"""

from __future__ import annotations

import threading

import psycopg
import pytest

from lgrec.errors import ConfigError, DataError, StoreUnavailableError
from lgrec.serve.app import ServeSettings
from lgrec.store import open_feedback_store
from lgrec.store.pg_setup import SCHEMA_VERSION
from lgrec.store.postgres import PostgresFeedbackStore
from tests.pg_server import free_port


def _admin(server) -> psycopg.Connection:
    return psycopg.connect(server.url(), password=server.password, autocommit=True)


def test_password_in_the_url_is_refused_and_never_echoed(postgres_server):
    url = postgres_server.url().replace("lgrec@", "lgrec:hunter2secret@")
    for make in (lambda: open_feedback_store(url), lambda: ServeSettings(model="m", store=url)):
        with pytest.raises(ConfigError, match="PGPASSWORD") as err:
            make()
        assert "hunter2secret" not in str(err.value)


def test_password_from_a_password_file(postgres_server, postgres_url, tmp_path, monkeypatch):
    monkeypatch.delenv("PGPASSWORD")
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "absent"))
    with pytest.raises(StoreUnavailableError, match="password"):
        PostgresFeedbackStore(postgres_url)
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{postgres_server.port}:*:lgrec:{postgres_server.password}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    with PostgresFeedbackStore(postgres_url) as store:
        assert store.add_event("u", "i", "like") == (1, True)
        assert "hunter" not in store.location and store.location.startswith("postgresql://lgrec@")


def test_unreachable_server_is_unavailable_not_a_crash():
    with pytest.raises(StoreUnavailableError, match="cannot connect"):
        PostgresFeedbackStore(f"postgresql://lgrec@127.0.0.1:{free_port()}/db")


def test_schema_version_newer_and_foreign_tables(postgres_server, postgres_url):
    schema = postgres_url.rsplit("%3D", 1)[1]
    with open_feedback_store(postgres_url) as s:
        s.add_event("u", "i", "like", idempotency_key="k")
    with open_feedback_store(postgres_url) as s:  # reopening keeps data and keys
        assert s.add_event("u", "i", "like", idempotency_key="k") == (1, False)
    with _admin(postgres_server) as conn:
        conn.execute(f"UPDATE {schema}.lgrec_schema SET version = %s", (SCHEMA_VERSION + 1,))
        with pytest.raises(DataError, match="newer"):
            open_feedback_store(postgres_url)
        conn.execute("CREATE SCHEMA foreign_tables")
        conn.execute("CREATE TABLE foreign_tables.lgrec_events (x int)")
    foreign = postgres_url.replace(f"%3D{schema}", "%3Dforeign_tables")
    with pytest.raises(DataError, match="not made by lgrec"):
        open_feedback_store(foreign)
    with _admin(postgres_server) as conn:  # nothing of the foreign schema was touched
        assert conn.execute("SELECT count(*) FROM foreign_tables.lgrec_events").fetchone() == (0,)


def test_commits_become_visible_in_id_order(postgres_url):
    """The fold-in watermark: a reader applying ``id > last`` never misses an event, however
    many writers commit concurrently (each with its own connections)."""
    writers = [open_feedback_store(postgres_url) for _ in range(4)]
    reader = open_feedback_store(postgres_url)
    seen: list[int] = []
    done = threading.Event()

    def write(t: int) -> None:
        for k in range(60):
            writers[t].add_event(f"u{t}", f"i{k}", "view", idempotency_key=f"{t}-{k}")

    def read() -> None:
        last = 0
        while True:
            finished = done.is_set()
            rows = reader.event_rows(since_id=last)
            seen.extend(r[0] for r in rows)
            last = rows[-1][0] if rows else last
            if finished and not rows:
                return

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    r = threading.Thread(target=read)
    r.start()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    done.set()
    r.join()
    stored = reader.events()["id"].tolist()
    for s in (*writers, reader):
        s.close()
    assert len(stored) == 240
    assert seen == stored  # every id seen once, in order: none appeared behind the watermark


def test_synchronous_commit_is_raised_to_on(postgres_url):
    url = postgres_url + "%20-csynchronous_commit%3Doff"
    with PostgresFeedbackStore(url) as store, store._connection() as conn:
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)


def test_lost_connections_reads_retry_writes_fail_503_style(postgres_server, postgres_url):
    store = PostgresFeedbackStore(postgres_url)
    store.add_event("u", "i", "click", idempotency_key="a")

    def kill_store_connections() -> None:
        with _admin(postgres_server) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'lgrec' AND pid <> pg_backend_pid()"
            )

    kill_store_connections()
    assert store.count() == 1  # a read is retried once on a fresh connection
    kill_store_connections()
    with pytest.raises(StoreUnavailableError):
        store.add_event("u", "i", "click", idempotency_key="b")
    # the client retries with its key: stored once, whatever happened to the failed attempt
    eid, _ = store.add_event("u", "i", "click", idempotency_key="b")
    assert store.add_event("u", "i", "click", idempotency_key="b") == (eid, False)
    assert store.count() == 2
    store.close()
    with pytest.raises(StoreUnavailableError, match="closed"):
        store.count()


def test_servers_starting_together_migrate_once(postgres_url):
    """A store opened while another process migrates the same fresh schema waits, then finds
    the schema current (its catalogue look-ups see the other's tables: no 'already exists')."""
    from lgrec.store.pg_setup import MIGRATE_KEY, migrate

    first = psycopg.connect(postgres_url, autocommit=True)
    second = psycopg.connect(postgres_url, autocommit=True)
    with first, second:
        first.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_KEY,))  # first is migrating
        pid = second.info.backend_pid
        found: list = []
        waiter = threading.Thread(target=lambda: found.append(_migrate_or_error(second)))
        waiter.start()
        while not first.execute(
            "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", (pid,)
        ).fetchone()[0]:
            waiter.join(0.05)
            assert waiter.is_alive(), found  # it must wait for the lock, not finish before
        assert migrate(first) == 0  # creates the tables (the lock is re-entrant)
        first.execute("SELECT pg_advisory_unlock(%s)", (MIGRATE_KEY,))
        waiter.join(30)
    assert found == [SCHEMA_VERSION]


def _migrate_or_error(conn) -> int | str:
    from lgrec.store.pg_setup import migrate

    try:
        return migrate(conn)
    except Exception as e:
        return f"{type(e).__name__}: {e}"
