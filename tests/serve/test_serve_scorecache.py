"""The trained users' precomputed score rows: the same scores as computing them per request,
no graph-filter pass or item-matrix product for a cached user, rows renewed after feedback."""

from __future__ import annotations

import pytest
import torch
from serve_fixtures import AUTH

from lgrec.serve import online
from lgrec.serve.scorecache import ScoreCache


def _all_scores(st) -> torch.Tensor:
    return torch.stack([st.scores(u) for u in range(st.n_users)])


def test_cached_scores_equal_scores_computed_per_request(make_client):
    cached, plain = make_client(), make_client(score_cache_mb=0)
    a, b = cached.app.state.serve, plain.app.state.serve
    assert a.score_cache is not None and b.score_cache is None
    assert a.score_cache.gf is not None  # the fixture's LMGCN blends a graph filter
    torch.testing.assert_close(_all_scores(a), _all_scores(b), rtol=1e-5, atol=1e-5)
    # the cached rows are the model's own parts: C = U Vᵀ and G = GF(X) of the trained users
    torch.testing.assert_close(a.score_cache.core, a.U @ a.V.T, rtol=1e-5, atol=1e-5)
    gf = a.model.filter_._score_block(torch.arange(a.n_base_users)).float()
    torch.testing.assert_close(a.score_cache.gf, gf, rtol=1e-5, atol=1e-5)
    # feedback, a runtime item in a history, a runtime user: still the same scores
    for c in (cached, plain):
        for body in (
            {"item_id": "rt-1", "title": "Galaxy Quest", "description": "Aliens in space."},
        ):
            assert c.post("/items", json=body, headers=AUTH).status_code == 201
        for user, item in (("u0", "rom-12"), ("u0", "rt-1"), ("u7", "coo-30")):
            fb = {"user": user, "item": item, "event": "like"}
            assert c.post("/feedback", json=fb, headers=AUTH).status_code == 201
        new = {"user_id": "n1", "liked_items": ["sci-1", "rt-1"]}
        assert c.post("/users", json=new, headers=AUTH).status_code == 201
    torch.testing.assert_close(_all_scores(a), _all_scores(b), rtol=1e-5, atol=1e-5)
    for user in ("u0", "u7", "n1", "u20"):
        ra = cached.get("/recommend", params={"user": user, "k": 8}).json()["items"]
        rb = plain.get("/recommend", params={"user": user, "k": 8}).json()["items"]
        assert [r["item_id"] for r in ra] == [r["item_id"] for r in rb]


def test_a_cached_user_costs_no_filter_pass_even_after_feedback(client, monkeypatch):
    st = client.app.state.serve
    calls = []
    real = online.filter_row_scores
    monkeypatch.setattr(online, "filter_row_scores", lambda *a: calls.append(1) or real(*a))
    for _ in range(3):
        assert client.get("/recommend", params={"user": "u3"}).status_code == 200
    assert calls == []  # the trained user's rows were computed once, at start
    fb = {"user": "u3", "item": "coo-30", "event": "click"}
    assert client.post("/feedback", json=fb, headers=AUTH).status_code == 201
    u = st.user_index("u3")
    assert st.score_cache.get(u)[0] is not None  # the event updated the rows in place
    for _ in range(3):
        assert client.get("/recommend", params={"user": "u3"}).status_code == 200
    assert calls == []  # no graph pass, before or after the event (lgrec.serve.foldcache)
    torch.testing.assert_close(st.score_cache.core[u], st.V[: st.n_base_items] @ st.U[u])
    torch.testing.assert_close(st.score_cache.gf[u], real(st.filter, _history_row(st, u)))


def _history_row(st, u: int):
    """The user's interaction row over the trained items (binary), as a 1 × items CSR."""
    import numpy as np
    import scipy.sparse as sp

    h = st.history(u)
    return sp.csr_matrix((np.ones(len(h), np.float32), (np.zeros(len(h), int), h)),
                         shape=(1, st.n_base_items))  # fmt: skip


def test_a_row_computed_while_an_event_arrived_is_not_kept():
    cache = ScoreCache(torch.zeros(2, 3), None)
    rows, v = cache.get(0)
    assert rows is not None and v == 0
    cache.invalidate(0)
    rows, v = cache.get(0)
    assert rows is None and v == 1
    cache.invalidate(0)  # another event meanwhile
    assert not cache.put(0, v, torch.ones(3), None)
    assert cache.get(0)[0] is None
    assert cache.put(0, 2, torch.ones(3), None)
    assert cache.get(0)[0][0].tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("budget", [0, 0.001])
def test_no_cache_beyond_the_budget(budget):
    assert ScoreCache.build(torch.ones(50, 4), torch.ones(60, 4), None, budget) is None


def test_erasure_clears_the_users_cached_rows(client):
    st = client.app.state.serve
    u = st.user_index("u5")
    assert st.score_cache.core[u].abs().sum() > 0 and st.score_cache.gf[u].abs().sum() > 0
    r = client.delete("/users/u5", headers=AUTH)
    assert r.status_code == 200, r.text
    assert not st.score_cache.core[u].any() and not st.score_cache.gf[u].any()
    assert st.score_cache.get(u)[0] is None  # nothing would serve the row again
    assert client.get("/recommend", params={"user": "u5"}).status_code == 404
    other = st.user_index("u6")
    assert st.score_cache.get(other)[0] is not None  # other users keep theirs
