"""Feedback stores: validation, idempotency, users/items, schema version, threads, kill -9.

Every test taking ``store`` or ``store_spec`` runs on three backends: a plain SQLite file, an
SQLCipher-encrypted one (``LGREC_FEEDBACK_KEY`` set, :mod:`lgrec.privacy.encryption`) and a
real PostgreSQL server (``postgres_url`` in ``tests/conftest.py``).
"""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from lgrec.errors import AlreadyExistsError, ConflictError, DataError, StoreUnavailableError
from lgrec.privacy.encryption import connect, feedback_key
from lgrec.store import FeedbackStore, open_feedback_store
from lgrec.store.feedback import SCHEMA_VERSION

TEST_KEY = "a test passphrase"


@pytest.fixture(params=["sqlite", "sqlcipher", "postgresql"])
def store_spec(request, tmp_path, monkeypatch) -> str:
    """Where a store lives: a SQLite file path (plain, or encrypted with the key from the
    environment, which subprocesses inherit), or the URL of a fresh PostgreSQL database."""
    monkeypatch.delenv("LGREC_FEEDBACK_KEY", raising=False)
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    if request.param == "sqlcipher":
        monkeypatch.setenv("LGREC_FEEDBACK_KEY", TEST_KEY)
    return str(tmp_path / "fb" / "feedback.sqlite")


@pytest.fixture(params=["plain", "encrypted"])
def sqlite_key(request, monkeypatch) -> str:
    """For SQLite-only tests: plain file, or encrypted with the key from the environment."""
    if request.param == "encrypted":
        monkeypatch.setenv("LGREC_FEEDBACK_KEY", TEST_KEY)
    else:
        monkeypatch.delenv("LGREC_FEEDBACK_KEY", raising=False)
    return request.param


def raw_connect(path) -> sqlite3.Connection:
    """A plain connection to the file, with the key when the test's store is encrypted."""
    return connect(path, feedback_key())


@pytest.fixture
def store(store_spec):
    s = open_feedback_store(store_spec)
    yield s
    s.close()


def test_add_event_and_read_back(store):
    a, created = store.add_event("u1", "i1", "click", ts=10.0)
    b, _ = store.add_event("u1", "i2", "rating", value=4.5, ts=11.0)
    c, _ = store.add_event("u2", "i1", "purchase")
    assert created and a < b < c
    df = store.events()
    assert df["id"].tolist() == [a, b, c]
    assert df["event"].tolist() == ["click", "rating", "purchase"]
    assert df.loc[1, "value"] == 4.5 and math.isnan(df.loc[0, "value"])
    assert df.loc[0, "ts"] == 10.0 and abs(df.loc[2, "ts"] - time.time()) < 60
    assert (df["received_at"] > 0).all()
    assert store.events(since_id=a)["id"].tolist() == [b, c]
    assert store.events(user_id="u2")["item_id"].tolist() == ["i1"]
    assert store.count() == 3 and store.count(user_id="u1") == 2


def test_event_rows_are_the_events_as_plain_tuples(store):
    a, _ = store.add_event("u1", "i1", "click")
    b, _ = store.add_event("u1", "i2", "rating", value=2.0)
    c, _ = store.add_event("u2", "i3", "like")
    rows = store.event_rows(since_id=a)
    assert rows == [(b, "u1", "i2", "rating", 2.0), (c, "u2", "i3", "like", None)]
    assert type(rows[0]) is tuple  # not sqlite3.Row: the store's row factory is not used
    assert store.event_rows(user_id="u2", columns=("item_id",)) == [("i3",)]
    assert [r[0] for r in store.event_rows(limit=2)] == [a, b]
    with pytest.raises(DataError, match=r"unknown column.*'nope'"):
        store.event_rows(columns=("id", "nope"))


def test_idempotency_key_never_duplicates(store):
    first = store.add_event("u1", "i1", "click", idempotency_key="req-1")
    assert first[1] is True
    assert store.add_event("u1", "i1", "click", idempotency_key="req-1") == (first[0], False)
    assert store.count() == 1
    got = store.add_events(
        [
            {"user_id": "u2", "item_id": "i2", "event": "view", "idempotency_key": "req-2"},
            {"user_id": "u2", "item_id": "i2", "event": "view", "idempotency_key": "req-2"},
            {"user_id": "u1", "item_id": "i1", "event": "click", "idempotency_key": "req-1"},
            {"user_id": "u3", "item_id": "i3", "event": "like"},
        ]
    )
    assert [created for _, created in got] == [True, False, False, True]
    assert got[0][0] == got[1][0] and got[2][0] == first[0]
    assert store.count() == 3


def test_a_key_reused_for_another_event_is_a_conflict_and_stores_nothing(store):
    eid, _ = store.add_event("u", "i", "rating", value=4.0, ts=100.0, idempotency_key="k")
    assert store.add_event("u", "i", "rating", value=4.0, idempotency_key="k") == (eid, False)
    for kw in ({"value": 5.0}, {"value": 4.0, "ts": 101.0}, {"value": 4.0, "item_id": "j"}):
        args = {"user_id": "u", "item_id": "i", "event": "rating", **kw}
        with pytest.raises(ConflictError, match=f"already used for event {eid}"):
            store.add_event(**args, idempotency_key="k")
    with pytest.raises(ConflictError):  # a batch with a conflict writes nothing
        store.add_events([{"user_id": "v", "item_id": "j", "event": "view"},
                          {"user_id": "w", "item_id": "i", "event": "view",
                           "idempotency_key": "k"}])  # fmt: skip
    assert store.count() == 1
    assert store.get_event(eid)["value"] == 4.0 and store.get_event(eid + 5) is None
    got = store.get_event(eid)
    assert (got["user_id"], got["ts"], got["idempotency_key"]) == ("u", 100.0, "k")


def test_create_is_decided_by_the_unique_key(store_spec):
    assert open_feedback_store(store_spec).add_user("x", text="first", exist_ok=False) is True
    stores = [open_feedback_store(store_spec) for _ in range(2)]  # two servers' stores
    try:
        with pytest.raises(AlreadyExistsError, match="user 'x' already exists"):
            stores[0].add_user("x", text="second", exist_ok=False)
        assert stores[1].get_user("x")["text"] == "first"
        assert stores[1].add_user("x", text="updated") is False  # the default still updates
        gate, won, lost = threading.Barrier(8), [], []

        def create(n: int) -> None:  # eight racing creators of one id on two store objects
            gate.wait()
            try:
                won.append(stores[n % 2].add_item("race", title=f"v{n}", exist_ok=False))
            except AlreadyExistsError:
                lost.append(n)

        threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert won == [True] and len(lost) == 7
        assert stores[0].get_item("race")["title"] == f"v{({*range(8)} - set(lost)).pop()}"
    finally:
        for st in stores:
            st.close()


def test_a_closed_store_is_unavailable(store_spec):
    s = open_feedback_store(store_spec)
    s.close()
    with pytest.raises(StoreUnavailableError, match="closed"):
        s.add_event("u", "i", "click")


BAD_EVENTS = [
    ({"user_id": "u", "item_id": "i", "event": "hover"}, "unknown event type 'hover'"),
    ({"user_id": "u", "item_id": "i", "event": "rating"}, "needs a value"),
    ({"user_id": "u", "item_id": "i", "event": "rating", "value": float("nan")}, "finite"),
    ({"user_id": "u", "item_id": "i", "event": "click", "value": float("inf")}, "finite"),
    ({"user_id": "u", "item_id": "i", "event": "click", "ts": float("nan")}, "ts"),
    ({"user_id": "", "item_id": "i", "event": "click"}, "user_id"),
    ({"user_id": "u", "item_id": "  ", "event": "click"}, "item_id"),
    ({"user_id": None, "item_id": "i", "event": "click"}, "user_id"),
    ({"user_id": "u", "item_id": "i", "event": "click", "idempotency_key": ""}, "idempotency"),
]


@pytest.mark.parametrize(("event", "message"), BAD_EVENTS)
def test_invalid_events_are_rejected_and_nothing_is_stored(store, event, message):
    with pytest.raises(DataError, match=message):
        store.add_event(**event)
    good = {"user_id": "ok", "item_id": "ok", "event": "view"}
    with pytest.raises(DataError, match="event #1"):
        store.add_events([good, event, good])
    assert store.count() == 0


def test_users_and_items(store):
    assert store.add_user("u1", text="likes war films", attributes={"age": 31}) is True
    assert store.add_user("u1", text="likes noir", attributes={"age": 32}) is False
    user = store.get_user("u1")
    assert user["text"] == "likes noir" and user["attributes"] == {"age": 32}
    assert store.get_user("nobody") is None
    assert store.add_item("i2", "Heat", "A heist", ["Crime", "Thriller"]) is True
    assert store.add_item("i1", "Alien") is True
    assert store.get_item("i2")["categories"] == ["Crime", "Thriller"]
    assert [i["item_id"] for i in store.list_items()] == ["i1", "i2"]
    assert [i["item_id"] for i in store.list_items(limit=1, offset=1)] == ["i2"]
    assert [u["user_id"] for u in store.list_users()] == ["u1"]
    with pytest.raises(DataError, match="JSON"):
        store.add_user("u2", attributes={"x": object()})
    with pytest.raises(DataError, match="categories"):
        store.add_item("i3", categories="Drama")


def test_updates_keep_created_at_and_new_rows_move_the_watermarks(store):
    marks = store.watermarks()
    assert store.add_user("u1", text="old", attributes={"a": 1}) is True
    assert store.add_item("i1", "Old", "d", ["A"]) is True
    assert store.add_event("u1", "i1", "view")[1] is True
    after = store.watermarks()
    assert all(b > a for a, b in zip(marks[:3], after[:3])) and after[3] == marks[3]
    user, item = store.get_user("u1"), store.get_item("i1")
    time.sleep(0.01)
    assert store.add_user("u1", text="new", attributes={"b": 2}) is False
    assert store.add_item("i1", "New", None, []) is False
    got_user, got_item = store.get_user("u1"), store.get_item("i1")
    assert got_user == {**user, "text": "new", "attributes": {"b": 2}}  # created_at kept
    assert got_item == {**item, "title": "New", "description": None, "categories": []}
    with pytest.raises(AlreadyExistsError, match="item 'i1' already exists"):
        store.add_item("i1", "Other", exist_ok=False)
    assert store.get_item("i1") == got_item
    assert [u["user_id"] for u in store.list_users(limit=None)] == ["u1"]


def test_an_erased_id_cannot_be_created_again(store):
    from lgrec.privacy.tombstones import ErasedUserError

    store.add_user("gone", text="private")
    store.delete_user("gone")
    with pytest.raises(ErasedUserError, match="erased"):
        store.add_user("gone", text="back", exist_ok=False)
    with pytest.raises(ErasedUserError):  # a batch naming an erased user stores nothing
        store.add_events([{"user_id": "ok", "item_id": "i", "event": "view"},
                          {"user_id": "gone", "item_id": "i", "event": "view"}])  # fmt: skip
    assert store.count() == 0 and store.list_users() == []


def _overwrite(*paths) -> None:
    """Random bytes over each file that exists (same size): a damaged disk or a stray writer."""
    for p in paths:
        if os.path.exists(p):
            with open(p, "r+b") as f:
                f.write(os.urandom(os.path.getsize(p)))


def _error_of(call) -> BaseException | None:
    try:
        call()
    except BaseException as e:
        return e
    return None


def test_a_corrupted_file_is_unavailable_naming_the_store(tmp_path, monkeypatch):
    """Every method maps a failing database to StoreUnavailableError naming the file, never a
    bare sqlite3 error (plain SQLite: SQLCipher answers some calls on a file of random bytes
    with MemoryError, its SQLITE_NOMEM, which the store does not take for an outage)."""
    monkeypatch.delenv("LGREC_FEEDBACK_KEY", raising=False)
    path = tmp_path / "f.sqlite"
    s = FeedbackStore(path)
    s.add_event("u", "i", "like")
    _overwrite(path, f"{path}-wal", f"{path}-shm")
    calls = [
        lambda: s.add_event("u", "j", "click"),
        lambda: s.add_events([{"user_id": "u", "item_id": "j", "event": "view"}]),
        lambda: s.events(),
        lambda: s.count(),
        lambda: s.watermarks(),
        lambda: s.add_user("v"),
        lambda: s.get_item("i"),
        lambda: s.is_erased("u"),
    ]
    for call in calls:
        with pytest.raises(StoreUnavailableError, match=str(path)):
            call()
    s.close()


def test_a_file_damaged_under_an_open_store_is_unavailable_to_new_connections(tmp_path, sqlite_key):
    """A thread's first connection to a file that is no (decryptable) database any more: the
    store is open, so that is the store's fault (StoreUnavailableError, HTTP 503), not the
    caller's (DataError, 422) as when the store is opened on such a file."""
    path = tmp_path / "f.sqlite"
    s = FeedbackStore(path)
    s.add_event("u", "i", "like")
    s._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    _overwrite(path)
    errors: list = []
    fresh = threading.Thread(target=lambda: errors.append(_error_of(s.count)))
    fresh.start()
    fresh.join()
    assert isinstance(errors[0], StoreUnavailableError) and str(path) in str(errors[0])
    s.close()
    with pytest.raises(DataError, match=str(path)):
        FeedbackStore(path)


def test_erasure_deletes_keeps_a_tombstone_and_refuses_the_id(store):
    from lgrec.privacy.tombstones import ErasedUserError, tombstone_hash

    store.add_user("gone", text="private")
    store.add_event("gone", "i1", "click")
    store.add_event("stay", "i1", "click")
    marks = store.watermarks()
    assert store.delete_user("gone") == {"events": 1, "user": 1, "tombstone": 1}
    assert store.watermarks()[3] > marks[3]  # readers learn of the erasure
    assert store.events()["user_id"].tolist() == ["stay"] and store.get_user("gone") is None
    assert store.is_erased("gone") and not store.is_erased("stay")
    assert store.tombstones() == {tombstone_hash("gone")}
    for write in (
        lambda: store.add_event("gone", "i2", "like"),
        lambda: store.add_events([{"user_id": "gone", "item_id": "i2", "event": "like"}]),
        lambda: store.add_user("gone"),
    ):
        with pytest.raises(ErasedUserError, match="erased"):
            write()
    assert store.delete_user("gone") == {"events": 0, "user": 0, "tombstone": 0}  # idempotent
    assert store.count() == 1


def test_schema_version_and_reopen(tmp_path, sqlite_key):
    path = tmp_path / "f.sqlite"
    with FeedbackStore(path) as s:
        s.add_event("u", "i", "like", idempotency_key="k")
    conn = raw_connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(DataError, match="newer"):
        FeedbackStore(path)
    conn = raw_connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    conn.close()
    with FeedbackStore(path) as s:  # data survives reopening; the key still deduplicates
        assert s.add_event("u", "i", "like", idempotency_key="k") == (1, False)
        assert s.count() == 1


def test_concurrent_writers_from_threads(store):
    def work(t: int) -> None:
        for k in range(25):
            store.add_event(f"u{t}", f"i{k}", "view", idempotency_key=f"{t}-{k}")
            store.add_event(f"u{t}", f"i{k}", "view", idempotency_key=f"{t}-{k}")  # retry

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    df = store.events()
    assert len(df) == 100 and df["id"].is_unique and df["idempotency_key"].is_unique


WRITER = textwrap.dedent(
    """
    import sys
    from lgrec.store import open_feedback_store

    store = open_feedback_store(sys.argv[1])
    k = 0
    while True:
        rid, _ = store.add_event(f"u{k % 7}", f"i{k}", "rating", value=k % 5 + 1, ts=float(k),
                                 idempotency_key=f"key-{k}")
        print(rid, k, flush=True)
        k += 1
    """
)


def test_acknowledged_events_survive_kill_9(store_spec):
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, store_spec], stdout=subprocess.PIPE, text=True
    )
    acked: dict[int, int] = {}
    try:
        deadline = time.monotonic() + 60
        while len(acked) < 150 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            rid, k = map(int, line.split())
            acked[rid] = k
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 150, "the writer did not acknowledge enough events"
    with open_feedback_store(store_spec) as s:
        df = s.events().set_index("id")
    assert set(acked) <= set(df.index)
    for rid, k in acked.items():
        row = df.loc[rid]
        assert (row["item_id"], row["ts"], row["value"]) == (f"i{k}", float(k), k % 5 + 1)
