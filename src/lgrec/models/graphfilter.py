"""Training-free graph filters (GF-CF family, Shen et al. 2021) extended with a semantic filter.

With the binary interaction matrix R (U × I) and its normalisation R̃ = D_U^{-1/2} R D_I^{-1/2}:

* linear filter (normalised item–item Gram matrix):   s_u^lin = r_u R̃ᵀ R̃
* ideal low-pass filter (top-k right singular vectors V_k of R̃):
                                                     s_u^ideal = r_u D_I^{-1/2} V_k V_kᵀ D_I^{1/2}
* semantic filter (language-model item graph S, symmetric-normalised S̃):
                                                     s_u^sem = r_u S̃
* score:  s_u = s_u^lin + α s_u^ideal + γ s_u^sem

``r_u R̃ᵀ R̃`` is computed as ``(r_u R̃ᵀ) R̃`` per block of users, so no I × I matrix is ever
formed (memory O(block × (U + I) + k × I)). α and γ are picked on the validation split (carved
from training data) from small grids when ``valid`` is given; the final filter uses train +
valid interactions only when ``refit_full`` (the caller passes them) — never the test split.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils.extmath import randomized_svd

from lgrec.data.dataset import Dataset
from lgrec.errors import ConfigError
from lgrec.graph.bipartite import normalized_biadjacency
from lgrec.graph.semantic import normalize_graph, semantic_knn
from lgrec.models.base import Recommender, Tensor, register
from lgrec.train.validation import validation_grid

log = logging.getLogger(__name__)


@register
class GraphFilter(Recommender):
    """GF-CF linear + ideal low-pass filter, plus an optional semantic (text) filter.

    Args:
        k: number of singular vectors of the ideal low-pass term (0 disables it); a tuple is
            a grid searched on validation (one SVD of the largest k serves every value).
        alpha: weight α of the ideal term; a tuple is a grid searched on validation.
        semantic_weight: weight γ of the semantic filter (0 disables it); tuple = grid.
        semantic_k, semantic_threshold: kNN graph over the text embeddings.
        text_model, text_fields: how item text is encoded (when embeddings are not passed).
        seed: for the randomised SVD start vector.
    """

    name = "graphfilter"

    def __init__(
        self,
        k: int | tuple[int, ...] | list[int] = (16, 32, 64, 128, 256),
        alpha: float | tuple[float, ...] | list[float] = (0.1, 0.3, 0.6, 1.0),
        semantic_weight: float | tuple[float, ...] | list[float] = 0.0,
        semantic_k: int = 20,
        semantic_threshold: float = 0.0,
        text_model: str | None = None,
        text_fields: tuple[str, ...] | list[str] = ("title", "categories", "description"),
        seed: int = 0,
    ):
        self.k = k
        self.alpha = alpha
        self.semantic_weight = semantic_weight
        self.semantic_k = semantic_k
        self.semantic_threshold = semantic_threshold
        self.text_model = text_model
        self.text_fields = text_fields
        self.seed = seed

    @property
    def needs_text(self) -> bool:
        """Whether ``fit`` uses item text embeddings (only for a semantic weight > 0)."""
        return any(g > 0 for g in _grid(self.semantic_weight, "semantic_weight"))

    def fit(
        self, data: Dataset, *, valid: Dataset | None = None, item_emb: np.ndarray | None = None
    ) -> GraphFilter:
        """Build the filters from ``data``; choose α, γ on ``valid`` when grids are given."""
        ks = [int(k) for k in _grid(self.k, "k")]
        alphas = _grid(self.alpha, "alpha")
        gammas = _grid(self.semantic_weight, "semantic_weight")
        t0 = time.perf_counter()
        x = self._remember(data)
        self.x_ = x
        rn = normalized_biadjacency(x)
        self.rn_ = rn
        self.rnt_ = rn.T.tocsr()
        di = np.asarray(x.sum(0)).ravel()
        self.di_ = di
        self.vk_ = self._vall = None
        ks = sorted({min(k, min(x.shape) - 1) for k in ks})
        if ks[-1] > 0:
            _, _, vt = randomized_svd(rn, ks[-1], n_iter=6, random_state=self.seed)
            self._vall = torch.from_numpy(vt.T.astype(np.float32))  # I × k_max, by σ desc
            self.vk_ = self._vall
        self.sem_ = None
        if any(g > 0 for g in gammas):
            if item_emb is None:
                from lgrec.text.encoder import TextEncoder

                enc = TextEncoder(self.text_model)
                item_emb = enc.encode(data.item_text(tuple(self.text_fields)))
            self.text_emb_ = torch.as_tensor(np.asarray(item_emb, dtype=np.float32))
            self.text_model_ = self.text_model
            s = semantic_knn(item_emb, k=self.semantic_k, threshold=self.semantic_threshold)
            self.sem_ = normalize_graph(s, "sym").astype(np.float32).tocsr()
        self.alpha_, self.gamma_, self.k_ = alphas[0], gammas[0], ks[-1]
        self.search_ = []
        grid = list(itertools.product(ks if self._vall is not None else [0], alphas, gammas))
        if valid is not None and len(valid) and len(grid) > 1:
            vx = valid.matrix("binary")

            def scores(users: Tensor):  # the components once per block, then every setting
                comp = self._components(users, self._vall)
                return (self._combine(comp, k, a, g) for k, a, g in grid)

            res = validation_grid(scores, len(grid), x, vx, k=20)
            best = (-1.0, grid[0])
            for (k, a, g), m in zip(grid, res):
                r = m["Recall@20"]
                self.search_.append(
                    {"k": k, "alpha": a, "semantic_weight": g, "valid_Recall@20": r}
                )
                if r > best[0]:  # ties keep the earlier (simpler) setting
                    best = (r, (k, a, g))
            log.info(
                "graphfilter chose (k, alpha, semantic_weight) = %s, valid R@20 %.4f",
                best[1],
                best[0],
            )
            self._set(*best[1])
        else:
            self._set(*grid[0])
        self._vall = None
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _set(self, k: int, alpha: float, gamma: float) -> None:
        self.k_, self.alpha_, self.gamma_ = k, alpha, gamma
        if self._vall is not None:
            self.vk_ = self._vall[:, :k].contiguous()

    def _components(
        self, users: Tensor, v: Tensor | None
    ) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor | None]:
        """(linear x R̃ᵀR̃, x D_I^{-1/2} V (B × k_max) or None, semantic x S or None, V)."""
        xb = self.x_[users.numpy()]
        h = np.asarray((xb @ self.rnt_).toarray(), dtype=np.float32)  # B × U
        lin = torch.from_numpy(np.ascontiguousarray((self.rnt_ @ h.T).T))  # B × I
        low = sem = None
        if v is not None:
            with np.errstate(divide="ignore"):
                inv = np.where(self.di_ > 0, self.di_**-0.5, 0.0).astype(np.float32)
            low = torch.from_numpy((xb @ sp.diags(inv)).toarray()) @ v
        if self.sem_ is not None:
            sem = torch.from_numpy(np.asarray((xb @ self.sem_).todense()))
        return lin, low, sem, v

    def _combine(self, comp: tuple, k: int, alpha: float, gamma: float) -> Tensor:
        """s = linear + α · (low[:, :k] V_kᵀ) D_I^{1/2} + γ · semantic."""
        lin, low, sem, v = comp
        s = lin
        if low is not None and alpha > 0 and k > 0:
            ideal = low[:, :k] @ v[:, :k].T * torch.from_numpy(np.sqrt(self.di_).astype(np.float32))
            s = s + alpha * ideal
        if sem is not None and gamma > 0:
            s = s + gamma * sem
        return s

    def _score_block(self, users: Tensor) -> Tensor:
        v = self.vk_ if self.alpha_ > 0 else None
        return self._combine(self._components(users, v), self.k_, self.alpha_, self.gamma_)

    def refit_params(self) -> dict[str, Any]:
        return {
            **self.get_params(),
            "k": self.k_,
            "alpha": self.alpha_,
            "semantic_weight": self.gamma_,
        }

    # ---- persistence: the filters are rebuilt from the stored interactions ----------------
    def _state(self) -> dict[str, Tensor]:
        st = super()._state()
        if self.vk_ is not None:
            st["vk"] = self.vk_
        if self.sem_ is not None:
            st["sem.indptr"] = torch.from_numpy(self.sem_.indptr.astype(np.int64))
            st["sem.indices"] = torch.from_numpy(self.sem_.indices.astype(np.int64))
            st["sem.data"] = torch.from_numpy(self.sem_.data.astype(np.float32))
        return st

    def _meta(self) -> dict[str, Any]:
        return {**super()._meta(), "alpha_": self.alpha_, "gamma_": self.gamma_, "k_": self.k_}

    def _load_state(self, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
        super()._load_state(tensors, meta)
        self.x_ = self.seen_
        self.rn_ = normalized_biadjacency(self.x_)
        self.rnt_ = self.rn_.T.tocsr()
        self.di_ = np.asarray(self.x_.sum(0)).ravel()
        self.vk_ = tensors.get("vk")
        self.alpha_, self.gamma_, self.k_ = meta["alpha_"], meta["gamma_"], meta["k_"]
        self.sem_ = None
        if "sem.indptr" in tensors:
            n = self.n_items_
            self.sem_ = sp.csr_matrix(
                (
                    tensors["sem.data"].numpy(),
                    tensors["sem.indices"].numpy(),
                    tensors["sem.indptr"].numpy(),
                ),
                shape=(n, n),
            )


def _grid(v: Any, name: str) -> list[float]:
    vals = list(v) if isinstance(v, list | tuple) else [v]
    if not vals or any(not isinstance(a, int | float) or a < 0 for a in vals):
        raise ConfigError(f"GraphFilter: {name} must be a non-negative number or a list of them")
    return [float(a) for a in vals]
