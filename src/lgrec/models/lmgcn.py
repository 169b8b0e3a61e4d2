"""LMGCN: the fused language-model + graph model, lgrec's main recommender.

Ego embeddings tie the graph to the language model:

    e⁽⁰⁾_i = m_i ⊙ x_i + W_t t_i          (items; t_i = text embedding, m_i = 1 if i was seen
                                            in training — cold items start from text alone)
    e⁽⁰⁾_u = x_u + σ(g) ⊙ W_p p_u          (users; p_u = language profile of u's history,
                                            gated sum with a learned gate g)

Propagation mixes the user–item graph Â with the semantic item–item graph S (top-k cosine
neighbours of the text embeddings, symmetric-normalised), weighted by β:

    E⁽ˡ⁺¹⁾ = (Â + β · diag(0, S)) E⁽ˡ⁾,      E = mean_l E⁽ˡ⁾,       ŝ_ui = cos(e_u, e_i)

Training minimises the sampled-softmax (InfoNCE) loss (or BPR), + λ_cat · CE of a category
head on item embeddings (an auxiliary node-classification task) + L2. During training a share
``item_dropout`` of items per step loses its free vector x_i, so W_t learns to place items from
text alone — which is how cold items are recommended.

Graph-filter fusion: the learned score is blended with a training-free low-pass filter over the
same user–item graph plus the semantic graph (:class:`lgrec.models.graphfilter.GraphFilter`),

    ŝ_ui = z_u(cos(e_u, e_i)) + λ · z_u(s^GF_ui)        (z_u = per-user standardisation)

with λ chosen on the validation split (λ = 0 is pure message passing). The filter captures the
infinite-depth smooth part of the graph signal cheaply; the GNN adds the learned, text-tied part.

Heads: ranking (ŝ), ratings (a validated blend of SVD++-with-text and item autoencoders,
:mod:`lgrec.models.rating`), clicks (σ(a ŝ + b), BCE-calibrated), categories (softmax over
the category vocabulary).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from lgrec.data.dataset import Dataset
from lgrec.errors import ConfigError
from lgrec.graph.bipartite import normalized_adjacency
from lgrec.graph.semantic import normalize_graph, semantic_knn
from lgrec.models.base import Tensor, _standardise, as_index_tensor, register
from lgrec.models.heads import fit_click_calibration
from lgrec.models.lightgcn import LightGCN, LightGCNNet
from lgrec.models.rating import COMPONENTS, RatingBlend, check_components, fit_rating_blend
from lgrec.train import NegativeSampler, validation_grid

log = logging.getLogger(__name__)


class LMGCNNet(LightGCNNet):
    """Ego embeddings tied to text and profiles (module docstring); LightGCN-style forward."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        n_layers: int,
        text: Tensor,
        profile: Tensor | None,
        warm: Tensor,
        n_categories: int,
        item_dropout: float,
    ):
        nn.Module.__init__(self)
        self.n_users, self.n_items, self.n_layers = n_users, n_items, n_layers
        self.item_dropout = item_dropout
        self.user_free = nn.Embedding(n_users, dim)
        self.item_free = nn.Embedding(n_items, dim)
        nn.init.normal_(self.user_free.weight, std=0.1)
        nn.init.normal_(self.item_free.weight, std=0.1)
        self.register_buffer("text", text)
        self.register_buffer("warm", warm.float())
        self.text_proj = nn.Linear(text.shape[1], dim, bias=False)
        if profile is not None:
            self.register_buffer("profile", profile)
            self.profile_proj = nn.Linear(profile.shape[1], dim, bias=False)
            self.gate = nn.Parameter(torch.zeros(dim))
        else:
            self.profile = None
        self.cat_head = nn.Linear(dim, n_categories) if n_categories else None

    def ego(self) -> Tensor:
        m = self.warm
        if self.training and self.item_dropout > 0:
            m = m * (torch.rand_like(m) >= self.item_dropout).float()
        items = self.item_free.weight * m[:, None] + self.text_proj(self.text)
        users = self.user_free.weight
        if self.profile is not None:
            users = users + torch.sigmoid(self.gate) * self.profile_proj(self.profile)
        return torch.cat([users, items])


@register
class LMGCN(LightGCN):
    """The fused LM + GNN recommender (see module docstring for the math).

    Args (beyond :class:`LightGCN`'s):
        text_model: sentence-transformers name/path; ``None`` = packaged all-MiniLM-L6-v2.
        text_fields: item columns joined into the text that is encoded.
        semantic_k, semantic_threshold: the semantic kNN graph (k neighbours, min cosine).
        semantic_weight: β, weight of the semantic graph in propagation (0 disables it).
        use_profiles: fuse language profiles of users' histories.
        item_dropout: share of items whose free vector is dropped per step (cold start).
        category_weight: λ_cat of the auxiliary category loss (0 disables the head).
        rating_head: train the rating model when the data has explicit ratings.
        rating_models: components of the rating blend (:mod:`lgrec.models.rating`).
        rating_dim, rating_reg: size and L2 of the SVD++ component.
        rating_epochs: epoch cap of each component, or a per-component count (refit).
        rating_blend: fixed blend weights (intercept first); ``None`` = fit on validation.
        filter_weight: λ of the graph-filter fusion; a tuple is a grid chosen on validation.
        filter_params: arguments of the fused :class:`GraphFilter` (grids allowed).
        item_graph_weight: weight of an extra item–item graph passed to ``fit`` (e.g. items
            linked through shared knowledge-graph entities), propagated like S.
    """

    name = "lmgcn"
    #: the class can predict ratings; a fitted instance only when its data had ratings
    has_rating_head = True

    def __init__(
        self,
        dim: int = 64,
        n_layers: int = 2,
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
        text_model: str | None = None,
        text_fields: tuple[str, ...] | list[str] = ("title", "categories", "description"),
        semantic_k: int = 10,
        semantic_threshold: float = 0.3,
        semantic_weight: float = 0.5,
        use_profiles: bool = True,
        item_dropout: float = 0.1,
        category_weight: float = 0.1,
        rating_head: bool = True,
        rating_dim: int = 64,
        rating_reg: float = 0.05,
        rating_epochs: int | dict[str, int] = 300,
        rating_models: tuple[str, ...] | list[str] = COMPONENTS,
        rating_blend: list[float] | None = None,
        filter_weight: float | tuple[float, ...] | list[float] = (0.0, 0.5, 1.0, 2.0),
        filter_params: dict[str, Any] | None = None,
        item_graph_weight: float = 0.5,
    ):
        super().__init__(
            dim=dim,
            n_layers=n_layers,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            reg=reg,
            loss=loss,
            n_neg=n_neg,
            tau=tau,
            eval_every=eval_every,
            patience=patience,
            seed=seed,
        )
        self.text_model = text_model
        self.text_fields = text_fields
        self.semantic_k = semantic_k
        self.semantic_threshold = semantic_threshold
        self.semantic_weight = semantic_weight
        self.use_profiles = use_profiles
        self.item_dropout = item_dropout
        self.category_weight = category_weight
        self.rating_head = rating_head
        self.rating_dim = rating_dim
        self.rating_reg = rating_reg
        self.rating_epochs = rating_epochs
        self.rating_models = rating_models
        self.rating_blend = rating_blend
        self.filter_weight = filter_weight
        self.filter_params = filter_params
        self.item_graph_weight = item_graph_weight

    # ---- inputs from the language model --------------------------------------------------
    def fit(
        self,
        data: Dataset,
        *,
        valid: Dataset | None = None,
        item_emb: np.ndarray | None = None,
        user_profiles: np.ndarray | None = None,
        item_graph: sp.spmatrix | None = None,
    ) -> LMGCN:
        """Fit on ``data``. ``item_emb`` (I × d text embeddings) and ``user_profiles`` are
        computed with :mod:`lgrec.text` when not given (cached on disk by content hash).
        ``item_graph`` (I × I, optional) adds relations such as knowledge-graph links."""
        if item_graph is not None and item_graph.shape != (data.n_items, data.n_items):
            raise ConfigError(
                f"LMGCN.fit: item_graph must be {data.n_items} × {data.n_items}, "
                f"got {item_graph.shape}"
            )
        self._item_graph = item_graph
        if not 0 <= self.item_dropout < 1:
            raise ConfigError(f"LMGCN: item_dropout must be in [0, 1), got {self.item_dropout!r}")
        if self.semantic_weight < 0:
            raise ConfigError(f"LMGCN: semantic_weight must be ≥ 0, got {self.semantic_weight!r}")
        if item_emb is None:
            from lgrec.text.encoder import TextEncoder

            item_emb = TextEncoder(self.text_model).encode(data.item_text(tuple(self.text_fields)))
        item_emb = np.asarray(item_emb, dtype=np.float32)
        if item_emb.shape[0] != data.n_items:
            raise ConfigError(
                f"LMGCN.fit: item_emb has {item_emb.shape[0]} rows, "
                f"the data has {data.n_items} items"
            )
        if self.use_profiles and user_profiles is None:
            from lgrec.text.profiles import history_profiles

            user_profiles = history_profiles(data, item_emb)
        self.text_emb_ = torch.from_numpy(item_emb)
        self.text_model_ = self.text_model
        self._profiles = None if not self.use_profiles else torch.as_tensor(user_profiles).float()
        self.categories_, self._item_cats = data.categories()
        return super().fit(data, valid=valid)

    def _make_net(self, data: Dataset) -> nn.Module:
        warm = torch.from_numpy(np.diff(self.seen_.tocsc().indptr) > 0)
        n_cat = len(self.categories_) if self.category_weight > 0 else 0
        if n_cat:
            y = torch.from_numpy(self._item_cats.toarray())
            self._cat_target = y / y.sum(1, keepdim=True).clamp(min=1)
            self._cat_has = y.sum(1) > 0
        return LMGCNNet(
            data.n_users,
            data.n_items,
            self.dim,
            self.n_layers,
            self.text_emb_,
            self._profiles,
            warm,
            n_cat,
            self.item_dropout,
        )

    def _propagation_matrix(self, x: sp.csr_matrix) -> sp.csr_matrix:
        a = normalized_adjacency(x)
        if self.semantic_weight > 0 and self.semantic_k > 0:
            s = semantic_knn(
                self.text_emb_.numpy(), k=self.semantic_k, threshold=self.semantic_threshold
            )
            self.semantic_ = s
            s = normalize_graph(s, "sym") * self.semantic_weight
            a = a + sp.block_diag([sp.csr_matrix((x.shape[0], x.shape[0])), s], format="csr")
        g = getattr(self, "_item_graph", None)
        if g is not None and self.item_graph_weight > 0 and g.nnz:
            g = normalize_graph(sp.csr_matrix(g, dtype=np.float32), "sym") * self.item_graph_weight
            a = a + sp.block_diag([sp.csr_matrix((x.shape[0], x.shape[0])), g], format="csr")
        return sp.csr_matrix(a, dtype=np.float32)

    def _extra_loss(self, ue: Tensor, ie: Tensor, users: Tensor, items: Tensor) -> Tensor | None:
        head = self.net_.cat_head
        if head is None:
            return None
        items = items[self._cat_has[items]]
        if not len(items):
            return None
        logp = torch.log_softmax(head(ie[items]), dim=1)
        return -self.category_weight * (self._cat_target[items] * logp).sum(1).mean()

    # ---- heads after ranking training -----------------------------------------------------
    def _after_fit(self, data: Dataset, valid: Dataset | None) -> None:
        net = self.net_
        with torch.no_grad():
            _, ie = net(self.adj_)
            self.cat_logits_ = net.cat_head(ie) if net.cat_head is not None else None
        self._fit_cold_map(data)
        self._fit_filter(data, valid)
        self._fit_click(data, valid)
        self.rating_ = None
        if self.rating_head and data.has_ratings:
            self.rating_ = fit_rating_blend(
                data,
                valid,
                self.text_emb_,
                names=check_components(self.rating_models),
                dim=self.rating_dim,
                reg=self.rating_reg,
                epochs=self.rating_epochs,
                weights=self.rating_blend,
                seed=self.seed,
            )
            self.rating_scale_ = list(
                data.rating_scale or (float(data.ratings.min()), float(data.ratings.max()))
            )
        self.has_rating_head = self.rating_ is not None
        for attr in ("_profiles", "_item_cats", "_cat_target", "_cat_has", "_item_graph"):
            self.__dict__.pop(attr, None)

    def _fit_cold_map(self, data: Dataset) -> None:
        """Items with no training interaction take their embedding from side features and
        semantic neighbours, mapped onto the trained item embeddings (:mod:`.coldstart`)."""
        from lgrec.models.coldstart import embed_cold_items

        out = embed_cold_items(
            data, self.text_emb_, self.item_emb_, user_emb=self.user_emb_, seen=self.seen_,
            seed=self.seed,
        )  # fmt: skip
        if out is not None:
            cold, emb = out
            self.item_emb_[torch.from_numpy(cold)] = emb
            log.info("%d cold items embedded from side features", len(cold))

    def _fit_filter(self, data: Dataset, valid: Dataset | None) -> None:
        """Fit the graph filter and choose λ on ``valid`` (module docstring)."""
        from lgrec.models.graphfilter import GraphFilter, _grid

        self.filter_, self.filter_weight_ = None, 0.0
        weights = _grid(self.filter_weight, "filter_weight")
        if not any(w > 0 for w in weights):
            return
        params = {"semantic_weight": (0.0, 0.1, 0.3), **(self.filter_params or {})}
        params.setdefault("seed", self.seed)
        gf = GraphFilter(**params).fit(data, valid=valid, item_emb=self.text_emb_.numpy())
        gf.__dict__.pop("text_emb_", None)  # LMGCN keeps the one copy
        self.filter_ = gf
        if valid is None or not len(valid) or len(weights) == 1:
            self.filter_weight_ = max(weights)
            return

        def scores(users: Tensor):  # both parts once per block, then every λ
            gnn = _standardise(self.user_emb_[users] @ self.item_emb_.T)
            filt = _standardise(gf._score_block(users))
            return (gnn + w * filt if w > 0 else gnn for w in weights)

        res = validation_grid(scores, len(weights), self.seen_, valid.matrix("binary"), k=20)
        best = int(np.argmax([m["Recall@20"] for m in res]))  # ties: the earlier (smaller) λ
        self.filter_weight_ = weights[best]
        log.info(
            "lmgcn filter weight λ=%s (valid R@20 %.4f)", weights[best], res[best]["Recall@20"]
        )

    def _score_block(self, users: Tensor) -> Tensor:
        s = self.user_emb_[users] @ self.item_emb_.T
        if getattr(self, "filter_", None) is not None and self.filter_weight_ > 0:
            s = _standardise(s) + self.filter_weight_ * _standardise(
                self.filter_._score_block(users)
            )
        return s

    def refit_params(self) -> dict[str, Any]:
        params = super().refit_params()
        params["filter_weight"] = self.filter_weight_
        if self.rating_ is not None:
            params["rating_epochs"] = dict(self.rating_.best_epochs)
            params["rating_models"] = list(self.rating_.names)
            params["rating_blend"] = list(self.rating_.weights)
        if self.filter_ is not None:
            fp = self.filter_.refit_params()
            params["filter_params"] = {
                k: fp[k]
                for k in ("k", "alpha", "semantic_weight", "sharpen", "user_exp", "item_exp")
            }
        return params

    def _fit_click(self, data: Dataset, valid: Dataset | None) -> None:
        src = valid if valid is not None and len(valid) else data
        rng = np.random.default_rng(self.seed)
        n = min(len(src), 50_000)
        pick = rng.choice(len(src), n, replace=False)
        u, i = src.user_ids[pick], src.item_ids[pick]
        j = NegativeSampler(self.seen_, rng).sample(u, 1)[:, 0]
        pos, neg = self.score_pairs(u, i), self.score_pairs(u, j)
        self.click_ab_ = fit_click_calibration(pos, neg)

    # ---- extra public methods -------------------------------------------------------------
    def predict_rating(self, users: Any, items: Any) -> Tensor:
        """r̂_ui for each (user, item) pair, clipped to the training rating scale."""
        self._check_fitted()
        if self.rating_ is None:
            raise NotImplementedError(
                "this LMGCN was fitted without explicit ratings: no rating head"
            )
        u = as_index_tensor(users, self.n_users_, "user")
        i = as_index_tensor(items, self.n_items_, "item")
        with torch.no_grad():
            return self.rating_.predict(u, i).clamp(*self.rating_scale_)

    def predict_click(self, users: Any, items: Any) -> Tensor:
        """P(click | u, i) = σ(a ŝ_ui + b), calibrated on held-out positives vs negatives."""
        s = self.score_pairs(users, items)  # validates ids and fitted state
        a, b = self.click_ab_
        return torch.sigmoid(a * s + b)

    def predict_categories(self, items: Any, k: int = 3) -> list[list[tuple[str, float]]]:
        """Top-``k`` (category, probability) per item from the category head."""
        self._check_fitted()
        if self.cat_logits_ is None:
            raise NotImplementedError("this LMGCN has no category head (no categories in data)")
        i = as_index_tensor(items, self.n_items_, "item")
        p = torch.softmax(self.cat_logits_[i], dim=1)
        top = torch.topk(p, min(k, p.shape[1]), dim=1)
        return [
            [(self.categories_[c], float(s)) for c, s in zip(row_i.tolist(), row_s.tolist())]
            for row_i, row_s in zip(top.indices, top.values)
        ]

    # ---- persistence ----------------------------------------------------------------------
    def _state(self) -> dict[str, Tensor]:
        st = super()._state()
        if self.cat_logits_ is not None:
            st["cat_logits"] = self.cat_logits_
        if self.rating_ is not None:
            st.update(self.rating_.state())
        if self.filter_ is not None:
            st.update({f"filter.{k}": v for k, v in self.filter_._state().items()})
        return st

    def _meta(self) -> dict[str, Any]:
        return {
            **super()._meta(),
            "categories": self.categories_,
            "click_ab": list(self.click_ab_),
            "rating_scale": getattr(self, "rating_scale_", None),
            "rating": None if self.rating_ is None else self.rating_.meta(),
            "filter_weight_": self.filter_weight_,
            "filter": None
            if self.filter_ is None
            else {"params": self.filter_.get_params(), "meta": self.filter_._meta()},
        }

    def _load_state(self, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
        super()._load_state(tensors, meta)
        self.categories_ = meta["categories"]
        self.click_ab_ = tuple(meta["click_ab"])
        self.cat_logits_ = tensors.get("cat_logits")
        has = any(k.startswith("rating") for k in tensors)
        self.rating_ = RatingBlend.from_state(tensors, meta.get("rating")) if has else None
        self.has_rating_head = self.rating_ is not None
        if meta.get("rating_scale"):
            self.rating_scale_ = meta["rating_scale"]
        self.filter_weight_, self.filter_ = meta.get("filter_weight_", 0.0), None
        if meta.get("filter"):
            from lgrec.models.graphfilter import GraphFilter

            ft = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith("filter.")}
            self.filter_ = GraphFilter(**meta["filter"]["params"])
            self.filter_._load_state(ft, meta["filter"]["meta"])
