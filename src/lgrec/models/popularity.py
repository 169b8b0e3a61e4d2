"""Most-popular baseline: every user gets the same ranking by training interaction count.

    score(u, i) = n_i = |{training interactions with item i}|

It is the floor every personalised model has to beat, and what a brand-new user is shown.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lgrec.data.dataset import Dataset
from lgrec.models.base import Recommender, Tensor, register


@register
class Popularity(Recommender):
    """Scores are training interaction counts, identical for every user."""

    name = "popularity"

    def __init__(self) -> None:
        pass

    def fit(self, data: Dataset, *, valid: Dataset | None = None) -> Popularity:
        """Count interactions per item (repeated events count each time)."""
        self._remember(data)
        counts = np.bincount(data.item_ids, minlength=data.n_items).astype(np.float32)
        self.counts_ = torch.from_numpy(counts)
        return self

    def _score_block(self, users: Tensor) -> Tensor:
        return self.counts_.expand(len(users), -1).clone()

    def _state(self) -> dict[str, Tensor]:
        return {**super()._state(), "counts": self.counts_}

    def _load_state(self, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
        super()._load_state(tensors, meta)
        self.counts_ = tensors["counts"]
