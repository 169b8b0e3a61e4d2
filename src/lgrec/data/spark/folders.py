"""Spark readers for the folder formats: LightGCN (Gowalla), CoLaKG's ML-1M and MovieLens.

The interaction files are parsed by Spark; the id lists and the item/user tables go through
the pandas loaders' own helpers, so ids, titles and profiles match :func:`load_dataset`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lgrec.data import lightgcn_txt, movielens
from lgrec.data._io import read_delimited
from lgrec.data.colakg import colakg_tables
from lgrec.data.spark.read import FILE_SHIFT, PART_SHIFT, RawLogs, _map, _row
from lgrec.errors import ConfigError, DataError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def _lightgcn_lines(spark: SparkSession, path: Path, f: int, fold: str) -> DataFrame:
    """``user item item ...`` lines → one row per item, as :func:`read_lightgcn_file`.

    A line with only a user id gives one row with ``item = -1`` (the user still counts); a
    malformed line gives a row with ``bad = 1``. Parsed per partition with pandas.
    """
    from pyspark import TaskContext
    from pyspark.sql.types import LongType, StructField, StructType

    names = ("row", "user", "item", "timestamp", "bad")
    schema = StructType([StructField(c, LongType(), False) for c in names])
    base = f << FILE_SHIFT

    def parse(batches):
        pid = TaskContext.get().partitionId()
        emitted = 0
        for b in batches:
            text = b["value"].fillna("")
            toks = text.str.split()
            ex = toks[toks.str.len() > 0].explode()
            bad = ~text.str.fullmatch(r"[0-9 \t\r]*").all() or (ex.str.len() > 18).any()
            if bad:
                yield pd.DataFrame({c: [1 if c == "bad" else -1] for c in names})
                continue
            vals = ex.to_numpy(dtype=object).astype(np.int64)
            line = ex.index.to_numpy()
            first = np.ones(len(vals), dtype=bool)
            first[1:] = line[1:] != line[:-1]
            start = np.maximum.accumulate(np.where(first, np.arange(len(vals)), 0))
            only_user = first & np.r_[first[1:], True]
            sel = ~first | only_user
            m = int(sel.sum())
            yield pd.DataFrame(
                {
                    "row": base + (pid << PART_SHIFT) + emitted + np.arange(m, dtype=np.int64),
                    "user": vals[start][sel],
                    "item": np.where(first, -1, vals)[sel],
                    "timestamp": (np.arange(len(vals)) - start - 1)[sel],
                    "bad": np.zeros(m, dtype=np.int64),
                }
            )
            emitted += m

    return spark.read.text(str(path)).mapInPandas(parse, schema)


def _first_bad_line(path: Path) -> int:
    import re

    pat = re.compile(r"[0-9 \t\r]*")
    with open(path, encoding="utf-8", errors="replace") as fh:
        for k, line in enumerate(fh, 1):
            t = line.rstrip("\n")
            if not pat.fullmatch(t) or any(len(x) > 18 for x in t.split()):
                return k
    return 0


def read_lightgcn(
    spark: SparkSession,
    path: Path,
    *,
    name: str | None = None,
    colakg: bool = False,
    text_key: str = "auto",
    movies_dat: str | Path | None = None,
) -> RawLogs:
    """A LightGCN folder (ids kept as integers, ``n = max id + 1``), or a CoLaKG folder
    (``text_key``/``movies_dat`` as :func:`lgrec.data.load_colakg`)."""
    from pyspark.sql import functions as F

    train_f = path / "train.txt"
    if not train_f.is_file():
        raise DataError(f"{path}: no train.txt")
    frames = []
    for f, (file, fold) in enumerate(((train_f, "train"), (path / "test.txt", "test"))):
        if file.is_file():
            frames.append(_lightgcn_lines(spark, file, f, fold).withColumn("fold", F.lit(fold)))
    df = frames[0] if len(frames) == 1 else frames[0].unionByName(frames[1])
    df = df.persist()
    max_u, max_i, n_bad = df.agg(F.max("user"), F.max("item"), F.sum("bad")).first()
    if n_bad:
        for file, _ in ((train_f, 0), (path / "test.txt", 1)):
            k = _first_bad_line(file) if file.is_file() else 0
            if k:
                raise DataError(
                    f"{file}, line {k}: expected space-separated non-negative integer ids"
                )
    lists = {}
    for key in ("user", "item"):
        f = path / f"{key}_list.txt"
        lists[key] = lightgcn_txt._read_id_list(f) if f.is_file() else None
    n_users = lightgcn_txt._size(pd.Series([max_u]), np.zeros(0, np.int64), lists["user"])
    n_items = lightgcn_txt._size(pd.Series([max_i]), np.zeros(0, np.int64), lists["item"])
    name = name or path.name
    meta: dict = {"source": str(path)}
    if colakg:
        items, users, meta = colakg_tables(
            path, n_items, n_users, name=name, text_key=text_key, movies_dat=movies_dat
        )
    else:
        users = lightgcn_txt.id_table(n_users, "user_id", lists["user"], path / "user_list.txt")
        items = lightgcn_txt.id_table(n_items, "item_id", lists["item"], path / "item_list.txt")
    df = df.filter(F.col("item") >= 0).select(
        "row",
        "user",
        "item",
        F.lit(1.0).alias("rating"),
        "timestamp",
        F.lit("click").alias("event"),
        "fold",
    )
    return RawLogs(df, items, users, n_items, n_users, name=name, meta=meta)


def read_movielens(spark: SparkSession, path: Path, *, fold: str | None = "u1") -> RawLogs:
    """ML-100K (``u.data`` or the ``<fold>.base``/``.test`` pair) or ML-1M (``ratings.dat``)."""
    from pyspark.sql import functions as F

    is_100k = (path / "u.data").is_file() or (path / "u1.base").is_file()
    if is_100k:
        if fold is not None and fold not in movielens.ML100K_FOLDS:
            raise ConfigError(f"fold={fold!r}: expected one of {movielens.ML100K_FOLDS} or None")
        parts = [(path / "u.data", None)] if fold is None else [
            (path / f"{fold}.base", "train"), (path / f"{fold}.test", "test")
        ]  # fmt: skip
        sep = "\t"
        genres = list(movielens.ML100K_GENRES)
        if (path / "u.genre").is_file():
            g = read_delimited(path / "u.genre", ["name", "idx"], sep="|", ints=["idx"])
            genres = g.sort_values("idx")["name"].astype(str).tolist()
        items, users = movielens._items_100k(path, genres), movielens._users_100k(path)
    else:
        parts, sep = [(path / "ratings.dat", None)], "::"
        items = movielens.read_movies_dat(path / "movies.dat")
        users = movielens.read_users_dat(path / "users.dat")
        if not (path / "movies.dat").is_file() or not (path / "users.dat").is_file():
            raise DataError(
                f"{path}: the Spark engine needs movies.dat and users.dat beside ratings.dat"
            )
    frames = []
    for f, (file, fold_name) in enumerate(parts):
        if not file.is_file():
            raise DataError(f"{file}: not found")
        raw = spark.read.csv(str(file), sep=sep, header=False).toDF(*movielens.RATING_COLS)
        raw = raw.select(
            _row(f).alias("row"),
            F.col("user_id").cast("long").cast("string").alias("user_ext"),
            F.col("item_id").cast("long").cast("string").alias("item_ext"),
            F.col("rating").cast("double").cast("float").cast("double").alias("rating"),
            F.col("timestamp").cast("long").alias("timestamp"),
            F.lit("rating").alias("event"),
            *([F.lit(fold_name).alias("fold")] if fold_name else []),
        )
        frames.append(raw)
    df = frames[0]
    for other in frames[1:]:
        df = df.unionByName(other)
    bad = df.filter(
        F.col("rating").isNull() | F.col("timestamp").isNull() | F.col("user_ext").isNull()
    ).first()
    if bad is not None:
        raise DataError(f"{path}: a rating line has a missing or non-numeric field: {bad}")
    if items is None or users is None:
        raise DataError(f"{path}: the Spark engine needs u.item and u.user beside u.data")
    where = ", ".join(str(f) for f, _ in parts)
    df = _map(_map(df, "item", items, where=where), "user", users, where=where)
    name = "ml-100k" if is_100k else "ml-1m"
    return RawLogs(
        df, items, users, len(items), len(users), name=name, rating_scale=(1.0, 5.0),
        meta={"source": str(path)},
    )  # fmt: skip
