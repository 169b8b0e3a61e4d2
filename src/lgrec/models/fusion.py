"""The graph-filter blend: a learned scorer fused with a training-free low-pass filter.

With a learned score a_ui and the graph filter's b_ui (:class:`lgrec.models.graphfilter.
GraphFilter`) on their own scales, the blend standardises each per user and adds them,

    ŝ_ui = z_u(a_ui) + λ · z_u(b_ui),        z_u(s) = (s − mean_u s) / std_u s,

with λ chosen on the validation split from a grid (λ = 0 is the learned scorer alone; ties
keep the smaller λ, the simpler model). λ = ∞ is the filter alone: the ranking of
z_u(a) + λ z_u(b) tends to that of z_u(b) as λ → ∞, so ŝ = z_u(b) (:func:`blend_parts`). With it
in the grid the blend never does worse on validation than the filter it blends in.

The filter captures the smooth, infinite-depth part of the collaborative signal; the learned
part adds what the language model knows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from lgrec.data.dataset import Dataset
from lgrec.models.base import Tensor, _standardise
from lgrec.train import validation_grid

log = logging.getLogger(__name__)

__all__ = ["FILTER_ALONE", "FILTER_WEIGHTS", "blend", "blend_parts", "fit_filter_blend"]

#: the grid point λ = ∞: rank by the graph filter alone (the limit of z(a) + λ z(b))
FILTER_ALONE = math.inf
#: LMGCN's default λ grid: the learned part alone (0), blends, and the filter alone (∞)
FILTER_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, FILTER_ALONE)


def blend_parts(z_learned: Tensor, z_filter: Tensor, weight: float) -> Tensor:
    """ŝ = z(a) + λ z(b) from the standardised parts (rows: users, or one user's vector).

    For λ = ∞, z(b): the filter alone. Where the filter says nothing, a user without history
    (z(b) ≡ 0, e.g. a new user known only from text), the limit's ranking is that of the learned
    part, as for every finite λ, so that row is z(a). The learned part is otherwise not
    touched, so its non-finite entries cannot turn into 0 · ∞."""
    if not math.isinf(weight):
        return z_learned + weight * z_filter
    flat = (z_filter == 0).all(dim=-1, keepdim=True)
    return torch.where(flat, z_learned, z_filter) if bool(flat.any()) else z_filter


def blend(learned: Tensor, filt: Tensor | None, weight: float) -> Tensor:
    """z(learned) + λ z(filter); the learned scores unchanged when λ = 0 or no filter."""
    if filt is None or weight <= 0:
        return learned
    return blend_parts(_standardise(learned), _standardise(filt), weight)


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
    without validation data the largest finite weight is used (∞ only when it is the only one:
    the filter alone is a choice validation has to make).
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
        return gf, max((w for w in weights if math.isfinite(w)), default=FILTER_ALONE), []

    def scores(users: Tensor):  # both parts once per block, then every λ
        a, b = learned(users), gf._score_block(users)
        za, zb = _standardise(a), _standardise(b)
        return (blend_parts(za, zb, w) if w > 0 else a for w in weights)

    res = validation_grid(scores, len(weights), seen, valid.matrix("binary"), k=20)
    best = int(np.argmax([m["Recall@20"] for m in res]))
    log.info("filter blend λ=%s (valid R@20 %.4f)", weights[best], res[best]["Recall@20"])
    return gf, weights[best], res
