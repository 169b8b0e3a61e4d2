"""Vectorised negative sampling for implicit-feedback training.

A negative for user u is an item j with (u, j) not in the training matrix. Items are drawn
uniformly and collisions are re-drawn in vectorised rounds; membership is tested with a binary
search over the sorted keys ``u · I + j`` of the training pairs, so a batch costs
O(B log nnz) with no Python loop over interactions.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class NegativeSampler:
    """Uniform negatives that avoid each user's training items."""

    def __init__(self, seen: sp.csr_matrix, rng: np.random.Generator, max_rounds: int = 20):
        coo = sp.coo_matrix(seen)
        self.n_items = seen.shape[1]
        self.keys_ = np.unique(coo.row.astype(np.int64) * self.n_items + coo.col.astype(np.int64))
        self.rng = rng
        self.max_rounds = max_rounds

    def is_seen(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Boolean mask: which (user, item) pairs are training interactions."""
        key = users.astype(np.int64) * self.n_items + items.astype(np.int64)
        pos = np.searchsorted(self.keys_, key)
        pos = np.minimum(pos, len(self.keys_) - 1)
        return self.keys_[pos] == key if len(self.keys_) else np.zeros(len(key), dtype=bool)

    def sample(self, users: np.ndarray, n: int = 1) -> np.ndarray:
        """(len(users), n) int64 items, none of them seen by the row's user.

        Rejection rounds handle almost every row; the rare rows still colliding after
        ``max_rounds`` draw exactly from their unseen items. A user who has seen every item
        keeps a random (seen) item.
        """
        u = np.repeat(users.astype(np.int64), n)
        j = self.rng.integers(0, self.n_items, size=len(u))
        for _ in range(self.max_rounds):
            bad = np.flatnonzero(self.is_seen(u, j))
            if not len(bad):
                break
            j[bad] = self.rng.integers(0, self.n_items, size=len(bad))
        else:
            for b in np.flatnonzero(self.is_seen(u, j)):  # rare: dense rows only
                lo, hi = np.searchsorted(
                    self.keys_, [u[b] * self.n_items, (u[b] + 1) * self.n_items]
                )
                free = np.setdiff1d(
                    np.arange(self.n_items), self.keys_[lo:hi] - u[b] * self.n_items
                )
                if len(free):
                    j[b] = self.rng.choice(free)
        return j.reshape(len(users), n)
