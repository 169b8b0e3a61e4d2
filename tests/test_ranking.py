"""Top-k with ties broken by lower index first (lgrec.ranking.topk_stable)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lgrec.ranking import topk_stable


def brute(row: np.ndarray, k: int) -> list[int]:
    """The reference order: score descending, then index ascending."""
    return sorted(range(len(row)), key=lambda i: (-row[i], i))[:k]


@pytest.mark.parametrize("seed", range(5))
def test_matches_a_stable_sort_on_heavily_tied_scores(seed: int) -> None:
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 3, size=(40, 300)).astype(np.float32)  # ~100 items per value
    s[rng.random(s.shape) < 0.2] = -np.inf  # masked items tie too
    for k in (1, 5, 99, 100, 101, 299, 300):
        v, ix = topk_stable(torch.from_numpy(s), k)
        for r in range(len(s)):
            assert ix[r].tolist() == brute(s[r], k), (r, k)
            assert np.array_equal(v[r].numpy(), s[r, ix[r].numpy()])


def test_untied_order_is_unchanged_and_all_ties_give_lowest_indices() -> None:
    s = torch.randn(8, 1000, generator=torch.Generator().manual_seed(0))
    v, ix = topk_stable(s, 20)
    ref = torch.topk(s, 20, dim=1)
    assert torch.equal(ix, ref.indices) and torch.equal(v, ref.values)
    v, ix = topk_stable(torch.zeros(1000), 10)  # 1-D, every score equal
    assert ix.tolist() == list(range(10)) and v.tolist() == [0.0] * 10


def test_nan_ranks_last_and_k_is_clipped() -> None:
    s = torch.tensor([[1.0, float("nan"), 1.0, 2.0]])
    _, ix = topk_stable(s, 10)
    assert ix.tolist() == [[3, 0, 2, 1]]
    assert topk_stable(s, 0)[1].shape == (1, 0)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        topk_stable(torch.zeros(2, 2, 2), 1)
