"""Cost model: ETL, fit, ranking and serving at 1×, 10× and 100× Gowalla-sized synthetic logs.

For each scale s (s × Gowalla's 29,858 users, 40,981 items, 1,027,370 events; power-law users
and items, see benchmarks/synthetic.py) every step runs in its own process, measured for wall
time, CPU seconds and peak resident memory (the whole process tree, sampled every 0.2 s, then
every 1 s after 10 s, so Spark's JVM and uvicorn's workers count), with the load average
beside it (the machine is shared, so CPU seconds are the steadier measure; each timing is the
median of ``--repeat`` runs):

1. ``gen``: write the synthetic log (Parquet);
2. ``etl_pandas``: ``lgrec prepare --split random --out`` (load, clean with dedupe, split with a
   10 % validation carve, write partitioned Parquet);
3. ``etl_spark``: the same with ``--engine spark --spark-master local[2]``;
4. ``graphfilter``: ``lgrec train --prepared`` of the graph filter (k = 256, α = 0.3, fixed);
5. ``lightgcn``: LightGCN for ``--epochs`` epochs (default 1, the same at every scale, so CPU
   seconds and memory compare across rows; per-epoch time = fit time / epochs);
6. ``rank``: top-20 over all items for ``--rank-users`` users with the fitted graph filter;
7. ``serve``: benchmarks/serve_load.py on the LightGCN bundle of step 5 (``lgrec serve`` needs
   user/item vectors to fold feedback in; the graph filter has none): p50/p99 of /recommend
   with ``wrk`` (8 connections) and in an open loop at 50 req/s;
8. ``faiss``: benchmarks/scale_faiss.py on the same bundle: recall@100 of ``lgrec serve
   --index faiss`` (default settings) against exact scoring, and sequential /recommend p50/p99
   over HTTP with and without the index.

A step is skipped (with the reason recorded) when its input is missing (no prepared data, no
bundle); ``--timeout`` stops a step that runs too long (its CPU seconds so far are kept, and
the table says it did not finish). Results accumulate in
``runs/scale/scale.json`` (finished runs are kept; ``--force`` reruns them); ``--report``
prints the Markdown table, puts it into ``docs/scaling.md`` and draws ``docs/scaling.png``.

    nice -n 19 .venv/bin/python benchmarks/scale.py --scales 1 --repeat 3 \
        --steps gen,etl_pandas,etl_spark,graphfilter,lightgcn,rank
    flock /work/notes/suite.lock .venv/bin/python benchmarks/scale.py --scales 1 --repeat 3 \
        --steps serve    # latency: alone on the machine (no test suite beside it)
    .venv/bin/python benchmarks/scale.py --report

``--scales`` takes fractions: ``--scales 0.05`` runs every step in a few minutes (quiet machine).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "runs" / "scale"
DOCS = ROOT / "docs"
LGREC = [sys.executable, "-m", "lgrec.cli"]
STEPS = ("gen", "etl_pandas", "etl_spark", "graphfilter", "lightgcn", "rank", "serve", "faiss")
GF = ["--param", "graphfilter.k=256", "--param", "graphfilter.alpha=0.3"]
GF += ["--param", "graphfilter.sharpen=0.0"]
# OpenMP threads that wait for a core sleep instead of spinning: on a loaded machine spinning
# counts as CPU time that does no work (the result is unchanged; set the variable to override)
SPIN = {"OMP_WAIT_POLICY": "PASSIVE"}


def tree_usage(pid: int) -> dict[int, tuple[int, float]]:
    """{pid: (resident bytes, CPU seconds user+sys)} of ``pid`` and its descendants (/proc)."""
    children: dict[int, list[int]] = {}
    use: dict[int, tuple[int, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(stat[1]), []).append(int(d.name))
            cpu = (int(stat[11]) + int(stat[12])) / tick
            use[int(d.name)] = (int(stat[21]) * os.sysconf("SC_PAGE_SIZE"), cpu)
        except (OSError, IndexError, ValueError):
            continue
    out, todo = {}, [pid]
    while todo:
        p = todo.pop()
        if p in use:
            out[p] = use[p]
        todo.extend(children.get(p, []))
    return out


def run(cmd: list[str], log: Path, timeout: float, env: dict | None = None) -> dict:
    """Run ``cmd`` (output to ``log``); wall seconds, peak tree RSS (MB), exit code, load.

    CPU seconds: the larger of the sampled tree's total (sees processes the child leaves
    running, e.g. a JVM) and the user + system time of the reaped descendants (``getrusage``:
    sees short-lived processes the 0.2 s sampling misses); each is a lower bound."""
    load0 = os.getloadavg()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    peak, cpu = [0], {}  # CPU: the last reading of every process of the tree
    with open(log, "w") as f:
        proc = subprocess.Popen(
            cmd,
            stdout=f,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**SPIN, **os.environ, **(env or {})},
            start_new_session=True,  # its own process group: a timeout stops Spark's JVM too
        )
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                use = tree_usage(proc.pid)
                peak[0] = max(peak[0], sum(r for r, _ in use.values()))
                cpu.update({p: c for p, (_, c) in use.items()})
                # 0.2 s at first, then 1 s (each scan of /proc costs CPU on a shared machine)
                stop.wait(0.2 if time.perf_counter() - t0 < 10 else 1.0)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = "timeout"
        stop.set()
        th.join()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = sum(getattr(ru1, f) - getattr(ru0, f) for f in ("ru_utime", "ru_stime"))
    return {
        "code": code,
        "wall_s": round(time.perf_counter() - t0, 2),
        "peak_mb": round(peak[0] / 2**20),
        "cpu_s": round(max(sum(cpu.values()), reaped), 1),
        "load": [round(x, 2) for x in (*load0, *os.getloadavg())],
        "cmd": " ".join(str(c) for c in cmd),
    }


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
            __file__,
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


MEDIAN = ("wall_s", "cpu_s", "peak_mb", "fit_s", "epoch_s", "rank_s", "rank_all_s", "p50_ms",
          "p99_ms", "rps", "fixed_p99_ms")  # fmt: skip


def _runs(rec: dict | None) -> list[dict]:
    """The runs recorded for a step (older results hold one run, not a list)."""
    if not rec or "skipped" in rec:
        return []
    return list(rec.get("runs", [rec]))


def summarise(runs: list[dict]) -> dict:
    """Median of every timing over the successful runs; the loads and all runs are kept."""
    import statistics

    ok = [x for x in runs if x.get("code") == 0] or runs
    out = {k: v for k, v in ok[-1].items() if k not in MEDIAN}
    for k in MEDIAN:
        vals = [x[k] for x in ok if x.get(k) is not None]
        if vals:
            out[k] = round(statistics.median(vals), 2)
    out["code"] = next((x["code"] for x in runs if x.get("code") != 0), 0)
    out["n"] = len(ok)
    out["wall_range"] = [min(x["wall_s"] for x in ok), max(x["wall_s"] for x in ok)]
    out["load"] = [min(x["load"][0] for x in runs), max(x["load"][3] for x in runs)]
    out["runs"] = runs
    return out


def rank_child(bundle: str, n_users: int) -> None:
    """Top-20 for ``n_users`` users (evenly spaced ids) in blocks; prints users/s."""
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


def report(results: dict) -> str:
    """Markdown table of every scale and step, with load averages."""
    lines = [
        "| scale | events | step | runs | wall s (median; min–max) | CPU s | fit / epoch s "
        "| peak MB | load (1 min) | note |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for tag, r in sorted(results.items(), key=lambda kv: float(kv[0].rstrip("x"))):
        ev = r.get("events", "")
        for name in STEPS:
            rec = r.get(name)
            if rec is None:
                continue
            if "skipped" in rec:
                lines.append(
                    f"| {tag} | {ev:,} | {name} | 0 | — | — | — | — | — "
                    f"| skipped: {rec['skipped']} |"
                )
                continue
            extra = rec.get("epoch_s") or rec.get("fit_s") or ""
            note = []
            if rec["code"] != 0:
                stopped = rec["code"] == "timeout" or rec["code"] in (-9, -15)  # or by hand
                note.append(
                    f"did not finish: stopped after {rec['wall_s'] / 60:.0f} min"
                    if stopped
                    else f"FAILED ({rec['code']})"
                )
            if "sizes" in rec:
                note.append("train/valid/test " + "/".join(f"{v:,}" for v in rec["sizes"].values()))
            if "rank_all_s" in rec:
                note.append(f"all {rec['n_users']:,} users ≈ {rec['rank_all_s']:,} s "
                            f"({rec['rank_users']:,} timed)")  # fmt: skip
            if "recall@100" in rec:
                ex, fa = rec["http_exact"], rec["http_faiss"]
                n = len(fa["p99_ms"])
                note.append(f"{rec['n_items']:,} items: FAISS recall@100 {rec['recall@100']}; "
                            f"sequential /recommend p50/p99 exact {_mid(ex['p50_ms'])}/"
                            f"{_mid(ex['p99_ms'])} ms, FAISS {_mid(fa['p50_ms'])}/"
                            f"{_mid(fa['p99_ms'])} ms (median of {n} runs)")  # fmt: skip
            if "p99_ms" in rec:
                note.append(f"/recommend p50 {rec['p50_ms']} ms, p99 {rec['p99_ms']} ms, "
                            f"{rec['rps']:.0f} req/s (wrk, 8 conns); open loop at 50 req/s: "
                            f"p99 {rec['fixed_p99_ms']} ms")  # fmt: skip
            load = rec["load"]
            lo, hi = (load[0], load[3]) if len(load) == 6 else load
            lo_w, hi_w = rec.get("wall_range", [rec["wall_s"]] * 2)
            wall = f"{rec['wall_s']:,.1f}" + (f" ({lo_w:,.0f}–{hi_w:,.0f})" if lo_w != hi_w else "")
            lines.append(
                f"| {tag} | {ev:,} | {name} | {rec.get('n', 1)} | {wall} | "
                f"{rec.get('cpu_s', '?')} | "
                f"{extra if extra == '' else f'{extra:,.1f}'} | {rec['peak_mb']:,.0f} | "
                f"{lo:.1f}–{hi:.1f} | {'; '.join(note)} |"
            )
    return "\n".join(lines)


def _mid(xs: list[float]) -> float:
    """Median of a few numbers (the runs of one server)."""
    return sorted(xs)[len(xs) // 2]


def chart(results: dict, path: Path) -> None:
    """Log–log chart: CPU seconds and peak memory (process tree) against events, one line per
    step. CPU seconds, not wall: on the shared machine wall time mostly measures the others."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name in STEPS[1:]:
        pts = sorted(
            (r["events"], r[name]["cpu_s"], r[name]["peak_mb"])
            for r in results.values()
            if name in r and r[name].get("code") == 0 and r[name].get("cpu_s")
        )
        if not pts:
            continue
        x = [p[0] for p in pts]
        if name not in ("serve", "faiss"):  # fixed-length load tests: their CPU s are no cost
            label = f"{name} ({', '.join(f'{p[1]:,.0f}' for p in pts)} s)"
            line = a.plot(x, [p[1] for p in pts], "o-", label=label)[0]
            stopped = [(r["events"], r[name]["cpu_s"]) for r in results.values()
                       if r.get(name, {}).get("code") == "timeout"]  # fmt: skip
            for ev, cpu in stopped:  # a lower bound: ^ in the step's colour, "≥" beside it
                a.plot([ev], [cpu], "^", mfc="none", color=line.get_color())
                a.annotate(f"≥ {cpu:,.0f} (stopped)", (ev, cpu), fontsize=6,
                           xytext=(-60, 4), textcoords="offset points")  # fmt: skip
        b.plot(x, [p[2] / 1024 for p in pts], "o-", label=name)
    for ax, yl in ((a, "CPU seconds (process tree)"), (b, "peak memory, GB (process tree)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("events (synthetic; 1× Gowalla = 1.03 × 10⁶)")
        ax.set_ylabel(yl)
        ax.grid(True, which="both", alpha=0.3)
    a.legend(fontsize=7)
    b.legend(fontsize=7)
    fig.suptitle("lgrec cost against data size (2-core shared VM; see docs/scaling.md)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scales", default="1,10", help="comma-separated multiples of Gowalla")
    p.add_argument("--steps", default="all", help=f"comma-separated subset of {STEPS}")
    p.add_argument("--epochs", type=int, default=1, help="LightGCN epochs (at every scale)")
    p.add_argument("--rank-users", type=int, default=20_000)
    p.add_argument("--repeat", type=int, default=3, help="runs per step (median reported)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per step")
    p.add_argument("--spark-memory", default="8g", help="Spark driver memory (local mode)")
    p.add_argument("--force", action="store_true", help="rerun finished steps")
    p.add_argument("--report", action="store_true", help="print the table, draw the chart")
    p.add_argument("--rank-child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rank_child:
        rank_child(args.rank_child, args.rank_users)
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    res_f = OUT / "scale.json"
    results = json.loads(res_f.read_text()) if res_f.is_file() else {}
    if not args.report:
        steps = STEPS if args.steps == "all" else tuple(args.steps.split(","))
        for s in (float(x) for x in args.scales.split(",")):
            tag = f"{s:g}x"
            r = results.setdefault(tag, {"events": round(1_027_370 * s)})
            for name in steps:
                runs = [] if args.force else _runs(r.get(name))
                want = 1 if name == "gen" else args.repeat
                while sum(x.get("code") == 0 for x in runs) < want:
                    print(f"[{time.strftime('%H:%M:%S')}] {tag} {name} run {len(runs) + 1} ...",
                          flush=True)  # fmt: skip
                    rec = step(name, s, args)
                    print(f"  {rec}", flush=True)
                    if "skipped" in rec:
                        r[name] = rec
                        break
                    runs.append(rec)
                    r[name] = summarise(runs)
                    save(res_f, tag, r, name)
                    if rec["code"] != 0:
                        break
                save(res_f, tag, r, name)
    results = json.loads(res_f.read_text()) if res_f.is_file() else {}
    table = report(results)
    print(table)
    if args.report:
        write_table(table, DOCS / "scaling.md")
        chart(results, DOCS / "scaling.png")
    return 0


def save(res_f: Path, tag: str, r: dict, name: str) -> None:
    """Store step ``name`` of scale ``tag`` in ``res_f``, keeping every other step and scale as
    it is on disk (under a lock), so runs of different scales or steps can go side by side."""
    import fcntl

    from lgrec.utils import atomic_write_text

    with open(res_f.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cur = json.loads(res_f.read_text()) if res_f.is_file() else {}
        cur.setdefault(tag, {"events": r["events"]})
        if name in r:
            cur[tag][name] = r[name]
        atomic_write_text(res_f, json.dumps(cur, indent=1))


def write_table(table: str, doc: Path) -> None:
    """Put ``table`` between the ``<!-- scale table -->`` markers of ``doc`` (if present)."""
    from lgrec.utils import atomic_write_text

    start, end = "<!-- scale table -->", "<!-- /scale table -->"
    text = doc.read_text(encoding="utf-8")
    if start in text and end in text:
        head, rest = text.split(start, 1)
        atomic_write_text(doc, f"{head}{start}\n{table}\n{end}{rest.split(end, 1)[1]}")


if __name__ == "__main__":
    sys.exit(main())
