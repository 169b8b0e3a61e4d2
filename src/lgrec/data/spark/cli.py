"""``lgrec prepare --engine spark``: run :func:`prepare_spark` from a run configuration."""

from __future__ import annotations

import tempfile
from pathlib import Path

from lgrec.config import RunConfig
from lgrec.data.spark import prepare_spark, spark_session
from lgrec.errors import ConfigError


def prepare_command(cfg: RunConfig, *, out: str | None, master: str | None) -> int:
    """Prepare ``cfg.dataset`` with Spark; print the report and the split sizes like pandas."""
    if cfg.cold_items:
        raise ConfigError(
            f"--cold-items {cfg.cold_items}: the Spark engine draws the cold items itself; "
            "use --engine pandas for a given list"
        )
    for flag, given in (("--pseudonymize", cfg.pseudonymize), ("--tombstones", cfg.tombstones)):
        if given:
            raise ConfigError(
                f"{flag}: not implemented by the Spark engine; use --engine pandas "
                "(`lgrec prepare --out DIR` records it for --prepared)"
            )
    spark = spark_session(master)
    with tempfile.TemporaryDirectory(prefix="lgrec-spark-") as tmp:
        res = prepare_spark(
            spark,
            cfg.dataset,
            Path(out) if out else Path(tmp) / "prepared",
            split=cfg.split,
            seed=cfg.seed,
            test_ratio=cfg.test_ratio,
            cold_item_frac=cfg.cold_item_frac,
            valid_ratio=cfg.valid_ratio,
            k_core=cfg.k_core,
            fold=cfg.fold,
            data_dir=cfg.data_dir,
            read_kw=dict(cfg.loader),
        )
    print(res.report)
    n = sum(res.sizes.values())
    density = n / max(1, res.n_users * res.n_items)
    print(
        f"{res.report.name}: {res.n_users:,} users × {res.n_items:,} items, {n:,} interactions "
        f"(density {density:.4%})"
    )
    sizes = "  ".join(f"{p} {res.sizes.get(p, 0):,}" for p in ("train", "valid", "test"))
    print(f"split {cfg.split}: {sizes}" + (f"  cold items {res.n_cold:,}" if res.n_cold else ""))
    steps = ", ".join(f"{k} {v:.1f}s" for k, v in res.seconds.items())
    print(f"spark ({spark.sparkContext.master}): {steps}")
    if out:
        print(f"wrote {res.path}")
    return 0
