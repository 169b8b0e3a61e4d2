"""The splits of :mod:`lgrec.data.split`, run by Spark, giving the same rows in each part.

Rows are first numbered 0..n-1 in the cleaned data set's order (:func:`with_position`), which
is the order the pandas split sees. The per-user tail rule ("hold out the ``h_u`` rows with the
largest key, ties to the later row", ``h_u = min(⌊ρ·n_u + ½⌋, n_u − 1)``) becomes a window per
user ordered by (key, position) descending. Random keys are NumPy's own draws (see
:mod:`lgrec.data.spark.positions`); the cold-item draw runs on the driver over the sorted list
of active items, exactly as ``split_cold_items`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lgrec.data.spark.positions import with_position
from lgrec.data.split import _check_ratio
from lgrec.errors import ConfigError, DataError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def _tail(df: DataFrame, key: str | Column, n_hold: Column, pos: str) -> Column:
    """Boolean column: the row is among its user's ``n_hold`` largest (key, position)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    k = F.col(key) if isinstance(key, str) else key
    w = Window.partitionBy("user").orderBy(k.desc(), F.col(pos).desc())
    return F.row_number().over(w) <= n_hold


def _ratio_hold(ratio: float) -> Column:
    """``min(⌊ρ·n_u + ½⌋, max(n_u − 1, 0))`` with ``n_u`` the user's row count (a window)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    n_u = F.count(F.lit(1)).over(Window.partitionBy("user"))
    return F.least(F.floor(F.lit(float(ratio)) * n_u + 0.5), F.greatest(n_u - 1, F.lit(0)))


def split_spark(
    df: DataFrame,
    kind: str,
    *,
    name: str = "",
    seed: int = 0,
    test_ratio: float = 0.2,
    cold_item_frac: float = 0.2,
    valid_ratio: float = 0.0,
    n_test: int = 1,
) -> tuple[DataFrame, np.ndarray, str]:
    """Cleaned logs → (rows with ``pos`` and ``part``, cold items, split kind).

    ``kind`` is ``fixed``, ``random``, ``temporal`` or ``cold`` (as ``lgrec prepare --split``);
    ``valid_ratio > 0`` then carves validation rows from train as :func:`carve_valid`.
    """
    from pyspark.sql import functions as F

    cold = np.zeros(0, dtype=np.int64)
    if kind == "fixed":
        if "fold" not in df.columns:
            raise DataError(
                f"split_fixed: data set {name!r} has no 'fold' column (its loader has no fixed "
                "split); use split_random, split_temporal or split_cold_items"
            )
        df = with_position(df, ["row"], "pos").withColumn("part", F.col("fold"))
        if df.filter(F.col("part") == "test").limit(1).count() == 0:
            raise DataError(f"split_fixed: data set {name!r} has no rows with fold 'test'")
        label = "fixed"
    elif kind == "random":
        _check_ratio(test_ratio, "test_ratio", "split_random")
        df = with_position(df, ["row"], "pos", seed=seed)
        held = _tail(df, "key", _ratio_hold(test_ratio), "pos")
        df = df.withColumn("part", F.when(held, "test").otherwise("train")).drop("key")
        label = "random"
    elif kind == "temporal":
        df = with_position(df, ["row"], "pos")
        from pyspark.sql import Window

        n_u = F.count(F.lit(1)).over(Window.partitionBy("user"))
        hold = F.least(F.lit(int(n_test)), F.greatest(n_u - 1, F.lit(0)))
        held = _tail(df, "timestamp", hold, "pos")
        df = df.withColumn("part", F.when(held, "test").otherwise("train"))
        label = "temporal"
    elif kind == "cold":
        _check_ratio(cold_item_frac, "item_frac", "split_cold_items")
        df = with_position(df, ["row"], "pos")
        active = np.sort(
            np.array([r[0] for r in df.select("item").distinct().collect()], dtype=np.int64)
        )
        if len(active) < 2:
            raise DataError(f"split_cold_items: data set {name!r} needs at least 2 active items")
        n_cold = int(np.clip(np.floor(cold_item_frac * len(active) + 0.5), 1, len(active) - 1))
        rng = np.random.default_rng(seed)
        cold = np.sort(rng.choice(active, size=n_cold, replace=False)).astype(np.int64)
        is_cold = F.col("item").isin([int(x) for x in cold])
        df = df.withColumn("part", F.when(is_cold, "test").otherwise("train"))
        label = "cold_items"
    else:
        raise ConfigError(f"split {kind!r}: expected fixed, random, temporal or cold")
    df = df.persist()
    if valid_ratio > 0:
        df, label = _carve_valid(df, valid_ratio, seed, label)
    return df, cold, label


def _carve_valid(df: DataFrame, ratio: float, seed: int, label: str) -> tuple[DataFrame, str]:
    """Per user, move a ``ratio`` share of the train rows (random draws) to ``valid``."""
    from pyspark.sql import functions as F

    _check_ratio(ratio, "ratio", "carve_valid")
    if df.filter(F.col("part") == "valid").limit(1).count():
        raise ConfigError(
            "carve_valid: the split already has a validation part (e.g. a fixed valid fold); "
            "use it, or carve from a split without one"
        )
    train = with_position(df.filter(F.col("part") == "train"), ["pos"], "_tpos", seed=seed)
    held = _tail(train, "key", _ratio_hold(ratio), "_tpos")
    train = train.withColumn("part", F.when(held, "valid").otherwise("train"))
    rest = df.filter(F.col("part") != "train")
    out = train.drop("_tpos", "key").unionByName(rest)
    return out.persist(), f"{label}+valid"
