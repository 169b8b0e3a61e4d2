"""Serial ``/recommend`` latency as items are added at run time (issue 17, item 5).

Starts ``lgrec serve`` (one worker, text on, rate limit off) on the colakg-ml-1m bundle of
``serve_load.py`` (built there on first use), then, after 0, 250, 500 and 1,000 ``POST /items``
(each placed by its text neighbours), sends ``--requests`` serial ``GET /recommend?k=10`` for
random trained users on one keep-alive connection, ``--rounds`` times, and prints the p50 and
p99 of each round. Before the fix every request looped over the runtime items in Python, so
p50 grew with their number; now it should stay flat. The load average is printed beside the
numbers (the machine may be shared).

    .venv/bin/python benchmarks/serve_items.py [--model lmgcn] [--steps 0,250,500,1000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from serve_load import (
    API_KEY,
    OUT,
    build_bundle,
    free_port,
    start_server,
    stop_server,
    wait_up,
    warm_text_cache,
)

log = logging.getLogger("serve_items")
TOPICS = ("space aliens", "a love story in Paris", "a heist gone wrong", "a haunted house")


def serial_latencies(conn: http.client.HTTPConnection, users: list[str], n: int, seed: int):
    """Milliseconds of ``n`` serial ``/recommend`` requests on one connection."""
    rng = np.random.default_rng(seed)
    out = []
    for u in rng.integers(len(users), size=n):
        t0 = time.perf_counter()
        conn.request("GET", f"/recommend?k=10&user={users[u]}")
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError(f"/recommend answered {r.status}")
        out.append((time.perf_counter() - t0) * 1000)
    return np.asarray(out)


def add_items(conn: http.client.HTTPConnection, start: int, stop: int) -> None:
    hdr = {"Content-Type": "application/json", "X-API-Key": API_KEY}
    for k in range(start, stop):
        body = {
            "item_id": f"runtime-{k}",
            "title": f"Runtime film {k}",
            "description": f"A film about {TOPICS[k % len(TOPICS)]}, number {k}.",
        }
        conn.request("POST", "/items", body=json.dumps(body), headers=hdr)
        r = conn.getresponse()
        r.read()
        if r.status != 201:
            raise RuntimeError(f"POST /items answered {r.status}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=("lightgcn", "lmgcn"), default="lmgcn")
    p.add_argument("--bundle", type=Path, help="default: runs/bench-serve/MODEL-colakg-ml-1m")
    p.add_argument("--steps", default="0,250,500,1000", help="runtime items before each phase")
    p.add_argument("--requests", type=int, default=300, help="serial requests per round")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    bundle = build_bundle(args.bundle or OUT / f"{args.model}-colakg-ml-1m", 2, args.model)
    warm_text_cache(bundle)
    import pandas as pd

    users = pd.read_parquet(bundle / "users.parquet")["user_id"].astype(str).tolist()
    steps = [int(s) for s in args.steps.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        extra = ["--rate-limit", "0"]  # 1,000 creates from one client
        proc = start_server(bundle, Path(tmp) / "s.sqlite", port, 1, extra, OUT / "items.log")
        try:
            wait_up(proc, f"http://127.0.0.1:{port}")
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            serial_latencies(conn, users, 50, seed=99)  # warm-up, not recorded
            have = 0
            for n in steps:
                t0 = time.perf_counter()
                add_items(conn, have, n)
                log.info("%d runtime items (%.1f s to add)", n, time.perf_counter() - t0)
                have = n
                for r in range(args.rounds):
                    load = os.getloadavg()[0]
                    lat = serial_latencies(conn, users, args.requests, seed=r)
                    rows.append((n, r, np.median(lat), np.percentile(lat, 99), load))
                    log.info(
                        "items %d round %d: p50 %.2f ms p99 %.2f ms (load %.1f)",
                        *rows[-1][:4],
                        load,
                    )
            conn.close()
        finally:
            stop_server(proc)
    print(f"\n{args.model} on colakg-ml-1m, 1 worker, {args.requests} serial /recommend per round"
          f" (shared machine: 1-min load average beside each round)")  # fmt: skip
    print(
        "| runtime items | p50 ms (median of rounds) | p50 ms per round | p99 ms per round | load |"
    )
    print("|---:|---:|---|---|---|")
    for n in steps:
        rs = [r for r in rows if r[0] == n]
        p50 = ", ".join(f"{r[2]:.2f}" for r in rs)
        p99 = ", ".join(f"{r[3]:.2f}" for r in rs)
        loads = ", ".join(f"{r[4]:.1f}" for r in rs)
        print(f"| {n} | {np.median([r[2] for r in rs]):.2f} | {p50} | {p99} | {loads} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
