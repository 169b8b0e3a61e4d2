"""Commands report progress when stderr is a pipe, and say where their output goes."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.cli.test_cli import FAST, ml_dir  # noqa: F401 (fixture)


def test_evaluate_prints_progress_lines_and_the_report_folder_to_a_pipe(ml_dir, tmp_path):  # noqa: F811
    env = {**os.environ, "LGREC_CACHE_DIR": str(tmp_path / "cache"), "CI": "",
           "LGREC_PROGRESS_INTERVAL": "0.01"}  # fmt: skip
    env.pop("LGREC_PROGRESS", None)
    cmd = [sys.executable, "-m", "lgrec.cli", "evaluate", "--dataset", "ml-100k",
           "--data-dir", str(ml_dir), "--models", "popularity,bprmf", *FAST]  # fmt: skip
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    err = r.stderr.splitlines()
    out = (tmp_path / "runs" / "ml-100k-fixed").resolve()
    assert f"lgrec: report and models go to {out} (choose with --out DIR)" in err
    assert any(ln.startswith("lgrec: models 2/2 › fitting bprmf") for ln in err), err
    assert any("BPRMF: " in ln and "/10 epochs" in ln and "ETA" in ln for ln in err), err
    assert "lgrec: models: done in" in r.stderr
    assert (out / "results.md").is_file()
