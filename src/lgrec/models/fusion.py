"""The graph-filter blend: a learned scorer fused with a training-free low-pass filter.

With a learned score a_ui and the graph filter's b_ui (:class:`lgrec.models.graphfilter.
GraphFilter`) on their own scales, the blend standardises each per user and adds them,

    ŝ_ui = z_u(a_ui) + λ · z_u(b_ui),        z_u(s) = (s − mean_u s) / std_u s,

with λ chosen on the validation split from a grid (λ = 0 is the learned scorer alone; ties
keep the smaller λ, the simpler model). The filter captures the smooth, infinite-depth part of
the collaborative signal; the learned part adds what the language model knows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from lgrec.data.dataset import Dataset
from lgrec.models.base import Tensor, _standardise
from lgrec.train import validation_grid

log = logging.getLogger(__name__)

__all__ = ["blend", "fit_filter_blend"]


def blend(learned: Tensor, filt: Tensor | None, weight: float) -> Tensor:
    """z(learned) + λ z(filter); the learned scores unchanged when λ = 0 or no filter."""
    if filt is None or weight <= 0:
        return learned
    return _standardise(learned) + weight * _standardise(filt)


def fit_filter_blend(
    learned: Callable[[Tensor], Tensor],
    data: Dataset,
    valid: Dataset | None,
    weights: list[float],
    *,
    params: dict[str, Any] | None,
    item_emb: np.ndarray | None,
    seen: sp.csr_matrix,
    seed: int = 0,
) -> tuple[Any, float, list[dict[str, float]]]:
    """Fit the filter on ``data`` and choose λ on ``valid``.

    ``learned(users)`` returns the learned scores of a block of users. Returns ``(filter or
    None, λ, validation results per λ)``; without a positive weight no filter is fitted, and
    without validation data the largest weight is used.
    """
    from lgrec.models.graphfilter import GraphFilter

    if not any(w > 0 for w in weights):
        return None, 0.0, []
    kw = {"semantic_weight": (0.0, 0.1, 0.3), **(params or {})}
    kw.setdefault("seed", seed)
    if item_emb is None:
        kw["semantic_weight"] = 0.0
    gf = GraphFilter(**kw).fit(data, valid=valid, item_emb=item_emb)
    gf.__dict__.pop("text_emb_", None)  # the fused model keeps the one copy
    if valid is None or not len(valid) or len(weights) == 1:
        return gf, max(weights), []

    def scores(users: Tensor):  # both parts once per block, then every λ
        a, b = learned(users), gf._score_block(users)
        za, zb = _standardise(a), _standardise(b)
        return (za + w * zb if w > 0 else a for w in weights)

    res = validation_grid(scores, len(weights), seen, valid.matrix("binary"), k=20)
    best = int(np.argmax([m["Recall@20"] for m in res]))
    log.info("filter blend λ=%s (valid R@20 %.4f)", weights[best], res[best]["Recall@20"])
    return gf, weights[best], res
