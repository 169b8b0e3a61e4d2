"""The results of benchmarks/scale.py: the median of a step's runs, the table and the chart.

:func:`summarise` reduces a step's runs to the median of every timing (the runs themselves are
kept); :func:`report` makes the Markdown table of every scale and step (load averages beside
the numbers; a stopped step "did not finish", a skipped one says why), :func:`write_table`
puts it between the ``<!-- scale table -->`` markers of docs/scaling.md, and :func:`chart`
draws docs/scaling.png (CPU seconds and peak memory against events, log-log).
"""

from __future__ import annotations

from pathlib import Path

from scale_steps import STEPS

MEDIAN = ("wall_s", "cpu_s", "peak_mb", "fit_s", "epoch_s", "rank_s", "rank_all_s", "p50_ms",
          "p99_ms", "rps", "fixed_p99_ms")  # fmt: skip


def recorded_runs(rec: dict | None) -> list[dict]:
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


def write_table(table: str, doc: Path) -> None:
    """Put ``table`` between the ``<!-- scale table -->`` markers of ``doc`` (if present)."""
    from lgrec.utils import atomic_write_text

    start, end = "<!-- scale table -->", "<!-- /scale table -->"
    text = doc.read_text(encoding="utf-8")
    if start in text and end in text:
        head, rest = text.split(start, 1)
        atomic_write_text(doc, f"{head}{start}\n{table}\n{end}{rest.split(end, 1)[1]}")
