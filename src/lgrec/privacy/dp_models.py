"""BPR-MF and LightGCN trained with user-level DP-SGD (:mod:`lgrec.privacy.dp`).

Both are the library's own models — :class:`~lgrec.models.mf.BPRMF` and
:class:`~lgrec.models.lightgcn.LightGCN` — with ``fit`` replaced; scoring, saving, loading
and serving are theirs, so a DP bundle is served, evaluated and retrained like any other.

**dp-bprmf.** Shared θ = item factors and biases ``[q_i | b_i]``; private ``p_u``;
``L_u = mean_{(i,j)} −log σ(p_u·(q_i − q_j) + b_i − b_j) + λ_u ‖p_u‖²`` over the user's
training items ``i`` with one sampled unseen ``j`` each.

**dp-lightgcn.** LightGCN's propagation ``E = mean_l Â^l E⁽⁰⁾`` mixes every user's ego vector
into the item embeddings (and through them into everyone's), and ``Â``'s item degrees count
all users: one user's history reaches every other user's loss, so per-user clipping would not
bound their influence. The DP variant therefore propagates over the *user-local* graph

    P = [[0, D_U⁻¹ R], [0, 0]]:     e_u = ½ (e⁽⁰⁾_u + (1/|N_u|) Σ_{i∈N_u} e⁽⁰⁾_i),   e_i = ½ e⁽⁰⁾_i

(one layer of LightGCN restricted to each user's own neighbourhood, normalised by the user's
own degree; ``P² = 0``). A user's loss then depends on θ = the item ego vectors and on their
own data only, so the DP-SGD argument holds; the cost of the restriction alone is the ε = ∞
row in docs/privacy.md. The final embeddings are computed with
:class:`~lgrec.models.lightgcn.LightGCNNet`'s propagation over ``P``.

Validation data are not used (choosing an epoch on them would spend privacy that is not
accounted); ``epochs`` is fixed, so the refit on train + valid uses the same settings.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from lgrec.data.dataset import Dataset
from lgrec.errors import DataError
from lgrec.graph.bipartite import SparseOperator
from lgrec.models.base import register
from lgrec.models.lightgcn import LightGCN, LightGCNNet
from lgrec.models.mf import BPRMF, _one_thread
from lgrec.privacy.dp import (
    NoisyOptimizer,
    cap_per_owner,
    clipped_sum,
    plan_budget,
    sample_users,
    user_rows,
)
from lgrec.progress import progress
from lgrec.train.sampling import NegativeSampler

log = logging.getLogger(__name__)
Tensor = torch.Tensor

DP_PARAMS = ("epsilon", "delta", "clip", "sample_rate", "epochs", "lr", "user_lr", "reg")


class DPFitMixin:
    """The DP-SGD loop shared by the two models; subclasses give :meth:`_theta_width`,
    :meth:`_user_losses` and :meth:`_finish`."""

    epsilon: float | None
    delta: float
    clip: float
    sample_rate: float
    epochs: float
    lr: float
    user_lr: float
    reg: float
    user_reg: float
    max_pairs: int | None
    optimizer: str
    seed: int

    def _set_params(self, args: dict[str, Any]) -> None:
        """Store the constructor arguments unchanged (scikit-learn style)."""
        for k, v in args.items():
            if k not in ("self", "__class__"):
                setattr(self, k, v)

    def fit(self, data: Dataset, *, valid: Dataset | None = None) -> Any:
        """Train with DP-SGD for ``epochs`` expected passes over the users (``valid`` unused)."""
        with _one_thread():
            return self._dp_fit(data)

    def _dp_fit(self, data: Dataset) -> Any:
        x = self._remember(data)
        if x.nnz == 0:
            raise DataError(f"{type(self).__name__}.fit: data set {data.name!r} is empty")
        budget = plan_budget(self.epsilon, self.delta, self.sample_rate, self.epochs)
        n_u, n_i = x.shape
        rng = np.random.default_rng(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        width, dim = self._theta_width(), self._user_width()
        theta = torch.nn.Parameter(torch.randn(n_i, width, generator=gen) * 0.1)
        users = torch.nn.Parameter(torch.randn(n_u, dim, generator=gen) * 0.1)
        shared = NoisyOptimizer(theta, self.lr, self.reg, gen, self.optimizer)
        own = torch.optim.Adam([users], lr=self.user_lr)
        sampler = NegativeSampler(x, rng)
        expected = self.sample_rate * n_u
        deg = np.diff(x.indptr)
        t0, norms_seen = time.perf_counter(), []
        for _ in progress(range(budget.steps), desc=self.name, total=budget.steps):
            b = sample_users(n_u, self.sample_rate, rng)
            b = b[deg[b] > 0]
            if not len(b):  # an empty sample still releases a noisy step
                shared.step(torch.zeros_like(theta), budget.noise_multiplier, self.clip, expected)
                continue
            owner, pos = user_rows(x, b)
            keep = cap_per_owner(owner, self.max_pairs, rng)
            owner, pos = owner[keep], pos[keep]
            neg = sampler.sample(b[owner], 1).ravel()
            t = (torch.from_numpy(a) for a in (b, owner, pos, neg))
            loss, rows, items, owners = self._user_losses(theta, users, x, *t)
            own.zero_grad(set_to_none=False)
            loss.backward()
            g = torch.cat([r.grad for r in rows])
            clipped, norms = clipped_sum(g, items, owners, len(b), n_i, self.clip)
            norms_seen.append(float(norms.median()))
            shared.step(clipped, budget.noise_multiplier, self.clip, expected)
            own.step()
        self.budget_ = budget
        self.fit_seconds_ = time.perf_counter() - t0
        self.grad_norm_median_ = float(np.median(norms_seen)) if norms_seen else 0.0
        self.best_epoch_ = None
        self._finish(theta.detach(), users.detach(), x)
        log.info(
            "%s: DP-SGD %d steps, σ=%.3f, (ε=%.3g, δ=%g), median per-user grad norm %.3g "
            "(clip %.3g), %.1fs", self.name, budget.steps, budget.noise_multiplier,
            budget.epsilon, budget.delta, self.grad_norm_median_, self.clip, self.fit_seconds_,
        )  # fmt: skip
        return self

    @staticmethod
    def _pair_weights(owner: Tensor, n_owners: int) -> Tensor:
        """1 / (number of pairs of the row's user): the loss of a user is a mean."""
        count = torch.bincount(owner, minlength=n_owners).clamp(min=1).float()
        return 1.0 / count[owner]

    def _dp_meta(self) -> dict[str, Any]:
        b = getattr(self, "budget_", None)
        if b is None:
            return {"dp": None}
        d = b.as_dict()
        d["epsilon"] = None if np.isinf(d["epsilon"]) else d["epsilon"]  # None: no noise (∞)
        return {"dp": d}


def _leaf(theta: Tensor, idx: Tensor) -> Tensor:
    """Rows of θ as a leaf tensor: its gradient is the per-row (so per-user) gradient."""
    return theta.detach()[idx].requires_grad_()


@register
class DPBPRMF(DPFitMixin, BPRMF):
    """BPR-MF with user-level DP-SGD on the item factors and biases (module docstring)."""

    name = "dp-bprmf"

    def __init__(
        self,
        factors: int = 32,
        epochs: float = 30,
        lr: float = 0.01,
        user_lr: float = 0.02,
        reg: float = 1e-4,
        user_reg: float = 1e-3,
        epsilon: float | None = 8.0,
        delta: float = 1e-5,
        clip: float = 0.1,
        sample_rate: float = 0.2,
        max_pairs: int | None = None,
        optimizer: str = "adam",
        seed: int = 0,
    ) -> None:
        self._set_params(locals())

    def _theta_width(self) -> int:
        return int(self.factors) + 1  # [q_i | b_i]

    def _user_width(self) -> int:
        return int(self.factors)

    def _user_losses(self, theta, users, x, b, owner, pos, neg):
        f = int(self.factors)
        ti, tj = _leaf(theta, pos), _leaf(theta, neg)
        p = users[b[owner]]
        diff = (p * (ti[:, :f] - tj[:, :f])).sum(1) + ti[:, f] - tj[:, f]
        w = self._pair_weights(owner, len(b))
        loss = (F.softplus(-diff) * w).sum() + self.user_reg * (p.square().sum(1) * w).sum()
        return loss, [ti, tj], torch.cat([pos, neg]), torch.cat([owner, owner])

    def _finish(self, theta: Tensor, users: Tensor, x: sp.csr_matrix) -> None:
        f = int(self.factors)
        self.user_factors_ = users.clone()
        self.item_factors_ = theta[:, :f].contiguous()
        self.item_bias_ = theta[:, f].contiguous()

    def _meta(self) -> dict[str, Any]:
        return {**super()._meta(), **self._dp_meta()}


@register
class DPLightGCN(DPFitMixin, LightGCN):
    """LightGCN on the user-local graph with user-level DP-SGD (module docstring)."""

    name = "dp-lightgcn"

    def __init__(
        self,
        dim: int = 32,
        epochs: float = 30,
        lr: float = 0.01,
        user_lr: float = 0.02,
        reg: float = 1e-4,
        user_reg: float = 1e-3,
        epsilon: float | None = 8.0,
        delta: float = 1e-5,
        clip: float = 0.05,
        sample_rate: float = 0.2,
        max_pairs: int | None = None,
        optimizer: str = "adam",
        seed: int = 0,
    ) -> None:
        self._set_params(locals())

    def _theta_width(self) -> int:
        return int(self.dim)

    def _user_width(self) -> int:
        return int(self.dim)

    def _user_losses(self, theta, users, x, b, owner, pos, neg):
        nb_owner, nb_item = (torch.from_numpy(a) for a in user_rows(x, b.numpy()))
        tn, ti, tj = _leaf(theta, nb_item), _leaf(theta, pos), _leaf(theta, neg)
        deg = torch.bincount(nb_owner, minlength=len(b)).clamp(min=1).float()[:, None]
        ego = users[b]
        eu = 0.5 * (ego + torch.zeros_like(ego).index_add(0, nb_owner, tn) / deg)
        diff = (eu[owner] * 0.5 * (ti - tj)).sum(1)
        w = self._pair_weights(owner, len(b))
        loss = (F.softplus(-diff) * w).sum() + self.user_reg * ego.square().sum(1).sum() / len(b)
        rows = [tn, ti, tj]
        return loss, rows, torch.cat([nb_item, pos, neg]), torch.cat([nb_owner, owner, owner])

    def _finish(self, theta: Tensor, users: Tensor, x: sp.csr_matrix) -> None:
        n_u, n_i = x.shape
        deg = np.maximum(np.diff(x.indptr), 1).astype(np.float32)
        local = sp.diags(1.0 / deg) @ x
        p = sp.bmat([[None, local], [sp.csr_matrix((n_i, n_u)), None]], format="csr")
        net = LightGCNNet(n_u, n_i, self.dim, n_layers=1)
        with torch.no_grad():
            net.emb.weight.copy_(torch.cat([users, theta]))
            self.user_emb_, self.item_emb_ = (t.clone() for t in net(SparseOperator(p, False)))
        self.net_ = net

    def _meta(self) -> dict[str, Any]:
        return {**super()._meta(), **self._dp_meta()}
