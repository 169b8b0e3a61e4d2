"""benchmarks/scale_report.py: the median of a step's runs, the table's rows, the docs block."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rep():
    bench = str(ROOT / "benchmarks")
    sys.path.insert(0, bench)  # the benchmarks import their siblings by name, as scale.py does
    try:
        return importlib.import_module("scale_report")
    finally:
        sys.path.remove(bench)


def _run(wall: float, code: int | str = 0, load: tuple = (1.0, 1, 1, 2.0, 2, 2)) -> dict:
    return {"code": code, "wall_s": wall, "cpu_s": wall * 1.5, "peak_mb": 100, "load": [*load]}


def test_summarise_takes_the_median_of_the_successful_runs_and_keeps_them_all(rep):
    runs = [_run(10, load=(0.5, 0, 0, 1.0, 0, 0)), _run(30), _run(12, load=(1, 1, 1, 3.5, 0, 0))]
    s = rep.summarise(runs)
    assert (s["wall_s"], s["cpu_s"], s["n"], s["code"]) == (12, 18, 3, 0)
    assert s["wall_range"] == [10, 30] and s["load"] == [0.5, 3.5]
    assert s["runs"] == runs
    failed = rep.summarise([_run(10), _run(99, code=1)])
    assert (failed["wall_s"], failed["n"], failed["code"]) == (10, 1, 1)


def test_recorded_runs_reads_old_single_runs_lists_and_skips(rep):
    one = _run(5)
    assert rep.recorded_runs(one) == [one]  # older results: one run, no list
    assert rep.recorded_runs(rep.summarise([one, _run(7)])) == [one, _run(7)]
    assert rep.recorded_runs({"skipped": "no LightGCN bundle"}) == []
    assert rep.recorded_runs(None) == []


def test_report_says_which_steps_did_not_finish_failed_or_were_skipped(rep):
    results = {
        "10x": {"events": 10_273_700, "gen": _run(60)},
        "2x": {
            "events": 2_054_740,
            "etl_pandas": rep.summarise([_run(10), _run(30), _run(12)]),
            "graphfilter": _run(5, code=1),
            "lightgcn": _run(3600, code="timeout"),
            "rank": {"skipped": "no graph-filter bundle"},
            "serve": _run(120, code=-9),  # stopped by hand
        },
    }
    lines = rep.report(results).splitlines()
    header, rows = lines[0], lines[2:]
    assert all(r.count("|") == header.count("|") for r in rows)
    by_step = {r.split(" | ")[2]: r for r in rows}
    assert [r.split(" | ")[0] for r in rows] == ["| 2x"] * 5 + ["| 10x"]  # scales in number order
    assert "| 2,054,740 | etl_pandas | 3 | 12.0 (10–30) | 18.0 |" in by_step["etl_pandas"]
    assert by_step["lightgcn"].endswith("| did not finish: stopped after 60 min |")
    assert by_step["serve"].endswith("| did not finish: stopped after 2 min |")
    assert by_step["graphfilter"].endswith("| FAILED (1) |")
    assert by_step["rank"].endswith("| 0 | — | — | — | — | — | skipped: no graph-filter bundle |")
    assert by_step["gen"].endswith("| 1.0–2.0 |  |")  # one old-style run: its load before/after


def test_write_table_replaces_only_the_marked_block(rep, tmp_path):
    doc = tmp_path / "scaling.md"
    doc.write_text("intro\n<!-- scale table -->\nold\n<!-- /scale table -->\nafter\n")
    rep.write_table("| new |", doc)
    assert doc.read_text() == "intro\n<!-- scale table -->\n| new |\n<!-- /scale table -->\nafter\n"
    plain = tmp_path / "plain.md"
    plain.write_text("no markers here\n")
    rep.write_table("| new |", plain)
    assert plain.read_text() == "no markers here\n"
