"""Train/validation/test splits, all vectorised and seeded with a NumPy ``Generator``.

Every split returns a :class:`~lgrec.data.dataset.Split` whose parts share the item and user
tables (one id space). The per-user rules hold out the *last* rows of each user after sorting
by a key (a random number, or the timestamp); with ``n_u`` rows and ratio ``ρ`` a user holds
out ``h_u = min(⌊ρ·n_u + ½⌋, n_u − 1)`` rows, so every user with ≥ 2 interactions keeps at
least one in train and a user with one interaction keeps it in train.

Fixed splits keep test users/items that never occur in train (e.g. an item only in the test
fold): ids are shared, so the rows are valid; protocols decide whether to skip them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from lgrec.data.dataset import Dataset, Split
from lgrec.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def _check_ratio(value: float, arg: str, fn: str) -> None:
    if not 0.0 < float(value) < 1.0:
        raise ConfigError(f"{fn}({arg}={value!r}): expected a number strictly between 0 and 1")


def tail_mask(user: np.ndarray, key: np.ndarray, n_hold: np.ndarray) -> np.ndarray:
    """Mark the ``n_hold[u]`` rows with the largest ``key`` of each user ``u`` (ties: later row).

    Rows are sorted by (user, key, row); within user ``u`` a row at sorted position ``p`` is
    held out when ``end_u − p < n_hold[u]``, with ``end_u`` the user's last sorted position.
    """
    n = len(user)
    if n == 0:
        return np.zeros(0, dtype=bool)
    order = np.lexsort((np.arange(n), key, user))
    us = user[order]
    last = np.ones(n, dtype=bool)
    last[:-1] = us[1:] != us[:-1]
    end = np.flatnonzero(last)
    end_of_row = np.repeat(end, np.diff(np.r_[-1, end]))
    held_sorted = (end_of_row - np.arange(n)) < n_hold[us]
    mask = np.zeros(n, dtype=bool)
    mask[order] = held_sorted
    return mask


def _n_hold(user: np.ndarray, n_users: int, ratio: float) -> np.ndarray:
    n_u = np.bincount(user, minlength=n_users)
    return np.minimum(np.floor(ratio * n_u + 0.5).astype(np.int64), np.maximum(n_u - 1, 0))


def _set_fold(df: pd.DataFrame, fold: str) -> pd.DataFrame:
    if "fold" in df.columns:
        df = df.copy()
        df["fold"] = pd.Categorical(
            np.full(len(df), fold, dtype=object), categories=["train", "valid", "test"]
        )
    return df


def _parts(ds: Dataset, test: np.ndarray, kind: str, cold: np.ndarray | None = None) -> Split:
    df = ds.interactions
    return Split(
        train=ds.with_interactions(_set_fold(df[~test], "train")),
        test=ds.with_interactions(_set_fold(df[test], "test")),
        cold_items=np.zeros(0, dtype=np.int64) if cold is None else cold,
        kind=kind,
    )


def split_fixed(ds: Dataset) -> Split:
    """The split stored in the ``fold`` column (``train``/``valid``/``test``).

    Test (and valid) users or items that never occur in train are kept.
    """
    if "fold" not in ds.interactions.columns:
        raise DataError(
            f"split_fixed: data set {ds.name!r} has no 'fold' column (its loader has no fixed "
            "split); use split_random, split_temporal or split_cold_items"
        )
    fold = ds.interactions["fold"].astype(object).to_numpy()
    unknown = ~np.isin(fold, ["train", "valid", "test"])
    if unknown.any():
        raise DataError(
            f"split_fixed: fold value {fold[np.argmax(unknown)]!r} is not train/valid/test"
        )
    if not (fold == "test").any():
        raise DataError(f"split_fixed: data set {ds.name!r} has no rows with fold 'test'")
    valid = fold == "valid"
    return Split(
        train=ds.subset(fold == "train"),
        test=ds.subset(fold == "test"),
        valid=ds.subset(valid) if valid.any() else None,
        kind="fixed",
    )


def split_random(ds: Dataset, test_ratio: float = 0.2, seed: int = 0) -> Split:
    """Per user, a random ``test_ratio`` share of the rows goes to test (rule in module doc)."""
    _check_ratio(test_ratio, "test_ratio", "split_random")
    rng = np.random.default_rng(seed)
    u = ds.user_ids
    test = tail_mask(u, rng.random(len(u)), _n_hold(u, ds.n_users, test_ratio))
    return _parts(ds, test, "random")


def split_temporal(ds: Dataset, n_test: int = 1) -> Split:
    """Leave-last-out: each user's ``n_test`` latest rows (by timestamp, then row order) go to
    test, but at most ``n_u − 1`` so every user keeps one row in train."""
    if int(n_test) != n_test or n_test < 1:
        raise ConfigError(f"split_temporal(n_test={n_test!r}): expected a positive integer")
    u = ds.user_ids
    n_u = np.bincount(u, minlength=ds.n_users)
    n_hold = np.minimum(int(n_test), np.maximum(n_u - 1, 0))
    test = tail_mask(u, ds.interactions["timestamp"].to_numpy(), n_hold)
    return _parts(ds, test, "temporal")


def split_cold_items(
    ds: Dataset, item_frac: float = 0.2, seed: int = 0, items: np.ndarray | None = None
) -> Split:
    """Hold out a random ``item_frac`` share of the items that have interactions, with ALL
    their rows, as test; ``Split.cold_items`` lists them and train holds none of them.

    ``items`` (integer item ids, e.g. from :func:`read_item_ids`) gives the cold items instead
    of drawing them, so results can be compared with other tools on the same cold set.
    Users whose every row is on a cold item have no training rows.
    """
    active = np.unique(ds.item_ids)
    if items is None:
        _check_ratio(item_frac, "item_frac", "split_cold_items")
        if len(active) < 2:
            raise DataError(f"split_cold_items: data set {ds.name!r} needs at least 2 active items")
        n_cold = int(np.clip(np.floor(item_frac * len(active) + 0.5), 1, len(active) - 1))
        rng = np.random.default_rng(seed)
        cold = np.sort(rng.choice(active, size=n_cold, replace=False)).astype(np.int64)
    else:
        cold = np.unique(np.asarray(items, dtype=np.int64))
        if len(cold) == 0 or cold.min() < 0 or cold.max() >= ds.n_items:
            raise DataError(f"split_cold_items: items must be 1+ ids in 0..{ds.n_items - 1}")
        idle = np.setdiff1d(cold, active)
        if len(idle):
            log.warning(
                "%d of %d given cold items have no interactions in %r (no test rows), e.g. %s",
                len(idle),
                len(cold),
                ds.name,
                ds.items["item_id"].iloc[idle[0]],
            )
        if np.isin(active, cold).all():
            raise DataError(f"split_cold_items: every active item of {ds.name!r} is cold")
    is_cold = np.zeros(ds.n_items, dtype=bool)
    is_cold[cold] = True
    return _parts(ds, is_cold[ds.item_ids], "cold_items", cold)


def read_item_ids(path: str | Path, ds: Dataset) -> np.ndarray:
    """Integer ids of the external item ids in ``path``, one per line (sorted, unique).

    Blank lines are skipped; an id that is not an item of ``ds`` (after cleaning) or that
    repeats raises a :class:`DataError` naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"cold items file {path} not found (expected one item id per line)")
    lines = path.read_text(encoding="utf-8").splitlines()
    ids = pd.Series([x.strip() for x in lines], dtype=object)
    keep = ids.ne("").to_numpy()
    if not keep.any():
        raise DataError(f"{path}: no item ids (expected one external item id per line)")
    table = pd.Index(ds.items["item_id"].astype(str).to_numpy(dtype=object))
    pos = table.get_indexer(ids[keep].to_numpy())
    line = np.flatnonzero(keep) + 1
    if (pos < 0).any():
        k = int(np.argmax(pos < 0))
        raise DataError(
            f"{path}, line {line[k]}: item id {ids[keep].iloc[k]!r} is not an item of data set "
            f"{ds.name!r} ({ds.n_items:,} items after cleaning, e.g. {table[0]!r})"
        )
    dup = pd.Series(pos).duplicated().to_numpy()
    if dup.any():
        k = int(np.argmax(dup))
        raise DataError(f"{path}, line {line[k]}: item id {ids[keep].iloc[k]!r} repeats")
    return np.sort(pos).astype(np.int64)


def carve_valid(split: Split, ratio: float = 0.1, seed: int = 0, temporal: bool = False) -> Split:
    """Move a per-user ``ratio`` share of TRAIN rows into ``valid`` (test is untouched).

    Random rows by default; with ``temporal=True`` each user's latest train rows. The rule of
    the module doc applies, so every user with ≥ 2 train rows keeps one in train.
    """
    _check_ratio(ratio, "ratio", "carve_valid")
    if split.valid is not None:
        raise ConfigError(
            "carve_valid: the split already has a validation part (e.g. a fixed valid fold); "
            "use it, or carve from a split without one"
        )
    tr = split.train
    u = tr.user_ids
    key = (
        tr.interactions["timestamp"].to_numpy()
        if temporal
        else np.random.default_rng(seed).random(len(u))
    )
    held = tail_mask(u, key, _n_hold(u, tr.n_users, ratio))
    df = tr.interactions
    return Split(
        train=tr.with_interactions(df[~held]),
        valid=tr.with_interactions(_set_fold(df[held], "valid")),
        test=split.test,
        cold_items=split.cold_items,
        kind=f"{split.kind}+valid",
    )
