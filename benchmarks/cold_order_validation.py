"""Validation only: how LMGCN should order cold items (``cold``: percentile, -side or raw).

    python benchmarks/cold_order_validation.py --dataset ml-100k --seeds 0,1,2

The cold split of ``benchmarks/coldstart.py`` is drawn with the same seed and its test part is
never touched. Inside its training rows (warm items only) a second, pseudo-cold split holds
out 20 % of the remaining items (seed + 1000) with all their rows; LMGCN is fitted on the rest
exactly as ``coldstart.py`` fits it (choices on validation carved from the warm rows, refit),
and both cold rankings (cold items alone; cold among all items) are scored on the pseudo-cold
items for each ``cold`` mode of the same fitted model (only scoring reads ``cold``).
Output: one JSON line per (data set, seed) in ``<out>/results.jsonl`` and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from coldstart import cold_split, load_cleaned

MODES = ("percentile", "percentile-side", "raw")
KEYS = ("cold_Recall@20", "cold_NDCG@20", "cold_all_Recall@20", "cold_all_NDCG@20")


def one_seed(dataset: str, seed: int, threads: int, data_dir: str | None) -> dict:
    """The three modes' pseudo-cold metrics at one seed (module docstring)."""
    from lgrec.data import carve_valid, split_cold_items
    from lgrec.eval import evaluate_model
    from lgrec.pipeline import Prepared, build_model, fit_model

    cfg, ds, report = load_cleaned(dataset, seed, threads, data_dir)
    inner_ds = cold_split(ds, seed, 0.2, None).train  # the test's cold items have no rows here
    inner = carve_valid(split_cold_items(inner_ds, item_frac=0.2, seed=seed + 1000), 0.1, seed=seed)
    model, fit_s = fit_model(
        build_model("lmgcn", cfg, rating_head=False, category_head=False),
        Prepared(inner_ds, inner, report),
        cfg,
    )
    out = {"dataset": dataset, "seed": seed, "fit_s": fit_s}
    for mode in MODES:
        model.cold = mode
        res = evaluate_model(model, inner, cold=True, seed=seed)
        out[mode] = {k: round(float(res[k]), 4) for k in KEYS}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir")
    p.add_argument("--out", type=Path, default=Path("runs/cold-order"))
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        rows.append(one_seed(args.dataset, seed, args.threads, args.data_dir))
        with open(args.out / "results.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(rows[-1]) + "\n")
    print("| cold mode | cold-only R@20 | all-items R@20 of cold items | per seed (cold-only) |")
    print("|---|---|---|---|")
    for mode in MODES:
        c = np.array([r[mode]["cold_Recall@20"] for r in rows])
        a = np.array([r[mode]["cold_all_Recall@20"] for r in rows])
        print(f"| {mode} | {c.mean():.4f} ± {c.std():.4f} | {a.mean():.4f} ± {a.std():.4f} | "
              f"{', '.join(f'{v:.4f}' for v in c)} |")  # fmt: skip


if __name__ == "__main__":
    main()
