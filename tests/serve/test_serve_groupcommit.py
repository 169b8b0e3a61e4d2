"""Group commit of feedback writes (lgrec.serve.groupcommit): events that queue while a commit
runs are stored together in one transaction, each request still gets its own answer, and
nothing acknowledged is lost."""

from __future__ import annotations

import threading

import pytest
from serve_fixtures import AUTH

from lgrec.errors import ConflictError
from lgrec.serve.groupcommit import GroupCommit
from lgrec.store.feedback import FeedbackStore


def _queue_behind_a_commit(gc: GroupCommit, events: list[dict]) -> tuple[list, list]:
    """Start one writer thread per event while the commit lock is held (a commit running),
    wait until every event is queued, then let the commits run; ``(results, errors)``."""
    results: list = [None] * len(events)
    errors: list = [None] * len(events)

    def write(k: int) -> None:
        try:
            results[k] = gc.submit(events[k])
        except Exception as e:
            errors[k] = e

    threads = [threading.Thread(target=write, args=(k,)) for k in range(len(events))]
    with gc._commit_lock:
        for t in threads:
            t.start()
        while True:  # every writer has queued its event and waits for the lock
            with gc._queue_lock:
                if len(gc._queue) == len(events):
                    break
            threading.Event().wait(0.005)
    for t in threads:
        t.join()
    return results, errors


def test_events_queued_during_a_commit_share_one_transaction(tmp_path):
    store = FeedbackStore(tmp_path / "s.sqlite")
    gc = GroupCommit(store)
    events = [dict(user_id=f"u{k}", item_id=f"i{k}", event="click") for k in range(6)]
    results, errors = _queue_behind_a_commit(gc, events)
    assert errors == [None] * 6
    assert gc.commits == 1  # one transaction for all six
    assert all(created for _, created in results)
    stored = store.events()
    assert sorted(stored["id"].tolist()) == sorted(eid for eid, _ in results)
    for (eid, _), e in zip(results, events, strict=True):  # each got its own event's id
        row = store.get_event(eid)
        assert (row["user_id"], row["item_id"]) == (e["user_id"], e["item_id"])
    store.close()


def test_a_bad_event_in_a_group_fails_alone(tmp_path):
    store = FeedbackStore(tmp_path / "s.sqlite")
    first, _ = store.add_event("u1", "i1", "like", idempotency_key="K")
    gc = GroupCommit(store)
    events = [
        dict(user_id="u2", item_id="i2", event="click"),
        dict(user_id="u9", item_id="i9", event="purchase", idempotency_key="K"),  # reused key
        dict(user_id="u1", item_id="i1", event="like", idempotency_key="K"),  # true replay
        dict(user_id="u3", item_id="i3", event="view"),
    ]
    results, errors = _queue_behind_a_commit(gc, events)
    assert isinstance(errors[1], ConflictError) and results[1] is None
    assert results[2] == (first, False)
    assert errors[0] is None and errors[3] is None and results[0][1] and results[3][1]
    assert store.count() == 3  # the first event and the two new ones, nothing twice
    store.close()


@pytest.mark.parametrize("n", [24])
def test_concurrent_feedback_requests_are_all_stored_and_applied(client, n):
    st = client.app.state.serve
    codes: list[int] = []

    def post(k: int) -> None:
        fb = {"user": f"u{k % 10}", "item": "sci-3", "event": "click", "idempotency_key": f"c{k}"}
        codes.append(client.post("/feedback", json=fb, headers=AUTH).status_code)

    threads = [threading.Thread(target=post, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [201] * n
    assert st.store.count() == n and st.last_event == n
    assert sum(st.online_events.values()) == n  # every acknowledged event was folded in
