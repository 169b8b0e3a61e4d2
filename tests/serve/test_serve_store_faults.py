"""A store that fails answers 503 with a generic body: the client learns what failed and that a
retry may help, never where the store lives (host, port, user, file path) nor a password; the
server log names the store, once per failed request, without secrets.

Real faults: a SQLite file (plain or SQLCipher-encrypted) overwritten with garbage, a
PostgreSQL server that is stopped (its own throw-away server, ``tests/pg_server.py``, so the
session's server stays up).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import sqlite3
import subprocess

import pytest
from serve_fixtures import AUTH

from lgrec.errors import StoreUnavailableError
from lgrec.serve.app import ServeSettings, create_app
from lgrec.serve.state import ServeState
from lgrec.store import FeedbackStore
from lgrec.store.postgres import PostgresFeedbackStore

GOOD = {"user": "u0", "item": "sci-1", "event": "click"}
NEW_USER = {"user_id": "n1", "liked_items": ["sci-1"]}
BODY = {"error": "unavailable", "detail": "feedback store unavailable; retry later"}


def _client(bundle, store):
    from fastapi.testclient import TestClient

    settings = ServeSettings(model=str(bundle), api_key=AUTH["X-API-Key"])
    return TestClient(create_app(settings, state=ServeState(bundle, store)),
                      raise_server_exceptions=False)  # fmt: skip


def _fault_lines(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "lgrec.serve.security" and "store unavailable" in r.getMessage()
    ]


def _corrupt(path) -> None:
    """Overwrite the database file and its WAL and index with random bytes (same sizes)."""
    for p in (path, f"{path}-wal", f"{path}-shm"):
        if os.path.exists(p):
            size = os.path.getsize(p)
            with open(p, "r+b") as f:
                f.write(os.urandom(size))


def test_corrupt_sqlite_store_is_503_without_its_path(bundle, tmp_path, caplog):
    path = tmp_path / "private-dir" / "feedback.sqlite"
    c = _client(bundle, FeedbackStore(path))
    try:
        assert c.post("/feedback", json=GOOD, headers=AUTH).status_code == 201
        _corrupt(path)
        caplog.set_level(logging.ERROR, logger="lgrec.serve.security")
        for call in (
            lambda: c.post("/feedback", json={**GOOD, "item": "sci-2"}, headers=AUTH),
            lambda: c.post("/users", json=NEW_USER, headers=AUTH),
        ):
            caplog.clear()
            r = call()
            assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
            assert r.json() == BODY
            assert "private-dir" not in r.text and str(tmp_path) not in r.text
            lines = _fault_lines(caplog)
            assert len(lines) == 1 and str(path) in lines[0], lines  # the log names the store
    finally:
        c.app.state.serve.close()


def _assert_503(r, tmp_path, caplog, path) -> None:
    """A generic 503 that hides the store's location, and one ERROR line in the log naming it."""
    assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
    assert r.json() == BODY
    assert "private-dir" not in r.text and str(tmp_path) not in r.text
    lines = _fault_lines(caplog)
    assert len(lines) == 1 and str(path) in lines[0], lines  # the log names the store


def test_overwritten_encrypted_store_is_503_not_500(bundle, tmp_path, monkeypatch, caplog):
    """SQLCipher reports a page that fails its HMAC check as "out of memory" (SQLITE_NOMEM,
    a MemoryError in Python): the server must still see an unavailable store, not crash."""
    from lgrec.privacy.encryption import KEY_ENV

    monkeypatch.setenv(KEY_ENV, "correct horse battery staple")  # as `lgrec serve` gets it
    path = tmp_path / "private-dir" / "feedback.sqlite"
    store = FeedbackStore(path)
    assert store.encrypted
    # a context-managed client keeps its worker threads, and so their open connections, as a
    # running server does (SQLCipher's "out of memory" comes from a connection already open)
    with _client(bundle, store) as c:
        for item in ("sci-1", "sci-2", "sci-3"):
            r = c.post("/feedback", json={**GOOD, "item": item}, headers=AUTH)
            assert r.status_code == 201, r.text
        assert c.get("/recommend", params={"user": "u0"}).status_code == 200
        _corrupt(path)
        caplog.set_level(logging.ERROR, logger="lgrec.serve.security")
        for call in (
            lambda: c.get("/recommend", params={"user": "u0"}),
            lambda: c.post("/feedback", json={**GOOD, "item": "sci-4"}, headers=AUTH),
            lambda: c.get("/users/u0"),
            lambda: c.post("/users", json=NEW_USER, headers=AUTH),
            lambda: c.get("/recommend", params={"user": "u0"}),
        ):
            caplog.clear()
            _assert_503(call(), tmp_path, caplog, path)
            assert "correct horse" not in caplog.text


def test_encrypted_store_damaged_beyond_page_1_fails_at_open(bundle, tmp_path, monkeypatch,
                                                             capsys):  # fmt: skip
    """Page 1 (salt, schema) decrypts, the tables' pages do not: the store's open fails, naming
    the file, and ``lgrec serve`` stops with that one line (no traceback)."""
    from lgrec.cli import main
    from lgrec.privacy.encryption import KEY_ENV

    monkeypatch.setenv(KEY_ENV, "correct horse battery staple")
    path = tmp_path / "feedback.sqlite"
    with FeedbackStore(path) as store:
        store.add_events(
            [{"user_id": f"u{k}", "item_id": "sci-1", "event": "view"} for k in range(500)]
        )
    size = path.stat().st_size
    assert size > 8 * 4096 and not os.path.exists(f"{path}-wal")  # checkpointed on close
    with open(path, "r+b") as f:
        f.seek(4096)
        f.write(os.urandom(size - 4096))
    with pytest.raises(StoreUnavailableError, match=f"^feedback store {re.escape(str(path))}: "):
        FeedbackStore(path)
    assert main(["serve", "--model", str(bundle), "--store", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lgrec serve: error: feedback store {path}: "), err
    assert err.count("\n") == 1 and "Traceback" not in err


@contextlib.contextmanager
def _unwritable(target):
    """``target`` (a file, or a folder: nothing can be created in it) cannot be written inside
    the block: ``chmod`` for a user; root, whom permissions do not stop, gets the immutable
    attribute (``chattr +i``)."""
    if os.geteuid() != 0:
        mode = target.stat().st_mode
        target.chmod(mode & 0o555)
        try:
            yield
        finally:
            target.chmod(mode)
        return
    try:
        got = subprocess.run(["chattr", "+i", str(target)], capture_output=True, text=True)
    except FileNotFoundError:
        got = subprocess.CompletedProcess([], 1, "", "no chattr command")
    if got.returncode != 0:
        pytest.skip(f"as root only chattr +i makes a file unwritable; it fails: {got.stderr}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(target)], check=True)


def _rollback_mode_copy(path, copy) -> None:
    """A copy of the store in SQLite's rollback-journal mode (like a restored backup)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("VACUUM INTO ?", (str(copy),))
    with contextlib.closing(sqlite3.connect(copy)) as conn:
        assert conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"


def test_store_that_cannot_switch_to_wal_is_503(bundle, tmp_path, caplog):
    """A backup restored under the running server: the store's file is overwritten in place
    (same inode: a file renamed over it is test_serve_store_replaced.py's) with a read-only
    copy in rollback-journal mode (the old -wal/-shm files removed), so the connection of a
    new thread cannot switch it to WAL. The server's fault, not the client's: 503 (never 422
    with the path), and the log says that WAL could not be enabled."""
    folder = tmp_path / "private-dir"
    path = folder / "feedback.sqlite"
    c = _client(bundle, FeedbackStore(path))  # each request runs in a new thread: new connection
    try:
        assert c.post("/feedback", json=GOOD, headers=AUTH).status_code == 201
        _rollback_mode_copy(path, folder / "restored.sqlite")
        shutil.copyfile(folder / "restored.sqlite", path)
        for old in (f"{path}-wal", f"{path}-shm"):
            os.remove(old)
        caplog.set_level(logging.ERROR, logger="lgrec.serve.security")
        with _unwritable(path):
            for call in (
                lambda: c.get("/recommend", params={"user": "u0"}),
                lambda: c.get("/users/u0"),
                lambda: c.post("/users", json=NEW_USER, headers=AUTH),
            ):
                caplog.clear()
                _assert_503(call(), tmp_path, caplog, path)
                assert "cannot enable WAL mode" in _fault_lines(caplog)[0]
    finally:
        c.app.state.serve.close()


def test_serve_refuses_a_store_that_cannot_switch_to_wal(bundle, tmp_path, capsys):
    """A store in rollback-journal mode in a folder where SQLite cannot create the -wal file:
    ``lgrec serve`` stops with one line naming the file and what SQLite could not do (it was
    "unable to open database file")."""
    from lgrec.cli import main

    folder = tmp_path / "ro"
    folder.mkdir()
    FeedbackStore(tmp_path / "store.sqlite").close()
    _rollback_mode_copy(tmp_path / "store.sqlite", folder / "feedback.sqlite")
    path = folder / "feedback.sqlite"
    with _unwritable(folder):
        assert main(["serve", "--model", str(bundle), "--store", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lgrec serve: error: feedback store {path}: cannot enable WAL"), err
    assert f"{path}-wal" in err and err.count("\n") == 1


def test_stopped_postgres_store_is_503_without_host_user_or_password(bundle, monkeypatch,
                                                                     caplog):  # fmt: skip
    from tests.pg_server import ROLE, PostgresServer

    try:
        server = PostgresServer().start()
    except RuntimeError as e:
        if os.geteuid() == 0:
            raise
        pytest.skip(f"no PostgreSQL server: {e}")
    try:
        url = server.create_schema("faults")
        monkeypatch.setenv("PGPASSWORD", server.password)
        store = PostgresFeedbackStore(url, timeout=2.0)
        location = store.location  # postgresql://lgrec@127.0.0.1:PORT/postgres
        assert f"{ROLE}@127.0.0.1:{server.port}" in location
        c = _client(bundle, store)
        assert c.post("/feedback", json=GOOD, headers=AUTH).status_code == 201
        server.stop()
        caplog.set_level(logging.ERROR, logger="lgrec.serve.security")
        for call in (
            lambda: c.post("/feedback", json={**GOOD, "item": "sci-2"}, headers=AUTH),
            lambda: c.get("/users/u0"),  # a read: retried once, then 503
        ):
            caplog.clear()
            r = call()
            assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
            assert r.json() == BODY
            for secret in ("127.0.0.1", str(server.port), ROLE, "postgres", server.password):
                assert secret not in r.text, secret
            lines = _fault_lines(caplog)
            assert len(lines) == 1 and location in lines[0], lines
            assert server.password not in caplog.text
        c.app.state.serve.close()
    finally:
        server.stop()
