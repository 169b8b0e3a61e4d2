"""Data-parallel training on real data: quality and seconds per epoch, 1 process vs torchrun.

The same script runs as one process (``python``) or as P processes (``torchrun``); under
torchrun every fit runs inside :func:`lgrec.train.distributed.data_parallel`, as
``lgrec train --distributed`` does. Process 0 appends one JSON line per run to ``--out``.

``quality``: per seed, fit as ``lgrec train`` does (train with early stopping on validation,
then refit on train + valid) and evaluate on the test split::

    python benchmarks/distributed.py quality --dataset ml-100k --model lightgcn --seeds 0,1,2
    torchrun --standalone --nproc-per-node=2 benchmarks/distributed.py quality \\
        --dataset ml-100k --model lightgcn --seeds 0,1,2

``speed``: ``--epochs`` epochs without validation or refit, once per seed of ``--seeds`` (the
repeats); the loop's seconds / epochs (process 0's clock). ``report FILE…`` prints the Markdown
tables (quality: mean ± std over seeds; speed: median over the repeats, with the load average
around each run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_setup import prepared_run


def _mode(args) -> tuple[str, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1 and "RANK" not in os.environ:
        import torch

        return f"1 process × {torch.get_num_threads()} threads", world
    return f"{world} processes ({args.graph})", world


def run(args) -> None:
    import torch.distributed as dist

    from lgrec.config import parse_param
    from lgrec.eval import evaluate_model
    from lgrec.pipeline import build_model, fit_model
    from lgrec.train.distributed import data_parallel

    speed = args.command == "speed"
    extra = dict(valid_ratio=0.0, refit=False) if speed else {}
    under_torchrun = "RANK" in os.environ
    ctx = data_parallel(graph=args.graph) if under_torchrun else nullcontext()
    with ctx:
        for seed in args.seeds:
            args.seed = seed
            cfg, prep = prepared_run(args, dataset=args.dataset, **extra)
            mode, world = _mode(args)  # after prepared_run has set the thread count
            for text in args.param or []:
                model, name, value = parse_param(text)
                cfg.params.setdefault(model, {})[name] = value
            if speed:
                cfg.params.setdefault(args.model, {})["epochs"] = args.epochs
            load0, t0 = os.getloadavg()[0], time.perf_counter()
            model = build_model(args.model, cfg)
            model, fit_s = fit_model(model, prep, cfg)
            tl = model.train_log_
            row = {
                "command": args.command, "dataset": args.dataset, "model": args.model,
                "mode": mode, "processes": world, "seed": seed, "fit_s": round(fit_s, 2),
                "epochs": tl.epochs_run, "s_per_epoch": round(tl.seconds_per_epoch, 3),
                "load_before": load0, "load_after": os.getloadavg()[0],
                "wall_s": round(time.perf_counter() - t0, 2), "params": args.param or [],
                "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }  # fmt: skip
            if not speed:
                res = evaluate_model(model, prep.split, ks=(10, 20), seed=seed)
                row |= {k: res[k] for k in ("Recall@20", "NDCG@20", "NDCG@10")}
            if not dist.is_initialized() or dist.get_rank() == 0:
                print(json.dumps(row), flush=True)
                with open(args.out, "a") as fh:
                    fh.write(json.dumps(row) + "\n")


def report(files: list[str]) -> None:
    rows = [json.loads(line) for f in files for line in Path(f).read_text().splitlines()]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        key = (r["command"], r["dataset"], r["model"], r["mode"], tuple(r["params"]))
        groups.setdefault(key, []).append(r)

    def ms(vals: list[float]) -> str:
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        return f"{statistics.mean(vals):.4f} ± {sd:.4f}"

    kinds = {key[0] for key in groups}  # a table only for the kinds of run in the files
    if "quality" in kinds:
        print("| data set | model | run | seeds | Recall@20 | NDCG@20 | NDCG@10 | epochs (refit) |")
        print("|---|---|---|---|---|---|---|---|")
    for (cmd, ds, model, mode, _), rs in groups.items():
        if cmd == "quality":
            m = [ms([r[k] for r in rs]) for k in ("Recall@20", "NDCG@20", "NDCG@10")]
            ep = ", ".join(str(r["epochs"]) for r in rs)
            print(f"| {ds} | {model} | {mode} | {len(rs)} | {' | '.join(m)} | {ep} |")
    if "speed" in kinds:
        print("\n" * ("quality" in kinds), end="")
        head = ("data set", "model", "run", "runs", "s/epoch (median)", "all runs", "peak MB",
                "load avg")  # fmt: skip
        print("| " + " | ".join(head) + " |\n" + "|---" * len(head) + "|")
    for (cmd, ds, model, mode, _), rs in groups.items():
        if cmd == "speed":
            s = [r["s_per_epoch"] for r in rs]
            loads = [f"{r['load_before']:.1f}–{r['load_after']:.1f}" for r in rs]
            peak = max(r.get("peak_mb", 0) for r in rs)
            print(
                f"| {ds} | {model} | {mode} | {len(rs)} | {statistics.median(s):.3f} | "
                f"{', '.join(f'{x:.3f}' for x in s)} | {peak} | {', '.join(loads)} |"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("quality", "speed"):
        s = sub.add_parser(name)
        s.add_argument("--dataset", default="ml-100k")
        s.add_argument("--model", default="lightgcn")
        s.add_argument("--param", action="append", metavar="MODEL.NAME=VALUE")
        s.add_argument("--seeds", type=lambda v: [int(x) for x in v.split(",")], default=[0, 1, 2])
        s.add_argument("--graph", choices=["partition", "replicate"], default="partition")
        s.add_argument("--epochs", type=int, default=5, help="speed: epochs per run")
        s.add_argument("--threads", type=int)
        s.add_argument("--data-dir")
        s.add_argument("--out", default="runs/distributed.jsonl")
    s = sub.add_parser("report")
    s.add_argument("files", nargs="+")
    args = ap.parse_args()
    if args.command == "report":
        report(args.files)
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        run(args)


if __name__ == "__main__":
    main()
