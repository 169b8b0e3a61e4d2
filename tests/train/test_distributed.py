"""Data-parallel training with real processes: ``torchrun --nproc-per-node=2``, gloo on CPU.

Two torchrun launches (``tests/train/ddp_worker.py``): the first fits LightGCN with the BPR and
the sampled-softmax loss on the planted data set, the graph split over 2 processes, then starts
the same two fits again and is killed (SIGKILL of one process) mid-way through the second; the
second launch resumes from the checkpoints. The tests compare the first fits with one process,
with a run whose graph is replicated, and with the killed-and-resumed run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lgrec.train.checkpoint import read_checkpoint
from tests.train.ddp_worker import COMMON, fit_both

ROOT = Path(__file__).resolve().parents[2]
KILL_AFTER = 3


def torchrun(out: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the worker in 2 processes (cwd = the checkout, so ``tests`` is importable)."""
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
        "-m", "tests.train.ddp_worker", "--out", str(out), *args,
    ]  # fmt: skip
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Output folder of the two launches: killed after the reference, then resumed."""
    out = tmp_path_factory.mktemp("ddp")
    res = torchrun(out, "--kill-after-epoch", str(KILL_AFTER))
    assert res.returncode != 0 and "SIGKILL" in res.stderr, res.stderr[-3000:]
    assert not (out / "cut" / "softmax.json").exists()  # the second fit never finished
    res = torchrun(out, "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def own_topic_share(user: torch.Tensor, item: torch.Tensor, seen, k: int = 5) -> float:
    """Share of each user's top-k unseen items that are of the user's planted topic."""
    s = user @ item.T
    s[torch.from_numpy(seen.toarray() > 0)] = -torch.inf
    top = torch.topk(s, k, dim=1).indices.numpy()
    topic = np.repeat(np.arange(3), item.shape[0] // 3)
    return float((topic[top] == (np.arange(len(user)) % 3)[:, None]).mean())


def test_two_processes_reach_the_single_process_quality(runs, planted_split):
    gap = json.loads((runs / "checks.json").read_text())["gradient_gap"]
    assert gap < 1e-5  # one data-parallel step = the single-process full-batch gradient
    single = fit_both(planted_split)
    seen = planted_split.train.matrix("binary")
    for name, model in single.items():
        two = load_file(runs / "ref" / f"{name}.safetensors")
        q2 = own_topic_share(two["user"], two["item"], seen)
        q1 = own_topic_share(model.user_emb_, model.item_emb_, seen)
        assert q2 > 0.8 and abs(q2 - q1) < 0.1, (name, q1, q2)  # chance is 1/3
        log = json.loads((runs / "ref" / f"{name}.json").read_text())
        assert log["epochs_run"] == model.train_log_.epochs_run == COMMON["epochs"]
        # other negatives, another trajectory: close, not equal (a mis-scaled loss is 2× off)
        assert log["final_loss"] == pytest.approx(model.train_log_.losses[-1], rel=0.5)
    # the whole graph on every process computes the same model as the split graph
    rep, part = load_file(runs / "rep.st"), load_file(runs / "ref" / "lightgcn.safetensors")
    torch.testing.assert_close(rep["user"], part["user"], atol=1e-4, rtol=1e-3)


def test_killed_run_resumes_to_the_uninterrupted_result(runs):
    # the restarted processes found the first fit finished and the second cut after KILL_AFTER
    resumed = json.loads((runs / "resumed.json").read_text())
    assert resumed == {
        "loop1-lightgcn.safetensors": COMMON["epochs"],
        "loop2-lightgcn.safetensors": KILL_AFTER,
    }
    for name in ("lightgcn", "softmax"):
        got = load_file(runs / "cut" / f"{name}.safetensors")
        want = load_file(runs / "ref" / f"{name}.safetensors")
        for key in want:  # bit for bit: same weights, Adam state, samples and dropout masks
            assert torch.equal(got[key], want[key]), (name, key)
    (last, meta), (ref_last, ref_meta) = (
        read_checkpoint(runs / d / "loop2-lightgcn.safetensors") for d in ("ck-cut", "ck-ref")
    )
    assert meta["log"]["losses"] == ref_meta["log"]["losses"]
    for key in ref_last:  # the final epoch's weights, not only the best epoch's
        if key.startswith(("model.", "opt.")):
            assert torch.equal(last[key], ref_last[key]), key
