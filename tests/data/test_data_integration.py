"""Every data set in the shared data directory loads with the counts its README states.

Skipped when the data directory (``lgrec.utils.data_dir()``) or a data set is absent.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from lgrec.data import load_dataset, split_fixed
from lgrec.errors import DatasetNotFoundError
from lgrec.utils import data_dir

pytestmark = pytest.mark.integration


def _load(name: str, record_property, **kw):
    root = data_dir()
    if not (root / name).is_dir():
        pytest.skip(f"{name} not in {root}")
    t = time.perf_counter()
    ds = load_dataset(name, **kw)
    record_property("load_seconds", round(time.perf_counter() - t, 3))
    return ds


def _folds(ds) -> dict[str, int]:
    return ds.interactions["fold"].astype(str).value_counts().to_dict()


def test_ml100k(record_property):
    ds = _load("ml-100k", record_property, fold="u1")
    assert (ds.n_users, ds.n_items) == (943, 1682)
    assert _folds(ds) == {"train": 80_000, "test": 20_000}
    assert ds.items["categories"].map(len).min() >= 1 and ds.users["text"].str.len().min() > 0
    assert len(load_dataset("ml-100k", fold=None)) == 100_000


def test_ml1m_without_ratings_is_a_clear_error(record_property):
    root = data_dir()
    if not (root / "ml-1m").is_dir():
        pytest.skip("ml-1m not present")
    if (root / "ml-1m" / "ratings.dat").is_file():
        ds = _load("ml-1m", record_property)
        assert (ds.n_users, len(ds)) == (6040, 1_000_209)
        return
    with pytest.raises(DatasetNotFoundError, match=r"ratings\.dat.*grouplens\.org"):
        load_dataset("ml-1m")


def test_colakg(record_property):
    ds = _load("colakg-ml-1m", record_property)
    assert (ds.n_users, ds.n_items) == (6040, 3260)
    assert _folds(ds) == {"train": 801_218, "test": 197_321}
    assert (ds.items["description"].str.len() > 0).sum() >= 3259  # one entry is empty upstream
    assert ds.meta["text_source"]["key"] == "original"  # keyed by MovieID, detected
    if "title" in ds.items.columns:
        assert (ds.items["title"].str.len() > 0).all()
    sp = split_fixed(ds)
    assert np.isin(np.unique(sp.test.item_ids), np.unique(sp.train.item_ids)).all()


def test_gowalla(record_property):
    ds = _load("gowalla", record_property)
    assert (ds.n_users, ds.n_items) == (29_858, 40_981)
    assert _folds(ds) == {"train": 810_128, "test": 217_242}


def test_amazon_videogames(record_property):
    ds = _load("amazon-videogames", record_property)
    assert (ds.n_users, ds.n_items, len(ds)) == (50_546, 16_859, 440_264)
    assert ds.meta["n_target_rows"] == {"train": 288_626, "valid": 50_546, "test": 50_546}
    folds = _folds(ds)
    assert folds["valid"] == folds["test"] == 50_546
    # train = the train targets + each user's first item, which no row predicts
    assert folds["train"] == 288_626 + 50_546
    assert (ds.items["title"].str.len() > 0).mean() > 0.99


def test_lastfm(record_property):
    ds = _load("lastfm-social", record_property)
    assert _folds(ds) == {"train": 42_135, "test": 10_533}
    assert (ds.n_users, ds.n_items) == (1892, 4489)
    assert ds.meta["social_edges"].shape == (25_434, 2)
