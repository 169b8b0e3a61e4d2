"""Worker of tests/train/test_distributed.py, started by ``torchrun -m tests.train.ddp_worker``.

Run 1 (``--kill-after-epoch K``):

1. ``ref``: every process fits LightGCN twice (BPR loss, then sampled softmax) on the planted
   data set inside :func:`lgrec.train.distributed.data_parallel`, with checkpoints; process 0
   writes each model's user and item embeddings and training log to ``OUT/ref/<model>.*``,
   the gap between one data-parallel gradient and the single-process full-batch gradient, and
   LightGCN fitted with the graph replicated (``OUT/checks.json``, ``OUT/rep.st``);
2. ``cut``: the same two fits with another checkpoint folder, until process 1 kills itself with
   SIGKILL after epoch K of the second fit (a crash).

Run 2 (``--resume``) resumes ``cut`` from its checkpoints and writes ``OUT/cut/<model>.*`` and
``OUT/resumed.json`` (the epoch each loop's checkpoint held when the run started).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import save_file

from lgrec.graph.bipartite import SparseOperator, normalized_adjacency
from lgrec.models import LightGCN
from lgrec.models.lightgcn import LightGCNNet
from lgrec.train.checkpoint import read_checkpoint
from lgrec.train.distributed import DataParallel, data_parallel
from lgrec.train.trainer import LoopState, TrainLog
from tests.conftest import make_planted, split_last

COMMON = dict(dim=16, epochs=6, batch_size=128, lr=0.02, eval_every=2, patience=10, seed=0)


def fit_both(split, out: Path | None = None) -> dict:
    """Fit both models on ``split`` (also used single-process by the test); write them to ``out``
    from process 0."""
    models = {
        "lightgcn": LightGCN(**COMMON),
        "softmax": LightGCN(**COMMON, loss="softmax", n_neg=4),
    }
    for name, m in models.items():
        m.fit(split.train, valid=split.valid)
        if out is not None and (not dist.is_initialized() or dist.get_rank() == 0):
            out.mkdir(exist_ok=True)
            save_file({"user": m.user_emb_, "item": m.item_emb_}, out / f"{name}.safetensors")
            (out / f"{name}.json").write_text(json.dumps(m.train_log_.as_dict()))
    return models


def gradient_gap(x) -> float:
    """max |g_DDP − g| / max |g| for one BPR step on 200 fixed (u, i, j) triples: g_DDP from the
    hooks (sharded batch, row-partitioned graph, DDP), g from one process on everything."""
    torch.manual_seed(0)
    net = LightGCNNet(x.shape[0], x.shape[1], 8, 3)
    adj = SparseOperator(normalized_adjacency(x))
    rng = np.random.default_rng(0)
    u, i, j = (torch.from_numpy(rng.integers(0, n, 200)) for n in (x.shape[0], *x.shape[1:] * 2))

    def step(idx):
        out = net.propagate(adj)
        eu, ei, ej = out[u[idx]], out[x.shape[0] + i[idx]], out[x.shape[0] + j[idx]]
        return F.softplus(-(eu * (ei - ej)).sum(-1)).mean()

    step(np.arange(200)).backward()
    full = net.emb.weight.grad.clone()
    net.zero_grad()
    hooks = DataParallel()
    state = LoopState(net, torch.optim.Adam(net.parameters()), rng, TrainLog(), "grad", {})
    ddp_step, _ = hooks.begin(state, step, None)
    ddp_step(np.arange(200)).backward()
    hooks.end(state)
    return float((net.emb.weight.grad - full).abs().max() / full.abs().max())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--kill-after-epoch", type=int)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    split = split_last(make_planted())

    def after_epoch(state) -> None:  # dp.loops: the loop running (1 = BPR, 2 = softmax)
        cut = dp.dir == out / "ck-cut" and dp.loops == 2 and dist.get_rank() == 1
        if cut and state.epoch == args.kill_after_epoch:
            os.kill(os.getpid(), signal.SIGKILL)

    with data_parallel(after_epoch=after_epoch) as dp:
        if not args.resume:  # the uninterrupted reference, and the checks
            dp.dir = out / "ck-ref"
            fit_both(split, out / "ref")
            gap = gradient_gap(split.train.matrix("binary"))
            dp.dir, dp.graph = None, "replicate"
            rep = LightGCN(**COMMON).fit(split.train, valid=split.valid)
            if dist.get_rank() == 0:
                save_file({"user": rep.user_emb_, "item": rep.item_emb_}, out / "rep.st")
                (out / "checks.json").write_text(json.dumps({"gradient_gap": gap}))
            dp.graph = "partition"
        dp.dir, dp.loops, dp.resume = out / "ck-cut", 0, args.resume
        if args.resume and dist.get_rank() == 0:  # the epochs the loops continue from
            found = {p.name: read_checkpoint(p)[1]["epoch"] for p in dp.dir.iterdir()}
            (out / "resumed.json").write_text(json.dumps(found))
        fit_both(split, out / "cut")


if __name__ == "__main__":
    main()
