"""The cleaning rules of :func:`lgrec.data.clean`, run by Spark, with the same report.

Same steps in the same order (text normalisation of the tables; rows with missing or
out-of-range ids; missing/non-finite ratings; ratings outside the range; items without text;
duplicate (user, item) pairs keeping the latest/earliest by timestamp, ties by row order; the
iterative k-core), the same step names, reasons and counts, and the same re-indexing: kept ids
keep their order and become 0..n-1. Tables read on the driver are normalised there by the
pandas code itself; the logs never leave Spark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lgrec.data.clean import (
    CleanReport,
    _empty_text_items,
    _normalize_table,
    clean_args,
    text_notes,
)
from lgrec.data.spark.read import RawLogs

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


@dataclass
class Cleaned:
    """Cleaned logs (``row`` still the file order) and tables with ids 0..n-1."""

    raw: RawLogs
    report: CleanReport


def _drop(df: DataFrame, cond, rep: CleanReport, name: str, reason: str, **kw) -> DataFrame:
    n = df.filter(cond).count()
    rep.add(name, n, reason, **kw)
    return df.filter(~cond).persist() if n else df


def clean_spark(
    raw: RawLogs,
    *,
    rating_range: tuple[float, float] | None = None,
    k_core: int | tuple[int, int] | None = None,
    dedupe: str | None = "latest",
    drop_empty_text: bool = False,
    normalize_text: bool = True,
) -> Cleaned:
    """Clean ``raw`` like :func:`lgrec.data.clean` (same arguments, same report)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    k_user, k_item = clean_args(dedupe, k_core)
    df = raw.df.persist()
    rep = CleanReport(raw.name, df.count(), users=(raw.n_users, 0), items=(raw.n_items, 0))
    items, users = raw.items, raw.users
    if normalize_text:
        if isinstance(items, pd.DataFrame):
            items = _normalize_table(items, "item_id")
        if isinstance(users, pd.DataFrame):
            users = _normalize_table(users, "user_id")
        rep.add("normalize_text", 0, "NFKC, HTML tags/entities, whitespace (tables only)")
    u, i, r = F.col("user"), F.col("item"), F.col("rating")
    bad_id = u.isNull() | i.isNull() | (u < 0) | (u >= raw.n_users) | (i < 0) | (i >= raw.n_items)
    bad_r = ~bad_id & (r.isNull() | F.isnan(r) | (F.abs(r) == float("inf")))
    lo_hi = rating_range if rating_range is not None else raw.rating_scale
    out_r = F.lit(False)
    if lo_hi is not None:
        out_r = ~bad_id & ~bad_r & ((r < float(lo_hi[0])) | (r > float(lo_hi[1])))
    flags = [F.sum(F.when(c, 1).otherwise(0)) for c in (bad_id, bad_r, out_r)]
    n_ids, n_r, n_range = (int(x or 0) for x in df.agg(*flags).first())  # one pass, three steps
    rep.add("invalid_ids", n_ids, f"missing ids or outside 0..{raw.n_users - 1} / "
            f"0..{raw.n_items - 1}")  # fmt: skip
    rep.add("invalid_rating", n_r, "missing or non-finite rating")
    if lo_hi is not None:
        rep.add("rating_range", n_range, f"rating outside {list(lo_hi)}")
    if n_ids + n_r + n_range:
        df = df.filter(~(bad_id | bad_r | out_r)).persist()
    keep_items = np.ones(raw.n_items, dtype=bool)
    keep_users = np.ones(raw.n_users, dtype=bool)
    if drop_empty_text:
        empty = _empty_text_items(items) if isinstance(items, pd.DataFrame) else None
        if empty is None:
            rep.add("empty_text", 0, "skipped: items have no title/description column")
        else:
            keep_items &= ~empty
            gone = [int(x) for x in np.flatnonzero(empty)]
            df = _drop(
                df, i.isin(gone), rep, "empty_text", "items without title/description",
                items=empty.sum(),
            )  # fmt: skip
    if dedupe is not None:
        asc = dedupe != "latest"
        t, row = F.col("timestamp"), F.col("row")
        w = Window.partitionBy("user", "item").orderBy(
            t.asc() if asc else t.desc(), row.asc() if asc else row.desc()
        )
        which = "latest" if dedupe == "latest" else "earliest"
        df = df.withColumn("_rk", F.row_number().over(w))
        df = _drop(
            df, F.col("_rk") > 1, rep, "duplicates",
            f"repeated (user, item); kept the {which} by timestamp",
        ).drop("_rk")  # fmt: skip
    kept_u = kept_i = None
    if k_user or k_item:
        df, kept_u, kept_i = _k_core(df, rep.n_before - rep.removed, k_user, k_item)
        ku = np.zeros(raw.n_users, dtype=bool)
        ku[kept_u] = True
        ki = np.zeros(raw.n_items, dtype=bool)
        ki[kept_i] = True
        ku &= keep_users
        ki &= keep_items
        rep.add(
            "k_core", rep.n_before - rep.removed - df.count(),
            f"users with < {k_user} or items with < {k_item} interactions (iterated)",
            items=int(keep_items.sum() - ki.sum()), users=int(keep_users.sum() - ku.sum()),
        )  # fmt: skip
        keep_items, keep_users = ki, ku
    df, items, users = _reindex(df, items, users, keep_items, keep_users)
    n_after = df.count()
    rep.n_after, rep.users, rep.items = (
        n_after,
        (raw.n_users, int(keep_users.sum())),
        (raw.n_items, int(keep_items.sum())),
    )
    assert rep.n_before - rep.n_after == rep.removed, "clean report does not add up"
    n_items = int(keep_items.sum())
    table = items if isinstance(items, pd.DataFrame) else pd.DataFrame({"item_id": []})
    rep.notes.extend(text_notes(table, n_items, raw.meta))
    out = RawLogs(
        df, items, users, int(keep_items.sum()), int(keep_users.sum()), raw.name,
        raw.rating_scale, raw.meta,
    )  # fmt: skip
    return Cleaned(out, rep)


def _k_core(df: DataFrame, n: int, k_user: int, k_item: int):
    """Iterate ``keep ← keep ∧ deg_U ≥ k_user ∧ deg_I ≥ k_item`` until nothing changes.

    Returns the kept rows and the user/item ids with at least ``max(k, 1)`` kept rows.
    """
    from pyspark.sql import functions as F

    while True:
        du = df.groupBy("user").count().filter(F.col("count") >= k_user).select("user")
        di = df.groupBy("item").count().filter(F.col("count") >= k_item).select("item")
        new = df.join(du, "user", "left_semi").join(di, "item", "left_semi").persist()
        m = new.count()
        df = new
        if m == n:
            break
        n = m
    users = np.array([r[0] for r in df.select("user").distinct().collect()], dtype=np.int64)
    items = np.array([r[0] for r in df.select("item").distinct().collect()], dtype=np.int64)
    return df, users, items


def _reindex(df: DataFrame, items, users, keep_items: np.ndarray, keep_users: np.ndarray):
    """Map kept ids to 0..n-1 in their old order (``cumsum(keep) − 1``); drop table rows."""
    tables = {"item": items, "user": users}
    for key, keep in (("item", keep_items), ("user", keep_users)):
        if keep.all():
            continue
        old = np.flatnonzero(keep).astype(np.int64)
        mapping = df.sparkSession.createDataFrame(
            pd.DataFrame({key: old, "_new": np.arange(len(old), dtype=np.int64)})
        )
        table = tables[key]
        if isinstance(table, pd.DataFrame):
            tables[key] = table[keep].reset_index(drop=True)
        else:
            tables[key] = table.join(mapping, key).drop(key).withColumnRenamed("_new", key)
        df = df.join(mapping, key).drop(key).withColumnRenamed("_new", key)
    return df, tables["item"], tables["user"]
