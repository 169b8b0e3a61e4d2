"""Feedback writes through one writer thread per process (lgrec.serve.groupcommit): events that
queue while a commit runs are stored together in one transaction, each request still gets its
own answer, nothing acknowledged is lost, a waiting write holds no thread of the server's pool,
and ``/recommend`` never applies events on its own request path."""

from __future__ import annotations

import threading

import pytest
from serve_fixtures import AUTH

from lgrec.errors import ConflictError, StoreUnavailableError, UnknownIdError
from lgrec.serve.groupcommit import FeedbackWriter
from lgrec.serve.state import ServeState
from lgrec.store.feedback import FeedbackStore

WAIT = 30  # seconds: only a hang reaches it (a liveness bound, not a speed claim)


class HeldStore:
    """A store whose next commit waits until :meth:`release` (a commit that is running)."""

    def __init__(self, store: FeedbackStore) -> None:
        self.store = store
        self.entered, self.gate = threading.Event(), threading.Event()

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    def _hold(self) -> None:
        if not self.gate.is_set():
            self.entered.set()
            assert self.gate.wait(WAIT)

    def add_event(self, **kw):
        self._hold()
        return self.store.add_event(**kw)

    def add_events(self, events):
        self._hold()
        return self.store.add_events(events)

    def release(self) -> None:
        self.gate.set()


def _queued(writer: FeedbackWriter, n: int) -> None:
    """Wait until ``n`` events wait in the writer's queue."""
    for _ in range(WAIT * 200):
        with writer._cond:
            if len(writer._queue) >= n:
                return
        threading.Event().wait(0.005)
    raise AssertionError(f"{n} events never queued")


def _behind_a_commit(tmp_path, events: list[dict], store: FeedbackStore | None = None):
    """Submit one event and hold its commit, queue ``events`` behind it, then let the commits
    run; ``(writer, [future of each event])``."""
    held = HeldStore(store or FeedbackStore(tmp_path / "s.sqlite"))
    writer = FeedbackWriter(held)
    first = writer.submit(dict(user_id="u0", item_id="i0", event="view"))
    assert held.entered.wait(WAIT)
    futures = [writer.submit(e) for e in events]
    _queued(writer, len(events))
    held.release()
    assert first.result(WAIT).created
    return writer, futures


def test_events_queued_during_a_commit_share_one_transaction(tmp_path):
    events = [dict(user_id=f"u{k}", item_id=f"i{k}", event="click") for k in range(1, 7)]
    writer, futures = _behind_a_commit(tmp_path, events)
    results = [f.result(WAIT) for f in futures]
    assert writer.commits == 2  # the held one, then one transaction for all six
    assert all(r.created for r in results)
    store = writer.store.store
    assert sorted(store.events()["id"].tolist()) == sorted([1] + [r.id for r in results])
    for r, e in zip(results, events, strict=True):  # each got its own event's id and row
        assert (r.row["id"], r.row["user_id"], r.row["item_id"]) == (
            r.id, e["user_id"], e["item_id"],
        )  # fmt: skip
    writer.close()
    store.close()


def test_a_bad_event_in_a_group_fails_alone(tmp_path):
    store = FeedbackStore(tmp_path / "s.sqlite")
    first, _ = store.add_event("u1", "i1", "like", idempotency_key="K")
    events = [
        dict(user_id="u2", item_id="i2", event="click"),
        dict(user_id="u9", item_id="i9", event="purchase", idempotency_key="K"),  # reused key
        dict(user_id="u1", item_id="i1", event="like", idempotency_key="K"),  # true replay
        dict(user_id="u3", item_id="i3", event="view"),
    ]
    writer, futures = _behind_a_commit(tmp_path, events, store)
    with pytest.raises(ConflictError):
        futures[1].result(WAIT)
    replay = futures[2].result(WAIT)
    assert (replay.id, replay.created, replay.row["event"]) == (first, False, "like")
    assert futures[0].result(WAIT).created and futures[3].result(WAIT).created
    assert store.count() == 4  # the first event, the held one and two new ones, nothing twice
    writer.close()
    store.close()


def test_a_failed_check_stores_nothing_and_answers_only_that_request(tmp_path):
    store = FeedbackStore(tmp_path / "s.sqlite")

    def check(event: dict) -> None:
        if event["user_id"] == "ghost":
            raise UnknownIdError("unknown user 'ghost'")

    writer = FeedbackWriter(store, check=check)
    bad = writer.submit(dict(user_id="ghost", item_id="i1", event="click"))
    good = writer.submit(dict(user_id="u1", item_id="i1", event="click"))
    with pytest.raises(UnknownIdError):
        bad.result(WAIT)
    assert good.result(WAIT).created
    assert store.events()["user_id"].tolist() == ["u1"]
    writer.close()
    store.close()


def test_close_settles_the_queued_events_then_refuses_new_ones(tmp_path):
    events = [dict(user_id=f"u{k}", item_id="i1", event="click") for k in range(1, 4)]
    held = HeldStore(FeedbackStore(tmp_path / "s.sqlite"))
    writer = FeedbackWriter(held)
    first = writer.submit(dict(user_id="u0", item_id="i0", event="view"))
    assert held.entered.wait(WAIT)
    futures = [writer.submit(e) for e in events]
    closer = threading.Thread(target=writer.close)
    closer.start()
    held.release()
    closer.join(WAIT)
    assert not closer.is_alive()
    assert first.result(0).created and all(f.result(0).created for f in futures)
    assert held.store.count() == 4  # every acknowledged event is stored
    with pytest.raises(StoreUnavailableError):
        writer.submit(dict(user_id="u5", item_id="i1", event="click"))
    held.store.close()


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


def test_waiting_feedback_holds_no_pool_thread(bundle, tmp_path):
    """While a commit hangs (a stalled fsync), more feedback requests wait than the server's
    thread pool has threads, and ``/recommend`` is still answered; once the commit returns,
    every feedback request gets its 201. (A sync endpoint blocking a pool thread per waiting
    write starves the pool: the read would wait for the commit.)"""
    import anyio.to_thread
    from fastapi.testclient import TestClient

    from lgrec.serve.app import ServeSettings, create_app

    state = ServeState(bundle, FeedbackStore(tmp_path / "s.sqlite"))
    held = HeldStore(state.store)
    state._writes.store = held
    settings = ServeSettings(model=str(bundle), api_key=AUTH["X-API-Key"])
    with TestClient(create_app(settings, state=state), raise_server_exceptions=False) as client:

        def shrink_pool() -> None:
            anyio.to_thread.current_default_thread_limiter().total_tokens = 2

        client.portal.call(shrink_pool)
        codes: list[int] = []

        def post(k: int) -> None:
            fb = {"user": f"u{k}", "item": "sci-3", "event": "click"}
            codes.append(client.post("/feedback", json=fb, headers=AUTH).status_code)

        posts = [threading.Thread(target=post, args=(k,)) for k in range(5)]
        try:
            posts[0].start()
            assert held.entered.wait(WAIT)  # the first commit hangs
            for t in posts[1:]:
                t.start()
            _queued(state._writes, 4)  # four more wait: more than the pool's 2 threads
            got: list[int] = []
            read = threading.Thread(
                target=lambda: got.append(client.get("/recommend?user=u1").status_code)
            )
            read.start()
            read.join(WAIT)
            assert got == [200]  # answered while the commit still hangs
            assert not held.gate.is_set() and state.store.count() == 0
        finally:
            held.release()  # the commit returns
        for t in posts:
            t.join(WAIT)
        assert codes == [201] * 5 and state.store.count() == 5
    state.close()


def test_recommend_leaves_applying_other_processes_events_to_the_writer_thread(bundle, tmp_path):
    """An event stored by another process is folded in by the writer thread, not by the
    request that noticed it; it counts once applied."""
    path = tmp_path / "shared.sqlite"
    a = ServeState(bundle, FeedbackStore(path))
    b = ServeState(bundle, FeedbackStore(path))
    try:
        applied_by: list[str] = []
        apply = a._apply_event

        def spy(*row):
            applied_by.append(threading.current_thread().name)
            return apply(*row)

        a._apply_event = spy
        b.add_feedback("u0", b.item_ids[20], "purchase")
        b.add_feedback("u1", b.item_ids[21], "like")
        assert a.sync(wait=False) == 0  # the request does not apply them …
        for _ in range(WAIT * 200):  # … the writer thread does, at once
            if a.last_event == 2:
                break
            threading.Event().wait(0.005)
        assert a.last_event == 2 and a.online_events == b.online_events
        assert applied_by == ["lgrec-feedback-writer"] * 2
    finally:
        a.close()
        b.close()
