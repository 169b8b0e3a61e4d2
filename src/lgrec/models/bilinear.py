"""Closed-form bilinear ridge regression: the learned layer of LMGCN's linear GNN.

Given user features H (U × D_u), item features X (I × D_i) and the binary interactions R, the
score ŝ_ui = h_u W x_iᵀ is fitted to R in least squares (every cell, observed or not, as in
EASE and other linear autoencoders):

    W* = argmin_W ‖R − H W Xᵀ‖²_F + λ ‖W‖²_F.

With the eigendecompositions HᵀH = Q_a Λ_a Q_aᵀ and XᵀX = Q_b Λ_b Q_bᵀ the normal equations
HᵀH W XᵀX + λW = HᵀRX decouple in the two eigenbases:

    W* = Q_a [ (Q_aᵀ C Q_b) ⊘ (λ_a λ_bᵀ + λ) ] Q_bᵀ,        C = HᵀRX,

so the whole λ path costs two D × D eigendecompositions and one product per λ — no iterative
training, no epochs, no seeds.

**Leave-one-out correction.** When h_u aggregates the user's own items (h_u = w_u Σ_{j∈H(u)} x_j,
:func:`lgrec.models.features.user_history_features`), an observed cell (u, i) would be explained
by x_i itself. Subtracting each item's own share from the cross term,

    C = HᵀRX − [Xᵀ diag(c) X ; 0],        c_i = Σ_{u ∋ i} w_u,

fits every observed (u, i) from the user's *other* items (the analogue of EASE's zero diagonal).

**Rank.** For fast scoring the fitted W is truncated to its top ``rank`` singular triplets,
W ≈ A Σ Bᵀ, giving user vectors H A Σ and item vectors X B, so a score is one dot product of
``rank`` numbers, as in any embedding model.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd

__all__ = ["BilinearRidge"]


class BilinearRidge:
    """The λ path of the module docstring for fixed ``(H, R, X)``.

    Args:
        h: user features (U × D_u); the first ``n_hist`` columns are the history aggregation
            whose leave-one-out share is removed (pass ``c``).
        r: interactions (U × I, binary CSR).
        x: item features (I × D_i); only the rows in ``rows`` (default: all) take part.
        c: c_i of the leave-one-out correction (``None``: no correction).
        n_hist: number of leading columns of ``h`` that aggregate ``x`` (must equal D_i when
            ``c`` is given).
    """

    def __init__(
        self,
        h: np.ndarray,
        r: sp.spmatrix,
        x: np.ndarray,
        c: np.ndarray | None = None,
        n_hist: int = 0,
    ):
        h = np.asarray(h, dtype=np.float64)
        x = np.asarray(x, dtype=np.float64)
        r = sp.csr_matrix(r, dtype=np.float64)
        cross = np.asarray((r.T @ h).T) @ x  # HᵀRX, D_u × D_i
        if c is not None:
            if n_hist != x.shape[1]:
                raise ValueError("BilinearRidge: n_hist must equal the item feature width")
            cross[:n_hist] -= (x * np.asarray(c, dtype=np.float64)[:, None]).T @ x
        self.la_, self.qa_ = np.linalg.eigh(h.T @ h)
        self.lb_, self.qb_ = np.linalg.eigh(x.T @ x)
        self.la_ = np.maximum(self.la_, 0.0)
        self.lb_ = np.maximum(self.lb_, 0.0)
        self.m_ = self.qa_.T @ cross @ self.qb_
        #: the data's scale for λ: mean eigenvalue of HᵀH times that of XᵀX
        self.scale_ = float(max(self.la_.mean() * self.lb_.mean(), 1e-12))

    def solve(self, lam: float) -> np.ndarray:
        """W*(λ), D_u × D_i (float64)."""
        if not lam > 0:
            raise ValueError(f"BilinearRidge: λ must be positive, got {lam!r}")
        core = self.m_ / (np.outer(self.la_, self.lb_) + lam)
        return self.qa_ @ core @ self.qb_.T

    @staticmethod
    def factor(w: np.ndarray, rank: int | None) -> tuple[np.ndarray, np.ndarray | None]:
        """(A Σ, B) with W ≈ A Σ Bᵀ of rank ``rank``; ``(W, None)`` for ``rank=None`` (exact:
        user vectors H W, item vectors X). The randomised SVD is used when ``rank`` is below
        half the smaller side of W."""
        if rank is None:
            return w.astype(np.float32), None
        full = min(w.shape)
        if 2 * int(rank) >= full:
            a, s, bt = np.linalg.svd(w, full_matrices=False)
            r = min(int(rank), full)
            a, s, bt = a[:, :r], s[:r], bt[:r]
        else:  # randomised SVD (Halko et al.): the top triplets at a fraction of the cost
            a, s, bt = randomized_svd(w, int(rank), n_iter=6, random_state=0)
        return (a * s).astype(np.float32), bt.T.astype(np.float32)
