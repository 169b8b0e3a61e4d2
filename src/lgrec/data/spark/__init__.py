"""ETL on Apache Spark: the same cleaning rules, report and splits as the pandas ``data`` stage.

``prepare_spark`` reads the logs with Spark (:mod:`.read`, :mod:`.folders`), cleans them
(:mod:`.clean`), splits them (:mod:`.split`) and writes the prepared folder of
:mod:`lgrec.data.prepared` (partitioned Parquet) that ``lgrec train/evaluate --prepared DIR``
read. Given the same input, seed and settings, the folder equals the one ``lgrec prepare --out``
writes with pandas, row for row: same ids, same rows in every part, same report.

Command line: ``lgrec prepare --engine spark --dataset gowalla --out prep/ [--spark-master URL]``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lgrec.data.clean import CleanReport
from lgrec.data.prepared import check_out_dir, clear_prepared, meta_dict
from lgrec.data.spark.clean import clean_spark
from lgrec.data.spark.session import java_status, spark_session
from lgrec.data.spark.split import split_spark
from lgrec.utils import atomic_write_text

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

__all__ = ["SparkPrepared", "java_status", "prepare_spark", "spark_session"]


@dataclass
class SparkPrepared:
    """What :func:`prepare_spark` wrote: the folder, the report, part sizes, step seconds."""

    path: Path
    report: CleanReport
    kind: str
    sizes: dict[str, int]
    n_users: int
    n_items: int
    n_cold: int
    seconds: dict[str, float]


def prepare_spark(
    spark: SparkSession,
    source: str,
    out: str | Path,
    *,
    split: str = "fixed",
    seed: int = 0,
    test_ratio: float = 0.2,
    cold_item_frac: float = 0.2,
    valid_ratio: float = 0.1,
    k_core: int | tuple[int, int] | None = None,
    fold: str | None = "u1",
    data_dir: str | Path | None = None,
    read_kw: dict | None = None,
) -> SparkPrepared:
    """Read, clean, split and write ``source`` (a data set name, folder or table file)."""
    from lgrec.data.spark.read import read_logs

    out = check_out_dir(out)
    secs: dict[str, float] = {}
    t0 = time.perf_counter()
    raw = read_logs(spark, source, data_dir=data_dir, fold=fold, **(read_kw or {}))
    secs["read"] = time.perf_counter() - t0
    log.info("spark: read %s (%d users, %d items) in %.1fs", raw.name, raw.n_users,
             raw.n_items, secs["read"])  # fmt: skip
    t0 = time.perf_counter()
    cleaned = clean_spark(raw, k_core=k_core)
    secs["clean"] = time.perf_counter() - t0
    log.info("spark: cleaned in %.1fs\n%s", secs["clean"], cleaned.report)
    t0 = time.perf_counter()
    c = cleaned.raw
    df, cold, kind = split_spark(
        c.df, split, name=c.name, seed=seed, test_ratio=test_ratio,
        cold_item_frac=cold_item_frac, valid_ratio=valid_ratio,
    )  # fmt: skip
    secs["split"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    clear_prepared(out)
    out.mkdir(parents=True, exist_ok=True)
    from pyspark.sql import functions as F

    inter = df.select(
        F.col("pos").alias("row"), "user", "item", "rating", "timestamp", "event",
        F.col("part").alias("fold"),
    )  # fmt: skip
    inter.write.partitionBy("fold").parquet(str(out / "interactions"))
    sizes = _part_sizes(out / "interactions")
    for key, table in (("item", c.items), ("user", c.users)):
        _write_table(table, key, out / f"{key}s")
    pd.DataFrame({"item": cold}).to_parquet(out / "cold_items.parquet", index=False)
    meta = meta_dict(
        engine="spark", name=c.name, rating_scale=c.rating_scale, kind=kind,
        has_fold=c.has_fold, source=str(c.meta.get("source", "")), n_users=c.n_users,
        n_items=c.n_items, sizes=sizes, report=cleaned.report,
    )  # fmt: skip
    atomic_write_text(out / "meta.json", json.dumps(meta, indent=1))
    secs["write"] = time.perf_counter() - t0
    return SparkPrepared(
        out, cleaned.report, kind, meta["sizes"], c.n_users, c.n_items, len(cold), secs
    )


def _part_sizes(d: Path) -> dict[str, int]:
    """Rows per fold, from the Parquet footers (no Spark job)."""
    import pyarrow.dataset as pds

    return {
        p.name.split("=", 1)[1]: pds.dataset(p, format="parquet").count_rows()
        for p in sorted(d.glob("fold=*"))
    }


def _write_table(table, key: str, d: Path) -> None:
    if isinstance(table, pd.DataFrame):
        d.mkdir(parents=True, exist_ok=True)
        t = table.copy()
        t.insert(0, key, np.arange(len(t), dtype=np.int64))
        t.to_parquet(d / "part-00000.parquet", index=False)
    else:
        table.select(key, f"{key}_id").orderBy(key).write.parquet(str(d))
