"""Extension points of the training loop: how :func:`lgrec.train.trainer.train_loop` runs.

Models own *what* is trained (their ``step`` and ``validate`` closures); the loop owns the epochs,
the optimiser and early stopping. A caller that must change how the loop runs — data-parallel
over several processes, with checkpoints, … — installs :class:`LoopHooks` around a block of
code, so every ``train_loop`` inside (a model's fit, its refit) runs with them and no model
changes::

    with use_loop_hooks(DataParallel(...)):
        model.fit(data, valid=valid)

The default hooks change nothing. ``LoopState`` holds everything a loop needs to continue where
it stopped, which is what a checkpoint saves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from lgrec.train.trainer import LoopState

Step = Callable[[np.ndarray], torch.Tensor]
Validate = Callable[[], float]


class LoopHooks:
    """No-op hooks; subclasses override what they change."""

    def begin(
        self, state: LoopState, step: Step, validate: Validate | None
    ) -> tuple[Step, Validate | None]:
        """Before the first epoch: may restore ``state`` (resume) and wrap the closures."""
        return step, validate

    def permutation(self, state: LoopState, n: int) -> np.ndarray:
        """The order of the ``n`` training samples in the coming epoch."""
        return state.rng.permutation(n)

    def end_epoch(self, state: LoopState) -> None:
        """After each epoch's update and validation (``state.epoch`` is the epoch just run)."""

    def end(self, state: LoopState) -> None:
        """After the loop, once the best weights are restored."""


_DEFAULT = LoopHooks()
_HOOKS: ContextVar[LoopHooks | None] = ContextVar("lgrec_loop_hooks", default=None)


def current_loop_hooks() -> LoopHooks:
    """The hooks installed by the innermost :func:`use_loop_hooks` (no-op hooks by default)."""
    return _HOOKS.get() or _DEFAULT


@contextmanager
def use_loop_hooks(hooks: LoopHooks) -> Iterator[LoopHooks]:
    """Run every ``train_loop`` of the block with ``hooks``."""
    token = _HOOKS.set(hooks)
    try:
        yield hooks
    finally:
        _HOOKS.reset(token)
