"""Writes under concurrency: one creator per id across threads and workers, idempotency keys
that refuse a different event."""

from __future__ import annotations

import threading

import pytest
import torch
from serve_fixtures import AUTH

from lgrec.errors import AlreadyExistsError, ConflictError
from lgrec.serve.app import ServeSettings, create_app
from lgrec.serve.state import ServeState
from lgrec.store.feedback import FeedbackStore


def _two_workers(bundle, tmp_path):
    """Two apps on one store file, as two ``lgrec serve`` workers are."""
    from fastapi.testclient import TestClient

    path = tmp_path / "shared.sqlite"
    out = []
    for _ in range(2):
        st = ServeState(bundle, FeedbackStore(path))
        settings = ServeSettings(model=str(bundle), api_key=AUTH["X-API-Key"])
        out.append(TestClient(create_app(settings, state=st), raise_server_exceptions=False))
    return out


def _race(clients, path: str, bodies: list[dict]) -> list[int]:
    """POST every body at once (a barrier), alternating between the clients."""
    gate = threading.Barrier(len(bodies))
    status = [0] * len(bodies)

    def go(k: int) -> None:
        gate.wait()
        status[k] = clients[k % len(clients)].post(path, json=bodies[k], headers=AUTH).status_code

    threads = [threading.Thread(target=go, args=(k,)) for k in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return status


@pytest.mark.parametrize("kind", ["users", "items"])
def test_concurrent_creates_of_one_id_give_one_201_and_workers_agree(bundle, tmp_path, kind):
    a, b = _two_workers(bundle, tmp_path)
    try:
        for trial in range(4):
            key = f"race-{kind}-{trial}"
            if kind == "users":
                bodies = [{"user_id": key, "text": f"variant {n} loves space"} for n in range(8)]
            else:
                bodies = [{"item_id": key, "title": f"Space film variant {n}"} for n in range(8)]
            status = _race([a, b], f"/{kind}", bodies)
            assert sorted(status) == [201] + [409] * 7, (trial, status)
            sa, sb = a.app.state.serve, b.app.state.serve
            sa.sync(), sb.sync()
            if kind == "users":
                stored = sa.store.get_user(key)["text"]
                ua, ub = sa.user_index(key), sb.user_index(key)
                assert sa.user_text[ua] == sb.user_text[ub] == stored
                assert torch.allclose(sa.user_vector(ua), sb.user_vector(ub), atol=1e-6)
            else:
                stored = sa.store.get_item(key)["title"]
                ia, ib = sa.item_index(key), sb.item_index(key)
                assert sa.titles[ia] == sb.titles[ib] == stored
                assert torch.allclose(sa.V[ia], sb.V[ib], atol=1e-6)
    finally:
        a.app.state.serve.close()
        b.app.state.serve.close()


def test_store_create_is_decided_by_the_unique_key(tmp_path):
    with FeedbackStore(tmp_path / "s.sqlite") as s:
        assert s.add_user("x", text="first", exist_ok=False) is True
        with pytest.raises(AlreadyExistsError, match="user 'x' already exists"):
            s.add_user("x", text="second", exist_ok=False)
        assert s.get_user("x")["text"] == "first"
        assert s.add_item("i", title="A", exist_ok=False) is True
        with pytest.raises(AlreadyExistsError, match="item 'i' already exists"):
            s.add_item("i", title="B", exist_ok=False)
        assert s.get_item("i")["title"] == "A"
        assert s.add_user("x", text="updated") is False  # the default still updates


def test_idempotency_key_reused_for_another_event_is_409(client):
    st = client.app.state.serve
    first = {"user": "u1", "item": "sci-5", "event": "like", "idempotency_key": "K-1"}
    r1 = client.post("/feedback", json=first, headers=AUTH)
    assert r1.status_code == 201
    other = {"user": "u2", "item": "rom-14", "event": "purchase", "idempotency_key": "K-1"}
    r2 = client.post("/feedback", json=other, headers=AUTH)
    assert r2.status_code == 409, r2.text
    detail = r2.json()["detail"]
    assert "K-1" in detail and f"event {r1.json()['id']}" in detail and "'u2'" in detail
    rated = {**first, "event": "rating", "value": 4}
    assert client.post("/feedback", json=rated, headers=AUTH).status_code == 409
    stamped = {**first, "timestamp": 12345.0}  # a replay may not move the time either
    assert client.post("/feedback", json=stamped, headers=AUTH).status_code == 409
    assert st.store.count() == 1 and client.get("/users/u2").json()["online_events"] == 0
    replay = client.post("/feedback", json=first, headers=AUTH)
    assert replay.status_code == 200
    want = {**r1.json(), "created": False}
    assert replay.json() == want and want["user"] == "u1" and want["event"] == "like"


def test_store_replay_and_conflict(tmp_path):
    with FeedbackStore(tmp_path / "s.sqlite") as s:
        eid, _ = s.add_event("u", "i", "rating", value=4.0, ts=100.0, idempotency_key="k")
        assert s.add_event("u", "i", "rating", value=4.0, idempotency_key="k") == (eid, False)
        for kw in ({"value": 5.0}, {"value": 4.0, "ts": 101.0}):
            with pytest.raises(ConflictError, match="already used for event"):
                s.add_event("u", "i", "rating", idempotency_key="k", **kw)
        with pytest.raises(ConflictError):  # a batch with a conflict writes nothing
            s.add_events([{"user_id": "v", "item_id": "j", "event": "view"},
                          {"user_id": "w", "item_id": "i", "event": "view",
                           "idempotency_key": "k"}])  # fmt: skip
        assert s.count() == 1
        assert s.get_event(eid)["value"] == 4.0 and s.get_event(eid + 5) is None


def test_openapi_documents_the_replay(client):
    spec = client.get("/openapi.json").json()
    responses = spec["paths"]["/feedback"]["post"]["responses"]
    assert {"200", "201", "409"} <= set(responses)
    assert "replay" in responses["200"]["description"]
