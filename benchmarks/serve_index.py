"""Candidate retrieval at 10⁵ and 10⁶ items: recall of the FAISS top-100 and /recommend latency.

1. Makes a synthetic BPR-MF bundle per catalogue size (:func:`synthetic_factors`, saved under
   ``runs/bench-index/``; reused when present).
2. **Recall**: for ``--queries`` random users, the top-100 of the serving path with the index
   (:func:`lgrec.serve.index.candidate_scores`, seen items excluded) against the exact top-100
   (:meth:`ServeState.recommend` without index), for each setting in ``--settings``.
3. **Latency in process**: ``ServeState.recommend(k=10)`` exact (the first ``--exact-timed``
   users) and with the index (every user).
4. **Latency over HTTP**: ``lgrec serve --no-text`` (one worker) with and without ``--index
   faiss``; ``GET /recommend?k=10`` for random users, one request at a time after a warm-up;
   ``--runs`` runs of ``--requests`` requests against one server start each, p50 and p99 per
   run. The index comes from the cache filled in step 2, so the server does not rebuild it.

Prints a table and writes ``runs/bench-index/serve_index.json``. The machine may be shared: the
load average is recorded before and after.

    .venv/bin/python benchmarks/serve_index.py [--items 100000,1000000] [--queries 300] \
        [--settings "method=ivf,nprobe=128"] [--serve-setting method=ivf,nprobe=128]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import API_KEY, free_port, start_server, stop_server, wait_up

log = logging.getLogger("serve_index")
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "runs" / "bench-index"
DEFAULT_SETTINGS = (
    "method=ivf,nprobe=16;method=ivf,nprobe=32;method=ivf,nprobe=64;method=ivf,nprobe=128"
)


def synthetic_factors(
    n_items: int, n_users: int, dim: int = 64, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(user factors, item factors, item biases)`` shaped like a trained BPR-MF model.

    ``K = max(32, n_items / 1000)`` taste clusters with centres ``c_k ~ N(0, diag(σ²))``,
    ``σ_j ∝ j^{-1/2}`` (a decaying spectrum, as in trained factors); cluster sizes follow a
    power law. Item ``i`` of cluster ``k``: ``e_i = s_i (c_k + 0.5 ε_i)``, ``ε_i ~ N(0,
    diag(σ²))``, with a popularity ``p_i ~ Pareto(1.2)`` setting its norm ``s_i ∝ p_i^{1/4}``
    and bias ``b_i = 0.1 log p_i`` (popular items score higher for everyone). A user is the
    mean of 1–3 cluster centres plus ``0.5 ε``.
    """
    rng = np.random.default_rng(seed)
    sigma = (np.arange(1, dim + 1) ** -0.5).astype(np.float32)
    sigma /= np.sqrt((sigma**2).sum() / dim)
    k = max(32, n_items // 1000)
    centres = rng.standard_normal((k, dim)).astype(np.float32) * sigma
    size = 1.0 / np.arange(1, k + 1) ** 0.8
    cluster = rng.choice(k, n_items, p=size / size.sum())
    pop = rng.pareto(1.2, n_items) + 1.0
    scale = (pop**0.25 / np.mean(pop**0.25)).astype(np.float32)
    items = np.empty((n_items, dim), dtype=np.float32)
    for start in range(0, n_items, 100_000):  # bounded temporaries
        sl = slice(start, start + 100_000)
        noise = rng.standard_normal((len(items[sl]), dim)).astype(np.float32) * sigma
        items[sl] = (centres[cluster[sl]] + 0.5 * noise) * scale[sl, None]
    n_tastes = rng.integers(1, 4, n_users)
    users = np.stack([centres[rng.choice(k, t, replace=False)].mean(0) for t in n_tastes])
    users += 0.5 * rng.standard_normal((n_users, dim)).astype(np.float32) * sigma
    return users.astype(np.float32), items, (0.1 * np.log(pop)).astype(np.float32)


def make_bundle(path: Path, n_items: int, n_users: int, dim: int) -> Path:
    """A BPR-MF bundle from :func:`synthetic_factors`, 20 seen items per user."""
    if (path / "config.json").is_file():
        return path
    import scipy.sparse as sp
    import torch

    from lgrec.models.mf import BPRMF

    users, items, bias = synthetic_factors(n_items, n_users, dim)
    rng = np.random.default_rng(1)
    rows = np.repeat(np.arange(n_users), 20)
    cols = rng.integers(0, n_items, len(rows))
    seen = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), (n_users, n_items))
    seen.data[:] = 1.0
    m = BPRMF(factors=dim)
    m.n_users_, m.n_items_, m.seen_ = n_users, n_items, seen
    m.user_ids_ = [f"u{k}" for k in range(n_users)]
    m.item_ids_ = [f"i{k}" for k in range(n_items)]
    m.user_factors_ = torch.from_numpy(users)
    m.item_factors_ = torch.from_numpy(items)
    m.item_bias_ = torch.from_numpy(bias)
    log.info("saving a synthetic %d-item bundle to %s", n_items, path)
    return m.save(path)


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1e3, q))


def in_process(
    bundle: Path, settings: list[str], queries: int, exact_timed: int
) -> tuple[dict, list[dict]]:
    """Exact latency, and recall + latency of each index setting (module docstring 2–3)."""
    from lgrec.serve.index import FaissIndex, candidate_scores, parse_index_options
    from lgrec.serve.state import ServeState
    from lgrec.store import FeedbackStore

    with tempfile.TemporaryDirectory() as tmp:
        st = ServeState(bundle, FeedbackStore(Path(tmp) / "f.sqlite"), text="off")
        users = np.random.default_rng(2).choice(st.n_users, queries, replace=False)
        exact, t_exact = {}, []
        for n, u in enumerate(users):
            if n < exact_timed:
                t0 = time.perf_counter()
                st.recommend(int(u), 10)
                t_exact.append(time.perf_counter() - t0)
            exact[int(u)] = set(st.recommend(int(u), 100)[0].tolist())
        rows = []
        V, b = st.V.numpy(), st.b.numpy()
        for text in settings:
            s = parse_index_options(text)
            t0 = time.perf_counter()
            index = FaissIndex(V, b, s, threads=1)
            build = time.perf_counter() - t0
            recall, t_ann = [], []
            for u in users:
                uv, seen = st.user_vector(int(u)).numpy(), st.history(int(u))
                t0 = time.perf_counter()
                candidate_scores(index, uv, V, b, 10, seen)
                t_ann.append(time.perf_counter() - t0)
                top = candidate_scores(index, uv, V, b, 100, seen)[0]
                recall.append(len(exact[int(u)] & set(top.tolist())) / 100)
            rows.append({
                "setting": text, "recall@100": float(np.mean(recall)),
                "recall@100_min": float(np.min(recall)), "build_or_load_s": build,
                "p50_ms": pct(t_ann, 50), "p99_ms": pct(t_ann, 99),
            })  # fmt: skip
            log.info("%s", rows[-1])
        st.close()
    return {"p50_ms": pct(t_exact, 50), "p99_ms": pct(t_exact, 99)}, rows


def over_http(bundle: Path, extra: list[str], n_users: int, requests: int, runs: int) -> list:
    """p50/p99 of sequential ``GET /recommend?k=10`` against one ``lgrec serve`` process,
    ``runs`` times (after 20 warm-up requests)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_server(bundle, Path(tmp) / "f.sqlite", port, 1, ["--no-text", *extra],
                            OUT / "serve_index.log")  # fmt: skip
        try:
            startup = wait_up(proc, url, timeout=1800)
            rng = np.random.default_rng(3)
            out = []
            for run in range(runs):
                times = []
                for k in range(requests + (20 if run == 0 else 0)):
                    t0 = time.perf_counter()
                    user = f"u{rng.integers(n_users)}"
                    req = urllib.request.Request(f"{url}/recommend?user={user}&k=10",
                                                 headers={"X-API-Key": API_KEY})  # fmt: skip
                    with urllib.request.urlopen(req) as r:
                        r.read()
                    if run or k >= 20:
                        times.append(time.perf_counter() - t0)
                out.append({"startup_s": startup, "p50_ms": pct(times, 50),
                            "p99_ms": pct(times, 99), "load": os.getloadavg()[0]})  # fmt: skip
        finally:
            stop_server(proc)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--items", default="100000,1000000", help="catalogue sizes, comma-separated")
    p.add_argument("--users", type=int, default=5000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--queries", type=int, default=300, help="users for recall/latency")
    p.add_argument("--exact-timed", type=int, default=100, help="users timed on the exact path")
    p.add_argument("--settings", default=DEFAULT_SETTINGS, help="';'-separated index options")
    p.add_argument("--serve-setting", default="", help="--index-options of the HTTP runs")
    p.add_argument("--requests", type=int, default=300, help="HTTP requests per run")
    p.add_argument("--runs", type=int, default=3, help="HTTP runs per server (0: no HTTP)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("LGREC_CACHE_DIR", str(OUT / "cache"))
    OUT.mkdir(parents=True, exist_ok=True)
    res: dict = {"load_before": os.getloadavg(), "sizes": {}}
    for n in [int(x) for x in args.items.split(",")]:
        bundle = make_bundle(OUT / f"bprmf-{n}", n, args.users, args.dim)
        exact, rows = in_process(bundle, args.settings.split(";"), args.queries, args.exact_timed)
        http: dict = {"exact": [], "faiss": []}
        if args.runs:
            opts = ["--index-options", args.serve_setting] if args.serve_setting else []
            for kind, extra in (("exact", []), ("faiss", ["--index", "faiss", *opts])):
                http[kind] = over_http(bundle, extra, args.users, args.requests, args.runs)
        res["sizes"][n] = {"exact_in_process": exact, "index": rows, "http": http}
        print(f"\n{n:,} items: exact in process p50 {exact['p50_ms']:.2f} ms, "
              f"p99 {exact['p99_ms']:.2f} ms")  # fmt: skip
        print("| setting | recall@100 (min) | build/load s | p50 ms | p99 ms |")
        for r in rows:
            cells = (
                r["setting"],
                f"{r['recall@100']:.4f} ({r['recall@100_min']:.2f})",
                f"{r['build_or_load_s']:.1f}",
                f"{r['p50_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
            )
            print("| " + " | ".join(cells) + " |")
        for kind, runs in http.items():
            p50 = " / ".join(f"{r['p50_ms']:.2f}" for r in runs)
            p99 = " / ".join(f"{r['p99_ms']:.2f}" for r in runs)
            print(f"HTTP {kind}: p50 {p50} ms; p99 {p99} ms")
    res["load_after"] = os.getloadavg()
    (OUT / "serve_index.json").write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
