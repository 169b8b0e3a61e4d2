"""Read interaction logs into a Spark DataFrame with the ids the pandas loaders would give.

The logs (the big part) are read and parsed by Spark; the item and user tables with their text
and attributes (the small part: a catalogue, a user directory) are read on the driver by the
very pandas helpers the loaders use, so titles, genres and profiles are byte for byte the same.

Every reader returns :class:`RawLogs`: columns ``row`` (int64, the file order: sorting by it
gives the rows in the order the pandas loader holds them), ``user``, ``item`` (int64 ids),
``rating`` (double), ``timestamp`` (int64), ``event`` (string) and, for formats with a fixed
split, ``fold``. ``row`` is ``file << 58 | partition << 33 | record``: Spark reads one file's
splits in file order and each split's records in order, so it orders rows without a shuffle.

Supported: tables (CSV/TSV/Parquet/JSON lines, as :func:`lgrec.data.load_tabular`), LightGCN
folders (``train.txt``/``test.txt``, e.g. Gowalla), CoLaKG's ML-1M, MovieLens (ML-100K folds,
ML-1M ``ratings.dat``). RecBole and Last.fm folders are small; use the pandas engine for them.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lgrec.data import tabular
from lgrec.data._io import FOLDS, user_text
from lgrec.data.registry import DATASETS, detect
from lgrec.data.spark.positions import with_position
from lgrec.errors import ConfigError, DataError, DatasetNotFoundError
from lgrec.utils import data_dir as resolve_data_dir

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

FILE_SHIFT = 58
PART_SHIFT = 33


@dataclass
class RawLogs:
    """Interactions (Spark) plus the id tables; ``items``/``users`` row k describes id k.

    A table is a pandas frame (read on the driver, with attributes) or a Spark frame with
    columns ``(item, item_id)`` / ``(user, user_id)`` (ids only, built from the logs).
    """

    df: DataFrame
    items: pd.DataFrame | DataFrame
    users: pd.DataFrame | DataFrame
    n_items: int
    n_users: int
    name: str
    rating_scale: tuple[float, float] | None = None
    meta: dict = field(default_factory=dict)

    @property
    def has_fold(self) -> bool:
        return "fold" in self.df.columns


def _row(f: int):
    from pyspark.sql import functions as F

    return (F.lit(f).cast("long") * F.lit(1 << FILE_SHIFT)) + F.monotonically_increasing_id()


def read_logs(spark: SparkSession, source: str, *, data_dir=None, fold: str | None = "u1", **kw):
    """Read a known data set by name, a data folder, or a table file (``kw`` as load_tabular)."""
    name = None
    if source in DATASETS:
        path = resolve_data_dir(data_dir) / DATASETS[source].folder
        if not path.is_dir():
            raise DatasetNotFoundError(f"data set {source!r} not found: no folder {path}")
        name = source
        if source == "ml-1m":
            fold = None
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise DatasetNotFoundError(f"{source!r} is neither a known data set nor a path")
    from lgrec.data.spark.folders import read_lightgcn, read_movielens

    kind = detect(path)
    allowed = {"colakg": {"text_key", "movies_dat"}, "lightgcn": set(), "movielens": set()}
    allowed["tabular"] = set(inspect.signature(read_tabular).parameters) - {"spark", "path"}
    extra = set(kw) - allowed.get(kind, set(kw))
    if extra:
        raise ConfigError(
            f"{path}: the {kind} reader takes no argument {sorted(extra)} (loader arguments)"
        )
    if kind == "tabular":
        raw = read_tabular(spark, path, **kw)
    elif kind in ("lightgcn", "colakg"):
        raw = read_lightgcn(spark, path, name=name, colakg=kind == "colakg", **kw)
    elif kind == "movielens":
        raw = read_movielens(spark, path, fold=fold)
    else:
        raise DataError(
            f"{path}: the Spark engine reads tables, LightGCN/CoLaKG and MovieLens folders, not "
            f"{kind} (small data sets: use the pandas engine, or convert the logs to Parquet)"
        )
    if name:
        raw.name = name
    return raw


# ---- tables (CSV / TSV / Parquet / JSON lines) ---------------------------------------------
def _read_any(spark: SparkSession, path: Path, sep: str | None) -> DataFrame:
    kind = tabular._kind(path)
    if kind == "parquet":
        return spark.read.parquet(str(path))
    if kind == "json":
        multi = path.suffix.lower() == ".json" and not tabular._looks_like_lines(path)
        return spark.read.json(str(path), multiLine=multi)
    return spark.read.csv(
        str(path), header=True, sep=sep or tabular._TEXT_SEP[kind], quote='"', escape='"'
    )


def _first_bad(df: DataFrame, checks: list[tuple[Column, str]], path: Path) -> None:
    """Raise a DataError naming the data row (1-based, header excluded) of the first row that
    fails a check; all checks run in one pass."""
    from pyspark.sql import functions as F

    firsts = df.agg(*[F.min(F.when(c, F.col("row"))) for c, _ in checks]).first()
    hits = [(r, what) for r, (_, what) in zip(firsts, checks) if r is not None]
    if hits:
        bad, what = min(hits)
        k = df.filter(F.col("row") < bad).count()
        raise DataError(f"{path}, data row {k + 1}: {what}")


def read_tabular(
    spark: SparkSession,
    path: Path,
    *,
    user_col: str = "user_id",
    item_col: str = "item_id",
    rating_col: str | None = None,
    time_col: str | None = None,
    event_col: str | None = None,
    items_path: str | Path | None = None,
    item_cols=None,
    users_path: str | Path | None = None,
    sep: str | None = None,
) -> RawLogs:
    """One table file, with the column mapping and rules of :func:`lgrec.data.load_tabular`."""
    from pyspark.sql import functions as F

    raw = _read_any(spark, path, sep).withColumn("row", _row(0))
    cols = {"user_col": user_col, "item_col": item_col, "rating_col": rating_col}
    cols |= {"time_col": time_col, "event_col": event_col}
    for arg, c in cols.items():
        if c is not None and c not in raw.columns:
            raise DataError(f"{path}: column {c!r} ({arg}) not found; columns found: {raw.columns}")
    sel = {
        "row": F.col("row"),
        "user_ext": _id_str(raw, user_col),
        "item_ext": _id_str(raw, item_col),
        "rating": F.col(rating_col).cast("double") if rating_col else F.lit(1.0),
        "rating32": F.col(rating_col).cast("double").cast("float").cast("double")
        if rating_col
        else F.lit(1.0),
        "timestamp": _time(raw, time_col, path) if time_col else F.lit(None).cast("long"),
        "event": F.coalesce(F.col(event_col).cast("string"), F.lit(""))
        if event_col
        else F.lit("rating" if rating_col else "click"),
    }
    if "fold" in raw.columns:
        sel["fold"] = F.lower(F.trim(F.col("fold").cast("string")))
    out = raw.select(*[c.alias(k) for k, c in sel.items()])
    checks = [
        (F.col(what).isNull(), f"column {c!r} is empty; expected an id")
        for c, what in ((user_col, "user_ext"), (item_col, "item_ext"))
    ]
    if rating_col:
        checks.append((F.col("rating").isNull(), f"column {rating_col!r} is not a number"))
    if "fold" in out.columns:
        checks.append((~F.col("fold").isin(*FOLDS), f"column 'fold' is not one of {list(FOLDS)}"))
    _first_bad(out, checks, path)
    if not time_col:  # pandas uses the row position (np.arange) as the timestamp
        out = with_position(out.drop("timestamp"), ["row"], "timestamp")
    out = out.persist()
    items = _ids_table(out, "item", item_col, items_path, item_cols, sep)
    users = _ids_table(out, "user", user_col, users_path, None, sep)
    attrs = set(users.columns) if isinstance(users, pd.DataFrame) else set()
    if "text" not in attrs and {"age", "gender", "occupation"} <= attrs:
        users["text"] = user_text(users["age"], users["gender"], users["occupation"])
    df = _map(_map(out, "item", items), "user", users)
    scale = None
    if rating_col:  # the scale from the file's numbers, the ratings stored as float32
        lo, hi = df.agg(F.min("rating"), F.max("rating")).first()
        scale = (float(lo), float(hi))
    df = df.drop("rating").withColumnRenamed("rating32", "rating")
    return RawLogs(
        df,
        items,
        users,
        _count(items),
        _count(users),
        name=path.name.split(".")[0],
        rating_scale=scale,
        meta={"source": str(path)},
    )


def _count(t) -> int:
    return len(t) if isinstance(t, pd.DataFrame) else t.count()


def _id_str(df: DataFrame, col: str):
    """An id column as strings; float columns holding whole numbers print as integers."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, FloatType

    c = F.col(col)
    if isinstance(df.schema[col].dataType, DoubleType | FloatType):
        frac = df.filter(c.isNotNull() & (c % 1 != 0)).limit(1).count()
        if not frac:
            return c.cast("long").cast("string")
    return c.cast("string")


def _time(df: DataFrame, col: str, path: Path):
    """Integer timestamps as they are (rounded); ISO 8601 strings → Unix seconds (UTC)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType, NumericType, TimestampType

    t = df.schema[col].dataType
    c = F.col(col)
    if isinstance(t, TimestampType | DateType):
        return F.floor(F.unix_micros(c.cast("timestamp")) / 1_000_000).cast("long")
    if isinstance(t, NumericType):
        return F.round(c.cast("double")).cast("long")
    num = c.cast("double")
    all_num = df.filter(num.isNull()).limit(1).count() == 0
    if all_num:
        return F.round(num).cast("long")
    ts = F.to_timestamp(c)
    what = f"column {col!r} is not an integer timestamp or an ISO 8601 date/time"
    _first_bad(df.select("row", ts.alias("t")), [(F.col("t").isNull(), what)], path)
    return F.floor(F.unix_micros(ts) / 1_000_000).cast("long")


def _ids_table(out: DataFrame, key: str, col: str, side_path, side_cols, sep):
    """The id table: the side table file (+ ids only in the logs, first seen first), or the
    logs' ids in :func:`lgrec.data._io.vocab` order (numeric if all are integers)."""
    from pyspark.sql import functions as F

    ext = f"{key}_ext"
    first = out.groupBy(ext).agg(F.min("row").alias("first"))
    if side_path is not None:
        table = tabular._side_table(Path(side_path), col, f"{key}_id", side_cols, sep)
        known = out.sparkSession.createDataFrame(
            pd.DataFrame({ext: table[f"{key}_id"].astype(str)})
        )
        new = first.join(known, ext, "left_anti").orderBy("first").select(ext).toPandas()[ext]
        if len(new):
            log.warning("%s: %d ids used in interactions are not in the table", side_path, len(new))
            add = pd.DataFrame({f"{key}_id": new.to_numpy(dtype=object)})
            table = pd.concat([table, add], ignore_index=True)
        return table
    numeric = first.filter(~F.col(ext).rlike(r"^-?[0-9]+$")).limit(1).count() == 0
    order = [F.col(ext).cast("long"), F.col("first")] if numeric else [F.col("first")]
    ids = with_position(first, order, key).select(key, F.col(ext).alias(f"{key}_id"))
    return ids.persist()


def _map(df: DataFrame, key: str, table, *, where: str = "") -> DataFrame:
    """Replace ``<key>_ext`` by the integer id from ``table``.

    A driver-side table is broadcast; with ``where`` (the files read) ids missing from it
    raise a DataError, as the loaders do (tables built from the logs hold every id).
    """
    from pyspark.sql import functions as F

    ext = f"{key}_ext"
    if isinstance(table, pd.DataFrame):
        ids = table[f"{key}_id"].astype(str).to_numpy(dtype=object)
        m = df.sparkSession.createDataFrame(
            pd.DataFrame({ext: ids, key: np.arange(len(table), dtype=np.int64)})
        )
        joined = df.join(F.broadcast(m), on=ext, how="left")
    else:
        joined = df.join(table.select(F.col(f"{key}_id").alias(ext), key), on=ext, how="left")
    if where:
        bad = joined.filter(F.col(key).isNull()).select(ext).first()
        if bad is not None:
            raise DataError(f"{where}: {key} id {bad[0]!r} is not in the {key} table")
    return joined.drop(ext)
