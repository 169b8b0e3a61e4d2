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

*Which* cold item gets which level can come from a better cold ranker than the side features
alone. With ``order_by`` (B × C, e.g. the model's blended score, whose graph-filter part places
a cold item among its text neighbours), the levels are kept as a set and handed out in that
order: with v_u(1) ≥ … ≥ v_u(C) the matched levels of user u sorted, and π_u the cold items
sorted by ``order_by`` (descending),

    s_u,π_u(r) := v_u(r),     r = 1 … C.

How many cold items surface at each height is unchanged (it is a property of the side-feature
percentiles); the cold-only ranking becomes that of ``order_by``.

Cost: two sorts of a B × W block per block of B users (W ≤ 4,096 reference warm items), two
more of B × C with ``order_by``; only when cold items exist.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor

__all__ = ["match_percentiles"]


def match_percentiles(
    final_warm: Tensor,
    side_warm: Tensor,
    side_cold: Tensor,
    offset: float = 0.0,
    order_by: Tensor | None = None,
) -> Tensor:
    """Percentile-matched scores of the cold items (B × C).

    ``final_warm`` (B × W) holds the final scores s_uj of the warm (reference) items,
    ``side_warm`` (B × W) and ``side_cold`` (B × C) the side-feature-only scores c_uj and c_ui
    (module docstring). Only these columns are touched, so the cost is two sorts of B × W.
    ``order_by`` (B × C): hand the matched levels out in this order instead (module docstring).
    """
    b, n = final_warm.shape
    if n == 0:
        return side_cold.new_zeros((b, side_cold.shape[1]))
    ref = torch.sort(side_warm, dim=1).values
    rank = torch.searchsorted(ref, side_cold.contiguous())  # warm items strictly below
    if offset:
        rank = rank + round(offset * n)
    target = torch.sort(final_warm, dim=1).values
    levels = torch.gather(target, 1, rank.clamp(0, n - 1))
    if order_by is None:
        return levels
    # stable sorts: ties in order_by keep the item order (deterministic)
    order = torch.sort(order_by, dim=1, descending=True, stable=True).indices
    ranked = torch.sort(levels, dim=1, descending=True).values
    return torch.empty_like(levels).scatter_(1, order, ranked)
