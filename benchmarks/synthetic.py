"""Synthetic interaction logs with power-law users and items, streamed to Parquet or CSV.

Sizes are given as a multiple of Gowalla (29,858 users × 40,981 items, 1,027,370
interactions) or explicitly. Each event draws its user and its item independently from
Zipf-like weights ``w_r ∝ (r + r₀)^−a`` over a random permutation of the ids (so id order says
nothing about popularity): a few heavy users and blockbuster items, a long tail of both, as in
check-in and shopping logs. Events are written in time order (``timestamp`` increases by a
random 1–120 s step) in chunks of ``--chunk`` rows, so memory stays bounded by the chunk and
the two weight tables whatever the size. Repeated (user, item) pairs occur, as in real logs;
``lgrec prepare`` removes them and says how many.

    .venv/bin/python benchmarks/synthetic.py --scale 10 --out runs/scale/logs-10x.parquet
    .venv/bin/python benchmarks/synthetic.py --users 1e7 --items 1e6 --events 1e9 --out big.parquet
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

log = logging.getLogger("synthetic")

GOWALLA = {"users": 29_858, "items": 40_981, "events": 1_027_370}


def power_law_cdf(n: int, exponent: float, rng: np.random.Generator, offset: float = 5.0):
    """Cumulative weights over ``n`` ids: weight of popularity rank r is (r + offset)^−a,
    assigned to the ids in a random order. Returns (cdf, id of each rank)."""
    w = (np.arange(n, dtype=np.float64) + offset) ** -exponent
    cdf = np.cumsum(w)
    cdf /= cdf[-1]
    return cdf, rng.permutation(n).astype(np.int64)


def generate(
    out: str | Path,
    *,
    users: int,
    items: int,
    events: int,
    user_exp: float = 0.75,
    item_exp: float = 0.9,
    seed: int = 0,
    chunk: int = 2_000_000,
) -> dict:
    """Write ``events`` rows ``user_id, item_id, timestamp`` (int64) to ``out`` (.parquet/.csv).

    Returns sizes and seconds. The file is written to ``out`` + ``.tmp`` and renamed at the
    end, so a half-written file never looks complete.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ucdf, uid = power_law_cdf(users, user_exp, rng)
    icdf, iid = power_law_cdf(items, item_exp, rng)
    schema = pa.schema(
        [("user_id", pa.int64()), ("item_id", pa.int64()), ("timestamp", pa.int64())]
    )
    tmp = out.with_name(out.name + ".tmp")
    parquet = out.suffix == ".parquet"
    writer = pq.ParquetWriter(tmp, schema) if parquet else pcsv.CSVWriter(tmp, schema)
    t0, done, clock = time.perf_counter(), 0, 1_500_000_000
    last_report = t0
    try:
        while done < events:
            n = min(chunk, events - done)
            u = uid[np.searchsorted(ucdf, rng.random(n), side="right").clip(0, users - 1)]
            i = iid[np.searchsorted(icdf, rng.random(n), side="right").clip(0, items - 1)]
            ts = clock + np.cumsum(rng.integers(1, 121, n))
            clock = int(ts[-1])
            writer.write_table(
                pa.table({"user_id": u, "item_id": i, "timestamp": ts}, schema=schema)
            )
            done += n
            now = time.perf_counter()
            if now - last_report > 10 or done == events:
                rate = done / (now - t0)
                log.info("synthetic: %d/%d events (%.0f/s, ETA %.0fs)", done, events, rate,
                         (events - done) / rate)  # fmt: skip
                last_report = now
    finally:
        writer.close()
    tmp.replace(out)
    return {
        "path": str(out),
        "users": users,
        "items": items,
        "events": events,
        "bytes": out.stat().st_size,
        "seconds": time.perf_counter() - t0,
    }


def sizes(scale: float | None, users, items, events) -> dict[str, int]:
    """Explicit sizes, or ``scale`` × Gowalla for the ones not given."""
    base = {k: round(v * (scale or 1)) for k, v in GOWALLA.items()}
    for k, v in (("users", users), ("items", items), ("events", events)):
        if v is not None:
            base[k] = int(float(v))
    return base


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scale", type=float, help="multiple of Gowalla's users, items and events")
    p.add_argument("--users", help="number of users (e.g. 1e7)")
    p.add_argument("--items", help="number of items")
    p.add_argument("--events", help="number of events (rows)")
    p.add_argument("--user-exp", type=float, default=0.75, help="power-law exponent of users")
    p.add_argument("--item-exp", type=float, default=0.9, help="power-law exponent of items")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk", type=int, default=2_000_000, help="rows per written chunk")
    p.add_argument("--out", required=True, help="output file (.parquet or .csv)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if Path(args.out).suffix not in (".parquet", ".csv"):
        p.error(f"--out {args.out}: expected a .parquet or .csv file name")
    s = sizes(args.scale, args.users, args.items, args.events)
    if min(s.values()) < 1:
        p.error(f"sizes must be positive, got {s}")
    res = generate(args.out, **s, user_exp=args.user_exp, item_exp=args.item_exp,
                   seed=args.seed, chunk=args.chunk)  # fmt: skip
    mib = res["bytes"] / 2**20
    print(f"wrote {res['path']}: {res['events']:,} events, {res['users']:,} users × "
          f"{res['items']:,} items, {mib:,.0f} MiB in {res['seconds']:.1f}s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
