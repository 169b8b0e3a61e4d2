"""Data-parallel training with real processes: ``torchrun --nproc-per-node=2``, gloo on CPU.

One torchrun run (``reference``) fits LightGCN with the BPR and with the sampled-softmax loss on
the planted data set, the graph split over 2 processes; the tests compare it with one process,
with a run whose graph is replicated, and with a run killed (SIGKILL) after epoch 5 of the
second fit and then resumed.
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
from tests.train.ddp_worker import fit_both

ROOT = Path(__file__).resolve().parents[2]
KILL_AFTER = 5


def torchrun(out: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the worker in 2 processes (cwd = the checkout, so ``tests`` is importable)."""
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
        "-m", "tests.train.ddp_worker", "--out", str(out), *args,
    ]  # fmt: skip
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    res = torchrun(out, "--checkpoint-dir", str(out / "ck"), "--check")
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def own_topic_share(user: torch.Tensor, item: torch.Tensor, seen, k: int = 5) -> float:
    """Share of each user's top-k unseen items that are of the user's planted topic."""
    s = user @ item.T
    s[torch.from_numpy(seen.toarray() > 0)] = -torch.inf
    top = torch.topk(s, k, dim=1).indices.numpy()
    topic = np.repeat(np.arange(3), item.shape[0] // 3)
    return float((topic[top] == (np.arange(len(user)) % 3)[:, None]).mean())


def test_two_processes_reach_the_single_process_quality(reference, planted_split):
    gap = json.loads((reference / "checks.json").read_text())["gradient_gap"]
    assert gap < 1e-5  # one data-parallel step = the single-process full-batch gradient
    single = fit_both(planted_split)
    seen = planted_split.train.matrix("binary")
    for name, model in single.items():
        two = load_file(reference / f"{name}.safetensors")
        q2 = own_topic_share(two["user"], two["item"], seen)
        q1 = own_topic_share(model.user_emb_, model.item_emb_, seen)
        assert q2 > 0.8 and abs(q2 - q1) < 0.1, (name, q1, q2)  # chance is 1/3
        log = json.loads((reference / f"{name}.json").read_text())
        assert log["epochs_run"] == model.train_log_.epochs_run
        assert log["final_loss"] == pytest.approx(model.train_log_.losses[-1], rel=0.2)
    # the whole graph on every process computes the same model as the split graph
    rep, part = load_file(reference / "rep.st"), load_file(reference / "lightgcn.safetensors")
    torch.testing.assert_close(rep["user"], part["user"], atol=1e-4, rtol=1e-3)


def test_killed_run_resumes_to_the_uninterrupted_result(reference, tmp_path):
    ck = tmp_path / "ck"
    res = torchrun(tmp_path, "--checkpoint-dir", str(ck), "--kill-after-epoch", str(KILL_AFTER))
    assert res.returncode != 0 and "SIGKILL" in res.stderr, res.stderr[-3000:]
    _, done = read_checkpoint(ck / "loop1-lightgcn.safetensors")
    _, cut = read_checkpoint(ck / "loop2-lightgcn.safetensors")
    assert done["epoch"] == 12 and cut["epoch"] == KILL_AFTER
    assert not (tmp_path / "softmax.json").exists()

    res = torchrun(tmp_path, "--checkpoint-dir", str(ck), "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    for name in ("lightgcn", "softmax"):
        got, want = (
            load_file(tmp_path / f"{name}.safetensors"),
            load_file(reference / f"{name}.safetensors"),
        )
        for key in want:  # bit for bit: same weights, Adam state, samples and dropout masks
            assert torch.equal(got[key], want[key]), (name, key)
    (last, meta), (ref_last, ref_meta) = (
        read_checkpoint(d / "loop2-lightgcn.safetensors") for d in (ck, reference / "ck")
    )
    assert meta["log"]["losses"] == ref_meta["log"]["losses"]
    for key in ref_last:  # the final epoch's weights, not only the best epoch's
        if key.startswith(("model.", "opt.")):
            assert torch.equal(last[key], ref_last[key]), key
