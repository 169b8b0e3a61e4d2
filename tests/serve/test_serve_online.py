"""Online state: the fold-in math, processes sharing a store, restart replay, retraining."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from lgrec.errors import ConfigError
from lgrec.serve import online
from lgrec.serve.retrain import retrain
from lgrec.serve.state import ServeState
from lgrec.store.feedback import FeedbackStore


# ---- math ---------------------------------------------------------------------------------------
def test_event_weights():
    assert online.event_weight("like", None) == 1.0
    assert online.event_weight("purchase", None) > online.event_weight("click", None) > 0
    assert online.event_weight("rating", 5.0) == 1.0
    assert online.event_weight("rating", 3.0) == 0.0
    assert online.event_weight("rating", 1.0) == -1.0
    assert online.event_weight("rating", 4.0, (0.0, 4.0)) == 1.0
    with pytest.raises(ConfigError):
        online.event_weight("hate", None)
    with pytest.raises(ConfigError):
        online.event_weight("rating", None)


def test_fold_in_moves_direction_keeps_norm():
    g = torch.Generator().manual_seed(0)
    u, e = torch.randn(8, generator=g) * 3, torch.randn(8, generator=g)
    cos = lambda a, b: float(torch.nn.functional.cosine_similarity(a, b, dim=0))  # noqa: E731
    up = online.fold_in(u, e, 0.5)
    assert float(up.norm()) == pytest.approx(float(u.norm()), rel=1e-5)
    assert cos(up, e) > cos(u, e)
    want = (u / u.norm() + 0.5 * e / e.norm()) / (u / u.norm() + 0.5 * e / e.norm()).norm()
    assert torch.allclose(up / up.norm(), want, atol=1e-5)
    assert cos(online.fold_in(u, e, -0.5), e) < cos(u, e)
    assert torch.equal(online.fold_in(u, e, 0.0), u)
    z = online.fold_in(torch.zeros(8), e, 1.0)
    assert torch.allclose(z, e, atol=1e-5)


def test_item_from_text_is_weighted_mean_of_neighbours():
    g = torch.Generator().manual_seed(1)
    T = online.unit_rows(torch.randn(20, 6, generator=g))
    V, b = torch.randn(20, 4, generator=g), torch.randn(20, generator=g)
    q = T[3] + 0.05 * torch.randn(6, generator=g)
    idx, w = online.text_neighbours(q, T, 4, tau=0.1)
    assert idx[0] == 3 and float(w.sum()) == pytest.approx(1.0) and bool((w[:-1] >= w[1:]).all())
    vec, bias = online.item_from_text(q, T, V, b, k=4, tau=0.1)
    assert torch.allclose(vec, (w[:, None] * V[idx]).sum(0), atol=1e-6)
    assert bias == pytest.approx(float((w * b[idx]).sum()), abs=1e-6)


def test_user_from_signals():
    g = torch.Generator().manual_seed(2)
    V = torch.randn(10, 4, generator=g)
    u = online.user_from_signals(V, torch.tensor([1, 2]), None, None, scale=2.0)
    assert float(u.norm()) == pytest.approx(2.0)
    want = online.unit_rows(V[[1, 2]]).mean(0)
    assert torch.allclose(u / 2.0, want / want.norm(), atol=1e-6)
    with pytest.raises(ConfigError):
        online.user_from_signals(V, None, None, None, scale=1.0)


# ---- state, store, processes --------------------------------------------------------------------
def test_two_processes_converge_through_the_store(bundle, tmp_path):
    path = tmp_path / "shared.sqlite"
    a = ServeState(bundle, FeedbackStore(path))
    b = ServeState(bundle, FeedbackStore(path))
    a.add_user("newbie", "I like romantic love stories", [])
    a.add_feedback("u3", "rom-14", "like")
    a.add_feedback("newbie", "rom-15", "purchase")
    assert b.user_index("newbie") == a.user_index("newbie")  # unknown id → re-read the store
    b.sync()
    for user in ("u3", "newbie"):
        ua, ub = a.user_index(user), b.user_index(user)
        assert torch.allclose(a.user_vector(ua), b.user_vector(ub), atol=1e-6)
        assert a.history(ua).tolist() == b.history(ub).tolist()
    a.close()
    b.close()


def test_restart_replays_every_event(bundle, tmp_path):
    path = tmp_path / "s.sqlite"
    a = ServeState(bundle, FeedbackStore(path))
    base = a.user_vector(a.user_index("u4")).clone()
    for item in ("coo-24", "coo-25", "sci-2"):
        a.add_feedback("u4", item, "click")
    a.add_item("coo-new", "Noodle Soup Secrets", "A cooking show about ramen recipes.", ["Cooking"])
    a.add_feedback("u4", "coo-new", "like")
    a.close()
    b = ServeState(bundle, FeedbackStore(path))
    u = b.user_index("u4")
    assert b.last_event == 4 and b.online_events[u] == 4
    assert torch.allclose(b.user_vector(u), a.user_vector(u), atol=1e-6)
    assert not torch.allclose(b.user_vector(u), base)
    assert b.item_ids[-1] == "coo-new" and torch.allclose(b.V[-1], a.V[-1], atol=1e-6)
    b.close()


def test_concurrent_feedback_is_all_applied_once(bundle, tmp_path):
    st = ServeState(bundle, FeedbackStore(tmp_path / "c.sqlite"))
    distinct = [(f"u{k % 5}", f"sci-{k % 12}", f"key-{k}") for k in range(30)]
    jobs = distinct + distinct[:10]  # ten retries of the same events
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda j: st.add_feedback(j[0], j[1], "click", idempotency_key=j[2]), jobs)
        )
    assert sum(created for _, created in results) == 30
    assert st.store.count() == 30 and sum(st.online_events.values()) == 30
    assert st.last_event == int(st.store.events()["id"].max())
    st.close()


def test_models_without_text_or_vectors(dataset, tmp_path):
    from lgrec.models.lightgcn import LightGCN
    from lgrec.models.popularity import Popularity
    from lgrec.pipeline import save_bundle

    torch.set_num_threads(1)
    lg = LightGCN(dim=8, n_layers=1, epochs=3, batch_size=256, eval_every=1000).fit(dataset)
    path = save_bundle(lg, dataset, tmp_path / "lg")
    st = ServeState(path, FeedbackStore(tmp_path / "lg.sqlite"))
    assert st.text_enabled and st.T.shape[0] == dataset.n_items  # encoded at start
    idx, _ = st.recommend(0, 5, query="cooking recipes for pasta", query_weight=5.0)
    assert sum(st.item_ids[i].startswith("coo") for i in idx) >= 4
    want, _ = lg.recommend([1], k=5)
    assert st.recommend(1, 5)[0].tolist() == want[0].tolist()
    st.close()
    off = ServeState(path, FeedbackStore(tmp_path / "off.sqlite"), text="off")
    with pytest.raises(ConfigError):
        off.recommend(0, 5, query="pasta")
    off.close()
    pop = save_bundle(Popularity().fit(dataset), dataset, tmp_path / "pop")
    with pytest.raises(ConfigError, match="embedding model"):
        ServeState(pop, FeedbackStore(tmp_path / "pop.sqlite"))


# ---- retraining ---------------------------------------------------------------------------------
def test_retrain_on_feedback(bundle, dataset, tmp_path):
    from lgrec.models.base import Recommender

    path = tmp_path / "r.sqlite"
    st = ServeState(bundle, FeedbackStore(path))
    st.add_item("rom-new", "Love in Venice", "A romantic love story on the canals.", ["Romance"])
    st.add_user("eve", "love stories", ["rom-12"])
    st.add_feedback("u0", "rom-20", "like")
    st.add_feedback("eve", "rom-new", "rating", value=5.0)
    st.close()
    out = retrain(bundle, path, tmp_path / "retrained", seen_only=True)  # no data set to rebuild
    model = Recommender.load(out)
    assert model.n_items_ == dataset.n_items + 1 and model.n_users_ == dataset.n_users + 1
    seen = model.seen_
    ix = {i: k for k, i in enumerate(model.item_ids_)}
    ux = {u: k for k, u in enumerate(model.user_ids_)}
    assert seen[ux["u0"], ix["rom-20"]] == 1 and seen[ux["eve"], ix["rom-new"]] == 1
    assert seen[ux["eve"], ix["rom-12"]] == 1
    already = dataset.matrix()[0, ix["rom-20"]] == 1  # u0 may have had rom-20 in training
    assert seen.nnz == dataset.matrix().nnz + 2 + (0 if already else 1)
    info = json.loads((out / "dataset.json").read_text())
    assert info["feedback_until"] == 2 and info["feedback_interactions"] == 3
    again = ServeState(out, FeedbackStore(path))  # same store: nothing folded in twice
    assert again.last_event == 2 and not again.online_events
    assert again.n_items == dataset.n_items + 1 and again.has_user("eve")
    again.close()
    np.testing.assert_array_equal(  # every other trained user's training data is unchanged
        model.seen_[: dataset.n_users, : dataset.n_items].toarray()[1:],
        dataset.matrix().toarray()[1:],
    )


def test_text_user_scores_fade_with_history(bundle, tmp_path):
    st = ServeState(bundle, FeedbackStore(tmp_path / "t.sqlite"))
    st.add_user("txt", "space adventure with aliens and starships", [])
    u = st.user_index("txt")
    V, _, T = st.snapshot()
    q = st.user_query[u]
    z = online.zscore

    def expected(n_hist: int) -> torch.Tensor:
        base = z(V @ st.user_vector(u))
        if st.filter is not None:
            base = z(base) + st.filter_weight * z(st._filter_scores(u))
        return z(base) + z(T @ q) / (1 + n_hist / online.TEXT_HALF_HISTORY)

    assert torch.allclose(st.scores(u), expected(0), atol=1e-5)
    for i in ("rom-12", "rom-13", "rom-14", "rom-15", "rom-16"):
        st.add_feedback("txt", i, "click")
    assert torch.allclose(st.scores(u), expected(5), atol=1e-5)
    st.close()
