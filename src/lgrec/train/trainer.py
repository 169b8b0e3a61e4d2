"""Minibatch training with early stopping on a validation split carved from training data.

The loop is model-agnostic: a model passes a ``step(batch_index) -> loss`` closure over its
own training pairs and a ``validate() -> float`` closure (higher is better). The best
parameters seen on validation are restored at the end, so the returned module is the one
that would be chosen without ever looking at the test split. Hooks installed with
:func:`lgrec.train.hooks.use_loop_hooks` change how the loop runs (data-parallel, checkpoints).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from lgrec.progress import progress
from lgrec.train.hooks import current_loop_hooks

log = logging.getLogger(__name__)


@dataclass
class TrainLog:
    """What happened during training (kept on the model as ``train_log_``)."""

    epochs_run: int = 0
    best_epoch: int = 0
    best_valid: float = float("nan")
    losses: list[float] = field(default_factory=list)
    valid: list[tuple[int, float]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def seconds_per_epoch(self) -> float:
        return self.seconds / max(1, self.epochs_run)

    def as_dict(self) -> dict:
        return {
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "best_valid": self.best_valid,
            "seconds": round(self.seconds, 3),
            "seconds_per_epoch": round(self.seconds_per_epoch, 4),
            "final_loss": self.losses[-1] if self.losses else None,
        }


@dataclass
class LoopState:
    """What a running loop needs to continue where it stopped (what a checkpoint holds)."""

    module: torch.nn.Module
    optimizer: torch.optim.Optimizer
    rng: np.random.Generator
    log: TrainLog
    desc: str
    settings: dict  # the loop's arguments; a resumed loop must be called with the same
    epoch: int = 0  # epochs completed
    best_state: dict | None = None
    bad: int = 0  # evaluations without improvement
    stopped: bool = False  # early stopping triggered
    show_progress: bool = True  # e.g. one progress bar for several processes


def train_loop(
    module: torch.nn.Module,
    step: Callable[[np.ndarray], torch.Tensor],
    n_samples: int,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    rng: np.random.Generator,
    validate: Callable[[], float] | None = None,
    eval_every: int = 5,
    patience: int = 3,
    weight_decay: float = 0.0,
    desc: str = "train",
) -> TrainLog:
    """Adam over ``module``'s parameters for up to ``epochs`` passes over ``n_samples``.

    Every ``eval_every`` epochs ``validate()`` is called; training stops after ``patience``
    evaluations without improvement and the best state is restored.
    """
    opt = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
    settings = dict(
        n_samples=n_samples, epochs=epochs, batch_size=batch_size, lr=lr,
        eval_every=eval_every, patience=patience, weight_decay=weight_decay,
    )  # fmt: skip
    st = LoopState(module, opt, rng, TrainLog(), desc, settings)
    hooks = current_loop_hooks()
    step, validate = hooks.begin(st, step, validate)
    tl = st.log
    t0 = time.perf_counter() - tl.seconds
    todo = range(st.epoch + 1, epochs + 1) if not st.stopped else range(0)
    # the epochs still to run (all of them unless resumed); off for all but one process
    bar = progress(todo, desc=desc, total=len(todo), unit="epochs", disable=not st.show_progress)
    for epoch in bar:
        module.train()
        perm = hooks.permutation(st, n_samples)
        total, nb = 0.0, 0
        # the batches too: on a large graph one epoch can take many minutes (each batch
        # propagates over the whole graph), and the epoch count alone gives no ETA then
        starts = progress(range(0, n_samples, batch_size), desc=f"epoch {epoch}",
                          unit="batches", disable=not st.show_progress)  # fmt: skip
        for s in starts:
            loss = step(perm[s : s + batch_size])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
            nb += 1
        tl.losses.append(total / max(1, nb))
        tl.epochs_run = st.epoch = epoch
        if validate is not None and (epoch % eval_every == 0 or epoch == epochs):
            module.eval()
            v = float(validate())
            tl.valid.append((epoch, v))
            log.info("%s epoch %d loss %.4f valid %.4f", desc, epoch, tl.losses[-1], v)
            if not v <= tl.best_valid:  # also true for the first (nan) comparison
                tl.best_valid, tl.best_epoch, st.bad = v, epoch, 0
                st.best_state = copy.deepcopy(module.state_dict())
            else:
                st.bad += 1
                st.stopped = st.bad >= patience
        tl.seconds = time.perf_counter() - t0
        hooks.end_epoch(st)
        if st.stopped:
            break
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{tl.losses[-1]:.4f}", valid=f"{tl.best_valid:.4f}")
    if st.best_state is not None:
        module.load_state_dict(st.best_state)
    else:
        tl.best_epoch = tl.epochs_run
    module.eval()
    tl.seconds = time.perf_counter() - t0
    hooks.end(st)
    return tl
