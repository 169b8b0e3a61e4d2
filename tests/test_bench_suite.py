"""benchmarks/suite.py: per-child peak memory, the merged table, and the docs block update."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def suite():
    spec = importlib.util.spec_from_file_location("bench_suite", ROOT / "benchmarks" / "suite.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_run_measured_reports_each_childs_own_peak(tmp_path):
    # Linux carries the launcher's own peak RSS into a child at exec, so the launcher must be
    # small (as the suite driver is): measure from a fresh interpreter, not from pytest.
    code = f"""
import importlib.util, json, os, sys
spec = importlib.util.spec_from_file_location("s", {str(ROOT / "benchmarks" / "suite.py")!r})
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
env, d = dict(os.environ), {str(tmp_path)!r}
big = m.run_measured([sys.executable, "-c",
    "b = bytearray(300 * 2**20); b[::4096] = bytes(len(b[::4096]))"], d + "/big.log", env, 60)
small = m.run_measured([sys.executable, "-c", "print('hi')"], d + "/small.log", env, 60)
print(json.dumps([big, small]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    big, small = json.loads(out.stdout)
    assert big["code"] == 0 and small["code"] == 0
    assert big["peak_mb"] > 300
    # RUSAGE_CHILDREN would report the earlier child's 300 MB again
    assert small["peak_mb"] < 150
    assert (tmp_path / "small.log").read_text().strip() == "hi"


def test_run_measured_kills_on_timeout_and_reports_failure(suite, tmp_path):
    run = suite.run_measured(_py("import time; time.sleep(30)"), tmp_path / "t.log", {}, 1.0)
    assert run["code"] is None and run["wall_s"] < 10
    bad = suite.run_measured(_py("raise SystemExit(3)"), tmp_path / "b.log", dict(os.environ), 60)
    assert bad["code"] == 3


def _rows():
    ok = {"status": "ok", "NDCG@20": 0.3, "NDCG@10": 0.3, "train_s": 2.0, "eval_s": 0.1}
    return [
        {"model": "lmgcn", "library": "lgrec", **ok, "Recall@20": 0.31, "RMSE": 0.89},
        {"model": "peer: svd", "library": "surprise", **ok, "Recall@20": 0.05, "RMSE": 0.93},
        {"model": "peer: lightfm-warp", "library": "-", "status": "timed out after 900 s"},
    ]


META = {
    "command": "python benchmarks/suite.py --dataset x",
    "date": "2026-12-05 19:00 UTC",
    "commit": "abc",
    "machine": "x86_64, 2 cores",
    "threads": 2,
    "load_start": 0.1,
    "wall_min": 1.0,
    "driver_min": 1.0,
}


def test_markdown_bolds_the_best_and_keeps_failures(suite):
    md = suite.markdown(_rows(), META)
    lines = {ln.split(" | ")[0].lstrip("| "): ln for ln in md.splitlines() if ln.startswith("| ")}
    assert "**0.3100**" in lines["lmgcn"] and "**0.8900**" in lines["lmgcn"]  # RMSE: lowest
    assert "**" not in lines["peer: svd"].split(" | ")[2]  # its Recall@20 is not the best
    assert lines["peer: lightfm-warp"].rstrip(" |").endswith("timed out after 900 s")
    assert "python benchmarks/suite.py --dataset x" in md


def test_write_docs_inserts_then_replaces_only_its_block(suite, tmp_path):
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nintro stays\n")
    png = tmp_path / "chart.png"
    png.write_bytes(b"png")
    suite.write_docs("ml-100k", "TABLE ONE\n", png, docs)
    suite.write_docs("gowalla", "GOWALLA\n", png, docs)
    suite.write_docs("ml-100k", "TABLE TWO\n", png, docs)
    text = docs.read_text()
    assert "intro stays" in text and "GOWALLA" in text
    assert "TABLE TWO" in text and "TABLE ONE" not in text
    assert text.count("<!-- suite:ml-100k -->") == 1 and text.count("### ml-100k") == 1
    assert (tmp_path / "suite_ml-100k.png").read_bytes() == b"png"
