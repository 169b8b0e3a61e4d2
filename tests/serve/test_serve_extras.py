"""``GET /categories`` (LMGCN's category head) and ``GET /friends`` (the bundle's friendships)."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient
from serve_fixtures import API_KEY, AUTH, topic_of

from lgrec.models.mf import BPRMF
from lgrec.pipeline import save_bundle
from lgrec.serve.app import ServeSettings, create_app


def test_categories_of_an_item_from_the_category_head(client, dataset):
    hits = 0
    for item in dataset.items["item_id"]:
        r = client.get("/categories", params={"item": item, "k": 2})
        assert r.status_code == 200, r.text
        body = r.json()
        p = [c["probability"] for c in body["categories"]]
        assert len(p) == 2 and 1.0 >= p[0] >= p[1] >= 0.0
        hits += body["categories"][0]["category"] == topic_of(item)
    assert hits >= 0.8 * len(dataset.items), hits
    assert client.get("/categories", params={"item": "nope"}).status_code == 404
    assert client.get("/categories", params={"item": "sci-0", "k": 0}).status_code == 422


def planted_friends(n_users: int) -> np.ndarray:
    """Friendships within each topic's users (15 per topic), a ring plus chords."""
    edges = []
    per = 15
    for t in range(n_users // per):
        base = t * per
        for j in range(per):
            edges.append((base + j, base + (j + 1) % per))
            edges.append((base + j, base + (j + 3) % per))
    return np.array(edges, dtype=np.int64)


def test_friends_suggests_friends_of_friends_and_never_erased_users(dataset, tmp_path):
    ds = dataset
    ds.meta["social_edges"] = planted_friends(ds.n_users)
    try:
        model = BPRMF(factors=8, epochs=5, seed=0).fit(ds)
        bundle = save_bundle(model, ds, tmp_path / "social")
    finally:
        ds.meta.pop("social_edges")
    assert (bundle / "social.parquet").is_file()
    app = create_app(
        ServeSettings(model=str(bundle), api_key=API_KEY, text="off", store=str(tmp_path / "s"))
    )
    with TestClient(app) as c:
        r = c.get("/friends", params={"user": "u0", "k": 5})
        assert r.status_code == 200, r.text
        got = [f["user_id"] for f in r.json()["friends"]]
        current = {"u1", "u3", "u14", "u12"}  # ring and chord neighbours of u0 (topic 0)
        assert len(got) == 5 and "u0" not in got and not current & set(got)
        assert all(int(u[1:]) < 15 for u in got[:3])  # the best ones share u0's circle
        assert r.json()["friends"][0]["common_friends"] >= 1
        top = got[0]
        assert c.delete(f"/users/{top}", headers=AUTH).status_code == 200
        again = [
            f["user_id"] for f in c.get("/friends", params={"user": "u0", "k": 5}).json()["friends"]
        ]
        assert top not in again and len(again) == 5
        assert c.get("/friends", params={"user": "nobody"}).status_code == 404
        app.state.serve.close()


def test_friends_is_404_without_social_edges(client):
    r = client.get("/friends", params={"user": "u0"})
    assert r.status_code == 404 and "without social edges" in r.json()["detail"]
