"""Prediction heads that sit on top of a ranking model.

* :class:`RatingHead` — explicit ratings with implicit graph feedback and text (SVD++-style):

      r̂_ui = μ + b_u + b_i + (p_u + |N(u)|^{-1/2} Σ_{j∈N(u)} y_j)ᵀ (q_i + W t_i)

  where N(u) are u's training items (the one-hop neighbourhood in the user–item graph), t_i
  the item's language-model embedding and W a learned projection, so items with few or no
  ratings still get a content-based factor. Trained with MSE + L2, early-stopped on validation
  RMSE.
* :func:`fit_click_calibration` — a click probability P(click | u, i) = σ(a ŝ_ui + b) fitted by
  BCE on positives vs sampled negatives (Platt scaling of the ranking score).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from lgrec.data.dataset import Dataset
from lgrec.graph.bipartite import SparseOperator
from lgrec.train.early import BestKeeper


class RatingHead(nn.Module):
    """The SVD++-with-text rating model of the module docstring."""

    def __init__(self, n_users: int, n_items: int, dim: int, text: torch.Tensor | None, mu: float):
        super().__init__()
        self.mu = mu
        self.bu = nn.Parameter(torch.zeros(n_users))
        self.bi = nn.Parameter(torch.zeros(n_items))
        self.p = nn.Parameter(torch.randn(n_users, dim) * 0.01)
        self.q = nn.Parameter(torch.randn(n_items, dim) * 0.01)
        self.y = nn.Parameter(torch.randn(n_items, dim) * 0.01)
        self.register_buffer("text", text if text is not None else torch.zeros(n_items, 0))
        self.w = nn.Linear(self.text.shape[1], dim, bias=False) if self.text.shape[1] else None
        if self.w is not None:
            nn.init.normal_(self.w.weight, std=0.01)

    def factors(self, implicit: SparseOperator) -> tuple[torch.Tensor, torch.Tensor]:
        """User factors (p_u + Σ y_j / sqrt|N(u)|) and item factors (q_i + W t_i)."""
        u = self.p + implicit @ self.y
        i = self.q if self.w is None else self.q + self.w(self.text)
        return u, i

    def forward(self, implicit: SparseOperator, users: torch.Tensor, items: torch.Tensor):
        u, i = self.factors(implicit)
        return self.mu + self.bu[users] + self.bi[items] + (u[users] * i[items]).sum(-1)


def implicit_operator(x: sp.csr_matrix) -> SparseOperator:
    """Row-normalised neighbourhood operator N̄ with N̄_uj = |N(u)|^{-1/2} for j ∈ N(u)."""
    deg = np.asarray(x.sum(1)).ravel()
    inv = np.where(deg > 0, deg, 1.0) ** -0.5
    return SparseOperator(sp.diags(inv.astype(np.float32)) @ x, symmetric=False)


def fit_rating_head(
    train: Dataset,
    valid: Dataset | None,
    text: torch.Tensor | None,
    *,
    dim: int = 64,
    epochs: int = 100,
    lr: float = 0.002,
    reg: float = 0.05,
    batch_size: int = 4096,
    patience: int = 4,
    seed: int = 0,
) -> tuple[RatingHead, SparseOperator, dict]:
    """Train a :class:`RatingHead` on ``train``'s ratings; early-stop on ``valid`` RMSE.

    Returns the head, its implicit-feedback operator and a log dict.
    """
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x = train.matrix("binary")
    op = implicit_operator(x)
    u = torch.tensor(train.user_ids)
    i = torch.tensor(train.item_ids)
    r = torch.tensor(train.ratings)
    batch_size = min(batch_size, max(32, len(r) // 10))  # ≥ 10 steps per epoch on small data
    head = RatingHead(train.n_users, train.n_items, dim, text, float(r.mean()))
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    lo, hi = train.rating_scale or (float(r.min()), float(r.max()))
    vu = vi = vr = None
    if valid is not None and len(valid):
        vu, vi = torch.tensor(valid.user_ids), torch.tensor(valid.item_ids)
        vr = torch.tensor(valid.ratings)
    keeper = BestKeeper(head, patience, epochs)
    epoch = 0
    while epoch < epochs:
        epoch += 1
        head.train()
        perm = torch.randperm(len(r), generator=g)
        for s in range(0, len(r), batch_size):
            b = perm[s : s + batch_size]
            pred = head(op, u[b], i[b])
            uf, itf = head.factors(op)
            penalty = (
                uf[u[b]].pow(2).sum()
                + itf[i[b]].pow(2).sum()
                + head.bu[u[b]].pow(2).sum()
                + head.bi[i[b]].pow(2).sum()
            ) / len(b)
            loss = nn.functional.mse_loss(pred, r[b]) + reg * penalty
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if vr is None:
            continue
        head.eval()
        with torch.no_grad():
            rmse = float(((head(op, vu, vi).clamp(lo, hi) - vr) ** 2).mean().sqrt())
        if keeper.update(rmse, epoch):
            break
    keeper.restore()
    return head, op, keeper.info(epoch)


def fit_click_calibration(
    pos: torch.Tensor, neg: torch.Tensor, steps: int = 200
) -> tuple[float, float]:
    """(a, b) minimising BCE of σ(a s + b) with label 1 on ``pos`` scores and 0 on ``neg``."""
    s = torch.cat([pos, neg]).float()
    y = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))])
    mu, sd = float(s.mean()), float(s.std().clamp(min=1e-6))
    z = (s - mu) / sd
    ab = torch.zeros(2, requires_grad=True)
    opt = torch.optim.LBFGS([ab], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(ab[0] * z + ab[1], y)
        loss.backward()
        return loss

    opt.step(closure)
    a0, b0 = ab.detach().tolist()
    a, b = a0 / sd, b0 - a0 * mu / sd
    return a, b


def fit_category_head(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    regs: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0),
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Item categories from item features (node classification), in closed form.

    ``x`` (I × D) are the features of every item, ``y`` (I × C) their category indicators
    (rows of zeros: unlabelled). On the labelled items, with standardised features Z = U S Vᵀ
    (thin SVD) and targets Ỹ_i = y_i / Σ y_i (each item's categories as a distribution), the
    ridge scores Ŷ = Z (ZᵀZ + ρn I)⁻¹ Zᵀ Ỹ = U diag(s²/(s² + ρn)) Uᵀ Ỹ have the exact
    leave-one-out form (ŷ_i − h_i ỹ_i)/(1 − h_i), h_i = Σ_k U_ik² s_k²/(s_k² + ρn), so ρ is
    chosen by leave-one-out top-1 accuracy at the cost of one SVD. A temperature β fitted on
    the leave-one-out scores (soft cross-entropy) turns scores into probabilities:
    P(c | i) = softmax(β ŷ_i)_c. Returns the weights and bias of the logits β(x W + b) folded
    into ``(W, b)`` and the chosen ρ.
    """
    has = y.sum(1) > 0
    xl = x[has].double()
    mu, sd = xl.mean(0), xl.std(0, correction=0).clamp(min=1e-6)
    z = (xl - mu) / sd
    yl = y[has].double()
    target = yl / yl.sum(1, keepdim=True)
    ym = target.mean(0)
    u, sv, vt = torch.linalg.svd(z, full_matrices=False)
    n = len(z)
    uty = u.T @ (target - ym)
    best = (-1.0, regs[0], None)
    for reg in regs:
        shrink = sv**2 / (sv**2 + reg * n)
        fitted = u @ (shrink[:, None] * uty) + ym
        hii = (u**2 * shrink).sum(1)
        loo = (fitted - hii[:, None] * target) / (1 - hii[:, None]).clamp(min=1e-6)
        acc = float(yl.gather(1, loo.argmax(1, keepdim=True)).gt(0).double().mean())
        if acc > best[0]:
            best = (acc, reg, loo)
    _, reg, loo = best
    beta = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([beta], max_iter=50, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = -(target * torch.log_softmax(beta.exp() * loo, dim=1)).sum(1).mean()
        loss.backward()
        return loss

    opt.step(closure)
    shrink = sv / (sv**2 + reg * n)  # W_z = V diag(s/(s² + ρn)) Uᵀ (Ỹ − ȳ)
    w_z = vt.T @ (shrink[:, None] * uty)
    scale = float(beta.detach().exp())
    w_x = w_z / sd[:, None] * scale
    b = (ym - mu @ (w_z / sd[:, None])) * scale
    return w_x.float(), b.float(), reg
