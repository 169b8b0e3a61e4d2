"""What the fused model costs to fit, next to the graph filter it blends, under one protocol.

    python benchmarks/fit_cost.py --dataset ml-100k [--runs 3] [--write-docs]

Each run fits, on the ablation's split of seed 0 (:mod:`ablation`), the graph filter alone and
then the full LMGCN (heads off, as in the ablation rows): first on train with every choice made
on validation, then refitted on train + valid with the chosen settings — what a user pays for
one model. Both read the same prepared data; LMGCN's MiniLM item embeddings are encoded once
before the runs (they are cached on disk by content hash, so a second fit pays nothing for
them) and their encoding time is reported on its own line.

Recorded per fit: wall-clock seconds, CPU seconds of this process (all threads,
``time.process_time``) and LMGCN's phase laps (``fit_seconds_``), with the load average
before and after. On a shared machine wall-clock counts the time spent waiting for a core, so
the table gives both; the ratio LMGCN / graph filter is taken on the medians over runs.

Output: ``<out>/results.jsonl`` and ``<out>/cost.md`` (default ``runs/fit-cost/<dataset>``);
``--write-docs`` replaces the data set's block in ``docs/ablation.md`` (``<!-- cost:<dataset>
-->`` markers).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

# idle OpenMP threads sleep instead of spinning: on a shared machine spinning counts as CPU
# seconds of this process (scale.py measured 12.9 vs 6.6 CPU s for one LightGCN epoch)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "ablation.md"
LOG = logging.getLogger("bench.fit_cost")
HEADS_OFF = {"rating_head": False, "category_head": False}


def _timed(fn: Any) -> tuple[Any, float, float]:
    """``fn()``, its wall-clock and CPU seconds."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def fit_twice(name: str, cfg: Any, prep: Any, emb: np.ndarray | None) -> dict[str, Any]:
    """Fit ``name`` on train with validation choices, then refit on train + valid."""
    from lgrec.pipeline import build_model
    from lgrec.progress import working

    kw = {"item_emb": emb} if name == "lmgcn" else {}
    split = prep.split
    model = build_model(name, cfg, **(HEADS_OFF if name == "lmgcn" else {}))
    load0 = os.getloadavg()
    with working(f"{name}: fit on train, choices on validation"):
        model, w1, c1 = _timed(lambda: model.fit(split.train, valid=split.valid, **kw))
    again = type(model)(**model.refit_params())
    with working(f"{name}: refit on train + valid", expect=w1):
        refit, w2, c2 = _timed(lambda: again.fit(split.full_train, **kw))
    return {"model": name, "wall_s": w1 + w2, "cpu_s": c1 + c2, "refit_wall_s": w2,
            "laps": [getattr(model, "fit_seconds_", None), getattr(refit, "fit_seconds_", None)],
            "load": [load0, os.getloadavg()]}  # fmt: skip


def table(rows: list[dict[str, Any]], encode_s: float) -> str:
    """Markdown: median wall and CPU seconds per model, and the LMGCN / filter ratios."""
    med = {m: {k: float(np.median([r[k] for r in rows if r["model"] == m]))
               for k in ("wall_s", "cpu_s")} for m in ("graphfilter", "lmgcn")}  # fmt: skip
    loads = [x for r in rows for x in (r["load"][0][0], r["load"][1][0])]
    ratio = {k: med["lmgcn"][k] / med["graphfilter"][k] for k in ("wall_s", "cpu_s")}
    lines = [
        "| model | wall-clock s (median) | CPU s (median) |",
        "|---|---|---|",
        *(f"| {m} | {med[m]['wall_s']:.1f} | {med[m]['cpu_s']:.1f} |" for m in med),
        f"| **LMGCN / graph filter** | **{ratio['wall_s']:.1f}×** | **{ratio['cpu_s']:.1f}×** |",
    ]
    n = len([r for r in rows if r["model"] == "lmgcn"])
    laps = [r["laps"][0] for r in rows if r["model"] == "lmgcn"]
    phase = (
        ", ".join(f"{k} {np.median([lp[k] for lp in laps]):.1f} s" for k in laps[0]) if laps else ""
    )
    return "\n".join(lines) + (
        f"\n\n{n} runs of each (fit with validation choices + refit), 1-minute load average "
        f"{min(loads):.1f}–{max(loads):.1f} on the shared 2-core machine. LMGCN's first fit by "
        f"phase (median): {phase}. Encoding the item text once (cached afterwards): "
        f"{encode_s:.1f} s, counted in neither row."
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dataset", required=True)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", help="default runs/fit-cost/<dataset>")
    p.add_argument("--write-docs", action="store_true")
    args = p.parse_args()
    args.seed = 0

    from bench_setup import prepared_run, replace_docs_block
    from lgrec.pipeline import encode_items

    vr = 0.0 if args.dataset == "amazon-videogames" else 0.1  # as benchmarks/ablation.py
    cfg, prep = prepared_run(args, dataset=args.dataset, valid_ratio=vr, models=["lmgcn"])
    emb, _, encode_s = _timed(lambda: encode_items(prep, cfg))
    out = Path(args.out or f"runs/fit-cost/{args.dataset}")
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for r in range(args.runs):
        for name in ("graphfilter", "lmgcn"):
            row = {"dataset": args.dataset, "run": r, **fit_twice(name, cfg, prep, emb)}
            LOG.info("run %d/%d %s: %.1f s wall, %.1f s CPU", r + 1, args.runs, name,
                     row["wall_s"], row["cpu_s"])  # fmt: skip
            rows.append(row)
    (out / "results.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    cmd = f"python benchmarks/fit_cost.py --dataset {args.dataset} --runs {args.runs}"
    block = f"`{cmd}`\n\n{table(rows, encode_s)}"
    (out / "cost.md").write_text(block + "\n")
    print(block)
    if args.write_docs:
        replace_docs_block(DOCS, f"cost:{args.dataset}", block, f"Cost: {args.dataset}", "Ablation")


if __name__ == "__main__":
    main()
