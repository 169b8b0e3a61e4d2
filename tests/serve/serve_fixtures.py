"""Shared helpers of the serving tests (a unique module name, importable from the tests)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

TOPICS = {
    "Sci-Fi": [
        "Starship", "Galaxy", "Alien Planet", "Space Station", "Astronaut", "Robot Uprising",
        "Nebula", "Warp Drive", "Asteroid Belt", "Cosmic Voyage", "Lunar Base", "Mars Colony",
    ],
    "Romance": [
        "Love Letters", "The Wedding", "Heartstrings", "Summer Romance", "First Kiss",
        "Valentine", "The Bride", "Sweethearts", "Passion in Paris", "The Couple",
        "Date Night", "Engagement",
    ],
    "Cooking": [
        "Pasta Kitchen", "Secret Recipes", "The Chef", "Baking Bread", "Soup Season",
        "Dessert Masters", "Grill Night", "Spice Market", "Sourdough", "Sauce Boss",
        "Pastry School", "Street Food",
    ],
}  # fmt: skip
DESCRIPTIONS = {
    "Sci-Fi": "A science fiction adventure in outer space with spaceships, aliens and planets.",
    "Romance": "A romantic love story about a couple falling in love and getting married.",
    "Cooking": "A cooking show about food, recipes, chefs and delicious meals in the kitchen.",
}
N_PER_TOPIC_USERS = 15
API_KEY = "test-key-0123456789abcdef"


def make_dataset(seed: int = 0):
    """Synthetic topical data set: 36 items, 45 users, ~10 interactions per user."""
    from lgrec.data.dataset import Dataset

    rng = np.random.default_rng(seed)
    rows, cats = [], []
    for topic, titles in TOPICS.items():
        for t in titles:
            rows.append((f"{topic[:3].lower()}-{len(rows)}", t, f"{t}. {DESCRIPTIONS[topic]}"))
            cats.append([topic, "Drama"] if len(rows) % 4 == 0 else [topic])
    items = pd.DataFrame(rows, columns=["item_id", "title", "description"])
    items["categories"] = cats
    n_topics, per = len(TOPICS), 12
    n_users = n_topics * N_PER_TOPIC_USERS
    topic = np.repeat(np.arange(n_topics), N_PER_TOPIC_USERS)
    own = np.argsort(rng.random((n_users, per)), axis=1)[:, :8] + topic[:, None] * per
    other = rng.integers(0, n_topics * per, size=(n_users, 1))
    item = np.concatenate([own, other], axis=1).ravel()
    user = np.repeat(np.arange(n_users), own.shape[1] + 1)
    df = pd.DataFrame(
        {
            "user": user,
            "item": item,
            "rating": 1.0,
            "timestamp": np.arange(len(item)),
            "event": "click",
        }
    )
    users = [f"u{u}" for u in range(n_users)]
    df = df.drop_duplicates(["user", "item"]).reset_index(drop=True)
    df = df.astype({"user": "int32", "item": "int32", "rating": "float32", "timestamp": "int64"})
    return Dataset(df, items, pd.DataFrame({"user_id": users}), name="synthetic-topics")


AUTH = {"X-API-Key": API_KEY}


def topic_of(item_id: str) -> str:
    return {"sci": "Sci-Fi", "rom": "Romance", "coo": "Cooking"}[item_id[:3]]


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def run_server(bundle: Path, tmp_path: Path, *args: str) -> Iterator[tuple]:
    """``lgrec serve`` on ``bundle`` in a subprocess on a free loopback port (extra CLI
    ``args``); yields ``(process, base url, log file)`` and stops the server afterwards."""
    port = free_port()
    log_path = tmp_path / "server.log"
    env = {**os.environ, "LGREC_API_KEY": API_KEY}
    cmd = [sys.executable, "-m", "lgrec.cli", "serve", "--model", str(bundle), "--port", str(port),
           "--store", str(tmp_path / "server.sqlite"), *args]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield proc, f"http://127.0.0.1:{port}", log_path
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_up(proc, url: str, log: Path, timeout: float = 120) -> None:
    """Wait until the server answers ``/health`` (fail with its log if it exits or hangs)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"lgrec serve exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"lgrec serve not up after {timeout}s:\n{log.read_text()[-3000:]}")
