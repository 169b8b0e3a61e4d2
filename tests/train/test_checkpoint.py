"""Training checkpoints: exact round trip, atomic single file, refusal of a different run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributed as dist

from lgrec.errors import ConfigError, ModelFileError
from lgrec.models import LightGCN
from lgrec.train.checkpoint import load_checkpoint, read_checkpoint, rng_state, save_checkpoint
from lgrec.train.distributed import data_parallel
from lgrec.train.trainer import LoopState, TrainLog


def _state(seed: int) -> LoopState:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 1))
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    settings = {"epochs": 5, "batch_size": 2}
    return LoopState(net, opt, np.random.default_rng(seed), TrainLog(), "toy", settings)


def _train(st: LoopState, steps: int) -> None:
    for _ in range(steps):
        x = torch.from_numpy(st.rng.standard_normal((8, 4)).astype(np.float32))
        loss = st.module(x).square().mean() + torch.randn(()) * 0  # draws from torch's RNG
        st.optimizer.zero_grad()
        loss.backward()
        st.optimizer.step()
        st.log.losses.append(float(loss.detach()))


def test_checkpoint_round_trip_continues_identically(tmp_path):
    a = _state(0)
    _train(a, 3)
    a.epoch, a.bad, a.best_state = 3, 1, {k: v.clone() for k, v in a.module.state_dict().items()}
    a.log.valid = [(2, 0.5)]
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, a, [rng_state(a.rng)], world_size=1)
    assert [p.name for p in tmp_path.iterdir()] == ["ck.safetensors"]  # no temp file left
    b = _state(1)  # other weights, RNG and no optimiser state
    load_checkpoint(path, b, rank=0, world_size=1)
    assert (b.epoch, b.bad, b.log.losses, b.log.valid) == (3, 1, a.log.losses, [(2, 0.5)])
    _train(a, 2)
    _train(b, 2)  # same samples, same Adam moments → the same weights, bit for bit
    for (k, va), vb in zip(a.module.state_dict().items(), b.module.state_dict().values()):
        assert torch.equal(va, vb), k
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ModelFileError, match="not a readable lgrec training checkpoint"):
        read_checkpoint(path)


@pytest.fixture()
def one_process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_resume_needs_the_flag_and_the_same_settings(one_process_group, planted_split, tmp_path):
    ck = tmp_path / "ck"
    kw = dict(dim=8, epochs=4, batch_size=64, eval_every=2, seed=0)
    with data_parallel(checkpoint_dir=ck):
        first = LightGCN(**kw).fit(planted_split.train, valid=planted_split.valid)
    with pytest.raises(ConfigError, match="already exists"), data_parallel(checkpoint_dir=ck):
        LightGCN(**kw).fit(planted_split.train, valid=planted_split.valid)
    other = LightGCN(**{**kw, "batch_size": 32})
    with (
        pytest.raises(ConfigError, match="batch_size: checkpoint 64, now 32"),
        data_parallel(checkpoint_dir=ck, resume=True),
    ):
        other.fit(planted_split.train, valid=planted_split.valid)
    with data_parallel(checkpoint_dir=ck, resume=True):  # a finished loop: restored, not rerun
        again = LightGCN(**kw).fit(planted_split.train, valid=planted_split.valid)
    assert torch.equal(again.user_emb_, first.user_emb_)
    assert again.train_log_.losses == first.train_log_.losses
