"""Split invariants: no overlap, users kept in train, cold items, valid only from train, seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lgrec.data import carve_valid, split_cold_items, split_fixed, split_random, split_temporal
from lgrec.errors import ConfigError, DataError


def _rows(ds) -> set[int]:
    """Row identity: make_dataset's timestamps are a permutation, so unique per row."""
    return set(ds.interactions["timestamp"].tolist())


@pytest.fixture
def ds(make_ds):
    d = make_ds(n_users=30, n_items=40, n=500, seed=3)
    # add users with exactly one and two interactions to test the edge cases
    extra = pd.DataFrame(
        {
            "user": np.array([0, 1, 1], dtype=np.int32),
            "item": np.array([0, 0, 1], dtype=np.int32),
            "rating": np.float32(1.0),
            "timestamp": np.array([10_000, 10_001, 10_002], dtype=np.int64),
            "event": "rating",
        }
    )
    df = d.interactions[~d.interactions["user"].isin([0, 1])]
    return d.with_interactions(pd.concat([df, extra], ignore_index=True))


def _check_partition(ds, sp, *parts):
    seen = [_rows(p) for p in parts]
    assert sum(len(s) for s in seen) == len(ds) and set().union(*seen) == _rows(ds)
    for a in range(len(seen)):
        for b in range(a + 1, len(seen)):
            assert not seen[a] & seen[b]
    assert sp.train.items is ds.items and sp.test.n_users == ds.n_users  # shared id space


def _train_keeps_users(ds, train):
    n_all = np.bincount(ds.user_ids, minlength=ds.n_users)
    n_tr = np.bincount(train.user_ids, minlength=ds.n_users)
    assert (n_tr[n_all >= 1] >= 1).all()


def test_split_random(ds):
    sp = split_random(ds, test_ratio=0.2, seed=7)
    _check_partition(ds, sp, sp.train, sp.test)
    _train_keeps_users(ds, sp.train)
    n_all = np.bincount(ds.user_ids, minlength=ds.n_users)
    n_te = np.bincount(sp.test.user_ids, minlength=ds.n_users)
    assert (n_te == np.minimum(np.floor(0.2 * n_all + 0.5), np.maximum(n_all - 1, 0))).all()
    assert n_te[0] == 0  # a single interaction stays in train
    again = split_random(ds, test_ratio=0.2, seed=7)
    assert _rows(again.test) == _rows(sp.test)
    assert _rows(split_random(ds, test_ratio=0.2, seed=8).test) != _rows(sp.test)
    with pytest.raises(ConfigError, match=r"test_ratio=1\.5"):
        split_random(ds, test_ratio=1.5)


def test_split_temporal(ds):
    sp = split_temporal(ds, n_test=2)
    _check_partition(ds, sp, sp.train, sp.test)
    _train_keeps_users(ds, sp.train)
    tr, te = sp.train.interactions, sp.test.interactions
    last_train = tr.groupby("user")["timestamp"].max()
    first_test = te.groupby("user")["timestamp"].min()
    assert (first_test > last_train.loc[first_test.index]).all()  # test is each user's latest
    n_te = te.groupby("user").size()
    assert n_te.loc[1] == 1 and 0 not in n_te.index and (n_te.drop(1) == 2).all()
    with pytest.raises(ConfigError, match="n_test=0"):
        split_temporal(ds, n_test=0)


def test_split_cold_items(ds):
    sp = split_cold_items(ds, item_frac=0.25, seed=1)
    _check_partition(ds, sp, sp.train, sp.test)
    n_active = len(np.unique(ds.item_ids))
    assert len(sp.cold_items) == round(0.25 * n_active)
    assert not np.isin(sp.train.item_ids, sp.cold_items).any()
    assert np.isin(sp.test.item_ids, sp.cold_items).all()
    all_cold_rows = np.isin(ds.item_ids, sp.cold_items).sum()
    assert len(sp.test) == all_cold_rows  # ALL their interactions are in test
    assert np.array_equal(split_cold_items(ds, item_frac=0.25, seed=1).cold_items, sp.cold_items)
    assert not np.array_equal(
        split_cold_items(ds, item_frac=0.25, seed=2).cold_items, sp.cold_items
    )


@pytest.mark.parametrize("temporal", [False, True])
def test_carve_valid(ds, temporal):
    base = split_random(ds, test_ratio=0.2, seed=0)
    sp = carve_valid(base, ratio=0.25, seed=4, temporal=temporal)
    assert sp.test is base.test  # test untouched
    assert _rows(sp.train) | _rows(sp.valid) == _rows(base.train)
    assert not _rows(sp.train) & _rows(sp.valid)
    _train_keeps_users(base.train, sp.train)
    if temporal:
        tr, va = sp.train.interactions, sp.valid.interactions
        first_valid = va.groupby("user")["timestamp"].min()
        last_train = tr.groupby("user")["timestamp"].max().loc[first_valid.index]
        assert (first_valid > last_train).all()  # valid holds each user's latest train rows
    else:
        again = carve_valid(base, ratio=0.25, seed=4)
        assert _rows(again.valid) == _rows(sp.valid)
    assert len(sp.full_train) == len(base.train)
    with pytest.raises(ConfigError, match="already has a validation part"):
        carve_valid(sp)
    with pytest.raises(ConfigError, match="ratio=0"):
        carve_valid(base, ratio=0)


def test_split_fixed(make_ds):
    ds = make_ds(with_fold=True)
    sp = split_fixed(ds)
    assert (sp.train.interactions["fold"] == "train").all()
    assert (sp.test.interactions["fold"] == "test").all() and sp.valid is None
    assert len(sp.train) + len(sp.test) == len(ds) and sp.kind == "fixed"
    df = ds.interactions.copy()
    df.loc[df.index[:5], "fold"] = "valid"
    sp = split_fixed(ds.with_interactions(df))
    assert len(sp.valid) == 5
    with pytest.raises(DataError, match="no 'fold' column"):
        split_fixed(make_ds())
    df["fold"] = "train"
    with pytest.raises(DataError, match="no rows with fold 'test'"):
        split_fixed(ds.with_interactions(df))
    df.loc[0, "fold"] = "dev"
    with pytest.raises(DataError, match="'dev'"):
        split_fixed(ds.with_interactions(df))


def test_split_fixed_keeps_test_only_items(make_ds):
    ds = make_ds(with_fold=True)
    df = ds.interactions.copy()
    only_test = df["item"] == 0
    df.loc[only_test, "fold"] = "test"
    sp = split_fixed(ds.with_interactions(df))
    assert (sp.test.item_ids == 0).sum() == only_test.sum() and (sp.train.item_ids != 0).all()
