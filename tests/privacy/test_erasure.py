"""Erasure: the feedback store, the served state, two server processes, a restart, the graph
store, ``lgrec forget`` and the next ``lgrec retrain``."""

from __future__ import annotations

import json
import sqlite3

import httpx
import pytest
import torch
from privacy_fixtures import API_KEY, raw_user, run_server, write_interactions

from lgrec.cli import main
from lgrec.errors import UnknownIdError
from lgrec.models import Recommender
from lgrec.privacy.tombstones import ErasedUserError, drop_erased, tombstone_hash
from lgrec.serve.catalog import AlreadyExistsError
from lgrec.serve.state import ServeState
from lgrec.store import FeedbackStore, open_graph_store

X, Y = raw_user(1), raw_user(2)


def linking_pair(data) -> tuple[str, str, str]:
    """``(x, y, item)``: an item y lacks and, of y's co-users who have it, x shares strictly
    the most items with y (so the graph store's first explanation paths go through x)."""
    import pandas as pd

    df = pd.read_csv(data)
    hist = df.groupby("user_id")["item_id"].apply(set).to_dict()
    for y, hy in sorted(hist.items()):
        for item in sorted(set(df["item_id"]) - hy):
            overlap = sorted((len(h & hy), v) for v, h in hist.items() if v != y and item in h)
            if len(overlap) > 1 and overlap[-1][0] > overlap[-2][0] > 0:
                return overlap[-1][1], y, item
    raise AssertionError("no linking pair in the synthetic data")


def test_store_deletes_the_user_keeps_a_tombstone_and_refuses_the_id(tmp_path):
    path = tmp_path / "f.sqlite"
    with FeedbackStore(path) as s:
        s.add_user(X, text="likes quiet films")
        s.add_events([{"user_id": X, "item_id": f"i{k}", "event": "like"} for k in range(30)])
        s.add_event(Y, "i1", "click")
        got = s.delete_user(X)
        assert got == {"events": 30, "user": 1, "tombstone": 1}
        assert s.count(X) == 0 and s.get_user(X) is None and s.count(Y) == 1
        assert s.is_erased(X) and not s.is_erased(Y) and s.tombstones() == {tombstone_hash(X)}
        assert s.delete_user(X) == {"events": 0, "user": 0, "tombstone": 0}  # idempotent
        for write in (
            lambda: s.add_event(X, "i2", "click"),
            lambda: s.add_events([{"user_id": u, "item_id": "i", "event": "view"} for u in (Y, X)]),
            lambda: s.add_user(X),
        ):
            with pytest.raises(ErasedUserError, match="erased"):
                write()
        assert s.count() == 1  # the refused batch stored nothing
    for f in tmp_path.iterdir():  # deleted rows are zeroed, the WAL truncated
        assert X.encode() not in f.read_bytes(), f


def test_drop_erased_renumbers_users_and_keeps_items():
    from tests.conftest import make_planted

    ds = make_planted(n_users=9, items_per_topic=4, per_user=4)
    out = drop_erased(ds, frozenset({tombstone_hash("u3"), tombstone_hash("u7")}))
    assert out.users["user_id"].tolist() == [f"u{u}" for u in range(9) if u not in (3, 7)]
    assert out.n_items == ds.n_items and len(out) == len(ds) - 8
    assert drop_erased(ds, frozenset()) is ds


@pytest.fixture(scope="module")
def erasure_world(tmp_path_factory):
    """A BPR-MF bundle and a LadybugDB graph store of the same CSV data set."""
    root = tmp_path_factory.mktemp("erasure")
    data = write_interactions(root / "events.csv")
    model = root / "model"
    common = ["--dataset", str(data), "--split", "random", "--valid-ratio", "0"]
    assert main(["train", *common, "--model", "bprmf", "--param", "bprmf.epochs=5",
                 "--out", str(model)]) == 0  # fmt: skip
    graph = root / "graph"
    assert main(["graph", "export", "--dataset", str(data), "--similar-k", "0",
                 "--path", str(graph)]) == 0  # fmt: skip
    return root, data, model, graph


def test_served_state_forgets_at_once_without_touching_others(erasure_world, tmp_path):
    _, _, model, _ = erasure_world
    torch.set_num_threads(1)
    st = ServeState(model, FeedbackStore(tmp_path / "a.sqlite"), text="off")
    x = st.user_index(X)
    for item in ("item2", "item5", "item8"):
        st.add_feedback(X, item, "like")
    st.add_feedback(Y, "item4", "purchase")
    y_vec = st.user_vector(st.user_index(Y))
    assert st.erase_user(X) == {"events": 3, "user": 0, "tombstone": 1}
    with pytest.raises(UnknownIdError):
        st.user_index(X)
    with pytest.raises(UnknownIdError):  # the store refuses it even past the id map
        st.store.add_event(X, "item1", "click")
    with pytest.raises(AlreadyExistsError, match="erased"):
        st.add_user(X, None, ["item1"])
    assert float(st.U[x].abs().sum()) == 0 and x not in st.online_seen
    assert X not in st.listed_user_ids() and Y in st.listed_user_ids()
    assert len(st.history(x)) == 0  # the trained history is gone from memory too
    # Y's vector is what a state that never saw X's events computes
    fresh = ServeState(model, FeedbackStore(tmp_path / "b.sqlite"), text="off")
    fresh.add_feedback(Y, "item4", "purchase")
    torch.testing.assert_close(fresh.user_vector(fresh.user_index(Y)), y_vec)
    assert torch.equal(st.user_vector(st.user_index(Y)), y_vec)
    st.close()
    fresh.close()
    restarted = ServeState(model, FeedbackStore(tmp_path / "a.sqlite"), text="off")
    assert not restarted.has_user(X) and restarted.has_user(Y)
    restarted.close()


def _graph_users(graph) -> set[str]:
    with open_graph_store("ladybug", path=graph, read_only=True) as g:
        return {r["id"] for r in g.query("MATCH (u:User) RETURN u.id AS id")}


def test_delete_reaches_every_place_two_servers_and_a_restart(erasure_world, tmp_path):
    _, data, model, graph_src = erasure_world
    import shutil

    X, Y, item0 = linking_pair(data)  # this test's own pair
    graph = tmp_path / "graph"
    shutil.copytree(graph_src, graph)
    store = tmp_path / "feedback.sqlite"
    log = tmp_path / "server.log"
    h = {"X-API-Key": API_KEY}
    serve = ["--graph-path", str(graph)]
    with run_server(model, store, log, *serve) as a, run_server(model, store, log, *serve) as b:
        for item in ("item2", "item5"):
            event = {"user": X, "item": item, "event": "like"}
            assert httpx.post(f"{a}/feedback", headers=h, json=event).status_code == 201
        assert httpx.get(f"{b}/users/{X}").json()["online_events"] == 2  # B applied A's events
        paths = httpx.get(f"{b}/explain", params={"user": Y, "item": item0}).json()
        assert X in {n for p in paths["graph_paths"] for n in p["path"]}  # X links Y and item0
        assert httpx.delete(f"{a}/users/{X}").status_code == 401  # the key is required
        r = httpx.delete(f"{a}/users/{X}", headers=h)
        assert r.status_code == 200, r.text
        assert r.json() == {"user_id": X, "erased": True, "events_deleted": 2,
                            "already_erased": False, "graph_pending": True}  # fmt: skip
        for url in (a, b):  # both processes forget X at once
            assert httpx.get(f"{url}/recommend", params={"user": X}).status_code == 404
            assert httpx.get(f"{url}/users/{X}").status_code == 404
            assert X not in httpx.get(f"{url}/users", params={"limit": 1000}).json()["users"]
            event = {"user": X, "item": "item3", "event": "click"}
            assert httpx.post(f"{url}/feedback", headers=h, json=event).status_code == 404
            ex = httpx.get(f"{url}/explain", params={"user": Y, "item": item0}).json()
            assert X not in {n for p in ex["graph_paths"] for n in p["path"]}
            rec = httpx.get(f"{url}/recommend", params={"user": Y, "candidates": "graph"})
            assert rec.json()["candidates"] == "all"  # not two-hop sets X's edges would sway
        again = httpx.delete(f"{b}/users/{X}", headers=h).json()
        assert again["already_erased"] and again["events_deleted"] == 0
        assert httpx.delete(f"{b}/users/nobody-at-all", headers=h).status_code == 404
    with FeedbackStore(store) as s:
        assert s.count(X) == 0 and s.is_erased(X)
    assert X in _graph_users(graph)  # the servers had the graph store open read-only
    with run_server(model, store, log, *serve) as c:  # restart: purges the graph first
        assert httpx.get(f"{c}/recommend", params={"user": X}).status_code == 404
        rec = httpx.get(f"{c}/recommend", params={"user": Y, "candidates": "graph"})
        assert rec.json()["candidates"] == "graph"
    users = _graph_users(graph)
    assert X not in users and Y in users and len(users) == 39
    # lgrec forget with no server: store and graph store at once
    cmd = ["forget", "--user", Y, "--store", str(store), "--graph-path", str(graph)]
    assert main(cmd) == 0
    assert Y not in _graph_users(graph)
    # the next retrain leaves out both users' training interactions (the data set was a CSV
    # path, which retrain does not rebuild: BPR-MF is refit on its saved binary matrix)
    assert main(["retrain", "--model", str(model), "--store", str(store),
                 "--out", str(tmp_path / "model2"), "--seen-only"]) == 0  # fmt: skip
    new = Recommender.load(tmp_path / "model2")
    old = Recommender.load(model)
    assert X not in new.user_ids_ and Y not in new.user_ids_ and len(new.user_ids_) == 38
    keep = [old.user_ids_.index(u) for u in new.user_ids_]
    assert (new.seen_ != old.seen_.tocsr()[keep]).nnz == 0  # everyone else's data kept
    info = json.loads((tmp_path / "model2" / "dataset.json").read_text())
    assert info["n_users"] == 38
    # and data loading honours the tombstones when asked
    out = tmp_path / "prepared"
    cmd = ["prepare", "--dataset", str(data), "--split", "random", "--tombstones", str(store)]
    assert main([*cmd, "--out", str(out)]) == 0
    from lgrec.data.prepared import read_prepared

    assert read_prepared(out)[0].n_users == 38  # the folder `lgrec prepare --out` writes
    conn = sqlite3.connect(store)
    assert conn.execute("SELECT count(*) FROM tombstones").fetchone()[0] == 2
    conn.close()
