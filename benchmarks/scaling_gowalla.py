"""Scaling study on Gowalla: fit and full-ranking evaluation time and peak memory against the
share of training interactions (10 %, 25 %, 50 %, 100 %).

For each share p, a seeded uniform sample of p of the training interactions is kept (the test
split is unchanged; test users with no remaining training interaction still count, ranking all
items), the graph filter is fitted with fixed settings (k = 256, α = 0.3: the ones validation
chose on the full data, see docs/benchmarks.md) and evaluated on all test users. Each share runs
in a fresh subprocess so its peak RSS (``ru_maxrss``) is its own.

    .venv/bin/python benchmarks/scaling_gowalla.py [--shares 0.1,0.25,0.5,1] [--out runs/scaling]

Prints a Markdown table and writes ``scaling.json`` and ``scaling.png`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def run_one(share: float, k: int, alpha: float, seed: int) -> dict:
    """Load, subsample, fit, evaluate; runs inside the child process."""
    import numpy as np

    from lgrec.data import load_dataset, split_fixed
    from lgrec.data.dataset import Split
    from lgrec.eval.protocol import evaluate_ranking
    from lgrec.models.graphfilter import GraphFilter

    t0 = time.perf_counter()
    split = split_fixed(load_dataset("gowalla"))
    train = split.train
    if share < 1:
        keep = np.random.default_rng(seed).random(len(train)) < share
        train = train.subset(keep)
    split = Split(train=train, test=split.test, kind=split.kind)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = GraphFilter(k=k, alpha=alpha, seed=seed).fit(split.train)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = evaluate_ranking(model, split.train, split.test, ks=(20,))
    eval_s = time.perf_counter() - t0
    return {
        "share": share,
        "interactions": len(split.train),
        "load_s": round(load_s, 2),
        "fit_s": round(fit_s, 2),
        "eval_s": round(eval_s, 2),
        "Recall@20": round(res["Recall@20"], 4),
        "NDCG@20": round(res["NDCG@20"], 4),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shares", default="0.1,0.25,0.5,1")
    p.add_argument("--k", type=int, default=256)
    p.add_argument("--alpha", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/scaling"))
    p.add_argument("--child", type=float, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child is not None:
        print(json.dumps(run_one(a.child, a.k, a.alpha, a.seed)))
        return 0
    rows = []
    for share in (float(s) for s in a.shares.split(",")):
        cmd = [sys.executable, __file__, "--child", str(share), "--k", str(a.k)]
        cmd += ["--alpha", str(a.alpha), "--seed", str(a.seed)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "scaling.json").write_text(json.dumps(rows, indent=1))
    print("| share | interactions | fit s | eval s | peak MB | Recall@20 | NDCG@20 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['share']:.0%} | {r['interactions']:,} | {r['fit_s']} | {r['eval_s']} | "
            f"{r['peak_mb']:,} | {r['Recall@20']} | {r['NDCG@20']} |"
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["interactions"] for r in rows]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    ax[0].plot(n, [r["fit_s"] for r in rows], "o-", label="fit")
    ax[0].plot(n, [r["eval_s"] for r in rows], "s-", label="evaluation")
    ax[0].set_xlabel("training interactions")
    ax[0].set_ylabel("seconds")
    ax[0].legend()
    ax[1].plot(n, [r["peak_mb"] for r in rows], "o-")
    ax[1].set_xlabel("training interactions")
    ax[1].set_ylabel("peak RSS (MB)")
    fig.suptitle("lgrec graph filter on Gowalla samples (2 CPU cores)")
    fig.tight_layout()
    fig.savefig(a.out / "scaling.png", dpi=110)
    print(f"wrote {a.out / 'scaling.json'} and {a.out / 'scaling.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
