"""``lgrec train --distributed``: the command starts torchrun itself (2 processes, gloo)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from lgrec.cli import main
from lgrec.models import Recommender
from lgrec.train.checkpoint import read_checkpoint
from tests.cli.test_cli import ml_dir  # noqa: F401  (the planted data in ML-100K layout)


def test_train_distributed_starts_torchrun_and_process_0_saves(ml_dir, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "model"
    args = [
        "train", "--distributed", "--nproc-per-node", "2", "--dataset", "ml-100k",
        "--data-dir", str(ml_dir), "--model", "lightgcn", "--param", "lightgcn.dim=8",
        "--param", "lightgcn.epochs=2", "--param", "lightgcn.batch_size=64", "--seed", "3",
        "--out", str(out),
    ]  # fmt: skip
    res = subprocess.run(
        [sys.executable, "-m", "lgrec", *args], capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("trained lightgcn") == 1, res.stdout  # process 0 alone reports
    model = Recommender.load(out)
    assert torch.isfinite(model.score([0, 1])).all()
    # one checkpoint per training loop: the fit on train (early stopping on valid), the refit
    ck = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ck == ["loop1-lightgcn.safetensors", "loop2-lightgcn.safetensors"]
    _, meta = read_checkpoint(out / "checkpoints" / ck[1])
    assert meta["fingerprint"]["world_size"] == 2 and meta["epoch"] >= 1
    # the same command again would overwrite those checkpoints: refused before starting
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("model", "sharded"),
    [
        ("graphfilter", "the top-k singular vectors of the normalised interactions (1 spectrum)"),
        # the ridge statistics, then the graph-position block's and the blended filter's spectra
        ("lmgcn", "(lgrec.train.distributed_ridge); the top-k singular vectors of the "
         "normalised interactions (2 spectra)"),
    ],
)  # fmt: skip
def test_train_distributed_closed_form_models_say_what_is_sharded(ml_dir, tmp_path, model, sharded):  # noqa: F811
    """The closed-form models' sums over users run data-parallel: logged, not the warning."""
    args = [
        "train", "--distributed", "--nproc-per-node", "2", "--dataset", "ml-100k", "-v",
        "--data-dir", str(ml_dir), "--model", model, "--no-refit", "--out", str(tmp_path / "m"),
    ]  # fmt: skip
    res = subprocess.run(
        [sys.executable, "-m", "lgrec", *args], capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"{model} on 2 processes: " in res.stderr, res.stderr[-3000:]
    assert f"{sharded} came from each one's users" in res.stderr, res.stderr[-3000:]
    assert "not data-parallel" not in res.stderr
    assert torch.isfinite(Recommender.load(tmp_path / "m").score([0, 1])).all()
