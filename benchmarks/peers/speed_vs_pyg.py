"""Time to quality, in one run: lgrec's LightGCN against PyTorch Geometric's LightGCN loop.

Both train on the same ML-100K u1 data (train + valid, the peers' refit data) on the same
machine, one after the other in one invocation of this script, each in a fresh subprocess (so
neither inherits the other's thread pools, allocator state or warm caches), and are scored by
lgrec's metric code on the u1 test fold (ranking all unseen items, as everywhere in
docs/benchmarks.md):

1. PyG: ``torch_geometric.nn.LightGCN`` with the loop of PyG's ``examples/lightgcn.py``
   (:mod:`pyg_lightgcn`), for the example's fixed 100 epochs at its lr 0.001, plus the same
   loop at lr 0.005 (lgrec's default, to give PyG a faster learning rate too). Its test
   NDCG@10 after **every** epoch is recorded with the cumulative training seconds; PyG's time
   to quality is the seconds up to the first epoch at its best value.
2. lgrec: ``LightGCN`` (its defaults: 3 layers, lr 0.005, large batches, no early stopping)
   trained in one run, its test NDCG@10 after every epoch, until it reaches the best PyG
   value; the training seconds to that epoch are the time to quality.

Both sides are checked at the same resolution (every epoch), and on both the clock covers the
same things: building the graph and the model, then the epochs; never the evaluation (on both
sides the clock is paused while the epoch's embeddings are computed and scored) nor one-time
imports (paid before either clock starts). The ratio PyG seconds / lgrec seconds (to the same
or a higher NDCG@10) is the speed-up. Test metrics are used only to measure when a quality
level is reached, never to choose a setting. The load average before the run is printed and
stored (the machine may be shared; speed claims are the median of several runs).

    benchmarks/peers/.venv/bin/python benchmarks/peers/speed_vs_pyg.py [--pyg-graph edge_index]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from common import load_split
from pyg_lightgcn import DEFAULTS, train_lightgcn

from lgrec.eval import evaluate_ranking
from lgrec.models.lightgcn import LightGCN

log = logging.getLogger("speed_vs_pyg")
OUT = Path(__file__).resolve().parents[2] / "runs" / "speed-vs-pyg"


def ndcg10(model, split) -> float:
    return float(evaluate_ranking(model, split.full_train, split.test, ks=(10,))["NDCG@10"])


def pyg_curve(split, lr: float, epochs: int, graph: str) -> list[dict]:
    """(epoch, cumulative training seconds, test NDCG@10) after every epoch.

    The clock runs from before the graph is built to the end of each epoch and is paused
    while the epoch's embeddings are computed and scored.
    """
    cfg = {**DEFAULTS, "lr": lr, "graph": graph}
    curve: list[dict] = []
    spent = [0.0]
    t_last = [time.perf_counter()]

    def on_epoch(epoch: int, scorer) -> bool:
        spent[0] += time.perf_counter() - t_last[0]
        n = ndcg10(scorer(), split)
        curve.append({"epoch": epoch, "train_s": round(spent[0], 2), "NDCG@10": n})
        log.info("PyG lr %g epoch %d: %.1f s, NDCG@10 %.4f", lr, epoch, spent[0], n)
        t_last[0] = time.perf_counter()
        return False

    train_lightgcn(split.full_train, cfg, seed=0, epochs=epochs, on_epoch=on_epoch)
    return curve


class _TargetReachedError(Exception):
    """Raised from inside lgrec's training loop once the target NDCG@10 is reached."""


def lgrec_time_to(split, target: float, max_epochs: int) -> dict:
    """One ``LightGCN()`` run checked after every epoch: the first epoch with test NDCG@10 ≥
    ``target`` and the training seconds to it.

    lgrec's training loop validates after every epoch when asked (``eval_every=1``): the model
    computes its embeddings (``_cache_embeddings``), then scores them (``validation_metrics``).
    Here the first stops the clock and scores the test fold, the second (replaced, returning
    that score) restarts it, so the clock covers the same things as PyG's: the graph, the model
    and the epochs, no evaluation. Early stopping never triggers (``patience = max_epochs``).
    """
    import lgrec.models.lightgcn as lightgcn_module

    rows: list[dict] = []
    clock = {"spent": 0.0, "since": 0.0}

    class Probed(LightGCN):
        def _cache_embeddings(self) -> None:
            clock["spent"] += time.perf_counter() - clock["since"]
            super()._cache_embeddings()
            n = ndcg10(self, split)
            rows.append(
                {"epochs": len(rows) + 1, "train_s": round(clock["spent"], 2), "NDCG@10": n}
            )
            log.info("lgrec epoch %d: %.2f s, NDCG@10 %.4f", len(rows), clock["spent"], n)
            if n >= target:
                raise _TargetReachedError

    def restart_clock(*_args, **_kwargs) -> dict:
        clock["since"] = time.perf_counter()
        return {"Recall@20": rows[-1]["NDCG@10"]}

    lightgcn_module.validation_metrics = restart_clock
    model = Probed(epochs=max_epochs, eval_every=1, patience=max_epochs, seed=0)
    clock["since"] = time.perf_counter()
    try:
        model.fit(split.full_train, valid=split.test)
    except _TargetReachedError:
        return {"reached": True, **rows[-1], "tried": rows}
    # one check per epoch, then fit's own final call (dropped); else the hooks no longer fit
    if len(rows) != max_epochs + 1:
        raise RuntimeError(f"lgrec: {len(rows)} embedding calls for {max_epochs} epochs")
    return {"reached": False, **rows[-2], "tried": rows[:-1]}


def _warm_imports(part: str) -> None:
    """Pay the one-time lazy imports before either clock starts, on both sides alike.

    Building the first ``torch.optim.Adam`` imports ``torch._dynamo`` (2–20 s, depending on
    the load); PyG's ``LightGCN`` and ``gcn_norm`` are imported inside ``train_lightgcn``.
    """
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    if part == "pyg":
        import torch_geometric.nn.conv.gcn_conv  # noqa: F401  (imports torch_geometric.nn)


def _run_part(args: argparse.Namespace, part: str, extra: list[str]) -> dict:
    """Run ``part`` of this script in a fresh Python process; its JSON result."""
    out = OUT / f".{part}.json"
    cmd = [sys.executable, __file__, "--part", part, "--part-out", str(out), *extra]
    cmd += ["--threads", str(args.threads), "--pyg-graph", args.pyg_graph]
    cmd += ["--pyg-epochs", str(args.pyg_epochs)]
    cmd += ["--pyg-lrs", args.pyg_lrs, "--lgrec-max-epochs", str(args.lgrec_max_epochs)]
    subprocess.run(cmd, check=True)
    res = json.loads(out.read_text())
    out.unlink()
    return res


def _pyg_part(args: argparse.Namespace, split) -> dict:
    result: dict = {}
    best = None
    for lr in map(float, args.pyg_lrs.split(",")):
        curve = pyg_curve(split, lr, args.pyg_epochs, args.pyg_graph)
        top = max(curve, key=lambda r: r["NDCG@10"])  # the first epoch at the best value
        result[f"pyg_lr{lr}"] = {"curve": curve, "best": top}
        if best is None or top["NDCG@10"] > best["NDCG@10"]:
            best = {**top, "lr": lr}
    result["pyg_best"] = best
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pyg-epochs", type=int, default=100, help="the example's fixed count")
    p.add_argument("--lgrec-max-epochs", type=int, default=60)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--pyg-lrs", default="0.001,0.005", help="comma-separated learning rates")
    p.add_argument(
        "--pyg-graph",
        choices=["sparse", "edge_index"],
        default="sparse",
        help="sparse: the normalised adjacency built once (5-7x faster, same maths); "
        "edge_index: exactly the example's path",
    )
    p.add_argument("--out", default="speed_vs_pyg.json")
    p.add_argument("--part", choices=["pyg", "lgrec"], help=argparse.SUPPRESS)
    p.add_argument("--part-out", help=argparse.SUPPRESS)
    p.add_argument("--target", type=float, help=argparse.SUPPRESS)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    OUT.mkdir(parents=True, exist_ok=True)
    if args.part:  # one side, in its own process
        torch.set_num_threads(args.threads)
        _warm_imports(args.part)
        split = load_split("ml-100k")
        if args.part == "pyg":
            res = _pyg_part(args, split)
        else:
            res = lgrec_time_to(split, args.target, args.lgrec_max_epochs)
        Path(args.part_out).write_text(json.dumps(res))
        return 0
    result: dict = {"torch_threads": args.threads, "load_before": os.getloadavg()}
    print("load average before the run: {:.2f} {:.2f} {:.2f}".format(*result["load_before"]))
    result["pyg_graph"] = args.pyg_graph
    result.update(_run_part(args, "pyg", []))
    best = result["pyg_best"]
    # PyG's time to its best value: the first checkpoint at that value (its curve's seconds)
    ours = _run_part(args, "lgrec", ["--target", repr(best["NDCG@10"])])
    result["lgrec"] = ours
    result["speedup"] = best["train_s"] / ours["train_s"] if ours["reached"] else None
    result["load_after"] = os.getloadavg()
    (OUT / args.out).write_text(json.dumps(result, indent=2))
    print(
        f"\nPyG LightGCN best: NDCG@10 {best['NDCG@10']:.4f} after {best['epoch']} epochs, "
        f"{best['train_s']:.1f} s of training (lr {best['lr']}, graph {args.pyg_graph})"
    )
    if ours["reached"]:
        print(
            f"lgrec LightGCN: NDCG@10 {ours['NDCG@10']:.4f} after {ours['epochs']} epochs, "
            f"{ours['train_s']:.2f} s of training -> {result['speedup']:.1f}x faster"
        )
    else:
        print(f"lgrec LightGCN did not reach {best['NDCG@10']:.4f} in {ours['epochs']} epochs")
    print(f"wrote {OUT / args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
