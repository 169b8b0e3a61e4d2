"""Top-k with a documented tie rule: higher score first, then **lower index first**.

``torch.topk`` returns tied scores in an unspecified order (it differs between thread counts
and between the sorted and unsorted kernels), and text kNN or popularity produce many exact
ties, so every ranking in lgrec (evaluation, ``recommend``, serving) goes through
:func:`topk_stable`. The rule is a total order on (score, index):

.. math::

    i \\prec j \\iff s_i > s_j \\;\\lor\\; (s_i = s_j \\land i < j)

and the result is the first ``k`` items of that order — exactly what a stable descending sort
of the whole row gives — computed without sorting the row:

1. ``torch.topk`` gives the ``k``-th largest value :math:`t` of each row.
2. A row is *ambiguous* when more items score :math:`\\ge t` than ``k`` (ties at the cut).
   There the ``k`` items are all items with :math:`s > t` plus the lowest-indexed items with
   :math:`s = t` (a cumulative count along the row picks them). Other rows keep topk's set.
3. The ``k`` chosen items are ordered by index, then stably by score (descending).

Cost: one ``topk``, one comparison pass over the block and, for ambiguous rows only, a
cumulative count — no index-dependent epsilon, so non-tied orders never change. NaN scores
rank as :math:`-\\infty`.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["topk_stable"]


def topk_stable(scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """(values, indices) of the ``k`` best entries along the last dimension, best first, ties
    broken by lower index first (module docstring). ``scores`` is 1-D or 2-D; ``k`` is
    clipped to the row length."""
    s = torch.as_tensor(scores)
    one_d = s.dim() == 1
    if one_d:
        s = s.unsqueeze(0)
    if s.dim() != 2:
        raise ValueError(f"topk_stable: scores must be 1-D or 2-D, got shape {tuple(s.shape)}")
    k = min(int(k), s.shape[1])
    if k <= 0 or s.shape[0] == 0:
        v = s[:, :0] if k <= 0 else s[:0, :k]
        ix = torch.zeros(v.shape, dtype=torch.long)
        return (v[0], ix[0]) if one_d else (v, ix)
    if s.is_floating_point() and torch.isnan(s.max()):  # max propagates NaN
        s = torch.nan_to_num(s, nan=-torch.inf, posinf=torch.inf, neginf=-torch.inf)
    n = s.shape[1]
    v, ix = torch.topk(s, min(k + 1, n), dim=1)
    kth = v[:, k - 1 : k]
    ix = ix[:, :k]
    if k < n:  # a row is ambiguous when the (k+1)-th value ties the k-th
        amb = torch.nonzero(v[:, k] == v[:, k - 1]).squeeze(1)
        if len(amb):
            ix[amb] = _lowest_ties(s[amb], kth[amb], k)
    ix = ix.sort(dim=1).values
    v = s.gather(1, ix)
    v, order = v.sort(dim=1, descending=True, stable=True)
    ix = ix.gather(1, order)
    return (v[0], ix[0]) if one_d else (v, ix)


def _lowest_ties(s: Tensor, kth: Tensor, k: int) -> Tensor:
    """Per row, the ``k`` indices made of every item scoring above ``kth`` and the
    lowest-indexed items scoring exactly ``kth`` (unordered).

    One more ``topk`` over a key that is ``n`` above the cut, ``-index`` at the cut and
    ``-inf`` below it: the ``k`` largest keys are exactly those items.
    """
    n = s.shape[1]
    dtype = torch.float32 if n < 2**24 else torch.float64  # -index must be exact
    key = (-torch.arange(n, dtype=dtype)).expand(s.shape[0], n).clone()
    key.masked_fill_(s < kth, -torch.inf)
    key.masked_fill_(s > kth, float(n))
    return torch.topk(key, k, dim=1).indices
