"""The ``faiss`` step of benchmarks/scale.py: FAISS retrieval against exact scoring on a bundle.

On the LightGCN bundle of a scale (its real users and items, not synthetic factors):

1. **in process** (:func:`recall`): for ``--queries`` random users, recall of the FAISS
   top-100 (the server's default index settings, seen items excluded) against the exact
   top-100 of ``ServeState.recommend``, and the time of a top-10 both ways;
2. **over HTTP**: ``lgrec serve --no-text --workers 1`` without and with ``--index faiss``;
   ``GET /recommend?k=10`` for random users of the bundle, one request at a time after 20
   warm-up requests, ``--runs`` runs of ``--requests`` requests each, p50 and p99 per run (the
   index is loaded from the cache step 1 filled, not rebuilt).

Prints one line ``FAISS {json}`` for scale.py. A latency measurement: run it alone
(``flock /work/notes/suite.lock``).

    .venv/bin/python benchmarks/scale_faiss.py --bundle runs/scale/lightgcn-10x
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_index import pct
from serve_load import API_KEY, free_port, start_server, stop_server, wait_up


def recall(bundle: Path, queries: int) -> dict:
    """Recall@100 of the default FAISS index against exact scoring; top-10 times (ms)."""
    from lgrec.serve.index import FaissIndex, candidate_scores, parse_index_options
    from lgrec.serve.state import ServeState
    from lgrec.store import FeedbackStore

    with tempfile.TemporaryDirectory() as tmp:
        st = ServeState(bundle, FeedbackStore(Path(tmp) / "f.sqlite"), text="off")
        V = st.V.numpy()
        b = None if st.b is None else st.b.numpy()
        t0 = time.perf_counter()
        index = FaissIndex(V, b, parse_index_options(""))
        build = time.perf_counter() - t0
        hits, t_exact, t_ann = [], [], []
        for u in np.random.default_rng(2).choice(st.n_users, queries, replace=False):
            uv, seen = st.user_vector(int(u)).numpy(), st.history(int(u))
            t0 = time.perf_counter()
            st.recommend(int(u), 10)
            t_exact.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            candidate_scores(index, uv, V, b, 10, seen)
            t_ann.append(time.perf_counter() - t0)
            exact = set(st.recommend(int(u), 100)[0].tolist())
            top = candidate_scores(index, uv, V, b, 100, seen)[0]
            hits.append(len(exact & set(top.tolist())) / max(len(exact), 1))
        st.close()
    return {
        "n_items": len(V), "recall@100": round(float(np.mean(hits)), 4),
        "recall@100_min": round(float(np.min(hits)), 2), "index_build_s": round(build, 1),
        "inproc_exact_p50_ms": round(pct(t_exact, 50), 2),
        "inproc_faiss_p50_ms": round(pct(t_ann, 50), 2),
    }  # fmt: skip


def over_http(bundle: Path, users: list[str], extra: list[str], requests: int, runs: int,
              log_file: Path) -> dict:  # fmt: skip
    """p50/p99 (ms) per run of sequential ``GET /recommend?k=10`` for random ``users``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_server(bundle, Path(tmp) / "f.sqlite", port, 1, ["--no-text", *extra],
                            log_file)  # fmt: skip
        try:
            startup = wait_up(proc, url, timeout=1800)
            out = {"startup_s": round(startup, 1), "p50_ms": [], "p99_ms": []}
            for run in range(runs):
                times = []
                for k in range(requests + (20 if run == 0 else 0)):
                    user = urllib.parse.quote(users[rng.integers(len(users))])
                    req = urllib.request.Request(f"{url}/recommend?user={user}&k=10",
                                                 headers={"X-API-Key": API_KEY})  # fmt: skip
                    t0 = time.perf_counter()
                    with urllib.request.urlopen(req) as r:
                        r.read()
                    if run or k >= 20:
                        times.append(time.perf_counter() - t0)
                out["p50_ms"].append(round(pct(times, 50), 2))
                out["p99_ms"].append(round(pct(times, 99), 2))
        finally:
            stop_server(proc)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--queries", type=int, default=300, help="users for recall and latency")
    p.add_argument("--requests", type=int, default=300, help="HTTP requests per run")
    p.add_argument("--runs", type=int, default=3, help="HTTP runs per server")
    args = p.parse_args()
    os.environ.setdefault("LGREC_CACHE_DIR", str(args.bundle.parent / "cache"))
    from lgrec.models import Recommender

    users = [str(u) for u in Recommender.load(args.bundle).user_ids_]
    res = recall(args.bundle, args.queries)
    log = args.bundle.parent / f"faiss-serve-{args.bundle.name}.log"
    for kind, extra in (("exact", []), ("faiss", ["--index", "faiss"])):
        res[f"http_{kind}"] = over_http(args.bundle, users, extra, args.requests, args.runs, log)
    print("FAISS " + json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
