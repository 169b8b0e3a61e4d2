"""Worker of tests/train/test_distributed.py, started by ``torchrun -m tests.train.ddp_worker``.

Every process fits LightGCN twice (BPR loss, then sampled softmax) on the planted data set inside
:func:`lgrec.train.distributed.data_parallel`; process 0 writes each model's user and item
embeddings and training log to ``OUT/<model>.safetensors`` / ``.json``. ``--kill-after-epoch K``
kills process 1 with SIGKILL after the K-th epoch of the last model (a crash, for resume tests).
``--check`` also writes ``OUT/checks.json``: the gap between one data-parallel gradient and the
single-process full-batch gradient, and LightGCN fitted with the graph replicated.
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
from lgrec.train.distributed import DataParallel, data_parallel
from lgrec.train.trainer import LoopState, TrainLog
from tests.conftest import make_planted, split_last

COMMON = dict(dim=16, epochs=12, batch_size=128, lr=0.02, eval_every=3, patience=10, seed=0)


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
    ap.add_argument("--checkpoint-dir")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--graph", default="partition")
    ap.add_argument("--kill-after-epoch", type=int)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    planted = make_planted()
    split = split_last(planted)

    def after_epoch(state) -> None:  # dp.loops: the loop running (1 = BPR, 2 = softmax)
        if dp.loops == 2 and state.epoch == args.kill_after_epoch and dist.get_rank() == 1:
            os.kill(os.getpid(), signal.SIGKILL)

    with data_parallel(
        graph=args.graph,
        checkpoint_dir=args.checkpoint_dir,
        resume=args.resume,
        after_epoch=after_epoch,
    ) as dp:
        fit_both(split, Path(args.out))
        if args.check:
            gap = gradient_gap(split.train.matrix("binary"))
            dp.graph = "replicate"
            rep = LightGCN(**COMMON).fit(split.train, valid=split.valid)
            if dist.get_rank() == 0:
                save_file({"user": rep.user_emb_, "item": rep.item_emb_}, Path(args.out) / "rep.st")
                (Path(args.out) / "checks.json").write_text(json.dumps({"gradient_gap": gap}))


if __name__ == "__main__":
    main()
