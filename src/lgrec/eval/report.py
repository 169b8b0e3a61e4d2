"""Result tables and charts: a plain-text table for the CLI and a report folder on disk.

Metric keys are shared across the project: ``"Recall@20"``, ``"NDCG@20"``, ``"Precision@10"``,
``"HitRate@10"``, ``"MRR@10"``, ``"coverage@20"``, ``"RMSE"``, ``"MAE"``, ``"AUC"``,
``"Accuracy"``, ``"fit_s"``, ``"eval_s"``; each result row also has ``"model"`` (its name).
"""

from __future__ import annotations

import csv
import io
import json
import math
import platform
import shlex
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from lgrec.errors import ConfigError
from lgrec.utils import atomic_write_bytes, atomic_write_text

__all__ = ["comparison_table", "write_report"]

MISSING = "—"
NAME = "model"


def comparison_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None
) -> str:
    """An aligned plain-text table, one row per model, ``model`` first.

    Floats get 4 decimals, seconds (keys ending in ``_s`` or ``seconds``) 1 decimal, integers
    thousands separators; missing or NaN values show as ``—``. Text is left-aligned, numbers
    right-aligned. ``columns`` picks and orders the columns (default: every key, in order of
    first appearance).
    """
    cols = _columns(rows, columns)
    cells = [[_fmt(c, r.get(c)) for c in cols] for r in rows]
    numeric = [
        c != NAME and all(_is_number(r.get(c)) or r.get(c) is None for r in rows) for c in cols
    ]
    widths = [max([len(c)] + [len(row[j]) for row in cells]) for j, c in enumerate(cols)]

    def line(vals: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(vals, widths, numeric)]
        return "  ".join(parts).rstrip()

    out = [line(cols), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    return "\n".join(out)


def write_report(
    rows: Sequence[Mapping[str, Any]],
    out_dir: str | Path,
    *,
    title: str,
    chart_metrics: Sequence[str] = ("Recall@20", "NDCG@20"),
    meta: Mapping[str, Any] | None = None,
    columns: Sequence[str] | None = None,
) -> dict[str, Path]:
    """Write ``results.{md,csv,json,png}`` to ``out_dir`` (each atomically) and return the paths.

    ``meta`` (e.g. data set, command, seed) is recorded in the Markdown and JSON files; the date
    (UTC), machine, Python and command line are added when absent. The chart is a grouped bar
    chart of ``chart_metrics`` per model with values on the bars.
    """
    if not rows:
        raise ConfigError("write_report: rows is empty; nothing to report")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = _default_meta() | dict(meta or {})
    cols = _columns(rows, columns)
    paths = {ext: out / f"results.{ext}" for ext in ("md", "csv", "json", "png")}

    md = [f"# {title}", ""]
    md += [f"- **{k}**: {v}" for k, v in info.items()]
    md += ["", _markdown_table(rows, cols), ""]
    atomic_write_text(paths["md"], "\n".join(md))

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    writer.writerows([[_plain(r.get(c)) for c in cols] for r in rows])
    atomic_write_text(paths["csv"], buf.getvalue())

    doc = {
        "title": title,
        "meta": {k: _json_value(v) for k, v in info.items()},
        "columns": cols,
        "rows": [{k: _json_value(v) for k, v in r.items()} for r in rows],
    }
    atomic_write_text(paths["json"], json.dumps(doc, indent=2, ensure_ascii=False) + "\n")

    atomic_write_bytes(paths["png"], _chart(rows, chart_metrics, title))
    return paths


# ---- helpers -------------------------------------------------------------------------------
def _columns(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None) -> list[str]:
    cols = list(dict.fromkeys(k for r in rows for k in r)) if columns is None else list(columns)
    return [NAME] + [c for c in cols if c != NAME]


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def _missing(v: Any) -> bool:
    return v is None or (_is_number(v) and math.isnan(float(v)))


def _fmt(col: str, v: Any) -> str:
    if _missing(v):
        return MISSING
    if isinstance(v, int | np.integer) and not isinstance(v, bool):
        return f"{int(v):,}"
    if _is_number(v):
        seconds = col.endswith("_s") or col.endswith("seconds")
        return f"{float(v):.1f}" if seconds else f"{float(v):.4f}"
    return str(v)


def _plain(v: Any) -> Any:
    """CSV cell: full-precision numbers, empty for missing."""
    if _missing(v):
        return ""
    return v.item() if isinstance(v, np.generic) else v


def _json_value(v: Any) -> Any:
    if _missing(v):
        return None
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, str | int | float | bool | list | dict):
        return v
    return str(v)


def _markdown_table(rows: Sequence[Mapping[str, Any]], cols: list[str]) -> str:
    align = [":--" if c == NAME else "--:" for c in cols]
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join(align) + " |"]
    for r in rows:
        cells = [_fmt(c, r.get(c)).replace("|", "\\|") for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _default_meta() -> dict[str, Any]:
    import torch

    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "machine": (
            f"{platform.node()} ({platform.machine()}, {platform.system()} {platform.release()})"
        ),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "command": shlex.join(sys.argv),
    }


def _chart(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], title: str) -> bytes:
    """PNG bytes of a grouped bar chart: one group per model, one bar per metric."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # no pyplot, no global state
    from matplotlib.figure import Figure

    names = [str(r.get(NAME, MISSING)) for r in rows]
    present = [
        m for m in metrics if any(_is_number(r.get(m)) and not _missing(r.get(m)) for r in rows)
    ]
    fig = Figure(
        figsize=(min(16.0, max(6.0, 0.8 * len(names) * max(1, len(present)) + 2)), 4.5), dpi=110
    )
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if not present:
        ax.text(0.5, 0.5, f"none of {list(metrics)} in the results", ha="center", va="center")
        ax.set_axis_off()
    else:
        x = np.arange(len(names))
        width = 0.8 / len(present)
        for j, m in enumerate(present):
            vals = [
                float(r[m]) if not _missing(r.get(m)) and _is_number(r.get(m)) else 0.0
                for r in rows
            ]
            bars = ax.bar(x + (j - (len(present) - 1) / 2) * width, vals, width, label=m)
            ax.bar_label(bars, labels=[_fmt(m, r.get(m)) for r in rows], fontsize=7, padding=2)
        ax.set_xticks(
            x,
            names,
            rotation=20 if len(names) > 4 else 0,
            ha="right" if len(names) > 4 else "center",
        )
        ax.set_xlabel("model")
        ax.set_ylabel("score")
        ax.margins(y=0.15)
        ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
