"""Explanations state only what is true: each history item once, a query match only when
the item is among the items closest in text to the query, runtime items cost no loop."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from serve_fixtures import AUTH

from lgrec.serve.explain import TEXT_TOP, text_match


def test_history_has_no_duplicates_after_repeated_feedback(client):
    st = client.app.state.serve
    before = client.get("/users/u0", params={"limit": 1000}).json()
    seen = before["history"][0]["item_id"]  # a training item
    for item in (seen, "coo-30", seen, "coo-30"):
        r = client.post(
            "/feedback", json={"user": "u0", "item": item, "event": "like"}, headers=AUTH
        )
        assert r.status_code == 201
    prof = client.get("/users/u0", params={"limit": 1000}).json()
    ids = [h["item_id"] for h in prof["history"]]
    assert len(ids) == len(set(ids)) == prof["n_history"] == before["n_history"] + 1
    assert ids[-2:] == [seen, "coo-30"]  # re-used items move to the most recent end
    assert prof["online_events"] == 4
    hist = st.history(st.user_index("u0"))
    assert len(hist) == len(np.unique(hist))


def test_explanations_name_each_history_item_once(client):
    st = client.app.state.serve
    u = st.user_index("u1")
    hist = st.history(u)
    for item in hist[:3].tolist():  # likes on items already in the history
        body = {"user": "u1", "item": st.item_ids[item], "event": "like"}
        assert client.post("/feedback", json=body, headers=AUTH).status_code == 201
    target = next(i for i in st.item_ids if st.item_index(i) not in set(hist.tolist()))
    ex = client.get("/explain", params={"user": "u1", "item": target}).json()
    ids = [b["item_id"] for b in ex["because"]]
    assert len(ids) == len(set(ids)) >= 2
    titles = [b["title"] for b in ex["because"][:2]]
    assert ex["sentence"].count(f'"{titles[0]}"') == 1 and f'"{titles[1]}"' in ex["sentence"]
    # the history items are not said to be "liked": they may be views or low ratings
    assert "you liked" not in ex["sentence"]


def test_query_match_is_claimed_only_when_true(client):
    st = client.app.state.serve
    T = st.T
    query = "romantic love story and a wedding"
    q = st.encode(query)
    order = torch.argsort(T @ q, descending=True).tolist()
    closest, far = st.item_ids[order[0]], st.item_ids[order[-1]]  # e.g. a cooking show
    for item, want in ((closest, True), (far, False)):
        cos, top = text_match(T, torch.tensor([st.item_index(item)]), q)
        closer = int((T @ q > cos[0]).sum())
        assert bool(top[0]) == (closer < TEXT_TOP * len(T)) == want
        ex = client.get("/explain", params={"user": "u0", "item": item, "query": query}).json()
        assert ex["query_match"] == pytest.approx(float(cos[0]), abs=1e-5)
        assert ("your query" in ex["sentence"]) is want, ex["sentence"]
    params = {"user": "u0", "k": 8, "query": query, "explain": True, "query_weight": 0.5}
    items = client.get("/recommend", params=params).json()["items"]
    claims = [("your query" in it["reason"]) for it in items]
    for it, claim in zip(items, claims):
        _, top = text_match(T, torch.tensor([st.item_index(it["item_id"])]), q)
        assert claim is bool(top[0])
    assert not all(claims)  # a Sci-Fi user's list is not all about weddings


def _python_calls(fn) -> int:
    """Python function calls and C calls made by ``fn()`` (a count, not a time)."""
    n = 0

    def prof(frame, event, arg):
        nonlocal n
        n += event in ("call", "c_call")

    sys.setprofile(prof)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return n


def test_scoring_work_does_not_grow_with_runtime_items(client):
    """With N runtime items in a user's history and catalogue, a request makes the same
    number of Python-level calls as with one: no loop over runtime items."""
    st = client.app.state.serve
    assert st.filter is not None  # the fixture's LMGCN fuses a graph filter
    topics = ["space aliens", "love story", "cooking recipes"]

    def add(k: int) -> None:
        body = {"item_id": f"rt-{k}", "title": f"Runtime film {k} about {topics[k % 3]}"}
        assert client.post("/items", json=body, headers=AUTH).status_code == 201
        fb = {"user": "u3", "item": f"rt-{k}", "event": "click"}
        assert client.post("/feedback", json=fb, headers=AUTH).status_code == 201

    u = st.user_index("u3")
    add(0)
    one = _python_calls(lambda: st.scores(u))
    for k in range(1, 25):
        add(k)
    many = _python_calls(lambda: st.scores(u))
    assert many == one
    # and the runtime items' graph-filter scores are still Σ_j w_j GF_j of their neighbours
    gf = st._filter_scores(u)
    nb = st.n_base_items
    assert len(gf) == st.n_items
    mix = st._gf_mix
    for r in (0, 12, 24):
        row = mix[r]
        assert float(gf[nb + r]) == pytest.approx(
            float((row.data * gf[row.indices].numpy()).sum()), rel=1e-5
        )
