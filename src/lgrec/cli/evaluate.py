"""``lgrec evaluate`` (fit and compare models on one split) and ``lgrec quickstart``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from lgrec.cli.common import add_data_args, add_param_arg, run_config
from lgrec.progress import note


def add_parsers(sub: Any) -> None:
    """Register ``evaluate``."""
    s = sub.add_parser("evaluate", help="fit every model on one split; comparison table + chart")
    add_data_args(s)
    s.add_argument("--models", help="comma-separated model names (default: all baselines + lmgcn)")
    add_param_arg(s)
    s.add_argument(
        "--out",
        metavar="DIR",
        help="report folder (default: runs/<dataset>-<split> under the current directory)",
    )
    s.add_argument("--no-refit", action="store_true", help="do not refit on train + valid")
    s.set_defaults(run=lambda a: cmd_evaluate(a)[0])


def add_quickstart(sub: Any) -> None:
    """Register ``quickstart``."""
    s = sub.add_parser("quickstart", help="the whole pipeline on MovieLens-100K (u1) in one go")
    s.add_argument("--data-dir")
    s.add_argument(
        "--out",
        metavar="DIR",
        default="runs/quickstart",
        help="report folder (default: %(default)s)",
    )
    s.add_argument("--threads", type=int)
    s.add_argument("--models", help="comma-separated subset of models")
    s.add_argument("--config", help="TOML configuration file")
    add_param_arg(s)
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(run=cmd_quickstart)


def cmd_evaluate(
    args: argparse.Namespace, *, title: str | None = None
) -> tuple[int, list[dict], Path]:
    from lgrec.eval.report import comparison_table, write_report
    from lgrec.pipeline import evaluate_all, prepare, setup

    extra: dict[str, Any] = {"refit": not args.no_refit}
    if args.models:
        extra["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    cfg = run_config(args, **extra)
    out = Path(args.out or f"runs/{Path(cfg.dataset).name}-{cfg.split}").resolve()
    note(f"report and models go to {out}" + ("" if args.out else " (choose with --out DIR)"))
    setup(cfg)
    prep = prepare(cfg)
    rows = evaluate_all(cfg, prep, out=out)
    print(comparison_table(rows, columns=columns(rows, cfg.ks)))
    paths = write_report(
        rows,
        out,
        title=title or f"lgrec on {prep.data.name} ({cfg.split} split)",
        chart_metrics=(f"Recall@{max(cfg.ks)}", f"NDCG@{max(cfg.ks)}"),
        meta={
            "dataset": prep.data.summary(),
            "encode_s": round(prep.encode_seconds, 2),
            "config": {k: v for k, v in vars(cfg).items() if k != "params"}
            | {"params": cfg.params},
        },
    )
    print("report: " + ", ".join(str(p) for p in paths.values()))
    return 0, rows, out


def columns(rows: list[dict], ks) -> list[str]:
    """The comparison table's columns: the metrics present in ``rows``, in a fixed order."""
    k1, k2 = min(ks), max(ks)
    want = [
        f"Recall@{k2}",
        f"NDCG@{k2}",
        f"NDCG@{k1}",
        f"Precision@{k1}",
        f"HitRate@{k1}",
        "RMSE",
        "MAE",
        "AUC",
        "Accuracy",
        f"cold_Recall@{k2}",
        f"cold_all_Recall@{k2}",
        "fit_s",
        "eval_s",
    ]
    present = {k for r in rows for k in r}
    return ["model"] + [c for c in want if c in present]


def cmd_quickstart(args: argparse.Namespace) -> int:
    from lgrec.cli.recommend import cmd_recommend

    t0 = time.perf_counter()
    ns = argparse.Namespace(
        config=args.config,
        dataset="ml-100k",
        data_dir=args.data_dir,
        fold="u1",
        split="fixed",
        valid_ratio=None,
        k_core=None,
        seed=None,
        text_model=None,
        text_max_length=None,
        threads=args.threads,
        cache_dir=None,
        models=args.models,
        param=args.param,
        out=args.out,
        no_refit=False,
    )
    print("lgrec quickstart: MovieLens-100K, fold u1 (80,000 train / 20,000 test ratings)\n")
    _, rows, out = cmd_evaluate(ns, title="lgrec quickstart: MovieLens-100K u1")
    best = "lmgcn" if any(r["model"] == "lmgcn" for r in rows) else rows[-1]["model"]
    print(f"\nexample recommendations from {best}:")
    for user in ("1", "42"):
        print(f"\nuser {user}:")
        cmd_recommend(
            argparse.Namespace(
                model=str(out / "models" / best), user=user, k=5, query=None, include_seen=False
            )
        )
    print(f"\ndone in {time.perf_counter() - t0:.0f}s")
    return 0
