"""Run a test worker module in several processes with torchrun (gloo on CPU, one launch)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def run_workers(module: str, out: Path, nproc: int = 2) -> list[dict[str, np.ndarray]]:
    """``python -m MODULE --out OUT`` in ``nproc`` processes (torchrun ``--standalone``, from
    the repository root); the arrays each process ``r`` wrote to ``OUT/rank<r>.npz``."""
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={nproc}", "-m", module, "--out", str(out),
    ]  # fmt: skip
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return [dict(np.load(out / f"rank{k}.npz")) for k in range(nproc)]
