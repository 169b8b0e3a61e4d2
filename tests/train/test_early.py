"""BestKeeper: patience counting and restoring the best weights."""

from __future__ import annotations

import torch
from torch import nn

from lgrec.train.early import BestKeeper


def test_keeps_best_weights_and_stops_after_patience():
    lin = nn.Linear(2, 1)
    keeper = BestKeeper(lin, patience=2, default_epoch=99)
    assert keeper.info(0) == {"valid_rmse": None, "epochs": 0, "best_epoch": 99}
    stops = []
    for epoch, loss in enumerate([1.0, 0.5, 0.7, 0.5 + 1e-6, 0.6], start=1):
        with torch.no_grad():
            lin.weight.fill_(float(epoch))
        stops.append(keeper.update(loss, epoch))
    # epoch 2 is best; epoch 3 fails, epoch 4 is within tol (a failure): stop there
    assert stops[:4] == [False, False, False, True]
    keeper.restore()
    assert float(lin.weight.detach()[0, 0]) == 2.0 and not lin.training
    assert keeper.info(5) == {"valid_rmse": 0.5, "epochs": 5, "best_epoch": 2}
