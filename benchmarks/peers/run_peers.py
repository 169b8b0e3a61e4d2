"""Peer libraries on lgrec's split, scored by lgrec's metric code.

Usage (from the repository root, after ``bash benchmarks/peers/setup_peers.sh``)::

    benchmarks/peers/.venv/bin/python benchmarks/peers/run_peers.py \\
        --dataset ml-100k --out runs/peers-ml-100k [--peers gfcf,implicit-als] [--timeout 900]

Each peer runs in its own subprocess (so ``ru_maxrss`` is that peer's peak memory), which:

1. loads the data set with :func:`common.load_split`: the very split ``lgrec evaluate`` uses
   (fixed split; validation carved from training rows only);
2. tunes the peer on train → valid (Recall@20; rating models on validation RMSE), then
   refits the chosen configuration on train + valid, as lgrec's pipeline does;
3. wraps it in an adapter with ``score(users)`` and calls
   :func:`lgrec.eval.protocol.evaluate_ranking` (all items ranked, train + valid items
   excluded) and, for rating models, :func:`~lgrec.eval.protocol.evaluate_rating`.

The test split is used once, in step 3. Results land in ``--out`` as ``results.json``,
``results.csv`` and ``results.md``; each peer's log is ``<peer>.log``.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import logging
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

log = logging.getLogger("peers")

#: name -> (module, fit function, what the data set must have, library to report)
PEERS: dict[str, tuple[str, str, str | None, str]] = {
    "pyg-lightgcn": ("pyg_lightgcn", "fit_lightgcn", None, "torch_geometric"),
    "implicit-als": ("implicit_models", "fit_als", None, "implicit"),
    "implicit-bpr": ("implicit_models", "fit_bpr", None, "implicit"),
    "lightfm-warp": ("lightfm_models", "fit_warp", None, "lightfm"),
    "lightfm-warp-genres": ("lightfm_models", "fit_warp_features", "categories", "lightfm"),
    "surprise-svd": ("surprise_models", "fit_svd", "ratings", "surprise"),
    "surprise-svdpp": ("surprise_models", "fit_svdpp", "ratings", "surprise"),
    "cornac-mf": ("cornac_models", "fit_mf", "ratings", "cornac"),
    "gfcf": ("gfcf", "fit_gfcf", None, "scipy"),
}
DATASETS = ("ml-100k", "colakg-ml-1m", "gowalla", "amazon-videogames")
COLUMNS = (
    "Recall@20",
    "NDCG@20",
    "NDCG@10",
    "RMSE",
    "MAE",
    "tune_s",
    "fit_s",
    "eval_s",
    "peak_mb",
    "base_mb",
)


# ---- one peer, in its own process ------------------------------------------------------------
def run_one(peer: str, dataset: str, seed: int, opts: dict[str, Any]) -> dict[str, Any]:
    """Load, tune, refit and evaluate one peer; return its result row."""
    import torch
    from common import load_split, peak_rss_mb, seed_all, threads

    from lgrec.eval.protocol import evaluate_ranking, evaluate_rating

    torch.set_num_threads(threads())
    seed_all(seed)
    module, func, needs, lib = PEERS[peer]
    row: dict[str, Any] = {"model": peer, "dataset": dataset, "load_avg_start": os.getloadavg()[0]}
    t0 = time.perf_counter()
    split = load_split(dataset, seed=seed)
    row["load_s"] = time.perf_counter() - t0
    if needs == "ratings" and not split.train.has_ratings:
        return {**row, "status": "skipped: the data set has no explicit ratings"}
    if needs == "categories" and split.train.categories()[1].shape[1] == 0:
        return {**row, "status": "skipped: the data set has no item categories"}
    try:
        mod = importlib.import_module(module)
        lib_mod = importlib.import_module(lib)
    except ImportError as e:
        return {**row, "status": f"not installed: {e}"}
    row["library"] = f"{lib} {getattr(lib_mod, '__version__', '?')}"
    row["base_mb"] = peak_rss_mb()  # imports + data, before the peer trains
    fit = getattr(mod, func)(split, {"seed": seed, **opts})
    res = evaluate_ranking(fit.model, split.full_train, split.test, ks=(10, 20))
    rating = evaluate_rating(fit.model, split.test)
    row.update(
        {
            "status": "ok",
            "params": fit.params,
            "Recall@20": res["Recall@20"],
            "NDCG@20": res["NDCG@20"],
            "NDCG@10": res["NDCG@10"],
            "Recall@10": res["Recall@10"],
            "n_users": res["n_users"],
            **rating,
            "tune_s": fit.tune_s,
            "fit_s": fit.fit_s,
            "eval_s": res["eval_s"],
            "peak_mb": peak_rss_mb(),
            "load_avg_end": os.getloadavg()[0],  # the machine is shared: timings vary with it
            "threads": threads(),
            **fit.extra,
        }
    )
    return row


# ---- the driver --------------------------------------------------------------------------
def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or v == "":
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _params(r: dict[str, Any]) -> str:
    keep = ("factors", "regularization", "alpha", "learning_rate", "lr", "n_factors", "reg_all")
    keep += ("n_epochs", "k", "lambda_reg", "max_iter", "epochs", "item_features")
    p = r.get("params") or {}
    return ", ".join(f"{k}={p[k]}" for k in keep if k in p)


def markdown(rows: list[dict[str, Any]]) -> str:
    """The results table (one row per peer) as Markdown; failures show their status."""
    head = ["model", *COLUMNS, "s/epoch", "chosen on valid"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        status = r.get("status", "")
        if status != "ok":
            lines.append(
                f"| {r['model']} | " + " | ".join(["–"] * len(COLUMNS)) + f" | – | {status} |"
            )
            continue
        cells = [r["model"]]
        cells += [
            _fmt(r.get(c), 4 if c[0].isupper() else 0 if c.endswith("mb") else 2) for c in COLUMNS
        ]
        cells.append(_fmt(r.get("s_per_epoch"), 2))
        lines.append("| " + " | ".join([*cells, _params(r)]) + " |")
    return "\n".join(lines) + "\n"


def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run every selected peer in a subprocess with a time limit; write the reports.

    Rows of peers not selected now are kept from an earlier ``results.json`` in ``--out``.
    """
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    peers = args.peers.split(",") if args.peers else list(PEERS)
    old = out / "results.json"
    # a rerun of some peers keeps the other peers' rows from an earlier run in this folder
    kept = (
        [r for r in json.loads(old.read_text()) if r["model"] not in peers] if old.is_file() else []
    )
    rows: list[dict[str, Any]] = []
    order = list(PEERS)
    for peer in peers:
        if peer not in PEERS:
            raise SystemExit(f"--peers: unknown peer {peer!r}; known: {', '.join(PEERS)}")
        res_file = out / f"{peer}.json"
        res_file.unlink(missing_ok=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--dataset", args.dataset]
        cmd += ["--peer", peer, "--json", str(res_file), "--seed", str(args.seed)]
        if args.opts:
            cmd += ["--opts", args.opts]
        env = dict(os.environ)
        n = env.setdefault("PEER_THREADS", "1")
        env.setdefault("OMP_NUM_THREADS", n)
        env.setdefault("OPENBLAS_NUM_THREADS", "1" if peer.startswith("implicit") else n)
        env.setdefault("MKL_NUM_THREADS", env["OPENBLAS_NUM_THREADS"])
        log.info("running %s on %s", peer, args.dataset)
        t0 = time.perf_counter()
        with open(out / f"{peer}.log", "w") as logf:
            try:
                proc = subprocess.run(
                    cmd, env=env, stdout=logf, stderr=subprocess.STDOUT, timeout=args.timeout
                )
                code = proc.returncode
            except subprocess.TimeoutExpired:
                code = None
        wall = time.perf_counter() - t0
        if res_file.is_file():
            row = json.loads(res_file.read_text())
        elif code is None:
            row = {"model": peer, "status": f"timed out after {args.timeout:.0f} s"}
        else:
            row = {"model": peer, "status": f"failed (exit {code}); see {peer}.log"}
        row["wall_s"] = wall
        log.info("%s: %s", peer, {k: row.get(k) for k in ("status", *COLUMNS)})
        rows.append(row)
        rows_all = sorted([*kept, *rows], key=lambda r: order.index(r["model"]))
        (out / "results.json").write_text(json.dumps(rows_all, indent=1, default=str))
    rows = sorted([*kept, *rows], key=lambda r: order.index(r["model"]))
    keys = ["model", *COLUMNS, "base_mb", "wall_s", "status", "library", "params"]
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    (out / "results.md").write_text(markdown(rows))
    print(markdown(rows))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--out", default=None, help="output folder (default runs/peers-<dataset>)")
    p.add_argument("--peers", default=None, help=f"comma-separated subset of {list(PEERS)}")
    p.add_argument("--timeout", type=float, default=None, help="seconds per peer (whole run)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--opts",
        default=None,
        help='JSON options per peer, e.g. \'{"pyg-lightgcn": {"max_train_s": 600}}\'',
    )
    p.add_argument("--report", action="store_true", help="only rebuild results.md from --out")
    p.add_argument("--peer", default=None, help=argparse.SUPPRESS)  # internal: one peer
    p.add_argument("--json", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.peer is None:
        args.out = args.out or f"runs/peers-{args.dataset}"
        if args.report:
            rows = json.loads((Path(args.out) / "results.json").read_text())
            (Path(args.out) / "results.md").write_text(markdown(rows))
            print(markdown(rows))
        else:
            run_all(args)
        return 0
    opts = json.loads(args.opts) if args.opts else {}
    try:
        row = run_one(args.peer, args.dataset, args.seed, opts.get(args.peer, {}))
    except Exception as e:  # recorded in the table, with the traceback in the log
        traceback.print_exc()
        row = {"model": args.peer, "status": f"error: {type(e).__name__}: {e}"}
    Path(args.json).write_text(json.dumps(row, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
