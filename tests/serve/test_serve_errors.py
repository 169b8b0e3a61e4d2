"""Who is at fault: the client's mistakes are 4xx, faults of the server or its stores 5xx
(503 with Retry-After where a retry helps), and every server fault is logged."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from serve_fixtures import AUTH

from lgrec.serve.app import ServeSettings, create_app
from lgrec.serve.state import ServeState
from lgrec.store.feedback import FeedbackStore

GOOD = {"user": "u0", "item": "sci-1", "event": "click"}


def _app_on(bundle, store: FeedbackStore, **kw):
    from fastapi.testclient import TestClient

    st = ServeState(bundle, store)
    settings = ServeSettings(model=str(bundle), api_key=AUTH["X-API-Key"], **kw)
    return TestClient(create_app(settings, state=st), raise_server_exceptions=False)


def test_closed_feedback_store_is_503_and_logged(client, caplog):
    client.app.state.serve.store.close()
    caplog.set_level(logging.ERROR, logger="lgrec.serve.security")
    r = client.post("/feedback", json=GOOD, headers=AUTH)
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "unavailable" and r.headers["retry-after"] == "1"
    assert r.json()["detail"] == "feedback store unavailable; retry later"
    assert "closed" in caplog.text and str(client.app.state.serve.store.path) in caplog.text
    r = client.post("/users", json={"user_id": "x1", "liked_items": ["sci-1"]}, headers=AUTH)
    assert r.status_code == 503


def test_locked_feedback_store_is_503(bundle, tmp_path):
    """Another program holds the database's write lock past the store's timeout."""
    path = tmp_path / "locked.sqlite"
    c = _app_on(bundle, FeedbackStore(path, timeout=0.2))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        r = c.post("/feedback", json=GOOD, headers=AUTH)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert r.status_code == 503 and str(tmp_path) not in r.text, r.text
    assert c.post("/feedback", json=GOOD, headers=AUTH).status_code == 201  # retry works
    c.app.state.serve.close()


def test_non_finite_model_scores_are_500_and_logged(client, caplog):
    st = client.app.state.serve
    u = st.user_index("u2")
    st.U[u] = float("nan")  # a corrupt vector, as a fold-in gone wrong would leave it:
    st.score_cache.invalidate(u)  # its next request recomputes the user's rows
    caplog.set_level(logging.ERROR, logger="lgrec.serve.security")
    for path, params in (
        ("/recommend", {"user": "u2"}),
        ("/explain", {"user": "u2", "item": "sci-1"}),
    ):
        r = client.get(path, params=params)
        assert r.status_code == 500, r.text
        assert r.json() == {
            "error": "internal_error",
            "detail": "internal server error (see the server log)",
        }
    assert "NaN" in caplog.text
    assert client.get("/recommend", params={"user": "u3"}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "kw", "status"),
    [
        ("get", "/recommend", {"params": {"user": "ghost"}}, 404),
        ("get", "/recommend", {"params": {"user": "u0", "candidates": "graph"}}, 422),
        ("post", "/feedback", {"json": {**GOOD, "event": "rating", "value": 9}}, 422),
        ("post", "/users", {"json": {"user_id": "u1", "liked_items": ["sci-1"]}}, 409),
    ],
)
def test_client_mistakes_stay_4xx(client, method, path, kw, status):
    r = getattr(client, method)(path, headers=AUTH, **kw)
    assert r.status_code == status, r.text


def test_text_off_server_refuses_a_query_as_client_error(make_client):
    c = make_client(text="off")
    r = c.get("/recommend", params={"user": "u0", "query": "space"})
    assert r.status_code == 422 and "text" in r.json()["detail"]
