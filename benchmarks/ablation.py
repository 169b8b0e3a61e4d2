"""Ablation of LMGCN's parts, several seeds, overall and by stratum: what earns which gain.

    python benchmarks/ablation.py --dataset ml-100k [--seeds 0,1,2] [--write-docs]

Every row is one configuration (:data:`CONFIGS`; each LMGCN part is a constructor argument, so
a row is a parameter set, not a fork), fitted with lgrec's protocol on the same data: for each
seed the validation split is carved from the training rows with that seed (data sets with
their own validation fold keep it), the model is fitted on train (epochs, λ, grids chosen on
validation), *validation* metrics are taken, then it is refitted on train + valid and scored
once on the test split. The seed also seeds the models (initialisation, randomised SVDs,
cold-start folds). Metrics (:func:`lgrec.eval.strata.evaluate_strata`): Recall@20 / NDCG@20
overall, for users with ≤ 5, 6–20 and > 20 training interactions, and Recall@20 on long-tail
items (the bottom 80 % by training count). The table reports mean ± std over seeds.

Results go to ``<out>/results.jsonl`` (one line per configuration and seed; ``--resume``
skips those already there), ``<out>/ablation.md`` and ``<out>/ablation.png``; with
``--write-docs`` the data set's block in ``docs/ablation.md`` (between
``<!-- ablation:<dataset> -->`` markers) and ``docs/ablation_<dataset>.png`` are replaced; its
rows with no result in ``results.jsonl`` are kept as documented, with their commands
(``ablation_docs.py``), so one configuration can be rerun on a fresh checkout.
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
DOCS = ROOT / "docs" / "ablation.md"
LOG = logging.getLogger("bench.ablation")

_OFF = {"rating_head": False, "category_head": False}
_CORE = {**_OFF, "filter_weight": 0.0}
_NO_TEXT = {"text": False, "profiles": False, "semantic_k": 0}
_TITLES = {"text_fields": ("title", "categories")}
#: label → (model, parameters, what it needs: "" always runs, "kg" a knowledge graph,
#: "descriptions" item descriptions to leave out)
CONFIGS: dict[str, tuple[str, dict[str, Any], str]] = {
    "LightGCN": ("lightgcn", {}, ""),
    "graph filter alone": ("graphfilter", {}, ""),
    "graph filter + semantic graph": ("graphfilter", {"semantic_weight": (0.0, 0.1, 0.3)}, ""),
    "core without text": (
        "lmgcn",
        {**_CORE, **_NO_TEXT},
        "",
    ),
    "+ item text": ("lmgcn", {**_CORE, "semantic_k": 0}, ""),
    "+ item text (titles only)": ("lmgcn", {**_CORE, "semantic_k": 0, **_TITLES}, "descriptions"),
    "+ semantic graph": ("lmgcn", dict(_CORE), ""),
    "+ user profiles": ("lmgcn", {**_CORE, "profiles": True}, ""),
    "+ KG": ("lmgcn", dict(_CORE), "kg"),
    "blend without text": (
        "lmgcn",
        {**_OFF, **_NO_TEXT},
        "",
    ),
    "full model": ("lmgcn", dict(_OFF), ""),
    "full model (titles only)": ("lmgcn", {**_OFF, **_TITLES}, "descriptions"),
}
KG_DATA = {"ml-100k": "ml-100k-kg"}
METRICS = ("Recall@20", "NDCG@20", "<=5:Recall@20", "6-20:Recall@20", ">20:Recall@20",
           "tail:Recall@20")  # fmt: skip


_PREPARED: dict[tuple[str, int], Any] = {}


def run_one(label: str, dataset: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Fit and score one configuration at one seed (module docstring)."""
    import inspect

    from lgrec.config import load_config
    from lgrec.eval.strata import evaluate_strata
    from lgrec.pipeline import build_model, encode_items, prepare, setup
    from lgrec.progress import working

    model_name, params, needs = CONFIGS[label]
    vr = 0.0 if dataset == "amazon-videogames" else 0.1  # amazon has its own valid fold
    cfg = load_config(dataset=dataset, seed=seed, threads=args.threads, data_dir=args.data_dir,
                      valid_ratio=vr, models=[model_name])  # fmt: skip
    setup(cfg)
    if (dataset, seed) not in _PREPARED:
        _PREPARED.clear()  # one data set and seed in memory at a time
        _PREPARED[dataset, seed] = prepare(cfg)
    prep = _PREPARED[dataset, seed]
    fit_kw: dict[str, Any] = {}
    if needs == "kg":
        from lgrec.graph.knowledge import collapse_item_graph, item_entity_matrix, load_kg
        from lgrec.utils import data_dir

        kg = load_kg(data_dir(args.data_dir) / KG_DATA[dataset])
        b, _ = item_entity_matrix(prep.data, kg, hops=1, max_items=200)
        fit_kw["item_graph"] = collapse_item_graph(b, k=20)
    model = build_model(model_name, cfg, **params)
    if "text_fields" in params:  # the same encoder on fewer fields
        from lgrec.text.encoder import TextEncoder

        enc = TextEncoder(cfg.text_model, max_length=cfg.text_max_length)
        fit_kw["item_emb"] = enc.encode(prep.data.item_text(tuple(params["text_fields"])))
    elif model_name != "lightgcn":
        fit_kw["item_emb"] = encode_items(prep, cfg)
    accepted = inspect.signature(model.fit).parameters
    fit_kw = {k: v for k, v in fit_kw.items() if k in accepted}
    split = prep.split
    t0 = time.perf_counter()
    with working(f"{label}, seed {seed}: fit on train, choices on validation"):
        model.fit(split.train, valid=split.valid, **fit_kw)
    fit1 = time.perf_counter() - t0
    val = evaluate_strata(model, split.train, split.valid)
    t0 = time.perf_counter()
    with working(f"{label}, seed {seed}: refit on train + valid", expect=fit1):
        model = type(model)(**model.refit_params()).fit(split.full_train, **fit_kw)
    fit2 = time.perf_counter() - t0
    test = evaluate_strata(model, split.full_train, split.test)
    row = {"dataset": dataset, "config": label, "seed": seed, "fit_s": fit1 + fit2,
           "refit_s": fit2, "valid": val, "test": test,
           "chosen": {k: v for k, v in model.get_params().items()
                      if k in ("reg", "filter_weight", "epochs", "k", "alpha")}}  # fmt: skip
    LOG.info("%s seed %d: test R@20 %.4f (valid %.4f), %.1f s", label, seed,
             test["Recall@20"], val["Recall@20"], fit1 + fit2)  # fmt: skip
    return row


def summarise(rows: list[dict[str, Any]], labels: list[str]) -> list[dict[str, Any]]:
    """Mean and std over seeds of every metric, per configuration, in ``labels`` order."""
    out = []
    for label in labels:
        rs = [r for r in rows if r["config"] == label]
        if not rs:
            continue
        s: dict[str, Any] = {"config": label, "n_seeds": len(rs)}
        for part in ("test", "valid"):
            for m in (*METRICS, "<=5:n_users", "tail:n_users"):
                v = np.array([r[part].get(m, np.nan) for r in rs], dtype=float)
                s[f"{part}:{m}"] = (float(np.mean(v)), float(np.std(v)))
        s["fit_s"] = float(np.median([r["fit_s"] for r in rs]))
        out.append(s)
    return out


def _fmt(ms: tuple[float, float], best: bool = False) -> str:
    m, sd = ms
    if np.isnan(m):
        return "–"
    t = f"{m:.4f} ± {sd:.4f}"
    return f"**{t}**" if best else t


def table(summary: list[dict[str, Any]], part: str = "test") -> str:
    """Markdown table: one row per configuration, mean ± std over seeds (best mean bold)."""
    cols = ["Recall@20", "NDCG@20", "<=5:Recall@20", "6-20:Recall@20", ">20:Recall@20",
            "tail:Recall@20"]  # fmt: skip
    names = ["R@20", "NDCG@20", "R@20 users ≤ 5", "R@20 users 6–20", "R@20 users > 20",
             "R@20 long-tail items"]  # fmt: skip
    sizes = {m: summary[0].get(f"{part}:{m}:n_users", (np.nan,))[0] for m in ("<=5", "tail")}
    names[2] += f" (n = {sizes['<=5']:.0f} users)" if not np.isnan(sizes["<=5"]) else ""
    names[5] += f" (n = {sizes['tail']:.0f} users)" if not np.isnan(sizes["tail"]) else ""
    best = {c: max((s[f"{part}:{c}"][0] for s in summary
                    if not np.isnan(s[f"{part}:{c}"][0])), default=None) for c in cols}  # fmt: skip
    lines = ["| configuration | " + " | ".join(names) + " | fit s (median) |",
             "|---" * (len(cols) + 2) + "|"]  # fmt: skip
    for s in summary:
        cells = [_fmt(s[f"{part}:{c}"], s[f"{part}:{c}"][0] == best[c]) for c in cols]
        lines.append(f"| {s['config']} | " + " | ".join(cells) + f" | {s['fit_s']:.1f} |")
    return "\n".join(lines)


def chart(summary: list[dict[str, Any]], path: Path, title: str) -> None:
    """Grouped bars (mean ± std over seeds) of test Recall@20 overall, sparse users, tail."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [("Recall@20", "overall"), ("<=5:Recall@20", "users ≤ 5"),
              ("6-20:Recall@20", "users 6–20"), ("tail:Recall@20", "long-tail items")]  # fmt: skip
    groups = [g for g in groups if any(not np.isnan(s[f"test:{g[0]}"][0]) for s in summary)]
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 4.2), sharey=False)
    axes = np.atleast_1d(axes)
    labels = [s["config"] for s in summary]
    colors = plt.cm.tab10(np.arange(len(labels)) % 10)
    for ax, (key, name) in zip(axes, groups):
        m = [s[f"test:{key}"][0] for s in summary]
        e = [s[f"test:{key}"][1] for s in summary]
        ax.bar(range(len(labels)), m, yerr=e, color=colors, capsize=3)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=8)
        ax.set_title(f"{name}: test Recall@20")
        lo = min(v for v in m if not np.isnan(v))
        ax.set_ylim(max(0.0, lo * 0.8), max(m) * 1.04)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_docs(dataset: str, block: str, png: Path) -> None:
    """Replace the data set's marked block in docs/ablation.md and copy its chart."""
    import shutil

    from bench_setup import replace_docs_block

    replace_docs_block(DOCS, f"ablation:{dataset}", block, dataset, "Ablation")
    shutil.copyfile(png, DOCS.parent / f"ablation_{dataset}.png")


def _applies(need: str, dataset: str) -> bool:
    """Whether a configuration that needs ``need`` runs on ``dataset`` by default."""
    return (
        not need
        or (need == "kg" and dataset in KG_DATA)
        or (need == "descriptions" and dataset == "colakg-ml-1m")
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--configs", help="comma-separated labels (default: all that apply)")
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", help="default runs/ablation/<dataset>")
    p.add_argument("--resume", action="store_true", help="keep finished (config, seed) rows")
    p.add_argument("--write-docs", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    labels = (
        args.configs.split(",")
        if args.configs
        else [c for c, (_, _, need) in CONFIGS.items() if _applies(need, args.dataset)]
    )
    unknown = [c for c in labels if c not in CONFIGS]
    if unknown:
        p.error(f"unknown configuration(s) {unknown}; known: {list(CONFIGS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out or f"runs/ablation/{args.dataset}")
    out.mkdir(parents=True, exist_ok=True)
    res_file = out / "results.jsonl"
    rows = [json.loads(x) for x in res_file.read_text().splitlines()] if res_file.is_file() else []
    if not args.resume:
        rows = [r for r in rows if r["config"] not in labels]
    done = {(r["config"], r["seed"]) for r in rows}
    todo = [(c, s) for c in labels for s in seeds if (c, s) not in done]
    full = f"python benchmarks/ablation.py --dataset {args.dataset} --seeds {args.seeds}"
    cmd = full + (f' --configs "{args.configs}"' if args.configs else "")
    t_start = time.perf_counter()
    todo.sort(key=lambda cs: cs[1])  # seed-major: the split is prepared once per seed
    for n, (label, seed) in enumerate(todo, 1):
        el = time.perf_counter() - t_start
        eta = "" if n == 1 else f", ETA {el / (n - 1) * (len(todo) - n + 1) / 60:.0f} min"
        LOG.info("[%d/%d] %s, seed %d%s", n, len(todo), label, seed, eta)
        rows.append({**run_one(label, args.dataset, seed, args), "cmd": cmd})
        res_file.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    have = {r["config"] for r in rows}
    kept, kept_cmds = {}, []
    if args.write_docs and DOCS.is_file():  # rows not rerun stay as documented
        from ablation_docs import kept_rows

        kept, kept_cmds = kept_rows(DOCS.read_text(encoding="utf-8"), args.dataset, have)
        LOG.info("kept from docs/ablation.md: %s", ", ".join(kept) or "no rows")
    order = [c for c in CONFIGS if c in have or c in kept]
    fresh = {s["config"]: s for s in summarise(rows, order)}
    summary = [fresh.get(c) or kept[c] for c in order]
    lo, hi = min(s["n_seeds"] for s in summary), max(s["n_seeds"] for s in summary)
    n_seeds = str(hi) if lo == hi else f"{lo}–{hi}"
    # rows kept from earlier runs (--resume, or configurations not rerun) name their command
    cmds = list(dict.fromkeys([*kept_cmds, *(r.get("cmd", full) for r in rows)]))
    block = (f"Command{'s' if len(cmds) > 1 else ''}: {', then '.join(f'`{c}`' for c in cmds)} "
             f"({n_seeds} seeds per row; test split after refit on train + valid; "
             f"mean ± std over seeds)\n\n{table(summary)}\n\nValidation (fitted on train, "
             f"before the refit):\n\n{table(summary, 'valid')}\n\n"
             f"![ablation {args.dataset}](ablation_{args.dataset}.png)")  # fmt: skip
    (out / "ablation.md").write_text(block + "\n")
    chart(summary, out / "ablation.png", f"{args.dataset}: ablation ({n_seeds} seeds)")
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(block)
    if args.write_docs:
        write_docs(args.dataset, block, out / "ablation.png")


if __name__ == "__main__":
    main()
