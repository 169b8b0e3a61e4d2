"""Ties over HTTP: equal scores rank by item index (lower first) in /recommend and /similar."""

from __future__ import annotations

import torch
from fastapi.testclient import TestClient
from serve_fixtures import API_KEY

from lgrec.models.mf import BPRMF
from lgrec.pipeline import save_bundle
from lgrec.serve.app import ServeSettings, create_app


def test_tied_scores_are_served_in_item_order(dataset, tmp_path) -> None:
    model = BPRMF(factors=4, epochs=1, seed=0).fit(dataset)
    model.item_factors_ = torch.ones_like(model.item_factors_)  # every item scores alike
    model.item_bias_ = torch.zeros_like(model.item_bias_)
    bundle = save_bundle(model, dataset, tmp_path / "tied")
    app = create_app(
        ServeSettings(model=str(bundle), api_key=API_KEY, text="off", store=str(tmp_path / "s"))
    )
    with TestClient(app) as client:
        ids = list(dataset.items["item_id"])
        seen = set(dataset.matrix("binary")[0].indices.tolist())
        r = client.get("/recommend", params={"user": "u0", "k": 12}).json()
        got = [x["item_id"] for x in r["items"]]
        assert got == [ids[i] for i in range(len(ids)) if i not in seen][:12]
        r = client.get("/similar", params={"item": ids[5], "k": 8, "blend": 1}).json()
        assert [x["item_id"] for x in r["items"]] == [ids[i] for i in (0, 1, 2, 3, 4, 6, 7, 8)]
        app.state.serve.close()
