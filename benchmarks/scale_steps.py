"""The steps of benchmarks/scale.py: what each one runs at a scale, and what it reads back.

:func:`step` runs one step (see scale.py's docstring for the list) as its own measured process
(:func:`scale_measure.run`) on the files of that scale under ``runs/scale`` (``logs-{s}x.parquet``,
``prep-pandas-{s}x``, ``graphfilter-{s}x``, ``lightgcn-{s}x``), and adds what the step's output
says: the split sizes, the fit's own seconds, users ranked per second, serving latency, FAISS
recall. :func:`rank_child` is the ``rank`` step's child process (``scale.py --rank-child``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from scale_measure import ROOT, run

OUT = ROOT / "runs" / "scale"
LGREC = [sys.executable, "-m", "lgrec.cli"]
STEPS = ("gen", "etl_pandas", "etl_spark", "graphfilter", "lightgcn", "rank", "serve", "faiss")
GF = ["--param", "graphfilter.k=256", "--param", "graphfilter.alpha=0.3"]
GF += ["--param", "graphfilter.sharpen=0.0"]
SCRIPT = Path(__file__).resolve().with_name("scale.py")  # the rank step runs its --rank-child


def _fit_seconds(log: Path) -> float | None:
    m = re.search(r"trained \S+ in ([0-9.]+)s", log.read_text(errors="replace"))
    return float(m.group(1)) if m else None


def step(name: str, s: float, args: argparse.Namespace) -> dict:
    """Run one step at scale ``s``; returns its record (or the reason it was skipped)."""
    tag = f"{s:g}x"
    logs = OUT / f"logs-{tag}.parquet"
    prep_pd, prep_sp = OUT / f"prep-pandas-{tag}", OUT / f"prep-spark-{tag}"
    gf = OUT / f"graphfilter-{tag}"
    log = OUT / f"{name}-{tag}.log"
    if name == "gen":
        cmd = [sys.executable, "benchmarks/synthetic.py", "--scale", f"{s:g}", "--out", str(logs)]
        return run(cmd, log, args.timeout)
    if name in ("etl_pandas", "etl_spark"):
        out = prep_pd if name == "etl_pandas" else prep_sp
        cmd = [*LGREC, "prepare", "--dataset", str(logs), "--split", "random", "--out", str(out)]
        env = {}
        if name == "etl_spark":
            cmd += ["--engine", "spark", "--spark-master", "local[2]"]
            env["PYSPARK_SUBMIT_ARGS"] = f"--driver-memory {args.spark_memory} pyspark-shell"
        rec = run(cmd, log, args.timeout, env)
        if (out / "meta.json").is_file():
            rec["sizes"] = json.loads((out / "meta.json").read_text())["sizes"]
        return rec
    prep = prep_pd if (prep_pd / "meta.json").is_file() else prep_sp
    if not (prep / "meta.json").is_file():
        return {"skipped": "no prepared data (both ETL steps failed or were skipped)"}
    if name == "graphfilter":
        cmd = [*LGREC, "train", "--prepared", str(prep), "--model", "graphfilter", *GF]
        rec = run([*cmd, "--no-refit", "--out", str(gf)], log, args.timeout)
        rec["fit_s"] = _fit_seconds(log)
        return rec
    if name == "lightgcn":
        e = args.epochs
        params = [f"lightgcn.epochs={e}", "lightgcn.eval_every=1000", "lightgcn.patience=1000"]
        cmd = [*LGREC, "train", "--prepared", str(prep), "--model", "lightgcn", "--no-refit"]
        for p in params:
            cmd += ["--param", p]
        rec = run([*cmd, "--out", str(OUT / f"lightgcn-{tag}")], log, args.timeout)
        rec["fit_s"] = _fit_seconds(log)
        rec["epochs"] = e
        rec["epoch_s"] = rec["fit_s"] / e if rec["fit_s"] else None
        return rec
    if name == "rank":
        if not (gf / "config.json").is_file():
            return {"skipped": "no graph-filter bundle"}
        cmd = [
            sys.executable,
            str(SCRIPT),
            "--rank-child",
            str(gf),
            "--rank-users",
            str(args.rank_users),
        ]
        rec = run(cmd, log, args.timeout)
        m = re.search(r"RANK (\{.*\})", log.read_text())
        return rec | (json.loads(m.group(1)) if m else {})
    if name == "serve":  # serving updates user vectors online: an embedding model, not the filter
        lg = OUT / f"lightgcn-{tag}"
        if not (lg / "config.json").is_file():
            return {"skipped": "no LightGCN bundle"}
        cmd = [sys.executable, "benchmarks/serve_load.py", "--bundle", str(lg), "--no-text"]
        cmd += ["--rec-seconds", "8", "--fb-seconds", "3", "--fixed-seconds", "10", "--rate", "50"]
        rec = run(cmd, log, args.timeout)
        f = ROOT / "runs" / "bench-serve" / "serve_load.json"
        if rec["code"] == 0 and f.is_file():
            r = json.loads(f.read_text())
            rec["p50_ms"] = r["wrk_recommend"]["p50_ms"]
            rec["p99_ms"] = r["wrk_recommend"]["p99_ms"]
            rec["rps"] = r["wrk_recommend"]["throughput_rps"]
            rec["fixed_p99_ms"] = r["open_loop"][0]["recommend"]["p99_ms"]
        return rec
    if name == "faiss":  # candidate retrieval on the same bundle (benchmarks/scale_faiss.py)
        lg = OUT / f"lightgcn-{tag}"
        if not (lg / "config.json").is_file():
            return {"skipped": "no LightGCN bundle"}
        rec = run([sys.executable, "benchmarks/scale_faiss.py", "--bundle", str(lg)], log,
                  args.timeout)  # fmt: skip
        m = re.search(r"FAISS (\{.*\})", log.read_text())
        return rec | (json.loads(m.group(1)) if m else {})
    raise SystemExit(f"unknown step {name!r}; expected {STEPS}")


def rank_child(bundle: str, n_users: int) -> None:
    """Top-20 for ``n_users`` users (evenly spaced ids) in blocks of 4,096; prints one line
    ``RANK {json}``: the seconds it took and the extrapolation to all users."""
    import torch

    from lgrec.models import Recommender

    torch.set_num_threads(2)
    model = Recommender.load(bundle)
    n = len(model.user_ids_)
    users = torch.linspace(0, n - 1, min(n_users, n)).long()
    t0 = time.perf_counter()
    for b in users.split(4096):
        model.recommend(b, k=20)
    dt = time.perf_counter() - t0
    per = dt / len(users)
    print("RANK " + json.dumps({"rank_users": len(users), "rank_s": round(dt, 2),
                                "rank_all_s": round(per * n, 1), "n_users": n}))  # fmt: skip
