"""Progress reporting: lines with an ETA when stderr is not a terminal, nothing when off."""

from __future__ import annotations

import time

import pytest

from lgrec.progress import format_seconds, note, progress, progress_mode, working


@pytest.fixture()
def lines(monkeypatch):
    monkeypatch.setenv("LGREC_PROGRESS_INTERVAL", "0.01")
    monkeypatch.delenv("LGREC_PROGRESS", raising=False)


def test_a_loop_reports_count_eta_and_end_when_stderr_is_not_a_terminal(lines, capsys):
    assert progress_mode() == "lines"  # capsys' stderr is no terminal
    bar = progress(range(6), desc="epochs", total=6, unit="epochs")
    for i in bar:  # 1.5 s: a ticker started earlier (sleeping ≤ 0.5 s) wakes during the loop
        time.sleep(0.25)
        bar.set_postfix(loss=f"{1 / (i + 1):.2f}")
    err = capsys.readouterr().err.splitlines()
    steps = [ln for ln in err if ln.startswith("lgrec: epochs: ") and "/6 epochs (" in ln]
    assert steps, err
    assert any("ETA" in ln and "[loss=" in ln for ln in steps), steps
    assert err[-1].startswith("lgrec: epochs: done in ")


def test_nested_steps_name_the_outer_step_and_short_work_stays_quiet(lines, capsys, monkeypatch):
    with working("fitting m"):
        for _ in progress(range(3), desc="inner", unit="batches"):
            time.sleep(0.05)
    err = capsys.readouterr().err.splitlines()
    assert any(ln.startswith("lgrec: fitting m › inner: ") for ln in err), err
    assert err[-1].startswith("lgrec: fitting m: done in ")
    monkeypatch.setenv("LGREC_PROGRESS_INTERVAL", "30")  # work far shorter than the interval
    with working("quick"):
        pass
    for _ in progress([1, 2], desc="quick loop"):
        pass
    assert capsys.readouterr().err == ""


def test_off_prints_nothing(monkeypatch, capsys):
    monkeypatch.setenv("LGREC_PROGRESS", "off")
    monkeypatch.setenv("LGREC_PROGRESS_INTERVAL", "0.01")
    with working("x"):
        for _ in progress(range(3), desc="y"):
            time.sleep(0.03)
    note("hello")
    assert capsys.readouterr().err == ""


def test_format_seconds():
    assert [format_seconds(s) for s in (4.24, 42, 185, 3720)] == [
        "4.2 s",
        "42 s",
        "3m05s",
        "1h02m",
    ]


def test_training_reports_batches_inside_a_long_epoch(lines, capsys):
    # one epoch of a large graph can take many minutes: the line must count its batches
    import numpy as np
    import torch

    from lgrec.train.trainer import train_loop

    m = torch.nn.Linear(1, 1)

    def step(idx: np.ndarray) -> torch.Tensor:
        time.sleep(0.1)
        return m.weight.pow(2).sum()

    train_loop(m, step, n_samples=80, epochs=1, batch_size=10, lr=0.1,
               rng=np.random.default_rng(0), desc="toy")  # fmt: skip
    err = capsys.readouterr().err.splitlines()
    head = "lgrec: toy 1/1 › epoch 1: "
    inner = [ln for ln in err if ln.startswith(head) and "/8 batches (" in ln]
    assert any("ETA" in ln for ln in inner), err
