"""Early stopping on a validation loss, keeping the best weights of a module."""

from __future__ import annotations

import copy

from torch import nn


class BestKeeper:
    """Tracks the lowest validation loss of ``module`` and a copy of its weights there.

    ``update(loss, epoch)`` returns ``True`` when ``patience`` checks in a row failed to improve
    on the best by more than ``tol`` (time to stop); ``restore()`` loads the best weights back
    (a no-op when nothing was checked).
    """

    def __init__(self, module: nn.Module, patience: int, default_epoch: int, tol: float = 1e-5):
        self.module, self.patience, self.tol = module, patience, tol
        self.best, self.best_epoch, self.bad = float("inf"), default_epoch, 0
        self.history: list[float] = []
        self._state: dict | None = None

    def update(self, loss: float, epoch: int) -> bool:
        self.history.append(loss)
        if loss < self.best - self.tol:
            self.best, self.best_epoch, self.bad = loss, epoch, 0
            self._state = copy.deepcopy(self.module.state_dict())
            return False
        self.bad += 1
        return self.bad >= self.patience

    def restore(self) -> None:
        if self._state is not None:
            self.module.load_state_dict(self._state)
        self.module.eval()

    def info(self, epochs: int) -> dict:
        """The log dict of a fit: best validation loss (``None`` if never checked), epochs
        run and the best epoch."""
        best = self.best if self.history else None
        return {"valid_rmse": best, "epochs": epochs, "best_epoch": self.best_epoch}
