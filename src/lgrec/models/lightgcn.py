"""LightGCN (He et al., SIGIR 2020): linear propagation over the normalised user–item graph.

With ego embeddings E⁽⁰⁾ ∈ R^{(U+I)×d} and the symmetric-normalised adjacency Â
(:mod:`lgrec.graph.bipartite`), the layers and final embeddings are

    E⁽ˡ⁺¹⁾ = Â E⁽ˡ⁾,        E = Σ_{l=0..L} α_l E⁽ˡ⁾,   α_l = 1 / (L + 1)

and the score of user u for item i is ŝ_ui = e_uᵀ e_i. Training minimises BPR,
-log σ(ŝ_ui - ŝ_uj), or the sampled-softmax (InfoNCE) loss of :mod:`lgrec.train.losses`, plus
λ/2 ‖E⁽⁰⁾_batch‖². The propagation is one sparse CSR matmul per layer; negative sampling is
vectorised; the loop over minibatches is the only Python loop.

:class:`LightGCN` is also the base of the fused :class:`lgrec.models.lmgcn.LMGCN`, which
overrides the ego embeddings (:meth:`_make_net`) and the propagation matrix
(:meth:`_propagation_matrix`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from lgrec.data.dataset import Dataset
from lgrec.errors import ConfigError
from lgrec.graph.bipartite import SparseOperator, normalized_adjacency
from lgrec.models.base import Recommender, Tensor, register
from lgrec.train import (
    NegativeSampler,
    bpr_loss,
    softmax_loss,
    train_loop,
    validation_metrics,
)
from lgrec.utils import seed_everything

log = logging.getLogger(__name__)


class LightGCNNet(nn.Module):
    """Ego embeddings + layer-averaged linear propagation (the math in the module docstring)."""

    def __init__(self, n_users: int, n_items: int, dim: int, n_layers: int):
        super().__init__()
        self.n_users, self.n_items, self.n_layers = n_users, n_items, n_layers
        self.emb = nn.Embedding(n_users + n_items, dim)
        nn.init.normal_(self.emb.weight, std=0.1)

    def ego(self) -> Tensor:
        """E⁽⁰⁾, (U+I) × d."""
        return self.emb.weight

    def propagate(self, adj: SparseOperator, ego: Tensor | None = None) -> Tensor:
        """E = mean of E⁽⁰⁾ … E⁽ᴸ⁾, (U+I) × d, from ``ego`` (default :meth:`ego`)."""
        x = self.ego() if ego is None else ego
        out = x
        for _ in range(self.n_layers):
            x = adj @ x
            out = out + x
        return out / (self.n_layers + 1)

    def forward(self, adj: SparseOperator) -> tuple[Tensor, Tensor]:
        """Final (user, item) embeddings."""
        out = self.propagate(adj)
        return out[: self.n_users], out[self.n_users :]


@register
class LightGCN(Recommender):
    """LightGCN trained with BPR (default) or sampled softmax; see the module docstring.

    Args:
        dim: embedding size d.
        n_layers: propagation depth L.
        epochs: maximum passes over the training interactions.
        batch_size: positives per minibatch; ``None`` = nnz/32 clipped to [2048, 32768], so an
            epoch is ~32 full-graph propagations whatever the data size.
        lr: Adam learning rate.
        reg: λ, L2 on the batch's ego embeddings.
        loss: ``"bpr"`` or ``"softmax"``.
        n_neg: negatives per positive (BPR) or shared sampled negatives per batch (softmax).
        tau: softmax temperature.
        eval_every, patience: early stopping on the validation split (Recall@20).
        seed: the one seed for sampling and initialisation.
    """

    name = "lightgcn"

    def __init__(
        self,
        dim: int = 64,
        n_layers: int = 3,
        epochs: int = 200,
        batch_size: int | None = None,
        lr: float = 0.005,
        reg: float = 1e-4,
        loss: str = "bpr",
        n_neg: int = 1,
        tau: float = 0.2,
        eval_every: int = 5,
        patience: int = 3,
        seed: int = 0,
    ):
        self.dim = dim
        self.n_layers = n_layers
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.reg = reg
        self.loss = loss
        self.n_neg = n_neg
        self.tau = tau
        self.eval_every = eval_every
        self.patience = patience
        self.seed = seed

    # ---- overridable pieces --------------------------------------------------------------
    def _check_params(self) -> None:
        for p in ("dim", "epochs", "batch_size", "n_neg"):
            v = getattr(self, p)
            if p == "batch_size" and v is None:
                continue
            if not isinstance(v, int) or v <= 0:
                raise ConfigError(
                    f"{type(self).__name__}: {p} must be a positive integer, got {v!r}"
                )
        if not isinstance(self.n_layers, int) or self.n_layers < 0:
            raise ConfigError(f"{type(self).__name__}: n_layers must be ≥ 0, got {self.n_layers!r}")
        if self.loss not in ("bpr", "softmax"):
            raise ConfigError(
                f"{type(self).__name__}: loss must be 'bpr' or 'softmax', got {self.loss!r}"
            )
        if not self.lr > 0 or not self.tau > 0 or not self.reg >= 0:
            raise ConfigError(f"{type(self).__name__}: lr and tau must be > 0 and reg ≥ 0")

    def _make_net(self, data: Dataset) -> nn.Module:
        return LightGCNNet(data.n_users, data.n_items, self.dim, self.n_layers)

    def _propagation_matrix(self, x: sp.csr_matrix) -> sp.csr_matrix:
        return normalized_adjacency(x)

    def _extra_loss(self, ue: Tensor, ie: Tensor, users: Tensor, items: Tensor) -> Tensor | None:
        """Hook for auxiliary losses (e.g. LMGCN's category head); ``None`` for none."""
        return None

    def _after_fit(self, data: Dataset, valid: Dataset | None) -> None:
        """Hook run once the best embeddings are known (e.g. extra heads)."""

    # ---- training ------------------------------------------------------------------------
    def fit(self, data: Dataset, *, valid: Dataset | None = None) -> LightGCN:
        """Train on ``data``; early-stop on ``valid`` (a split of training data) when given."""
        self._check_params()
        rng = seed_everything(self.seed)
        x = self._remember(data)
        if x.nnz == 0:
            raise ConfigError(f"{type(self).__name__}.fit: the training data has no interactions")
        self.adj_ = SparseOperator(self._propagation_matrix(x))
        self.net_ = self._make_net(data)
        coo = x.tocoo()
        pu = torch.from_numpy(coo.row.astype(np.int64))
        pi = torch.from_numpy(coo.col.astype(np.int64))
        sampler = NegativeSampler(x, rng)
        n_users, n_items = data.n_users, data.n_items

        def step(idx: np.ndarray) -> Tensor:
            u, i = pu[idx], pi[idx]
            ego = self.net_.ego()
            out = self.net_.propagate(self.adj_, ego)
            if self.loss == "bpr":
                j = torch.from_numpy(sampler.sample(u.numpy(), self.n_neg)).reshape(-1)
            else:  # shared uniform negatives
                j = torch.from_numpy(rng.integers(0, n_items, size=self.n_neg))
            # one gather (and one scatter in backward) for users, positives and negatives
            rows = torch.cat([u, n_users + i, n_users + j])
            eu, ei, ej = F.embedding(rows, out).split([len(u), len(i), len(j)])
            if self.loss == "bpr":
                if self.n_neg == 1:  # s_ui − s_uj = e_uᵀ(e_i − e_j): one product
                    loss = F.softplus(-(eu * (ei - ej)).sum(-1)).mean()
                else:
                    pos = (eu * ei).sum(-1)
                    loss = bpr_loss(pos, (eu[:, None, :] * ej.view(len(u), self.n_neg, -1)).sum(-1))
            else:
                loss = softmax_loss(eu, ei, ej, self.tau, i, j)
                rows = rows[: 2 * len(u)]  # the shared negatives are not regularised
            # ½ Σ_rows ‖e⁽⁰⁾_r‖² / B = ½ Σ_n c_n ‖e⁽⁰⁾_n‖² / B with c_n the count of node n in rows
            c = torch.bincount(rows, minlength=len(ego)).to(ego.dtype)
            reg = (c @ ego.square().sum(1)) / (2 * len(u))
            loss = loss + self.reg * reg
            extra = self._extra_loss(out[:n_users], out[n_users:], u, i)
            return loss if extra is None else loss + extra

        validate = None
        if valid is not None and len(valid):
            vx = valid.matrix("binary")

            def validate() -> float:
                self._cache_embeddings()
                return validation_metrics(self._score_block, x, vx, k=20)["Recall@20"]

        self.train_log_ = train_loop(
            self.net_,
            step,
            len(pi),
            epochs=self.epochs,
            batch_size=self.batch_size or int(np.clip(x.nnz // 32, 2048, 32768)),
            lr=self.lr,
            rng=rng,
            validate=validate,
            eval_every=self.eval_every,
            patience=self.patience,
            desc=self.name,
        )
        self.best_epoch_ = self.train_log_.best_epoch
        self._cache_embeddings()
        self._after_fit(data, valid)
        log.info("%s fitted: %s", self.name, self.train_log_.as_dict())
        return self

    @torch.no_grad()
    def _cache_embeddings(self) -> None:
        self.net_.eval()
        u, i = self.net_(self.adj_)
        if self.loss == "softmax":  # trained on cosine similarity: score with it too
            u, i = nn.functional.normalize(u, dim=1), nn.functional.normalize(i, dim=1)
        self.user_emb_, self.item_emb_ = u.detach().clone(), i.detach().clone()

    # ---- scoring & persistence -------------------------------------------------------------
    def _score_block(self, users: Tensor) -> Tensor:
        return self.user_emb_[users] @ self.item_emb_.T

    def _state(self) -> dict[str, Tensor]:
        return {**super()._state(), "user_emb": self.user_emb_, "item_emb": self.item_emb_}

    def _load_state(self, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
        super()._load_state(tensors, meta)
        self.user_emb_, self.item_emb_ = tensors["user_emb"], tensors["item_emb"]
