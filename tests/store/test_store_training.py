"""``lgrec train --graph-path``: the store's interactions keep their ratings and times."""

from __future__ import annotations

import numpy as np
import torch

from lgrec.cli import main
from lgrec.models import Recommender
from tests.serve.test_serve_retrain import write_ml100k


def test_rating_model_trained_from_store_equals_one_trained_from_files(tmp_path):
    """A rating model learns the same ratings from the store as from the files (the store
    used to hand back every interaction as rating 1.0, so BiasedMF refused to train and
    LMGCN lost its rating head without a word)."""
    data = write_ml100k(tmp_path / "data")
    db = tmp_path / "db"
    base = ["--dataset", "ml-100k", "--data-dir", str(data)]
    assert main(["graph", "export", *base, "--path", str(db)]) == 0
    train = ["train", *base, "--model", "biasedmf", "--param", "biasedmf.epochs=20",
             "--valid-ratio", "0", "--seed", "1"]  # fmt: skip
    assert main([*train, "--out", str(tmp_path / "files")]) == 0
    assert main([*train, "--graph-path", str(db), "--out", str(tmp_path / "store")]) == 0
    a, b = Recommender.load(tmp_path / "files"), Recommender.load(tmp_path / "store")
    users, items = np.repeat(np.arange(30), 24), np.tile(np.arange(24), 30)
    want = a.predict_rating(users, items)
    assert float(want.std()) > 0.3  # the ratings carry information
    torch.testing.assert_close(b.predict_rating(users, items), want, rtol=1e-4, atol=1e-4)


def test_store_interactions_keep_rating_time_and_event(tmp_path):
    from lgrec.config import load_config
    from lgrec.pipeline import prepare
    from lgrec.store import open_graph_store
    from lgrec.store.training import store_interactions

    data = write_ml100k(tmp_path / "data")
    db = tmp_path / "db"
    assert main(["graph", "export", "--dataset", "ml-100k", "--data-dir", str(data),
                 "--path", str(db)]) == 0  # fmt: skip
    like = prepare(load_config(dataset="ml-100k", data_dir=str(data), valid_ratio=0.0))
    like = like.split.full_train
    store = open_graph_store("ladybug", path=db, read_only=True)
    try:
        got = store_interactions(store, like)
    finally:
        store.close()
    cols = ["user", "item", "rating", "timestamp", "event"]
    a = got.interactions[cols].sort_values(["user", "item"]).reset_index(drop=True)
    b = like.interactions[cols].sort_values(["user", "item"]).reset_index(drop=True)
    assert a.astype(str).equals(b.astype(str))
