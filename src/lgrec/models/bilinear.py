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

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd

__all__ = ["BilinearRidge", "RidgeStatistics"]


@dataclass
class RidgeStatistics:
    """The sufficient statistics of the ridge problem (module docstring), float64.

    ``hth`` = HᵀH and ``hrx`` = HᵀRX are sums over users, ``xtx`` = XᵀX and ``xcx`` =
    Xᵀ diag(c) X sums over items; the statistics of disjoint shards therefore add up to those of
    the whole (``a + b``), which is what makes the fit data-parallel
    (:mod:`lgrec.train.distributed_ridge`). ``n_hist`` leading rows of C = ``hrx`` get the
    leave-one-out correction ``− xcx`` when the solver is built; ``xcx`` is ``None`` without one.
    """

    hth: np.ndarray
    hrx: np.ndarray
    xtx: np.ndarray
    xcx: np.ndarray | None = None
    n_hist: int = 0

    @classmethod
    def of(
        cls,
        h: np.ndarray,
        r: sp.spmatrix,
        x: np.ndarray,
        c: np.ndarray | None = None,
        n_hist: int = 0,
        items: slice = slice(None),
    ) -> RidgeStatistics:
        """Statistics of the users of ``(h, r)`` (rows: the same users) and of the items in
        ``items`` (a slice of the rows of ``x`` and of ``c``; ``hrx`` always uses all of X)."""
        h = np.asarray(h, dtype=np.float64)
        x = np.asarray(x, dtype=np.float64)
        r = sp.csr_matrix(r, dtype=np.float64)
        if h.ndim != 2 or x.ndim != 2 or r.shape != (h.shape[0], x.shape[0]):
            raise ValueError(
                f"BilinearRidge: shapes do not match: h {h.shape}, r {r.shape}, x {x.shape} "
                "(need h U × D_u, r U × I, x I × D_i)"
            )
        if c is not None and n_hist != x.shape[1]:
            raise ValueError("BilinearRidge: n_hist must equal the item feature width")
        xs = x[items]
        xcx = None
        if c is not None:
            c = np.asarray(c, dtype=np.float64)
            if c.shape != (x.shape[0],):
                raise ValueError(f"BilinearRidge: c has shape {c.shape}, need ({x.shape[0]},)")
            xcx = (xs * c[items][:, None]).T @ xs
        hrx = np.asarray((r.T @ h).T) @ x  # HᵀRX, D_u × D_i
        return cls(h.T @ h, hrx, xs.T @ xs, xcx, n_hist)

    def __add__(self, other: RidgeStatistics) -> RidgeStatistics:
        if (other.n_hist, other.xcx is None) != (self.n_hist, self.xcx is None):
            raise ValueError("RidgeStatistics: cannot add statistics of different problems")
        xcx = None if self.xcx is None else self.xcx + other.xcx
        return RidgeStatistics(self.hth + other.hth, self.hrx + other.hrx,
                               self.xtx + other.xtx, xcx, self.n_hist)  # fmt: skip

    def flat(self) -> np.ndarray:
        """Every statistic in one float64 vector (for one all-reduce); :meth:`unflat` inverts."""
        parts = [self.hth, self.hrx, self.xtx] + ([] if self.xcx is None else [self.xcx])
        return np.concatenate([p.ravel() for p in parts])

    def unflat(self, buf: np.ndarray) -> RidgeStatistics:
        """Statistics shaped like these from a vector laid out as :meth:`flat`'s."""
        parts = [p for p in (self.hth, self.hrx, self.xtx, self.xcx) if p is not None]
        if len(buf) != sum(p.size for p in parts):
            raise ValueError(
                f"RidgeStatistics: {len(buf)} numbers for {sum(p.size for p in parts)} statistics"
            )
        out, at = [], 0
        for p in parts:
            out.append(np.asarray(buf[at : at + p.size], dtype=np.float64).reshape(p.shape))
            at += p.size
        return RidgeStatistics(*out[:3], out[3] if len(out) > 3 else None, self.n_hist)


class BilinearRidge:
    """The λ path of the module docstring for fixed ``(H, R, X)``.

    Args:
        h: user features (U × D_u); the first ``n_hist`` columns are the history aggregation
            whose leave-one-out share is removed (pass ``c``).
        r: interactions (U × I, binary CSR).
        x: item features (I × D_i).
        c: c_i of the leave-one-out correction (``None``: no correction).
        n_hist: number of leading columns of ``h`` that aggregate ``x`` (must equal D_i when
            ``c`` is given).

    :meth:`from_statistics` builds the same solver from :class:`RidgeStatistics` summed over
    shards of users and items (the data-parallel fit, :mod:`lgrec.train.distributed_ridge`).
    """

    def __init__(
        self,
        h: np.ndarray,
        r: sp.spmatrix,
        x: np.ndarray,
        c: np.ndarray | None = None,
        n_hist: int = 0,
    ):
        self._setup(RidgeStatistics.of(h, r, x, c, n_hist))

    @classmethod
    def from_statistics(cls, stats: RidgeStatistics) -> BilinearRidge:
        """The solver of the problem whose statistics are ``stats`` (same W*(λ) as the
        constructor on the data the statistics were summed over, to float64 round-off)."""
        du, di = stats.hrx.shape
        want = {"hth": (du, du), "xtx": (di, di), "xcx": (di, di)}
        for name, shape in want.items():
            v = getattr(stats, name)
            if v is not None and v.shape != shape:
                raise ValueError(f"BilinearRidge: {name} has shape {v.shape}, need {shape}")
        if stats.xcx is not None and stats.n_hist != di:
            raise ValueError("BilinearRidge: n_hist must equal the item feature width")
        self = cls.__new__(cls)
        self._setup(stats)
        return self

    def _setup(self, st: RidgeStatistics) -> None:
        """Eigenbases of HᵀH and XᵀX and the rotated cross term (module docstring)."""
        cross = st.hrx.copy()
        if st.xcx is not None:
            cross[: st.n_hist] -= st.xcx
        self.la_, self.qa_ = np.linalg.eigh(st.hth)
        self.lb_, self.qb_ = np.linalg.eigh(st.xtx)
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
