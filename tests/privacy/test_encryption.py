"""Encryption at rest of the feedback store (SQLCipher): nothing readable without the key,
clear errors, an encrypted copy of a plain store, and the server on an encrypted store."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading

import pytest
import torch

from lgrec.errors import DataError
from lgrec.privacy.encryption import KEY_ENV, encrypt_store, is_encrypted
from lgrec.store import FeedbackStore

KEY = "correct horse battery staple"
SECRET_USER = "user-with-a-secret-name-7731"


def test_encrypted_file_holds_nothing_readable(tmp_path):
    path = tmp_path / "enc.sqlite"
    with FeedbackStore(path, key=KEY) as s:
        s.add_user(SECRET_USER, text="a private diary entry")
        s.add_event(SECRET_USER, "item-42", "rating", value=4.0)
        assert s.encrypted and s.events()["user_id"].tolist() == [SECRET_USER]
        files = {f.name: f.read_bytes() for f in tmp_path.iterdir()}  # the WAL too, while open
    assert is_encrypted(path) and any(name.endswith("-wal") for name in files)
    for name, data in files.items():
        assert SECRET_USER.encode() not in data and b"private diary" not in data, name
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(path).execute("SELECT * FROM events").fetchall()
    with FeedbackStore(path, key=KEY) as s:  # reopened with the key: all there
        assert s.get_user(SECRET_USER)["text"] == "a private diary entry"


def test_wrong_or_missing_key_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    enc, plain = tmp_path / "enc.sqlite", tmp_path / "plain.sqlite"
    FeedbackStore(enc, key=KEY).close()
    FeedbackStore(plain).close()
    with pytest.raises(DataError, match=f"is encrypted.*set {KEY_ENV}"):
        FeedbackStore(enc)
    with pytest.raises(DataError, match="does not decrypt"):
        FeedbackStore(enc, key="another passphrase")
    monkeypatch.setenv(KEY_ENV, KEY)  # the environment is where the key normally comes from
    FeedbackStore(enc).close()
    with pytest.raises(DataError, match=f"not encrypted, but {KEY_ENV} is set"):
        FeedbackStore(plain)


def test_encrypted_copy_of_a_plain_store(tmp_path):
    plain = tmp_path / "plain.sqlite"
    with FeedbackStore(plain) as s:
        s.add_events([{"user_id": f"u{k}", "item_id": "i", "event": "view"} for k in range(5)])
        s.delete_user("u0")
    enc = encrypt_store(plain, tmp_path / "enc.sqlite", KEY)
    with FeedbackStore(enc, key=KEY) as s:
        assert s.count() == 4 and s.is_erased("u0")
        s.add_event("u9", "i", "click")  # the schema version came along: no re-migration
    with FeedbackStore(plain) as s:
        assert s.count() == 4  # the source is untouched


CREATOR = textwrap.dedent(
    """
    import sys
    from lgrec.store import FeedbackStore

    with FeedbackStore(sys.argv[1]) as s:
        for k in range(20):
            s.add_event(f"p{sys.argv[2]}", f"i{k}", "view")
    """
)


def test_processes_creating_one_encrypted_store_at_once_agree_on_it(tmp_path, monkeypatch):
    """Server workers open a new store together: each derives the key from the salt that
    the first of them wrote."""
    monkeypatch.setenv(KEY_ENV, KEY)
    path = tmp_path / "new.sqlite"
    procs = [
        subprocess.Popen([sys.executable, "-c", CREATOR, str(path), str(k)], stderr=subprocess.PIPE)
        for k in range(3)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    with FeedbackStore(path) as s:
        assert s.count() == 60


def test_server_state_on_an_encrypted_store_converges_and_replays(tmp_path, monkeypatch):
    from lgrec.models.mf import BPRMF
    from lgrec.pipeline import save_bundle
    from lgrec.serve.state import ServeState
    from tests.conftest import make_planted

    monkeypatch.setenv(KEY_ENV, KEY)
    torch.set_num_threads(1)
    ds = make_planted(n_users=30, items_per_topic=6, per_user=6)
    bundle = save_bundle(BPRMF(factors=8, epochs=3).fit(ds), ds, tmp_path / "bundle")
    path = tmp_path / "shared.sqlite"
    a = ServeState(bundle, FeedbackStore(path), text="off")
    b = ServeState(bundle, FeedbackStore(path), text="off")
    for item in ("i1", "i2", "i7"):
        a.add_feedback("u3", item, "like")
    b.sync()  # b reads a's events through its own (encrypted) read-only connection
    u = a.user_index("u3")
    assert torch.allclose(a.user_vector(u), b.user_vector(u)) and b.online_events[u] == 3
    a.erase_user("u5")
    b.sync()
    assert not b.has_user("u5")
    a.close()
    b.close()
    c = ServeState(bundle, FeedbackStore(path), text="off")  # restart
    assert torch.allclose(c.user_vector(u), a.user_vector(u)) and not c.has_user("u5")
    c.close()
    assert is_encrypted(path)


COUNTER = textwrap.dedent(
    """
    import sys
    from lgrec.store import FeedbackStore

    with FeedbackStore(sys.argv[1]) as s:
        print(s.count())
    """
)


@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "encrypted"])
def test_a_new_connection_keeps_the_process_locks_so_the_wal_survives(tmp_path, monkeypatch, key):
    """Opening a connection must not drop the process's SQLite locks on the file (closing any
    descriptor of a file drops them all): another process that opens and closes the store
    would otherwise delete the WAL under the first process, whose later commits were lost."""
    if key:
        monkeypatch.setenv(KEY_ENV, key)
    else:
        monkeypatch.delenv(KEY_ENV, raising=False)
    path = tmp_path / "f.sqlite"

    def count() -> str:
        run = subprocess.run([sys.executable, "-c", COUNTER, str(path)], capture_output=True)
        assert run.returncode == 0, run.stderr.decode()
        return run.stdout.decode().strip()

    with FeedbackStore(path) as s:
        s.add_event("u1", "i1", "click")
        worker = threading.Thread(target=s.count)  # a second connection, as a server thread
        worker.start()
        worker.join()
        assert count() == "1"  # another process opens and closes the store
        s.add_event("u1", "i2", "click")
        assert any(f.name.endswith("-wal") for f in tmp_path.iterdir())
        assert count() == "2"  # the commit went to the WAL that everyone reads
