"""LightGCN-style text data: ``train.txt``/``test.txt`` lines ``user item item ...``.

Also LightGCN's Last.fm in that layout's family (``user item count`` rows plus a social network);
CoLaKG folders, which add id maps and LLM item text, are read by :mod:`lgrec.data.colakg`.
Parsing works on the whole file's bytes with NumPy (see :func:`lgrec.data._io.parse_int_lines`),
so Gowalla's ~1M interactions load in well under a second.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from lgrec.data._io import (
    finish_interactions,
    fold_column,
    need_file,
    parse_int_lines,
    read_delimited,
)
from lgrec.data.dataset import Dataset
from lgrec.errors import DataError, DatasetNotFoundError

log = logging.getLogger(__name__)


def read_lightgcn_file(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """One ``user item item ...`` file → (interactions, user id of every line).

    Interactions have columns user, item, timestamp (position in the line) and line (1-based
    line number). A line with only the user id adds no interaction, but the user still counts
    towards ``n_users`` through the second return value.
    """
    values, line = parse_int_lines(path)
    n = len(values)
    first = np.ones(n, dtype=bool)
    first[1:] = line[1:] != line[:-1]
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    keep = ~first
    return pd.DataFrame(
        {
            "user": values[start[keep]],
            "item": values[keep],
            "timestamp": (np.arange(n) - start - 1)[keep],
            "line": line[keep] + 1,
        }
    ), values[first]


def _read_id_list(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``org_id remap_id`` list (header optional, extra columns ignored) → (org ids, remap ids)."""
    with open(path, encoding="utf-8") as fh:
        first = fh.readline().split()
    if not first:
        raise DataError(f"{path}: file is empty; expected lines 'org_id remap_id'")
    header = not first[-1].lstrip("-").isdigit() if len(first) >= 2 else False
    names = first if header else [f"c{k}" for k in range(len(first))]
    if len(names) < 2:
        raise DataError(f"{path}, line 1: expected two columns 'org_id remap_id', got {first}")
    df = read_delimited(
        path, names, sep=" ", ints=[names[1]], required=[names[0]], skiprows=int(header)
    )
    return df[names[0]].astype(str).to_numpy(dtype=object), df[names[1]].to_numpy()


def id_table(
    n: int, key: str, ids: tuple[np.ndarray, np.ndarray] | None, path: Path | None
) -> pd.DataFrame:
    """Table of ``n`` rows whose ``key`` is the external id (defaults to the integer id)."""
    ext = np.arange(n).astype(str).astype(object)
    if ids is not None:
        org, remap = ids
        if remap.min() < 0 or remap.max() >= n:
            raise DataError(f"{path}: remap_id outside 0..{n - 1}")
        ext[remap] = org
        if pd.Index(ext).has_duplicates:
            raise DataError(f"{path}: external ids are not unique")
    return pd.DataFrame({key: ext})


def load_lightgcn(path: str | Path, *, name: str | None = None) -> Dataset:
    """Load a LightGCN data folder (``train.txt``, optional ``test.txt``, id lists).

    Interactions get ``rating=1.0``, ``event="click"``, ``timestamp`` = position in the line
    and ``fold`` = ``train``/``test``. Integer ids in the files are kept as they are, so
    ``n_users = max(user id) + 1`` (likewise items), as in LightGCN itself. With
    ``user_list.txt``/``item_list.txt`` (``org_id remap_id``) the tables carry the original ids.
    """
    path = Path(path)
    name = name or path.name
    if not path.is_dir():
        raise DatasetNotFoundError(
            f"LightGCN data directory {path} not found; expected train.txt and test.txt as in "
            "https://github.com/gusye1234/LightGCN-PyTorch (data/<name>)"
        )
    train_f = need_file(path / "train.txt", dataset=name, source="lightgcn")
    frames, line_users = [], []
    for f, fold in ((train_f, "train"), (path / "test.txt", "test")):
        if not f.is_file():
            log.warning("%s: no test.txt; every interaction is in fold 'train'", path)
            continue
        df, users = read_lightgcn_file(f)
        df["fold"] = fold_column(fold, len(df))
        frames.append(df)
        line_users.append(users)
    df = pd.concat(frames, ignore_index=True)
    user_ids = _read_id_list(path / "user_list.txt") if (path / "user_list.txt").is_file() else None
    item_ids = _read_id_list(path / "item_list.txt") if (path / "item_list.txt").is_file() else None
    n_users = _size(df["user"], np.concatenate(line_users), user_ids)
    n_items = _size(df["item"], np.zeros(0, dtype=np.int64), item_ids)
    users = id_table(n_users, "user_id", user_ids, path / "user_list.txt")
    items = id_table(n_items, "item_id", item_ids, path / "item_list.txt")
    df["rating"] = 1.0
    return Dataset(
        finish_interactions(df, event="click"), items, users, name=name, meta={"source": str(path)}
    )


def _size(ids: pd.Series, extra: np.ndarray, listing: tuple[np.ndarray, np.ndarray] | None) -> int:
    n = int(max(ids.max() if len(ids) else -1, extra.max() if len(extra) else -1)) + 1
    if listing is not None:
        n = max(n, int(listing[1].max()) + 1)
    return n


def load_lastfm(path: str | Path) -> Dataset:
    """LightGCN's Last.fm: ``data1.txt``/``test1.txt`` (``user item count``, 1-based, tab).

    ``count`` (plays) becomes ``rating``; ``event="play"``; ``timestamp`` = row order.
    ``trustnetwork.txt`` (user→user) is kept as ``meta["social_edges"]``, an (E, 2) int64 array
    of 0-based user ids. Sizes follow the largest id in any file (1,892 users, 4,489 items).
    """
    path = Path(path)
    frames = []
    for fname, fold in (("data1.txt", "train"), ("test1.txt", "test")):
        f = need_file(path / fname, dataset="lastfm-social")
        df = read_delimited(f, ["user", "item", "rating"], ints=["user", "item"], floats=["rating"])
        df["fold"] = fold_column(fold, len(df))
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    for c in ("user", "item"):
        if df[c].min() < 1:
            raise DataError(f"{path}: {c} ids must be 1-based (found {df[c].min()})")
        df[c] -= 1
    df["timestamp"] = np.arange(len(df))
    edges = np.zeros((0, 2), dtype=np.int64)
    trust = path / "trustnetwork.txt"
    if trust.is_file():
        t = read_delimited(trust, ["a", "b"], ints=["a", "b"])
        edges = t[["a", "b"]].to_numpy(dtype=np.int64) - 1
        if edges.min() < 0:
            raise DataError(f"{trust}: user ids must be 1-based")
    n_users = int(max(df["user"].max(), edges.max() if len(edges) else -1)) + 1
    n_items = int(df["item"].max()) + 1
    users = pd.DataFrame({"user_id": (np.arange(n_users) + 1).astype(str).astype(object)})
    items = pd.DataFrame({"item_id": (np.arange(n_items) + 1).astype(str).astype(object)})
    return Dataset(
        finish_interactions(df, event="play"),
        items,
        users,
        name="lastfm-social",
        meta={"source": str(path), "social_edges": edges},
    )
