"""`lgrec serve` on a PostgreSQL feedback store: servers on different ports share it, and a
store that cannot be reached is a 503 that a retry with the same key repairs.

A real PostgreSQL server (``postgres_url`` in tests/conftest.py); real ``lgrec serve``
processes (``run_server``).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import psycopg
import torch
from serve_fixtures import API_KEY, AUTH, run_server, wait_up

from lgrec.serve.state import ServeState
from lgrec.store import open_feedback_store


def _call(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_two_servers_on_different_ports_share_the_store(bundle, tmp_path, postgres_url):
    """An event written through server A is served by server B within one sync interval;
    users created through B are known to A at once; an idempotency key holds across both."""
    interval = 1.0
    args = ("--store", postgres_url, "--no-text", "--sync-interval", str(interval))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        run_server(bundle, tmp_path / "a", *args) as (pa, a, log_a),
        run_server(bundle, tmp_path / "b", *args) as (pb, b, log_b),
    ):
        wait_up(pa, a, log_a)
        wait_up(pb, b, log_b)
        assert _call(f"{b}/users/u3")[1]["online_events"] == 0  # B has looked at the store
        status, ev = _call(f"{a}/feedback", {"user": "u3", "item": "rom-14", "event": "like",
                                              "idempotency_key": "k-1"})  # fmt: skip
        assert status == 201
        time.sleep(interval)  # B's next request looks at the store again
        prof = _call(f"{b}/users/u3")[1]
        assert prof["online_events"] == 1 and prof["history"][-1]["item_id"] == "rom-14"
        assert _call(f"{b}/health")[1]["last_event"] == ev["id"]
        rec = _call(f"{b}/recommend?user=u3&k=50")[1]
        assert "rom-14" not in [it["item_id"] for it in rec["items"]]  # seen on B too
        again = _call(f"{b}/feedback", {"user": "u3", "item": "rom-14", "event": "like",
                                         "idempotency_key": "k-1"})  # fmt: skip
        assert again == (200, {**ev, "created": False})
        status, _ = _call(f"{b}/users", {"user_id": "newbie", "liked_items": ["coo-24"]})
        assert status == 201
        status, rec = _call(f"{a}/recommend?user=newbie&k=5")  # unknown id → A re-reads
        assert status == 200 and len(rec["items"]) == 5
    with open_feedback_store(postgres_url) as store:
        assert store.count() == 1 and store.get_user("newbie") is not None


def test_states_converge_and_replay_from_postgres(bundle, postgres_url):
    a = ServeState(bundle, open_feedback_store(postgres_url))
    b = ServeState(bundle, open_feedback_store(postgres_url), sync_interval=3600)
    a.add_item("coo-new", "Noodle Soup Secrets", "A cooking show about ramen.", ["Cooking"])
    for item in ("coo-24", "coo-new"):
        a.add_feedback("u4", item, "click")
    assert b.sync() == 0  # within its interval B does not look …
    assert b.sync(fresh=True) == 2  # … until asked to
    u = a.user_index("u4")
    assert torch.allclose(a.user_vector(u), b.user_vector(b.user_index("u4")), atol=1e-6)
    assert b.item_ids[-1] == "coo-new"
    a.close()
    b.close()
    c = ServeState(bundle, open_feedback_store(postgres_url))  # a restart replays the store
    assert c.last_event == 2 and torch.allclose(c.user_vector(u), a.user_vector(u), atol=1e-6)
    c.close()


def test_unreachable_store_is_503_and_a_retry_stores_once(make_client, postgres_server,
                                                          postgres_url):  # fmt: skip
    client = make_client(store=postgres_url)
    body = {"user": "u5", "item": "rom-14", "event": "click", "idempotency_key": "r-1"}
    with psycopg.connect(postgres_server.url(), password=postgres_server.password,
                         autocommit=True) as admin:  # fmt: skip
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'lgrec' AND pid <> pg_backend_pid()"
        )
    r = client.post("/feedback", json=body, headers=AUTH)
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert "retry" in r.json()["detail"] and postgres_server.password not in r.text
    first = client.post("/feedback", json=body, headers=AUTH)
    again = client.post("/feedback", json=body, headers=AUTH)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert client.get("/users/u5").json()["online_events"] == 1
