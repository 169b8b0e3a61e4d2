"""One command per data set: lgrec's models and the peer libraries, one table, one chart.

Usage (from the repository root, after the README's install command)::

    .venv/bin/python benchmarks/suite.py --dataset ml-100k --write-docs

What one run does:

1. builds the peers' own virtual environment with ``benchmarks/peers/setup_peers.sh`` when it
   is missing (the peers are never project dependencies);
2. runs ``lgrec evaluate`` once **per lgrec model**, each in its own process, so that the peak
   resident memory of that process (``ru_maxrss`` from ``os.wait4``) is that model's;
3. runs ``benchmarks/peers/run_peers.py`` (every peer in its own process as well) on the very
   same split: both sides call :func:`lgrec.pipeline.prepare` with the same data set, fold and
   seed, carve validation from training rows only, refit on train + valid, and score with
   :func:`lgrec.eval.protocol.evaluate_ranking` / ``evaluate_rating``;
4. merges both into ``<out>/suite.md``, ``suite.csv``, ``suite.json`` and a chart
   ``suite.png`` (Recall@20 and training seconds per model); with ``--write-docs`` it also
   replaces this data set's block in ``docs/benchmarks.md`` (between
   ``<!-- suite:<dataset> -->`` and ``<!-- /suite:<dataset> -->``) and copies the chart to
   ``docs/suite_<dataset>.png``.

"train s" is the whole training cost of a model: the validation search (epochs, grids) plus
the refit on train + valid. Both sides get the same thread count (``--threads``).
Per-data-set defaults (models, peers, reduced grids and time limits for the large sets) are in
:data:`PLANS`; ``--models``, ``--peers``, ``--timeout`` and ``--peer-opts`` override them.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PEERS_DIR = ROOT / "benchmarks" / "peers"
DOCS = ROOT / "docs" / "benchmarks.md"

#: per data set: lgrec models, extra ``lgrec evaluate`` flags, peers, peer options, timeout.
PLANS: dict[str, dict[str, Any]] = {
    "ml-100k": {
        "models": "popularity,textknn,bprmf,biasedmf,lightgcn,graphfilter,lmgcn",
        "lgrec_args": ["--fold", "u1"],
        "peers": "pyg-lightgcn,implicit-als,implicit-bpr,lightfm-warp,lightfm-warp-genres,"
        "surprise-svd,surprise-svdpp,cornac-mf,gfcf",  # all of them
        # PyG's example lr 0.001 and a faster 0.005, chosen on validation
        "peer_opts": {"pyg-lightgcn": {"lrs": [0.001, 0.005]}},
        "timeout": 1800,
    },
    "colakg-ml-1m": {
        "models": "popularity,lightgcn,graphfilter,lmgcn",
        "lgrec_args": [],
        "peers": "pyg-lightgcn,implicit-als,implicit-bpr,lightfm-warp,lightfm-warp-genres,gfcf",
        "peer_opts": {
            "pyg-lightgcn": {"max_train_s": 600, "eval_every": 2},
            "lightfm-warp": {"max_train_s": 600},
            "lightfm-warp-genres": {"max_train_s": 600},
        },
        "timeout": 3600,
    },
    "gowalla": {
        "models": "popularity,graphfilter,lightgcn,lmgcn",
        "lgrec_args": [],
        "peers": "gfcf,implicit-als,implicit-bpr,lightfm-warp,pyg-lightgcn",
        "peer_opts": {
            "gfcf": {"ks": [256], "alphas": [0.3]},
            "implicit-als": {
                "grid": {
                    "factors": [64, 128],
                    "regularization": [10.0, 100.0],
                    "alpha": [1.0, 10.0],
                }
            },
            "implicit-bpr": {
                "grid": {
                    "factors": [64, 128],
                    "regularization": [0.001],
                    "learning_rate": [0.005, 0.01],
                }
            },
            # time-boxed: an epoch of PyG's loop is ~100 full-graph batches here (a cost row)
            "lightfm-warp": {"max_train_s": 400, "eval_every": 2},
            "pyg-lightgcn": {"max_train_s": 300, "eval_every": 1},
        },
        "timeout": 3600,
    },
    "amazon-videogames": {
        "models": "popularity,textknn,graphfilter,lightgcn,lmgcn",
        "lgrec_args": ["--valid-ratio", "0"],  # the data set's own valid fold
        "peers": "gfcf,implicit-als,implicit-bpr,lightfm-warp,pyg-lightgcn",
        "peer_opts": {
            "lightfm-warp": {"max_train_s": 400, "eval_every": 2},
            # one lr in the time box: 0.005 got further than the example's 0.001 on ML-100K
            "pyg-lightgcn": {"max_train_s": 600, "eval_every": 1, "lr": 0.005},
        },
        "timeout": 3600,
    },
}

#: columns of the merged table: (key, header, decimals)
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("Recall@20", "Recall@20", 4),
    ("NDCG@20", "NDCG@20", 4),
    ("NDCG@10", "NDCG@10", 4),
    ("RMSE", "RMSE", 4),
    ("train_s", "train s", 1),
    ("eval_s", "eval s", 1),
    ("peak_mb", "peak MB", 0),
)
METRICS = tuple(k for k, _, _ in COLUMNS[:4])  # quality columns; the rest is cost


def run_measured(cmd: list[str], log: Path, env: dict[str, str], timeout: float | None) -> dict:
    """Run ``cmd`` with output to ``log``; return exit code, wall seconds and peak RSS (MB).

    The peak comes from ``os.wait4`` on this very child, not ``RUSAGE_CHILDREN`` (which is the
    maximum over every child so far). Linux carries the launching process's own peak into the
    child at ``exec``, so this driver stays small (no torch, matplotlib only at the end).
    """
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        deadline = None if timeout is None else t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                proc.returncode = -9
                return {"code": None, "wall_s": time.perf_counter() - t0, "peak_mb": None}
            time.sleep(0.5)
    proc.returncode = os.waitstatus_to_exitcode(status)  # stop Popen from waiting again
    return {
        "code": proc.returncode,
        "wall_s": time.perf_counter() - t0,
        "peak_mb": usage.ru_maxrss / 1024.0,  # Linux: KiB
    }


def run_lgrec(args: argparse.Namespace, plan: dict[str, Any], out: Path) -> list[dict]:
    """One ``lgrec evaluate`` process per model; rows with metrics, cost and peak memory."""
    rows = []
    lgrec = str(Path(sys.executable).with_name("lgrec"))
    for model in args.models.split(","):
        mdir = out / "lgrec" / model
        cmd = [lgrec, "evaluate", "--dataset", args.dataset, "--split", "fixed"]
        cmd += [*plan["lgrec_args"], "--models", model, "--threads", str(args.threads)]
        cmd += ["--seed", str(args.seed), "--out", str(mdir), "-v"]  # -v: epochs in run.log
        if args.data_dir:
            cmd += ["--data-dir", args.data_dir]
        mdir.mkdir(parents=True, exist_ok=True)
        res, measured = mdir / "results.json", mdir / "measure.json"
        if args.resume and res.is_file() and measured.is_file():
            run = json.loads(measured.read_text())
            print(f"[suite] lgrec {model}: kept from an earlier run (--resume)", flush=True)
        else:
            print(f"[suite] lgrec {model} ...", flush=True)
            res.unlink(missing_ok=True)
            run = run_measured(cmd, mdir / "run.log", dict(os.environ), args.timeout)
            measured.write_text(json.dumps(run))
        row: dict[str, Any] = {"model": model, "library": "lgrec", "wall_s": run["wall_s"]}
        if run["code"] == 0 and res.is_file():
            r = next(x for x in json.loads(res.read_text())["rows"] if x["model"] == model)
            row.update({k: r.get(k) for k in METRICS})
            row.update(train_s=r.get("fit_s"), eval_s=r.get("eval_s"), status="ok")
            row["peak_mb"] = run["peak_mb"]
        else:
            why = "timed out" if run["code"] is None else f"exit {run['code']}"
            row["status"] = f"failed ({why}); see {mdir / 'run.log'}"
        print(f"[suite]   {_brief(row)}", flush=True)
        rows.append(row)
    return rows


def ensure_peers_venv() -> Path:
    """The peers' interpreter; builds their venv with ``setup_peers.sh`` when missing."""
    py = PEERS_DIR / ".venv" / "bin" / "python"
    if not py.is_file():
        print("[suite] building the peers' venv (benchmarks/peers/setup_peers.sh)", flush=True)
        subprocess.run(["bash", str(PEERS_DIR / "setup_peers.sh")], check=True, cwd=ROOT)
    return py


def run_peers(args: argparse.Namespace, plan: dict[str, Any], out: Path) -> list[dict]:
    """All selected peers through ``run_peers.py`` (each in its own process)."""
    if args.peers == "none":
        return []
    py = ensure_peers_venv()
    pdir = out / "peers"
    pdir.mkdir(parents=True, exist_ok=True)
    res = pdir / "results.json"
    todo = args.peers.split(",")
    if args.resume and res.is_file():  # run_peers.py keeps the rows of peers not rerun
        done = {r["model"] for r in json.loads(res.read_text()) if r.get("status") == "ok"}
        todo = [p for p in todo if p not in done]
    else:
        res.unlink(missing_ok=True)  # this run's rows only
    cmd = [str(py), str(PEERS_DIR / "run_peers.py"), "--dataset", args.dataset]
    cmd += ["--out", str(pdir), "--seed", str(args.seed), "--timeout", str(args.timeout)]
    cmd += ["--peers", ",".join(todo)]
    opts = json.loads(args.peer_opts) if args.peer_opts else plan["peer_opts"]
    if opts:
        cmd += ["--opts", json.dumps(opts)]
    env = {**os.environ, "PEER_THREADS": str(args.threads)}
    if args.data_dir:
        env["LGREC_DATA_DIR"] = args.data_dir
    if todo:
        print(f"[suite] peers: {' '.join(cmd[2:])}", flush=True)
        subprocess.run(cmd, cwd=ROOT, env=env, check=False, stdout=subprocess.DEVNULL)
    if not res.is_file():
        return [{"model": "peers", "library": "-", "status": "run_peers.py wrote no results"}]
    rows = []
    for r in json.loads(res.read_text()):
        row = {"model": f"peer: {r['model']}", "library": r.get("library", "-")}
        row["status"] = r.get("status", "?")
        if row["status"] == "ok":
            row.update({k: r.get(k) for k in METRICS})
            row["train_s"] = (r.get("tune_s") or 0.0) + (r.get("fit_s") or 0.0)
            row.update(eval_s=r.get("eval_s"), peak_mb=r.get("peak_mb"), wall_s=r.get("wall_s"))
            row["params"] = r.get("params")
        rows.append(row)
    return rows


# ---- report ----------------------------------------------------------------------------------
def _cell(v: Any, digits: int) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "–"
    if isinstance(v, float | int) and not isinstance(v, bool):
        return f"{v:,.{digits}f}"
    return str(v)


def _brief(row: dict[str, Any]) -> str:
    if row.get("status") != "ok":
        return f"{row['model']}: {row.get('status')}"
    return f"{row['model']}: " + ", ".join(
        f"{h} {_cell(row.get(k), d)}" for k, h, d in COLUMNS if row.get(k) is not None
    )


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The merged table; the best value of each metric column in bold; failures keep a status."""
    best = {}
    for k in METRICS:
        vals = [r[k] for r in rows if r.get("status") == "ok" and r.get(k) is not None]
        if vals:
            best[k] = min(vals) if k == "RMSE" else max(vals)
    head = ["model", "library", *(h for _, h, _ in COLUMNS), "note"]
    lines = [
        f"Command: `{meta['command']}` ({meta['date']}, commit {meta['commit']}, "
        f"{meta['machine']}, {meta['threads']} thread(s) per model, load average at start "
        f"{meta['load_start']:.2f}, all processes {meta['wall_min']:.1f} min).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in rows:
        cells = [r["model"], r.get("library", "-")]
        for k, _, d in COLUMNS:
            c = _cell(r.get(k), d) if r.get("status") == "ok" else "–"
            cells.append(f"**{c}**" if k in best and r.get(k) == best[k] else c)
        cells.append("" if r.get("status") == "ok" else str(r.get("status")))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def chart(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Two panels: Recall@20 and training seconds (log scale) per model."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ok = [r for r in rows if r.get("status") == "ok" and r.get("Recall@20") is not None]
    names = [r["model"] for r in ok]
    colors = ["tab:blue" if r["library"] == "lgrec" else "tab:gray" for r in ok]
    fig = Figure(figsize=(10, 0.45 * len(ok) + 1.5))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2, sharey=True)
    ax1.barh(names, [r["Recall@20"] for r in ok], color=colors)
    ax1.set_xlabel("Recall@20 (test)")
    ax1.invert_yaxis()
    ax2.barh(names, [max(r.get("train_s") or 0.0, 0.01) for r in ok], color=colors)
    ax2.set_xscale("log")
    ax2.set_xlabel("train seconds (validation search + refit), log scale")
    fig.suptitle(f"{title}: lgrec (blue) and peers (grey), same split and metric code")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_docs(dataset: str, table: str, png: Path, docs: Path = DOCS) -> None:
    """Replace (or append) this data set's block in docs/benchmarks.md; copy the chart.

    Both writes are atomic, so an interrupted run never leaves a truncated docs page. (Imported
    here: ``lgrec.utils`` loads torch, and the driver must stay small while children run.)
    """
    from lgrec.utils import atomic_write_bytes, atomic_write_text

    start, end = f"<!-- suite:{dataset} -->", f"<!-- /suite:{dataset} -->"
    img = f"suite_{dataset}.png"
    atomic_write_bytes(docs.parent / img, png.read_bytes())
    block = f"{start}\n{table}\n![{dataset}: lgrec and peers]({img})\n{end}"
    text = docs.read_text()
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        section = "## One run per data set: lgrec and the peers (`benchmarks/suite.py`)\n"
        if section not in text:
            text = text.rstrip("\n") + "\n\n" + section
        head, rest = text.split(section, 1)
        text = head + section + f"\n### {dataset}\n\n{block}\n" + rest
    atomic_write_text(docs, text)


def _commit() -> str:
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True)
    return r.stdout.decode().strip() or "?"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True, choices=sorted(PLANS))
    p.add_argument("--models", default=None, help="lgrec models (default: the data set's plan)")
    p.add_argument("--peers", default=None, help="peers, comma-separated, or 'none'")
    p.add_argument("--peer-opts", default=None, help="JSON options per peer (replaces the plan's)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per model / peer")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=None, help="default runs/suite-<dataset>")
    p.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    p.add_argument(
        "--resume", action="store_true", help="keep models and peers that finished in --out"
    )
    args = p.parse_args(argv)
    plan = PLANS[args.dataset]
    args.models = args.models or plan["models"]
    args.peers = args.peers or plan["peers"]
    args.timeout = args.timeout or plan["timeout"]
    out = Path(args.out or ROOT / "runs" / f"suite-{args.dataset}")
    out.mkdir(parents=True, exist_ok=True)

    t0, load = time.perf_counter(), os.getloadavg()[0]
    rows = run_lgrec(args, plan, out) + run_peers(args, plan, out)
    meta = {
        "command": "python benchmarks/suite.py " + " ".join(argv or sys.argv[1:]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "threads": args.threads,
        "load_start": load,
        # summed over the processes, so that a --resume'd run still reports its whole cost
        "wall_min": sum(r.get("wall_s") or 0.0 for r in rows) / 60.0,
        "driver_min": (time.perf_counter() - t0) / 60.0,
    }
    table = markdown(rows, meta)
    (out / "suite.md").write_text(table)
    (out / "suite.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=str))
    with open(out / "suite.csv", "w", newline="") as f:
        w = csv.DictWriter(
            f, ["model", "library", *(k for k, _, _ in COLUMNS), "status"], extrasaction="ignore"
        )
        w.writeheader()
        w.writerows(rows)
    chart(rows, out / "suite.png", args.dataset)
    if args.write_docs:
        write_docs(args.dataset, table, out / "suite.png")
    print(table)
    return (
        0 if all(r.get("status") == "ok" or "skipped" in str(r.get("status")) for r in rows) else 1
    )


if __name__ == "__main__":
    raise SystemExit(main())
