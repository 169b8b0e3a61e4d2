"""Putting cold items on the warm items' score scale: percentile matching.

A cold item (no interaction yet) is placed from its text and side features, so its score is a
*prediction from less evidence* than a warm item's: regression shrinks it towards the average,
and in a blend with a collaborative filter (which knows nothing of the item) it sinks further.
Ranked among warm items it is then almost never shown, whatever its merit.

Percentile matching compares like with like. For user u let c_ui be the score the model gives
item i *from side features alone* — for a cold item its actual score, for a warm item the score
it would get if it were cold (its graph features replaced by their side-feature placement, its
own entry left out of the neighbour pool). The cold item's percentile among the warm items on
that common footing,

    p_ui = |{j warm : c_uj < c_ui}| / |warm|,

is then mapped to the same percentile of the user's final warm scores s_uj:

    s_ui := Q_u(p_ui),        Q_u = empirical quantile function of {s_uj : j warm}.

A cold item that looks, from text, like the user's best warm items competes with them at
their level; one that looks average lands in the middle. When the cold items are a random
sample of the catalogue, each top-k list holds about as many of them as their share of the
catalogue, ranked by the model — the fair competition content kNN gets for free, but with the
model's cold ranking. ``offset`` (in percentile points) lets an operator favour (> 0) or hold
back (< 0) new items deliberately, e.g. to explore; it is 0 by default.

Cost: two sorts of the B × I_warm score block per block of users, only when cold items exist.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor

__all__ = ["match_percentiles"]


def match_percentiles(
    final: Tensor, side: Tensor, warm: Tensor, cold: Tensor, offset: float = 0.0
) -> Tensor:
    """``final`` (B × I) with the ``cold`` columns replaced by percentile-matched scores.

    ``side`` (B × I) holds the side-feature-only scores c_ui (module docstring), ``warm`` and
    ``cold`` are index tensors of the two item groups. Returns a new tensor.
    """
    out = final.clone()
    if len(cold) == 0 or len(warm) == 0:
        return out
    ref = torch.sort(side[:, warm], dim=1).values  # B × W
    rank = torch.searchsorted(ref, side[:, cold].contiguous())  # warm items strictly below
    n = len(warm)
    if offset:
        rank = rank + round(offset * n)
    idx = rank.clamp(0, n - 1)
    target = torch.sort(final[:, warm], dim=1).values
    out[:, cold] = torch.gather(target, 1, idx)
    return out
