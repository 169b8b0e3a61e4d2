"""CPU time per ``/recommend`` of the served model, with and without the score cache.

Loads the colakg-ml-1m bundle of ``serve_load.py`` (build it there first) into a
:class:`~lgrec.serve.state.ServeState` twice — with the trained users' precomputed score rows
(:mod:`lgrec.serve.scorecache`) and without (``score_cache_mb=0``: every request multiplies by
the item matrix and runs the graph filter) — and times ``recommend(u, 10)`` for 400 random
trained users with the thread's CPU clock (``time.thread_time``), one torch thread, after 50
unrecorded calls; then stores one feedback event for each of 200 of them and times applying
it (``sync``) and that user's next ``recommend``. CPU time, unlike wall time, hardly depends
on what else runs on a shared machine; the load average is printed anyway.

    .venv/bin/python benchmarks/serve_cpu.py [--bundle runs/bench-serve/lmgcn-colakg-ml-1m]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bundle", type=Path, default=ROOT / "runs/bench-serve/lmgcn-colakg-ml-1m")
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--events", type=int, default=200, help="feedback events, then a request")
    args = p.parse_args()
    from lgrec.serve.state import ServeState
    from lgrec.store.feedback import FeedbackStore

    torch.set_num_threads(1)
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (shared)")
    users = np.random.default_rng(0).integers(1 << 30, size=args.requests)
    for mb in (512.0, 0.0):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            st = ServeState(args.bundle, FeedbackStore(Path(tmp) / "s.sqlite"), score_cache_mb=mb)
            start = time.perf_counter() - t0
            cpu = []
            for u in users % st.n_base_users:
                c0 = time.thread_time()
                st.recommend(int(u), 10)
                cpu.append((time.thread_time() - c0) * 1000)
            fold, after = [], []  # one stored event, then that user's next request
            for k, u in enumerate(users[: args.events] % st.n_base_users):
                st.store.add_event(st.user_ids[u], st.item_ids[k % st.n_base_items], "click")
                c0 = time.thread_time()
                st.sync()
                c1 = time.thread_time()
                st.recommend(int(u), 10)
                fold.append((c1 - c0) * 1000)
                after.append((time.thread_time() - c1) * 1000)
            st.close()
        a = np.asarray(cpu[50:])
        print(f"{st.model.name}, U {tuple(st.U.shape)}, V {tuple(st.V.shape)}, score cache "
              f"{'on' if mb else 'off'}: start {start:.1f} s; recommend CPU median "
              f"{np.median(a):.2f} ms, p99 {np.percentile(a, 99):.2f} ms")  # fmt: skip
        f, r = np.asarray(fold), np.asarray(after)
        print(f"  after one feedback event ({len(f)} users): applying it CPU median "
              f"{np.median(f):.2f} ms, p99 {np.percentile(f, 99):.2f} ms; the user's next "
              f"recommend CPU median {np.median(r):.2f} ms, "
              f"p99 {np.percentile(r, 99):.2f} ms")  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
