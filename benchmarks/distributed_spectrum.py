"""Wall time of the graph filter's spectrum: 1 process against P processes (torchrun).

The same script runs as one process (``python``) or as P processes (``torchrun``)::

    python benchmarks/distributed_spectrum.py --dataset gowalla --k 256 --repeat 3
    torchrun --standalone --nproc-per-node=2 benchmarks/distributed_spectrum.py \\
        --dataset gowalla --k 256 --repeat 3

On the training split's binary interactions R (as ``lgrec train`` prepares it) it times the top
``k`` singular pairs of R̃ = D_U^{-a} R D_I^{-b}, each run between two barriers on process 0's
clock. One process: ``randomized_svd`` of the whole R̃ (what ``GraphFilter._spectrum`` does in
one process) and :func:`sharded_spectrum` of all users; P processes:
:func:`data_parallel_spectrum` (what it does under ``lgrec train --distributed``: each process
its block of users, one all-reduce per Gram product). Process 0 prints one JSON line per run
with the load average before and after, then the median per method.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_setup import prepared_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--k", type=int, default=256)
    ap.add_argument("--user-exp", type=float, default=0.3)
    ap.add_argument("--item-exp", type=float, default=0.4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data-dir")
    args = ap.parse_args()
    args.seed, args.threads = 0, None
    import torch
    import torch.distributed as dist
    from sklearn.utils.extmath import randomized_svd

    from lgrec.graph.bipartite import normalized_biadjacency
    from lgrec.train.distributed_spectrum import data_parallel_spectrum, sharded_spectrum

    if "RANK" in os.environ:
        dist.init_process_group("gloo")
    _, prep = prepared_run(args, dataset=args.dataset)
    x = prep.split.train.matrix("binary")
    a, b, k = args.user_exp, args.item_exp, args.k
    world = dist.get_world_size() if dist.is_initialized() else 1
    if world > 1:
        methods = {"data_parallel_spectrum": lambda: data_parallel_spectrum(x, k, a, b)[0]}
    else:
        methods = {
            "randomized_svd": lambda: randomized_svd(
                normalized_biadjacency(x, a, b), k, n_iter=6, random_state=0
            )[1],
            "sharded_spectrum (1 shard)": lambda: sharded_spectrum(x, k, a, b)[0],
        }
    mode = f"{world} processes" if world > 1 else f"1 process × {torch.get_num_threads()} threads"
    rank0 = not dist.is_initialized() or dist.get_rank() == 0
    times: dict[str, list[float]] = {}
    for name, fn in methods.items():
        for rep in range(args.repeat):
            if dist.is_initialized():
                dist.barrier()
            load0, t0 = os.getloadavg()[0], time.perf_counter()
            sig = np.asarray(fn()[:3], dtype=float)
            if dist.is_initialized():
                dist.barrier()
            sec = time.perf_counter() - t0
            times.setdefault(name, []).append(sec)
            row = {"dataset": args.dataset, "shape": list(x.shape), "nnz": int(x.nnz), "k": k,
                   "method": name, "mode": mode, "run": rep, "seconds": round(sec, 3),
                   "load_before": load0, "load_after": os.getloadavg()[0],
                   "sigma_top3": np.round(sig, 8).tolist()}  # fmt: skip
            if rank0:
                print(json.dumps(row), flush=True)
    if rank0:
        for name, ts in times.items():
            print(f"{args.dataset} k={k} {mode} {name}: median {statistics.median(ts):.2f} s "
                  f"over {len(ts)} runs ({', '.join(f'{t:.2f}' for t in ts)})")  # fmt: skip
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
