"""Training stage: negative sampling, losses, the early-stopping loop, validation scoring."""

from lgrec.train.losses import bpr_loss, l2, softmax_loss
from lgrec.train.sampling import NegativeSampler
from lgrec.train.trainer import TrainLog, train_loop
from lgrec.train.validation import validation_grid, validation_metrics

__all__ = [
    "NegativeSampler",
    "TrainLog",
    "bpr_loss",
    "l2",
    "softmax_loss",
    "train_loop",
    "validation_grid",
    "validation_metrics",
]
