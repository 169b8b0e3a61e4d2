"""Auth, size limits and bad input: every client error is a 4xx JSON {"error", "detail"}."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from serve_fixtures import API_KEY, AUTH

GOOD = {"user": "u0", "item": "sci-1", "event": "click"}


def _is_error(r, status: int | tuple[int, ...]) -> dict:
    allowed = (status,) if isinstance(status, int) else status
    assert r.status_code in allowed, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error", "detail"} and isinstance(body["error"], str)
    return body


# ---- API key ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/feedback", GOOD),
        ("post", "/users", {"user_id": "zed", "liked_items": ["sci-1"]}),
        ("post", "/items", {"item_id": "x1", "title": "A space film"}),
    ],
)
def test_writes_need_the_api_key(client, method, path, body):
    assert _is_error(client.post(path, json=body), 401)["detail"].startswith("missing")
    r = client.post(path, json=body, headers={"X-API-Key": API_KEY + "x"})
    assert _is_error(r, 401)["detail"] == "invalid API key"
    assert r.headers["www-authenticate"] == "ApiKey"
    assert client.post(path, json=body, headers=AUTH).status_code == 201
    assert API_KEY not in r.text


def test_auth_is_checked_before_the_body(client):
    r = client.post("/feedback", content=b"not json", headers={"Content-Type": "application/json"})
    _is_error(r, 401)


def test_no_configured_key_disables_writes(make_client):
    c = make_client(api_key=None)
    body = _is_error(c.post("/feedback", json=GOOD, headers=AUTH), 403)
    assert "LGREC_API_KEY" in body["detail"]
    assert c.get("/recommend", params={"user": "u0"}).status_code == 200


def test_protect_reads(make_client):
    c = make_client(protect_reads=True)
    _is_error(c.get("/recommend", params={"user": "u0"}), 401)
    _is_error(c.get("/metrics"), 401)
    assert c.get("/recommend", params={"user": "u0"}, headers=AUTH).status_code == 200
    assert c.get("/health").status_code == 200


def test_key_never_logged(client, caplog):
    caplog.set_level(logging.DEBUG)
    client.post("/feedback", json=GOOD, headers={"X-API-Key": "wrong-" + API_KEY})
    client.post("/feedback", json=GOOD, headers=AUTH)
    assert API_KEY not in caplog.text


# ---- size limits --------------------------------------------------------------------------------
def test_body_size_limit(make_client):
    c = make_client(max_body=1024)
    big = {**GOOD, "idempotency_key": "k" * 200, "pad": "x" * 2000}
    assert "1024" in _is_error(c.post("/feedback", json=big, headers=AUTH), 413)["detail"]

    def chunks():  # no Content-Length: the limit holds on the bytes received
        yield b'{"user": "u0", "pad": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}'

    r = c.post("/feedback", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    _is_error(r, 413)
    assert c.app.state.serve.store.count() == 0
    assert c.post("/feedback", json=GOOD, headers=AUTH).status_code == 201


# ---- bad input, fuzz-ish ------------------------------------------------------------------------
BAD_FEEDBACK = [
    ({**GOOD, "user": 123}, 422),
    ({**GOOD, "item": None}, 422),
    ({**GOOD, "event": "hate"}, 422),
    ({**GOOD, "event": "rating"}, 422),  # rating without value
    ({**GOOD, "value": "5"}, 422),
    ({**GOOD, "value": True}, 422),
    ({**GOOD, "timestamp": -5}, 422),
    ({**GOOD, "extra": 1}, 422),
    ({**GOOD, "user": ""}, 422),
    ({**GOOD, "user": "   "}, 422),
    ({**GOOD, "user": "a\x00b"}, 422),
    ({**GOOD, "user": "u" * 300}, 422),
    ({**GOOD, "idempotency_key": "k" * 300}, 422),
    ({**GOOD, "idempotency_key": ""}, 422),
    ([GOOD], 422),
    ("just a string", 422),
    ({}, 422),
]


@pytest.mark.parametrize(("body", "status"), BAD_FEEDBACK)
def test_bad_feedback_bodies(client, body, status):
    _is_error(client.post("/feedback", json=body, headers=AUTH), status)
    assert client.app.state.serve.store.count() == 0


@pytest.mark.parametrize(
    ("raw", "ctype", "status"),
    [
        (
            b'{"user": "u0", "item": "sci-1", "event": "rating", "value": NaN}',
            "application/json",
            422,
        ),
        (
            b'{"user": "u0", "item": "sci-1", "event": "rating", "value": Infinity}',
            "application/json",
            422,
        ),
        (
            b'{"user": "u0", "item": "sci-1", "event": "rating", "value": 1e999}',
            "application/json",
            422,
        ),
        (b'{"user": "u0", "item":', "application/json", 400),
        (b"", "application/json", 422),
        (b"hello", "text/plain", (400, 415, 422)),
        (b"\xff\xfe\x00garbage", "application/json", (400, 422)),
        (b"null", "application/json", 422),
    ],
)
def test_malformed_bodies(client, raw, ctype, status):
    r = client.post("/feedback", content=raw, headers={**AUTH, "Content-Type": ctype})
    _is_error(r, status)
    assert client.app.state.serve.store.count() == 0


@pytest.mark.parametrize(
    "params",
    [
        {"user": "u0", "k": 0},
        {"user": "u0", "k": -3},
        {"user": "u0", "k": 1001},
        {"user": "u0", "k": 10**12},
        {"user": "u0", "k": "ten"},
        {"user": "u0", "k": 2.5},
        {"k": 5},
        {"user": ""},
        {"user": "u0", "exclude_seen": "maybe"},
        {"user": "u0", "query": "q" * 501},
        {"user": "u0", "query": "space", "query_weight": "nan"},
        {"user": "u0", "query": "space", "query_weight": -1},
    ],
)
def test_bad_recommend_params(client, params):
    _is_error(client.get("/recommend", params=params), 422)


def test_unknown_ids_routes_and_methods(client):
    assert "ghost" in _is_error(client.get("/recommend", params={"user": "ghost"}), 404)["detail"]
    _is_error(client.get("/similar", params={"item": "ghost"}), 404)
    _is_error(client.get("/similar", params={"item": "sci-1", "blend": 2}), 422)
    _is_error(client.get("/similar", params={"item": "sci-1", "blend": "nan"}), 422)
    _is_error(client.get("/nope"), 404)
    _is_error(client.delete("/feedback"), 405)
    _is_error(client.get("/users", params={"limit": 0}), 422)


def test_random_garbage_never_500(client):
    """Seeded random JSON-ish bodies and query strings: always 4xx JSON, never stored."""
    rng = np.random.default_rng(0)
    atoms = [None, True, -1, 0, 10**30, 1.5, "", "u0", "sci-1", "like", "rating", [], {}, "\u202e"]
    keys = ["user", "item", "event", "value", "timestamp", "idempotency_key", "x"]
    for _ in range(60):
        body = {
            str(k): atoms[rng.integers(len(atoms))] for k in rng.choice(keys, rng.integers(0, 6))
        }
        if rng.random() < 0.3:
            raw = json.dumps(body).encode()[: rng.integers(0, 40)]
        else:
            raw = json.dumps(body).encode()
        r = client.post(
            "/feedback", content=raw, headers={**AUTH, "Content-Type": "application/json"}
        )
        assert 400 <= r.status_code < 500 or r.status_code in (200, 201), (raw, r.status_code)
        if r.status_code >= 400:
            _is_error(r, r.status_code)
        q = {"user": atoms[rng.integers(len(atoms))], "k": atoms[rng.integers(len(atoms))]}
        r = client.get("/recommend", params={k: v for k, v in q.items() if v is not None})
        assert r.status_code < 500, (q, r.text)
    st = client.app.state.serve
    assert st.store.count() == len(st.store.events())  # and every stored event was valid
