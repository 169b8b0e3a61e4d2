"""Contiguous row positions and NumPy's random draws, computed inside Spark partitions.

The pandas splits draw one ``Generator.random()`` number per row, in row order, from
``np.random.default_rng(seed)``. PCG64 can jump ahead (``bit_generator.advance(k)``) and
``random()`` consumes exactly one 64-bit output per float64, so the draw of row ``k`` is the
first draw after advancing by ``k``. Each Spark partition therefore needs only the position of
its first row: :func:`with_position` range-partitions the rows by the ordering columns, sorts
within partitions, counts each partition, and numbers (and draws for) every partition from its
offset — the same numbers the pandas split uses, without collecting the rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def with_position(
    df: DataFrame,
    order: list[str | Column],
    name: str,
    *,
    seed: int | None = None,
    key: str = "key",
) -> DataFrame:
    """Add ``name`` = 0..n-1 in the (unique) order of ``order``; with ``seed`` also ``key``.

    ``key`` of the row at position ``k`` is ``default_rng(seed).random(n)[k]``.
    """
    from pyspark import StorageLevel, TaskContext
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, LongType, StructField, StructType

    spark = df.sparkSession
    # one range partition per core: each is numbered by one Python worker in a single pass
    n_parts = max(1, spark.sparkContext.defaultParallelism)
    cols = [F.col(c) if isinstance(c, str) else c for c in order]
    ranged = (
        df.repartitionByRange(n_parts, *cols)
        .sortWithinPartitions(*cols)
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    counts = dict(ranged.groupBy(F.spark_partition_id().alias("p")).count().collect())
    sizes = np.array([counts.get(p, 0) for p in range(n_parts)])
    offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    fields = [*ranged.schema.fields, StructField(name, LongType(), False)]
    if seed is not None:
        fields.append(StructField(key, DoubleType(), False))

    def number(batches):
        start = offsets[TaskContext.get().partitionId()]
        rng = None
        if seed is not None:
            rng = np.random.default_rng(seed)
            rng.bit_generator.advance(start)
        for b in batches:
            n = len(b)
            b[name] = np.arange(start, start + n, dtype=np.int64)
            if rng is not None:
                b[key] = rng.random(n)
            start += n
            yield b

    return ranged.mapInPandas(number, StructType(fields))
