"""Cold-start items, several split seeds: do new items surface, ranked alone and among all?

    python benchmarks/coldstart.py --dataset ml-100k [--seeds 0,1,2] [--cold-items FILE]

For each seed a random 20 % of the items that have interactions are held out with all their
rows as test (:func:`lgrec.data.split_cold_items`; ``--cold-items FILE`` instead takes the
external item ids listed one per line, the same set for every seed), 10 % of the remaining
rows per user are carved for validation, models are fitted with lgrec's protocol (choices on
validation, refit on train + valid) and scored by :func:`lgrec.eval.evaluate_model` with
``cold=True``: ``cold_Recall@20`` ranks only the cold items, ``cold_all_Recall@20`` ranks
all items (cold and warm, the real situation of a new product in a catalogue) and counts the
cold test items found. Models (:data:`MODELS`): content kNN with max-similarity (the plain
baseline: the most similar item of the history decides), lgrec's text kNN, the graph filter,
LMGCN (cold items percentile-matched to the warm scale, ordered among themselves by the
blended score: the default), the same with the side-feature order (``cold="percentile-side"``,
the default before 2026-12-07) and LMGCN with raw cold scores.

Output: ``<out>/results.jsonl`` (``--resume`` keeps finished rows), ``<out>/coldstart.md``;
``--write-docs`` replaces the data set's block in ``docs/coldstart.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "coldstart.md"
LOG = logging.getLogger("bench.coldstart")
_OFF = {"rating_head": False, "category_head": False}
#: label → (model, parameters)
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "popularity": ("popularity", {}),
    "content kNN (max-similarity)": ("textknn", {"mode": "max"}),
    "text kNN (lgrec: sum over 50 neighbours)": ("textknn", {}),
    "graph filter": ("graphfilter", {}),
    "LMGCN (raw cold scores)": ("lmgcn", {**_OFF, "cold": "raw"}),
    "LMGCN (percentile-matched; side-feature order)": (
        "lmgcn",
        {**_OFF, "cold": "percentile-side"},
    ),
    "LMGCN (percentile-matched)": ("lmgcn", dict(_OFF)),
}
KEYS = ("cold_Recall@20", "cold_NDCG@20", "cold_all_Recall@20", "cold_all_NDCG@20")


def cold_split(ds: Any, seed: int, frac: float, ids_file: str | None) -> Any:
    """The cold-item split: drawn with ``seed``, or the items listed in ``ids_file``
    (:func:`lgrec.data.split.read_item_ids`: one external id per line)."""
    from lgrec.data import split_cold_items
    from lgrec.data.split import read_item_ids

    items = None if ids_file is None else read_item_ids(ids_file, ds)
    return split_cold_items(ds, item_frac=frac, seed=seed, items=items)


def load_cleaned(dataset: str, seed: int, threads: int, data_dir: str | None) -> tuple:
    """``(cfg, cleaned data set, cleaning report)`` for the cold-start protocol at ``seed``."""
    from lgrec.config import load_config
    from lgrec.data import clean, load_dataset
    from lgrec.pipeline import setup

    cfg = load_config(dataset=dataset, seed=seed, threads=threads, data_dir=data_dir,
                      split="cold")  # fmt: skip
    setup(cfg)
    kw = {"fold": cfg.fold} if dataset == "ml-100k" else {}
    ds, report = clean(load_dataset(dataset, data_dir=cfg.data_dir, **kw))
    return cfg, ds, report


def run_seed(dataset: str, seed: int, labels: list[str], args: argparse.Namespace) -> list[dict]:
    from lgrec.data import carve_valid
    from lgrec.eval import evaluate_model
    from lgrec.pipeline import Prepared, build_model, fit_model

    cfg, ds, report = load_cleaned(dataset, seed, args.threads, args.data_dir)
    split = carve_valid(cold_split(ds, seed, args.cold_frac, args.cold_items), 0.1, seed=seed)
    prep = Prepared(ds, split, report)
    rows = []
    fitted: dict[str, tuple[Any, float]] = {}  # LMGCN's cold modes share one fit
    for label in labels:
        name, params = MODELS[label]
        t0 = time.perf_counter()
        key = repr((name, sorted((k, v) for k, v in params.items() if k != "cold")))
        if key not in fitted:
            fitted[key] = fit_model(build_model(name, cfg, **params), prep, cfg)
        model, fit_s = fitted[key]
        if "cold" in model.get_params():  # only scoring reads it: the fit is the same
            model.cold = params.get("cold", type(model)().cold)
        res = evaluate_model(model, split, cold=True, seed=seed)
        rows.append({"dataset": dataset, "model": label, "seed": seed, "fit_s": fit_s,
                     "n_cold": len(split.cold_items),
                     **{k: float(res[k]) for k in KEYS}})  # fmt: skip
        LOG.info("%s seed %d: %s (%.0f s)", label, seed,
                 {k: round(rows[-1][k], 4) for k in KEYS}, time.perf_counter() - t0)  # fmt: skip
    return rows


def table(rows: list[dict], labels: list[str]) -> str:
    """mean ± std over seeds per model, and LMGCN's ratio to content kNN (max-similarity)."""
    head = ("| model | cold-only Recall@20 | cold-only NDCG@20 | all-items Recall@20 of cold "
            "test items | all-items NDCG@20 | fit s (median) |")  # fmt: skip
    lines = [head, "|---|---|---|---|---|---|"]
    stats = {}
    for label in labels:
        rs = [r for r in rows if r["model"] == label]
        if not rs:
            continue
        st = {k: (np.mean([r[k] for r in rs]), np.std([r[k] for r in rs])) for k in KEYS}
        stats[label] = st
        cells = " | ".join(f"{st[k][0]:.4f} ± {st[k][1]:.4f}" for k in KEYS)
        fit = np.median([r["fit_s"] for r in rs])
        lines.append(f"| {label} | {cells} | {fit:.1f} |")
    base, ours = stats.get("content kNN (max-similarity)"), stats.get("LMGCN (percentile-matched)")
    if base and ours:
        lines.append("")
        lines.append(f"LMGCN / content kNN (max-similarity): cold-only Recall@20 × "
                     f"{ours[KEYS[0]][0] / base[KEYS[0]][0]:.2f} (target ≥ 1.3), all-items "
                     f"Recall@20 × {ours[KEYS[2]][0] / max(base[KEYS[2]][0], 1e-12):.2f} "
                     f"(target ≥ 1).")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--models", help="comma-separated labels of MODELS (default: all)")
    p.add_argument("--cold-frac", type=float, default=0.2)
    p.add_argument("--cold-items", help="file of external item ids, one per line")
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--write-docs", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    labels = args.models.split(",") if args.models else list(MODELS)
    if unknown := [m for m in labels if m not in MODELS]:
        p.error(f"unknown model label(s) {unknown}; known: {list(MODELS)}")
    given = f"-{Path(args.cold_items).stem}" if args.cold_items else ""  # never mixed with drawn
    out = Path(args.out or f"runs/coldstart/{args.dataset}{given}")
    out.mkdir(parents=True, exist_ok=True)
    res_file = out / "results.jsonl"
    rows = [json.loads(x) for x in res_file.read_text().splitlines()] if res_file.is_file() else []
    if not args.resume:
        rows = [r for r in rows if r["model"] not in labels]
    for seed in [int(s) for s in args.seeds.split(",")]:
        todo = [m for m in labels if not any(r["model"] == m and r["seed"] == seed for r in rows)]
        if todo:
            rows += run_seed(args.dataset, seed, todo, args)
            res_file.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    seeds = sorted({r["seed"] for r in rows})
    src = f" --cold-items {args.cold_items}" if args.cold_items else ""
    src += f' --models "{args.models}"' if args.models else ""
    block = (f"Command: `python benchmarks/coldstart.py --dataset {args.dataset} --seeds "
             f"{args.seeds}{src}` (split seeds {seeds}; {rows[0]['n_cold']} cold items at seed "
             f"{seeds[0]}; mean ± std over seeds)\n\n{table(rows, list(MODELS))}")  # fmt: skip
    (out / "coldstart.md").write_text(block + "\n")
    print(block)
    if args.write_docs:
        from bench_setup import replace_docs_block

        key = args.dataset + ("-given" if args.cold_items else "")
        replace_docs_block(DOCS, f"coldstart:{key}", block, key, "Cold start")


if __name__ == "__main__":
    main()
