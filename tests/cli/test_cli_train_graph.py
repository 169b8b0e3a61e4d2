"""``lgrec train --graph-path DIR``: training on the interactions held by the graph store."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from lgrec.cli import main
from lgrec.models import Recommender
from tests.store.test_store_pipeline import write_lastfm


@pytest.fixture()
def exported(tmp_path, planted_social):
    """(data directory, graph store directory) with the training part exported."""
    data = write_lastfm(tmp_path / "data", planted_social)
    db = tmp_path / "db"
    assert main(["graph", "export", "--dataset", str(data), "--path", str(db)]) == 0
    return data, db


def _train_args(data, *extra: str) -> list[str]:
    return [
        "train", "--dataset", str(data), "--split", "fixed", "--model", "lightgcn",
        "--param", "lightgcn.dim=8", "--param", "lightgcn.epochs=4",
        "--param", "lightgcn.batch_size=64", "--seed", "3", *extra,
    ]  # fmt: skip


def test_model_trained_from_store_scores_like_one_trained_from_files(tmp_path, exported):
    data, db = exported
    files, store = tmp_path / "files", tmp_path / "store"
    assert main([*_train_args(data, "--valid-ratio", "0"), "--out", str(files)]) == 0
    args = _train_args(data, "--valid-ratio", "0", "--graph-path", str(db))
    assert main([*args, "--out", str(store)]) == 0
    a, b = Recommender.load(files), Recommender.load(store)
    users = torch.arange(30)
    torch.testing.assert_close(b.score(users), a.score(users))


def test_validation_is_carved_from_the_store(exported, planted_social):
    from lgrec.config import load_config
    from lgrec.pipeline import prepare
    from lgrec.store.training import store_split

    data, db = exported
    cfg = load_config(dataset=str(data), split="fixed", valid_ratio=0.25, seed=0)
    prep = prepare(cfg)
    split = store_split(prep.split, db, valid_ratio=0.25, seed=0)
    pairs = {
        part: set(zip(d.interactions.user.tolist(), d.interactions.item.tolist()))
        for part, d in (("train", split.train), ("valid", split.valid))
    }
    want = prep.split.full_train.interactions
    assert pairs["valid"] and not pairs["train"] & pairs["valid"]
    assert pairs["train"] | pairs["valid"] == set(zip(want.user.tolist(), want.item.tolist()))
    assert split.test is prep.split.test


def test_store_of_another_data_set_or_no_store_is_refused(
    tmp_path, exported, planted_social, capsys
):
    data, _ = exported
    small = planted_social.subset((planted_social.interactions.user < 20).to_numpy())
    small = replace(small, meta={"social_edges": np.array([[0, 3], [1, 4]])})
    other = write_lastfm(tmp_path / "other", small)
    db2 = tmp_path / "db2"
    assert main(["graph", "export", "--dataset", str(other), "--path", str(db2)]) == 0
    capsys.readouterr()
    out = str(tmp_path / "m")
    assert main([*_train_args(data), "--graph-path", str(db2), "--out", out]) == 2
    assert "graph store: its 20 User nodes are not the 30" in capsys.readouterr().err
    assert main([*_train_args(data), "--graph-path", str(tmp_path / "none"), "--out", out]) == 2
    assert "no LadybugDB store" in capsys.readouterr().err


def test_store_with_test_interactions_is_refused(tmp_path, exported, capsys):
    data, _ = exported
    db = tmp_path / "db-all"
    assert main(["graph", "export", "--dataset", str(data), "--path", str(db), "--all-folds"]) == 0
    capsys.readouterr()
    out = str(tmp_path / "m")
    assert main([*_train_args(data), "--graph-path", str(db), "--out", out]) == 2
    assert "pairs of the test split" in capsys.readouterr().err
