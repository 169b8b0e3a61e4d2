"""Cost model: ETL, fit, ranking and serving at 1×, 10× and 100× Gowalla-sized synthetic logs.

For each scale s (s × Gowalla's 29,858 users, 40,981 items, 1,027,370 events; power-law users
and items, see benchmarks/synthetic.py) every step runs in its own process, measured for wall
time, CPU seconds and peak resident memory (the whole process tree, sampled every 0.2 s, then
every 1 s after 10 s, so Spark's JVM and uvicorn's workers count), with the load average
beside it (the machine is shared, so CPU seconds are the steadier measure; each timing is the
median of ``--repeat`` runs):

1. ``gen``: write the synthetic log (Parquet);
2. ``etl_pandas``: ``lgrec prepare --split random --out`` (load, clean with dedupe, split with a
   10 % validation carve, write partitioned Parquet);
3. ``etl_spark``: the same with ``--engine spark --spark-master local[2]``;
4. ``graphfilter``: ``lgrec train --prepared`` of the graph filter (k = 256, α = 0.3, fixed);
5. ``lightgcn``: LightGCN for ``--epochs`` epochs (default 1, the same at every scale, so CPU
   seconds and memory compare across rows; per-epoch time = fit time / epochs);
6. ``rank``: top-20 over all items for ``--rank-users`` users with the fitted graph filter;
7. ``serve``: benchmarks/serve_load.py on the LightGCN bundle of step 5 (``lgrec serve`` needs
   user/item vectors to fold feedback in; the graph filter has none): p50/p99 of /recommend
   with ``wrk`` (8 connections) and in an open loop at 50 req/s;
8. ``faiss``: benchmarks/scale_faiss.py on the same bundle: recall@100 of ``lgrec serve
   --index faiss`` (default settings) against exact scoring, and sequential /recommend p50/p99
   over HTTP with and without the index.

A step is skipped (with the reason recorded) when its input is missing (no prepared data, no
bundle); ``--timeout`` stops a step that runs too long (its CPU seconds so far are kept, and
the table says it did not finish). Results accumulate in
``runs/scale/scale.json`` (finished runs are kept; ``--force`` reruns them); ``--report``
prints the Markdown table, puts it into ``docs/scaling.md`` and draws ``docs/scaling.png``.

    nice -n 19 .venv/bin/python benchmarks/scale.py --scales 1 --repeat 3 \
        --steps gen,etl_pandas,etl_spark,graphfilter,lightgcn,rank
    flock /work/notes/suite.lock .venv/bin/python benchmarks/scale.py --scales 1 --repeat 3 \
        --steps serve    # latency: alone on the machine (no test suite beside it)
    .venv/bin/python benchmarks/scale.py --report

``--scales`` takes fractions: ``--scales 0.05`` runs every step in a few minutes (quiet machine).
The steps are in scale_steps.py, the process-tree measurement in scale_measure.py, the median,
table and chart in scale_report.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale_measure import ROOT
from scale_report import chart, recorded_runs, report, summarise, write_table
from scale_steps import OUT, STEPS, rank_child, step

DOCS = ROOT / "docs"


def main(argv: list[str] | None = None) -> int:
    """Run the chosen steps at each scale (finished ones are kept), then print the table;
    with ``--report`` only the table, written into docs/scaling.md, and the chart."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scales", default="1,10", help="comma-separated multiples of Gowalla")
    p.add_argument("--steps", default="all", help=f"comma-separated subset of {STEPS}")
    p.add_argument("--epochs", type=int, default=1, help="LightGCN epochs (at every scale)")
    p.add_argument("--rank-users", type=int, default=20_000)
    p.add_argument("--repeat", type=int, default=3, help="runs per step (median reported)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per step")
    p.add_argument("--spark-memory", default="8g", help="Spark driver memory (local mode)")
    p.add_argument("--force", action="store_true", help="rerun finished steps")
    p.add_argument("--report", action="store_true", help="print the table, draw the chart")
    p.add_argument("--rank-child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rank_child:
        rank_child(args.rank_child, args.rank_users)
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    res_f = OUT / "scale.json"
    results = json.loads(res_f.read_text()) if res_f.is_file() else {}
    if not args.report:
        steps = STEPS if args.steps == "all" else tuple(args.steps.split(","))
        for s in (float(x) for x in args.scales.split(",")):
            tag = f"{s:g}x"
            r = results.setdefault(tag, {"events": round(1_027_370 * s)})
            for name in steps:
                runs = [] if args.force else recorded_runs(r.get(name))
                want = 1 if name == "gen" else args.repeat
                while sum(x.get("code") == 0 for x in runs) < want:
                    print(f"[{time.strftime('%H:%M:%S')}] {tag} {name} run {len(runs) + 1} ...",
                          flush=True)  # fmt: skip
                    rec = step(name, s, args)
                    print(f"  {rec}", flush=True)
                    if "skipped" in rec:
                        r[name] = rec
                        break
                    runs.append(rec)
                    r[name] = summarise(runs)
                    save(res_f, tag, r, name)
                    if rec["code"] != 0:
                        break
                save(res_f, tag, r, name)
    results = json.loads(res_f.read_text()) if res_f.is_file() else {}
    table = report(results)
    print(table)
    if args.report:
        write_table(table, DOCS / "scaling.md")
        chart(results, DOCS / "scaling.png")
    return 0


def save(res_f: Path, tag: str, r: dict, name: str) -> None:
    """Store step ``name`` of scale ``tag`` in ``res_f``, keeping every other step and scale as
    it is on disk (under a lock), so runs of different scales or steps can go side by side."""
    import fcntl

    from lgrec.utils import atomic_write_text

    with open(res_f.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cur = json.loads(res_f.read_text()) if res_f.is_file() else {}
        cur.setdefault(tag, {"events": r["events"]})
        if name in r:
            cur[tag][name] = r[name]
        atomic_write_text(res_f, json.dumps(cur, indent=1))


if __name__ == "__main__":
    sys.exit(main())
