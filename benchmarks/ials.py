"""Implicit ALS (Hu, Koren & Volinsky, ICDM 2008), a compact NumPy baseline with fold-in.

Confidence c_ui = 1 + α r_ui, preference p_ui = [r_ui > 0]; alternating closed-form solves of

    min Σ_ui c_ui (p_ui − x_uᵀ y_i)² + λ (Σ ‖x_u‖² + Σ ‖y_i‖²)

with the Gramian trick: x_u = (YᵀY + α Y_uᵀY_u + λI)⁻¹ (1 + α) Y_uᵀ 1. The same solve folds in
a user who was not trained (a new user's few interactions against the fixed item factors).
``fit`` with a validation matrix picks (λ, α) and the iteration count by validation
Recall@20 from a small grid.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch


class IALS:
    def __init__(self, factors: int = 64, reg: float | None = None, alpha: float | None = None,
                 iterations: int = 10, seed: int = 0):  # fmt: skip
        self.factors, self.reg, self.alpha = factors, reg, alpha
        self.iterations, self.seed = iterations, seed

    def refit_params(self) -> dict[str, Any]:
        return {"factors": self.factors, "reg": self.reg_, "alpha": self.alpha_,
                "iterations": self.iterations, "seed": self.seed}  # fmt: skip

    @staticmethod
    def _solve(r: sp.csr_matrix, other: np.ndarray, reg: float, alpha: float) -> np.ndarray:
        """Each row's factor against the fixed ``other`` factors (the Gramian trick), solved
        in batches of rows with their histories padded to a common length."""
        k = other.shape[1]
        y = torch.from_numpy(np.vstack([other, np.zeros((1, k))]))  # last row: padding
        gram = torch.from_numpy(other.T @ other + reg * np.eye(k))
        n = np.diff(r.indptr)
        out = np.zeros((r.shape[0], k))
        order = np.argsort(n, kind="stable")  # similar lengths share a batch
        start = 0
        while start < len(order):
            length = max(int(n[order[min(start + 255, len(order) - 1)]]), 1)
            b = order[start : start + max(1, min(256, 200_000 // length))]
            start += len(b)
            pad = np.full((len(b), int(n[b].max()) or 1), len(other))
            for j, u in enumerate(b):
                pad[j, : n[u]] = r.indices[r.indptr[u] : r.indptr[u + 1]]
            yu = y[torch.from_numpy(pad)]  # B × L × k, zero rows for padding
            a = gram + alpha * torch.einsum("blk,blm->bkm", yu, yu)
            rhs = (1 + alpha) * yu.sum(1)
            x = torch.linalg.solve(a, rhs)
            x[torch.from_numpy(n[b] == 0)] = 0.0
            out[b] = x.numpy()
        return out

    def _train(self, r: sp.csr_matrix, reg: float, alpha: float, valid: sp.csr_matrix | None):
        rng = np.random.default_rng(self.seed)
        y = rng.normal(0, 0.01, (r.shape[1], self.factors))
        rt = r.T.tocsr()
        best = (-1.0, 0, None, None)
        for it in range(1, self.iterations + 1):
            x = self._solve(r, y, reg, alpha)
            y = self._solve(rt, x, reg, alpha)
            if valid is not None:
                rec = _recall(x, y, r, valid)
                if rec > best[0]:
                    best = (rec, it, x, y)
        if valid is None:
            return x, y, 0.0, self.iterations
        return best[2], best[3], best[0], best[1]

    def fit(self, r: sp.spmatrix, valid: sp.spmatrix | None = None) -> IALS:
        r = sp.csr_matrix(r, dtype=np.float64)
        r.data[:] = 1.0
        regs = [self.reg] if self.reg is not None else [0.1, 1.0, 10.0]
        alphas = [self.alpha] if self.alpha is not None else [1.0, 10.0]
        best = None
        for reg, alpha in itertools.product(regs, alphas):
            v = None if valid is None else sp.csr_matrix(valid)
            x, y, rec, its = self._train(r, reg, alpha, v)
            if best is None or rec > best[0]:
                best = (rec, reg, alpha, its, x, y)
        _, self.reg_, self.alpha_, its, self.user_factors_, self.item_factors_ = best
        self.iterations = its
        return self

    def fold_in(self, rows: sp.spmatrix) -> torch.Tensor:
        """Scores (n × I) of users given only by their interaction ``rows``."""
        r = sp.csr_matrix(rows, dtype=np.float64)
        x = self._solve(r, self.item_factors_, self.reg_, self.alpha_)
        return torch.from_numpy(x @ self.item_factors_.T).float()


def _recall(x: np.ndarray, y: np.ndarray, train: sp.csr_matrix, valid: sp.csr_matrix) -> float:
    users = np.flatnonzero(np.diff(valid.indptr) > 0)
    s = x[users] @ y.T
    c = train[users].tocoo()
    s[c.row, c.col] = -np.inf
    top = np.argpartition(-s, 20, axis=1)[:, :20]
    t = valid[users].toarray() > 0
    return float((np.take_along_axis(t, top, 1).sum(1) / t.sum(1)).mean())
