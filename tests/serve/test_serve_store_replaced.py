"""A SQLite store file replaced under a running server: no event is acknowledged unless it is
in the file at the store's path.

A connection holds its file by descriptor: after the file at the path is deleted and
re-created, or a backup is renamed over it, the connections already open (the feedback
writer's among them) write into the old, orphaned file. The store notices at the next commit
(before the request is answered) or the next new connection: 503 with the generic body, one
ERROR log line naming the path, and every later request 503 until the server is restarted;
after the restart, a retry with the idempotency key stores the event in the file at the path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3

import pytest
from serve_fixtures import AUTH

from lgrec.serve.app import ServeSettings, create_app
from lgrec.serve.state import ServeState
from lgrec.store import FeedbackStore

BODY = {"error": "unavailable", "detail": "feedback store unavailable; retry later"}


def _client(bundle, path):
    from fastapi.testclient import TestClient

    settings = ServeSettings(model=str(bundle), api_key=AUTH["X-API-Key"])
    state = ServeState(bundle, FeedbackStore(path))
    return TestClient(create_app(settings, state=state), raise_server_exceptions=False)


def _event(k: int) -> dict:
    return {"user": "u0", "item": f"sci-{k}", "event": "click", "idempotency_key": f"key-{k}"}


def _fault_lines(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.ERROR and "store unavailable" in r.getMessage()
    ]


def _recreate(path) -> None:
    """Delete the store file (with its -wal and -shm files) and create a fresh, empty store
    at the same path."""
    for p in (path, f"{path}-wal", f"{path}-shm"):
        os.unlink(p)
    FeedbackStore(path).close()


def _restore(path) -> None:
    """Rename a backup copy of the store (taken now, so it holds every event) over the file."""
    backup = path.with_name("backup.sqlite")
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("VACUUM INTO ?", (str(backup),))
    os.replace(backup, path)


@pytest.mark.parametrize("replace", [_recreate, _restore], ids=["recreate", "restore"])
def test_replaced_store_file_is_503_and_acknowledges_nothing_lost(bundle, tmp_path, caplog,
                                                                  replace):  # fmt: skip
    path = tmp_path / "private-dir" / "feedback.sqlite"
    acked: dict[str, list[str]] = {"before": [], "after": []}
    # a context-managed client keeps its threads, and so their open connections (the feedback
    # writer's too), as a running server does
    with _client(bundle, path) as c:
        for k in (1, 2):
            r = c.post("/feedback", json=_event(k), headers=AUTH)
            assert r.status_code == 201, r.text
            acked["before"].append(f"key-{k}")
        assert c.get("/recommend", params={"user": "u0"}).status_code == 200
        replace(path)
        caplog.set_level(logging.ERROR)
        for key, call in (
            ("key-3", lambda: c.post("/feedback", json=_event(3), headers=AUTH)),  # the writer
            ("key-4", lambda: c.post("/feedback", json=_event(4), headers=AUTH)),
            (None, lambda: c.get("/users/u0")),  # a read, once the store knows
            (None, lambda: c.get("/recommend", params={"user": "u0"})),
        ):
            caplog.clear()
            r = call()
            if key is not None and r.status_code in (200, 201):
                acked["after"].append(key)  # acknowledged: must be in the file at the path
            assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
            assert r.json() == BODY and "private-dir" not in r.text
            lines = _fault_lines(caplog)
            assert len(lines) == 1, lines
            assert f"the file at {path} was replaced or removed" in lines[0], lines
            assert "restart the server" in lines[0], lines
        c.app.state.serve.close()
    # restarted on the path: the client's retries land in the file at the path (200: a
    # replay, when the unacknowledged commit reached it through the old -wal file left beside)
    with _client(bundle, path) as c:
        for k in (3, 4):
            r = c.post("/feedback", json=_event(k), headers=AUTH)
            assert r.status_code in (200, 201), r.text
            acked["after"].append(f"key-{k}")
        c.app.state.serve.close()
    with FeedbackStore(path) as store:
        stored = set(store.events()["idempotency_key"])
    assert set(acked["after"]) <= stored
    if replace is _restore:  # the backup holds what was acknowledged before it was taken
        assert set(acked["before"]) <= stored
