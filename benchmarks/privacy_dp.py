"""Accuracy of user-level DP training on MovieLens-100K u1 at several ε (docs/privacy.md).

    python benchmarks/privacy_dp.py --seeds 0 1 2 --out docs/privacy_dp.json \
        --chart docs/privacy_dp.png

Each finished fit is added to ``--out`` at once, and the runs already there are skipped, so
an interrupted run resumes where it stopped (and seeds can be added one run at a time).

For every seed: DP-BPR-MF and DP-LightGCN (user-local propagation) trained on all of
u1.base at each ε (``inf`` = the same training without noise), and the non-private
BPR-MF, LightGCN and popularity trained as ``lgrec evaluate`` does (epochs chosen on a 10 %
validation split, then refit on u1.base); all scored on u1.test by full ranking (NDCG@10,
Recall@20) with the project's evaluation code. DP hyper-parameters: the models' defaults
(chosen on a validation split carved from u1.base at ε = 8: not accounted in ε).

Times: ``fit_s`` is wall-clock, ``fit_cpu_s`` the CPU seconds of this process (all its
threads, ``--threads 1`` by default). On the shared machine a ``nice -n 10`` run gets only a
small share of the two cores while other jobs run (CFS weight 110 against 1024 for each
un-niced job), so wall-clock can be many times the CPU time: an earlier run at load ~30 took
1236 s wall for a BPR-MF fit that needs ~12 CPU s. Compare costs by ``fit_cpu_s``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

DP_MODELS = ("dp-bprmf", "dp-lightgcn")
PLAIN_MODELS = ("popularity", "bprmf", "lightgcn")


def run(args: argparse.Namespace, rows: list[dict], save) -> list[dict]:
    """Fit and score every (model, ε, seed) not in ``rows``; ``save(rows)`` after each."""
    from lgrec.config import load_config
    from lgrec.eval import evaluate_model
    from lgrec.pipeline import build_model, fit_model, prepare, setup

    def done(name, eps, seed) -> bool:
        eps = None if eps is None or math.isinf(eps) else eps
        return any((r["model"], r["target_epsilon"], r["seed"]) == (name, eps, seed) for r in rows)

    for seed in args.seeds:
        cfg = load_config(dataset="ml-100k", seed=seed, threads=args.threads, valid_ratio=0.0)
        setup(cfg)
        prep = prepare(cfg)
        for name in args.models:
            for eps in args.eps:
                if done(name, eps, seed):
                    continue
                model = build_model(name, cfg, epsilon=None if math.isinf(eps) else eps)
                t0, c0 = time.perf_counter(), time.process_time()
                model.fit(prep.split.train)
                fit_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
                res = evaluate_model(model, prep.split, ks=(10, 20), seed=seed)
                rows.append(_row(name, eps, seed, res, fit_s, cpu_s, model.budget_))
                save(rows)
        for name in args.plain:
            if done(name, None, seed):
                continue
            cfg = load_config(dataset="ml-100k", seed=seed, threads=args.threads)
            setup(cfg)
            prep = prepare(cfg)
            c0 = time.process_time()
            model, fit_s = fit_model(build_model(name, cfg), prep, cfg)
            cpu_s = time.process_time() - c0
            res = evaluate_model(model, prep.split, ks=(10, 20), seed=seed)
            rows.append(_row(name, None, seed, res, fit_s, cpu_s, None))
            save(rows)
    return rows


def _row(name, eps, seed, res, fit_s, cpu_s, budget) -> dict:
    row = {
        "model": name,
        "target_epsilon": None if eps is None or math.isinf(eps) else eps,
        "seed": seed,
        "NDCG@10": res["NDCG@10"],
        "Recall@20": res["Recall@20"],
        "fit_s": round(fit_s, 2),
        "fit_cpu_s": round(cpu_s, 2),
        "load": [round(x, 2) for x in os.getloadavg()],
    }
    if budget is not None:
        e = budget.epsilon
        row.update(
            epsilon=None if math.isinf(e) else e,
            delta=budget.delta,
            noise_multiplier=budget.noise_multiplier,
            steps=budget.steps,
        )
    logging.info("%s", row)
    return row


def summary(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds per (model, ε)."""
    out = []
    keys = sorted({(r["model"], r["target_epsilon"] or math.inf) for r in rows})
    for model, eps in keys:
        sel = [r for r in rows if r["model"] == model and (r["target_epsilon"] or math.inf) == eps]
        agg = {"model": model, "epsilon": eps, "n": len(sel)}
        for m in ("NDCG@10", "Recall@20", "fit_s", "fit_cpu_s"):
            v = np.array([r.get(m, np.nan) for r in sel], dtype=float)
            agg[m] = float(v.mean())
            agg[m + "_sd"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
        out.append(agg)
    return out


def table(summ: list[dict]) -> str:
    lines = [
        "| model | ε | NDCG@10 | Recall@20 | fit CPU s | fit wall s |",
        "|---|---|---|---|---|---|",
    ]
    for s in summ:
        eps = "∞ (no noise)" if math.isinf(s["epsilon"]) else f"{s['epsilon']:g}"
        if s["model"] in PLAIN_MODELS:
            eps = "— (not private)"
        lines.append(
            f"| {s['model']} | {eps} | {s['NDCG@10']:.4f} ± {s['NDCG@10_sd']:.4f} | "
            f"{s['Recall@20']:.4f} ± {s['Recall@20_sd']:.4f} | {s['fit_cpu_s']:.1f} | "
            f"{s['fit_s']:.1f} |"
        )
    return "\n".join(lines)


def chart(summ: list[dict], path: Path, eps_list: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lgrec.utils import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(7, 4.2))
    xs = np.arange(len(eps_list))
    labels = ["∞" if math.isinf(e) else f"{e:g}" for e in eps_list]
    colours = {"dp-bprmf": "tab:blue", "dp-lightgcn": "tab:orange"}
    for name, col in colours.items():
        pts = [next((s for s in summ if s["model"] == name and s["epsilon"] == e), None)
               for e in eps_list]  # fmt: skip
        if not any(pts):
            continue
        y = [p["NDCG@10"] if p else np.nan for p in pts]
        sd = [p["NDCG@10_sd"] if p else 0 for p in pts]
        ax.errorbar(xs, y, yerr=sd, marker="o", capsize=3, color=col, label=f"{name} (DP-SGD)")
    plain = {"bprmf": ("tab:blue", "BPR-MF, not private"),
             "lightgcn": ("tab:orange", "LightGCN, not private"),
             "popularity": ("grey", "popularity")}  # fmt: skip
    for name, (col, label) in plain.items():
        s = next((s for s in summ if s["model"] == name), None)
        if s:
            ax.axhline(s["NDCG@10"], color=col, linestyle="--", linewidth=1, label=label)
    ax.set_xticks(xs, labels)
    ax.set_xlabel("ε (user-level, δ = 1e-5)")
    ax.set_ylabel("NDCG@10 on ML-100K u1.test")
    ax.set_title("Accuracy of user-level DP training (mean ± sd over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    atomic_write_bytes(path, buf.getvalue())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--eps", type=float, nargs="+", default=[1.0, 4.0, 8.0, math.inf])
    p.add_argument("--models", default=",".join(DP_MODELS))
    p.add_argument("--plain", default=",".join(PLAIN_MODELS), help="non-private references")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("docs/privacy_dp.json"))
    p.add_argument("--chart", type=Path, default=Path("docs/privacy_dp.png"))
    args = p.parse_args()
    args.models = [m for m in args.models.split(",") if m]
    args.plain = [m for m in args.plain.split(",") if m]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from lgrec.utils import atomic_write_text

    old = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    meta = old.get("meta", [])
    meta = meta if isinstance(meta, list) else [meta]
    meta.append({"command": " ".join(sys.argv), "commit": _commit(),
                 "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                 "load_before": os.getloadavg()})  # fmt: skip

    def save(rows: list[dict]) -> None:
        meta[-1]["load_after"] = os.getloadavg()
        clean = [
            {**s, "epsilon": None if math.isinf(s["epsilon"]) else s["epsilon"]}
            for s in summary(rows)
        ]
        doc = {"meta": meta, "runs": rows, "summary": clean}
        atomic_write_text(args.out, json.dumps(doc, indent=1))

    rows = run(args, list(old.get("runs", [])), save)
    save(rows)
    summ = summary(rows)
    chart(summ, args.chart, args.eps)
    print(table(summ))


def _commit() -> str | None:
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True, cwd=Path(__file__).parent)  # fmt: skip
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


if __name__ == "__main__":
    main()
