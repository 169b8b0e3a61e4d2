"""Helpers of the privacy tests (a unique module name, importable from the tests): a CSV
data set whose user ids are easy to grep for, and ``lgrec serve`` on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from tests.serve.serve_fixtures import free_port, wait_up

API_KEY = "privacy-test-key-0123456789"
PSEUDONYM_KEY = "pseudonym-test-key-3f9a1c7e5b2d4a68"


def raw_user(k: int) -> str:
    """A raw user id that appears nowhere by chance (grep target)."""
    return f"rawuser-{k:03d}-qzx"


def write_interactions(path: Path, n_users: int = 40, n_items: int = 30, seed: int = 0) -> Path:
    """``user_id,item_id,rating,timestamp`` CSV: users of 3 taste groups, ~12 events each."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        group = np.arange(u % 3, n_items, 3)
        items = rng.choice(group, 9, replace=False).tolist()
        items += rng.choice(n_items, 3, replace=False).tolist()
        for t, i in enumerate(dict.fromkeys(items)):
            rows.append((raw_user(u), f"item{i}", int(rng.integers(3, 6)), 1000 * u + t))
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    df.to_csv(path, index=False)
    return path


@contextlib.contextmanager
def run_server(model: Path, store: Path, log_path: Path, *args: str, env: dict | None = None
               ) -> Iterator[str]:  # fmt: skip
    """``lgrec serve`` in a subprocess (output to ``log_path``); yields its base URL once
    ``/health`` answers, and stops it (SIGTERM) afterwards."""
    port = free_port()
    env = {**os.environ, "LGREC_API_KEY": API_KEY, **(env or {})}
    cmd = [sys.executable, "-m", "lgrec.cli", "serve", "--model", str(model), "--port", str(port),
           "--store", str(store), *args]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_up(proc, url, log_path)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
