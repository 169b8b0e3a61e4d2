"""MovieLens loaders: ML-100K (``u.data``/``u.item``/``u.user``) and ML-1M (``*.dat``).

Both give explicit 1–5 star ratings (``event="rating"``, ``rating_scale=(1, 5)``), items with
``title`` and ``categories`` (genres) and users with ``age``, ``gender``, ``occupation``,
``zip`` and a ``text`` profile such as ``"24-year-old male technician"``. ML-100K's fixed
folds (``u1``..``u5``, ``ua``, ``ub``) set the ``fold`` column to ``train``/``test``; ML-1M has
no fixed fold. Files: https://grouplens.org/datasets/movielens/
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from lgrec.data._io import (
    finish_interactions,
    fold_column,
    map_ids,
    need_file,
    read_delimited,
    user_text,
)
from lgrec.data.dataset import Dataset
from lgrec.errors import ConfigError, DatasetNotFoundError

log = logging.getLogger(__name__)

ML100K_FOLDS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
ML1M_AGES = {1: "under 18", 18: "18-24", 25: "25-34", 35: "35-44", 45: "45-49", 50: "50-55"}
ML1M_AGES[56] = "56+"
ML1M_OCCUPATIONS = [
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
]  # fmt: skip
RATING_COLS = ["user_id", "item_id", "rating", "timestamp"]


def load_movielens(path: str | Path, *, fold: str | None = "u1") -> Dataset:
    """Load ML-100K or ML-1M from a directory, detected by its files.

    Args:
        path: folder holding ``u.data`` (ML-100K) or ``ratings.dat`` (ML-1M).
        fold: ML-100K only: ``"u1"``..``"u5"``, ``"ua"``, ``"ub"`` reads ``<fold>.base`` as
            train and ``<fold>.test`` as test (column ``fold``); ``None`` reads ``u.data``
            without a fold. Ignored for ML-1M, which has no fixed split.
    """
    path = Path(path)
    if not path.is_dir():
        raise DatasetNotFoundError(
            f"MovieLens directory {path} not found. Download MovieLens from "
            "https://grouplens.org/datasets/movielens/ and unpack it there."
        )
    if (path / "u.data").is_file() or (path / "u1.base").is_file():
        return _load_100k(path, fold)
    if any((path / f).is_file() for f in ("ratings.dat", "movies.dat", "users.dat")):
        return _load_1m(path)
    raise DatasetNotFoundError(
        f"{path}: no MovieLens files found (expected u.data for ML-100K or ratings.dat for "
        "ML-1M). Download MovieLens from https://grouplens.org/datasets/movielens/"
    )


def genre_lists(flags: np.ndarray, names: list[str]) -> list[list[str]]:
    """Rows of a 0/1 flag matrix → lists of the flagged names (one list per row)."""
    rows, cols = np.nonzero(flags)
    splits = np.cumsum(np.bincount(rows, minlength=len(flags)))[:-1]
    arr = np.asarray(names, dtype=object)
    return [list(arr[c]) for c in np.split(cols, splits)]


def _load_100k(path: Path, fold: str | None) -> Dataset:
    if fold is not None and fold not in ML100K_FOLDS:
        raise ConfigError(f"load_movielens(fold={fold!r}): expected one of {ML100K_FOLDS} or None")
    genres = list(ML100K_GENRES)
    if (path / "u.genre").is_file():
        g = read_delimited(path / "u.genre", ["name", "idx"], sep="|", ints=["idx"])
        genres = g.sort_values("idx")["name"].astype(str).tolist()
    items = _items_100k(path, genres)
    users = _users_100k(path)
    if fold is None:
        f = need_file(path / "u.data", dataset="ml-100k")
        parts = [(f, None)]
    else:
        parts = [
            (need_file(path / f"{fold}.base", dataset="ml-100k"), "train"),
            (need_file(path / f"{fold}.test", dataset="ml-100k"), "test"),
        ]
    frames = []
    for f, fold_name in parts:
        df = read_delimited(
            f, RATING_COLS, ints=["user_id", "item_id", "timestamp"], floats=["rating"]
        )
        df["line"] = df.index.to_numpy() + 1
        df["file"] = str(f)
        if fold_name:
            df["fold"] = fold_column(fold_name, len(df))
        frames.append(df)
    raw = pd.concat(frames, ignore_index=True)
    items, users = _tables_or_from_ids(raw, items, users)
    df = _map_ratings(raw, items, users)
    return Dataset(
        finish_interactions(df, event="rating"),
        items,
        users,
        name="ml-100k",
        rating_scale=(1.0, 5.0),
        meta={"source": str(path), "fold": fold},
    )


def _items_100k(path: Path, genres: list[str]) -> pd.DataFrame | None:
    f = path / "u.item"
    if not f.is_file():
        log.warning("%s: u.item missing; items get no titles or genres", path)
        return None
    names = ["item_id", "title", "release_date", "video_release_date", "url", *genres]
    raw = read_delimited(
        f, names, sep="|", ints=["item_id", *genres], encoding="latin-1", required=["item_id"]
    )
    return pd.DataFrame(
        {
            "item_id": raw["item_id"].astype(str).to_numpy(),
            "title": raw["title"].fillna("").to_numpy(dtype=object),
            "release_date": raw["release_date"].fillna("").to_numpy(dtype=object),
            "categories": genre_lists(raw[genres].to_numpy(), genres),
        }
    )


def _users_100k(path: Path) -> pd.DataFrame | None:
    f = path / "u.user"
    if not f.is_file():
        log.warning("%s: u.user missing; users get no attributes", path)
        return None
    raw = read_delimited(
        f, ["user_id", "age", "gender", "occupation", "zip"], sep="|", ints=["user_id", "age"]
    )
    users = pd.DataFrame(
        {
            "user_id": raw["user_id"].astype(str).to_numpy(),
            "age": raw["age"].to_numpy(),
            "gender": raw["gender"].to_numpy(dtype=object),
            "occupation": raw["occupation"].to_numpy(dtype=object),
            "zip": raw["zip"].to_numpy(dtype=object),
        }
    )
    users["text"] = user_text(users["age"], users["gender"], users["occupation"]).to_numpy()
    return users


def _tables_or_from_ids(
    raw: pd.DataFrame, items: pd.DataFrame | None, users: pd.DataFrame | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fall back to id-only tables (sorted external ids) when a table file is absent."""
    if items is None:
        items = pd.DataFrame({"item_id": np.unique(raw["item_id"].to_numpy()).astype(str)})
    if users is None:
        users = pd.DataFrame({"user_id": np.unique(raw["user_id"].to_numpy()).astype(str)})
    return items, users


def _map_ratings(raw: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame) -> pd.DataFrame:
    """External → contiguous ids; unknown ids raise with the file and line."""
    out = {}
    files, lines = raw["file"].to_numpy(), raw["line"].to_numpy()
    for what, table in (("user", users), ("item", items)):
        known = pd.Index(table[f"{what}_id"].astype(str))
        ext = raw[f"{what}_id"].astype(str).to_numpy()
        out[what] = map_ids(ext, known, path=files, what=what, lines=lines)
    df = pd.DataFrame(
        {
            **out,
            "rating": raw["rating"].to_numpy(),
            "timestamp": raw["timestamp"].to_numpy(),
        }
    )
    if "fold" in raw.columns:
        df["fold"] = raw["fold"].to_numpy()
    return df


def _load_1m(path: Path) -> Dataset:
    ratings = need_file(path / "ratings.dat", dataset="ml-1m")
    items = None
    if (path / "movies.dat").is_file():
        items = read_movies_dat(path / "movies.dat")
    users = read_users_dat(path / "users.dat") if (path / "users.dat").is_file() else None
    raw = read_delimited(
        ratings, RATING_COLS, sep="::", ints=["user_id", "item_id", "timestamp"], floats=["rating"]
    )
    raw["line"] = raw.index.to_numpy() + 1
    raw["file"] = str(ratings)
    items, users = _tables_or_from_ids(raw, items, users)
    df = _map_ratings(raw, items, users)
    return Dataset(
        finish_interactions(df, event="rating"),
        items,
        users,
        name="ml-1m",
        rating_scale=(1.0, 5.0),
        meta={"source": str(path)},
    )


def read_movies_dat(path: Path) -> pd.DataFrame:
    """ML-1M ``movies.dat`` (``MovieID::Title::Genres``, latin-1) → item_id, title, categories."""
    raw = read_delimited(
        path, ["item_id", "title", "genres"], sep="::", ints=["item_id"], encoding="latin-1"
    )
    genres = raw["genres"].fillna("").astype(str)
    return pd.DataFrame(
        {
            "item_id": raw["item_id"].astype(str).to_numpy(),
            "title": raw["title"].fillna("").to_numpy(dtype=object),
            "categories": [g.split("|") if g else [] for g in genres.tolist()],
        }
    )


def read_users_dat(path: Path) -> pd.DataFrame:
    """ML-1M ``users.dat`` (``UserID::Gender::Age::Occupation::Zip``) → user table with text.

    Age and occupation codes are decoded with the tables of the ML-1M README.
    """
    raw = read_delimited(
        path,
        ["user_id", "gender", "age", "occupation", "zip"],
        sep="::",
        ints=["user_id", "age", "occupation"],
    )
    age = raw["age"].map(ML1M_AGES).fillna(raw["age"].astype(str))
    occ = pd.Series(np.asarray(ML1M_OCCUPATIONS, dtype=object)).reindex(raw["occupation"])
    users = pd.DataFrame(
        {
            "user_id": raw["user_id"].astype(str).to_numpy(),
            "age": age.to_numpy(dtype=object),
            "gender": raw["gender"].to_numpy(dtype=object),
            "occupation": occ.fillna("other").to_numpy(dtype=object),
            "zip": raw["zip"].to_numpy(dtype=object),
        }
    )
    users["text"] = user_text(users["age"], users["gender"], users["occupation"]).to_numpy()
    return users
