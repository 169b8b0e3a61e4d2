"""Time a bulk export of a data set into the graph store, then reading it back.

Default: colakg-ml-1m training interactions (801,218) + semantic kNN links of the item text
(title + genres + LLM description, MiniLM; the embeddings are cached after the first run)
into an embedded LadybugDB directory. Also times reading the interactions back
(:meth:`GraphStore.interactions_coo`, checked against the files) and a two-hop query.

    python benchmarks/graph_export.py [--dataset colakg-ml-1m] [--out runs/bench-graph-export]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path

import torch

from lgrec.data import load_dataset
from lgrec.graphcli import export_dataset, store_dataset, train_part
from lgrec.store import open_graph_store
from lgrec.utils import atomic_write_text

log = logging.getLogger("bench.graph_export")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dataset", default="colakg-ml-1m")
    p.add_argument("--data-dir")
    p.add_argument("--similar-k", type=int, default=20)
    p.add_argument("--out", default="runs/bench-graph-export")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    db = out / "graph"
    shutil.rmtree(db, ignore_errors=True)

    t0 = time.perf_counter()
    ds = train_part(load_dataset(args.dataset, data_dir=args.data_dir))
    row = {"dataset": ds.summary(), "read_s": time.perf_counter() - t0}
    store = open_graph_store("ladybug", path=db)
    try:
        t0 = time.perf_counter()
        info = export_dataset(ds, store, similar_k=args.similar_k)
        row["export_total_s"] = time.perf_counter() - t0
        row.update(info)
        t0 = time.perf_counter()
        back = store_dataset(store, ds)
        row["read_back_s"] = time.perf_counter() - t0
        row["read_back_equal"] = bool((back.matrix("count") != ds.matrix("count")).nnz == 0)
        t0 = time.perf_counter()
        top = store.neighbors_two_hop(str(ds.users["user_id"].iloc[0]), k=10)
        row["two_hop_s"] = time.perf_counter() - t0
        row["two_hop_top3"] = top[:3]
    finally:
        store.close()
    row["store_mb"] = sum(f.stat().st_size for f in db.rglob("*") if f.is_file()) / 2**20
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", json.dumps(row, indent=2, default=str))
    print(f"| {args.dataset} | value |\n|---|---|")
    for k, v in row.items():
        print(f"| {k} | {v:,.2f} |" if isinstance(v, float) else f"| {k} | {v} |")


if __name__ == "__main__":
    main()
