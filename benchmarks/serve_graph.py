"""Latency of ``/explain`` and ``/recommend`` with and without the graph store (``graph_path``).

Default: MovieLens-100K fold u1. LightGCN is trained on the training part and saved as a
bundle; the same training part is exported into an embedded LadybugDB store
(:func:`lgrec.graphcli.export_dataset`, semantic ``SIMILAR_TO`` links of the item text).
Then, in process through FastAPI's ``TestClient``, ``--calls`` requests of each kind are timed:

* ``explain``: ``GET /explain`` without the store, and with it (+ its paths);
* ``recommend``: ``GET /recommend`` (full ranking), and ``candidates=graph`` (two-hop items
  ranked by the model).

Prints p50/p99 in milliseconds and writes ``<out>/serve_graph.json``.

    python benchmarks/serve_graph.py [--fold u1] [--users N] [--calls 200]
    python benchmarks/serve_graph.py --smoke      # tiny synthetic data, seconds
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

log = logging.getLogger("bench.serve_graph")


def synthetic(n_users: int = 40, n_items: int = 30, per_user: int = 6, seed: int = 0):
    """A tiny data set with titles (for the smoke run)."""
    from lgrec.data.dataset import Dataset

    rng = np.random.default_rng(seed)
    item = np.concatenate([rng.choice(n_items, per_user, replace=False) for _ in range(n_users)])
    df = pd.DataFrame(
        {
            "user": np.repeat(np.arange(n_users), per_user).astype(np.int32),
            "item": item.astype(np.int32),
            "rating": np.float32(1.0),
            "timestamp": np.arange(len(item), dtype=np.int64),
            "event": "click",
        }
    )
    items = pd.DataFrame(
        {
            "item_id": [f"i{j}" for j in range(n_items)],
            "title": [f"Movie number {j} about topic {j % 3}" for j in range(n_items)],
            "categories": [[f"g{j % 3}"] for j in range(n_items)],
        }
    )
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(n_users)]})
    return Dataset(df, items, users, name="synthetic")


def load(args: argparse.Namespace):
    """The training interactions to serve (ML-100K fold, or synthetic with ``--smoke``)."""
    from lgrec.data import load_dataset
    from lgrec.graphcli import train_part

    if args.smoke:
        return synthetic()
    ds = train_part(load_dataset("ml-100k", data_dir=args.data_dir, fold=args.fold))
    if args.users:
        ds = ds.subset((ds.interactions["user"] < args.users).to_numpy(), name=ds.name)
    return ds


def timed(client, path: str, params: list[dict]) -> np.ndarray:
    """Milliseconds of each request (all must answer 200)."""
    for p in params[:5]:  # warm-up
        client.get(path, params=p)
    out = np.empty(len(params))
    for n, p in enumerate(params):
        t0 = time.perf_counter()
        r = client.get(path, params=p)
        out[n] = (time.perf_counter() - t0) * 1e3
        if r.status_code != 200:
            raise SystemExit(f"{path} {p}: {r.status_code} {r.text[:300]}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--fold", default="u1")
    p.add_argument("--data-dir")
    p.add_argument("--users", type=int, help="keep only the first N users (quick runs)")
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--similar-k", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--smoke", action="store_true", help="tiny synthetic data, 2 epochs")
    p.add_argument("--out", default="runs/bench-serve-graph")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for name in ("httpx", "httpx2"):  # one line per request otherwise
        logging.getLogger(name).setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
    from fastapi.testclient import TestClient

    from lgrec.graphcli import export_dataset
    from lgrec.models.lightgcn import LightGCN
    from lgrec.pipeline import save_bundle
    from lgrec.serve.app import ServeSettings, create_app
    from lgrec.store import open_graph_store

    ds = load(args)
    epochs = 2 if args.smoke else args.epochs
    log.info("training LightGCN on %s for %d epochs", ds.summary(), epochs)
    model = LightGCN(dim=64, n_layers=3, epochs=epochs, batch_size=2048, lr=0.005, seed=0)
    model.fit(ds)
    rng = np.random.default_rng(0)
    active = np.unique(ds.interactions["user"].to_numpy())
    users = ds.users["user_id"].astype(str).to_numpy()[rng.choice(active, args.calls)]
    items = ds.items["item_id"].astype(str).to_numpy()[rng.integers(0, ds.n_items, args.calls)]
    rec = [{"user": u, "k": 10} for u in users]
    runs = {
        "explain": ("/explain", [{"user": u, "item": i} for u, i in zip(users, items)], {}),
        "recommend": ("/recommend", rec, {}),
        "recommend candidates=graph": ("/recommend", rec, {"candidates": "graph"}),
    }
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        bundle = save_bundle(model, ds, Path(tmp) / "bundle")
        store = open_graph_store("ladybug", path=Path(tmp) / "graph", buffer_pool_size=256 << 20)
        try:
            t0 = time.perf_counter()
            info = export_dataset(ds, store, similar_k=args.similar_k)
            log.info("exported in %.1fs: %s", time.perf_counter() - t0, info)
        finally:
            store.close()
        for graph in (None, str(Path(tmp) / "graph")):
            settings = ServeSettings(
                model=str(bundle),
                store=str(Path(tmp) / f"fb-{graph is None}.sqlite"),
                graph_path=graph,
                threads=args.threads,
            )
            with TestClient(create_app(settings)) as client:
                for name, (path, params, extra) in runs.items():
                    if extra and graph is None:
                        continue
                    ms = timed(client, path, [{**q, **extra} for q in params])
                    key = f"{name} ({'store' if graph else 'no store'})"
                    results[key] = {
                        "p50_ms": float(np.percentile(ms, 50)),
                        "p99_ms": float(np.percentile(ms, 99)),
                        "calls": len(ms),
                    }
    print(f"{ds.summary()}; {args.calls} calls each")
    print(f"{'request':<45} {'p50 ms':>8} {'p99 ms':>8}")
    for key, r in results.items():
        print(f"{key:<45} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "serve_graph.json").write_text(json.dumps({"data": ds.summary(), **results}, indent=1))


if __name__ == "__main__":
    main()
