"""LMGCN: lgrec's fused language-model + graph model.

A core model plus separable parts, each a constructor argument, so an ablation switches a part
off by a parameter (docs/ablation.md measures each):

**Core: a linear graph neural network over language-model features** (SGC-style: propagate,
then one learned layer; :mod:`lgrec.models.features`). Items are described by blocks of
graph-propagated text — their own text embedding t_i, the text of the items consumed with
them (P T, two hops over the user–item graph), of their semantic neighbours (S̃ T), of their
knowledge-graph neighbours (G̃ T) — and by their graph position (top-k singular vectors of the
normalised interaction matrix). A user is the aggregation of their history,
h_u = n_u^{-1/2} Σ_{i∈H(u)} x_i, next to an optional language *profile* block p_u (rating- and
recency-weighted mean of the history's text, :func:`lgrec.text.profiles.history_profiles`).
The score is bilinear, ŝ_ui = [h_u, p_u, 1] W x_iᵀ, and W is the closed-form ridge solution
of ‖R − H W Xᵀ‖² + λ‖W‖² with a leave-one-out correction (:mod:`lgrec.models.bilinear`); λ
is chosen on the validation split. The core has no epochs and no sampling (the optional
rating head trains its components; see the heads below).

Parts:

* ``text`` — the text blocks (``False``: graph position alone, the text-free ablation);
* ``profiles`` — the user profile block;
* ``semantic_k`` — the semantic kNN graph block (0: off);
* KG — an item graph passed to :meth:`LMGCN.fit` (``item_graph=``) adds the G̃ T block;
* ``spectral_k`` — the graph-position block (0: off);
* ``filter_weight`` — the graph-filter blend ŝ = z(core) + λ z(GF) (:mod:`lgrec.models.fusion`;
  0: off, ∞: the filter alone; a grid is chosen on validation);
* ``cold`` — how items without interactions compete: ``"percentile"`` matches their score to
  the warm items' scale by side-feature percentile and orders them by the blended score,
  ``"percentile-side"`` orders them by the side features too (:mod:`lgrec.models.coldcal`),
  ``"raw"`` leaves the model's score;
* heads — ratings (``rating_head``: a validated blend of SVD++-with-text and item autoencoders,
  :mod:`lgrec.models.rating`), clicks (σ(a ŝ + b), always), categories (``category_head``:
  ridge or logistic regression on the item features, :mod:`lgrec.models.fused_heads`).

Cold items have no graph blocks (no edges): those are placed from side features
(:func:`lgrec.models.coldstart.fit_side_map`, chosen by pseudo-cold validation), so a new item
is scored by the same W as a warm one; new users are h_u of whatever they interacted with.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from lgrec.data.dataset import Dataset
from lgrec.errors import ConfigError
from lgrec.models.base import Recommender, Tensor, register
from lgrec.models.bilinear import BilinearRidge
from lgrec.models.coldcal import match_percentiles
from lgrec.models.features import ItemFeatures, item_features, row_normalise, user_history_features
from lgrec.models.fused_heads import HeadsMixin
from lgrec.models.fusion import FILTER_WEIGHTS, blend, fit_filter_blend
from lgrec.models.lmgcn_state import LMGCNStateMixin
from lgrec.models.rating import COMPONENTS
from lgrec.train import validation_grid
from lgrec.utils import PhaseClock, seed_everything

log = logging.getLogger(__name__)


_COLD_MODES = ("percentile", "percentile-side", "raw")
#: grids of the cold parts: the side map's ridge λ and text-neighbour weight α
#: (:func:`lgrec.models.coldstart.fit_cold_map`), the user-text map's ridge μ (models.newusers)
_COLD_GRID: dict[str, tuple[float, ...]] = dict(
    lambdas=(1.0, 10.0, 100.0, 1000.0), alphas=(0.0, 0.5, 1.0), mus=(0.1, 1.0, 10.0, 100.0)
)


def _grid(v: Any, name: str) -> list[float]:
    vals = list(v) if isinstance(v, list | tuple) else [v]
    if not vals or any(not isinstance(a, int | float) or a < 0 for a in vals):
        raise ConfigError(f"LMGCN: {name} must be a non-negative number or a list of them")
    return [float(a) for a in vals]


def _project(x: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """Item vectors X B of the truncated map (X itself for the exact map)."""
    return np.ascontiguousarray(x if b is None else x @ b, dtype=np.float32)


@register
class LMGCN(HeadsMixin, LMGCNStateMixin, Recommender):
    """The fused LM + graph recommender (module docstring).

    Args:
        text, profiles, semantic_k, spectral_k, filter_weight, cold: the parts (module
            docstring); ``semantic_threshold`` is the semantic graph's minimum cosine.
        cold_grid: grids of the cold parts (``lambdas``/``alphas`` of the side map, ``mus`` of
            the user-text map; defaults ``_COLD_GRID``); single values skip their search.
        reg: ridge strength in units of the data's scale, λ = reg · mean eig(HᵀH) · mean
            eig(XᵀX), so one grid suits every data size; a list is a grid chosen on validation
            (its middle value without validation data); ``refine`` then tries a factor of 3
            either side of the best value.
        rank: truncate the fitted map to this rank for scoring (``None``: exact, the default;
            on amazon-videogames' validation split rank 512 lost 0.015 Recall@20).
        filter_params: arguments of the blended :class:`GraphFilter` (grids allowed).
        category_head: ``True``/``"ridge"``, ``"logistic"`` or ``False`` (:mod:`.fused_heads`);
            rating_head: fit it. Each head is fitted when the data has categories / ratings.
        rating_models, rating_dim, rating_reg, rating_epochs, rating_blend: the rating blend.
        text_model, text_fields: how item text is encoded when embeddings are not passed.
        seed: seeds the randomised SVD, the cold-start folds and the heads.
    """

    name = "lmgcn"
    #: the class can predict ratings; a fitted instance only when its data had ratings
    has_rating_head = True

    def __init__(
        self,
        text: bool = True,
        profiles: bool = False,
        semantic_k: int = 10,
        semantic_threshold: float = 0.0,
        spectral_k: int = 256,
        reg: float | tuple[float, ...] | list[float] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0),
        refine: bool = True,
        rank: int | None = None,
        filter_weight: float | tuple[float, ...] | list[float] = FILTER_WEIGHTS,
        filter_params: dict[str, Any] | None = None,
        cold: str = "percentile",
        cold_grid: dict[str, Any] | None = None,
        category_head: bool | str = True,
        rating_head: bool = True,
        rating_models: tuple[str, ...] | list[str] = COMPONENTS,
        rating_dim: int = 64,
        rating_reg: float = 0.05,
        rating_epochs: int | dict[str, int] = 300,
        rating_blend: list[float] | None = None,
        text_model: str | None = None,
        text_fields: tuple[str, ...] | list[str] = ("title", "categories", "description"),
        seed: int = 0,
    ):
        self.text = text
        self.profiles = profiles
        self.semantic_k = semantic_k
        self.semantic_threshold = semantic_threshold
        self.spectral_k = spectral_k
        self.reg = reg
        self.refine = refine
        self.rank = rank
        self.filter_weight = filter_weight
        self.filter_params = filter_params
        self.cold = cold
        self.cold_grid = cold_grid
        self.category_head = category_head
        self.rating_head = rating_head
        self.rating_models = rating_models
        self.rating_dim = rating_dim
        self.rating_reg = rating_reg
        self.rating_epochs = rating_epochs
        self.rating_blend = rating_blend
        self.text_model = text_model
        self.text_fields = text_fields
        self.seed = seed

    def _check_params(self) -> None:
        if self.cold not in _COLD_MODES:
            raise ConfigError(f"LMGCN: cold must be one of {_COLD_MODES}, got {self.cold!r}")
        for p, v in (("semantic_k", self.semantic_k), ("spectral_k", self.spectral_k)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ConfigError(f"LMGCN: {p} must be a non-negative integer, got {v!r}")
        if self.rank is not None and (not isinstance(self.rank, int) or self.rank <= 0):
            raise ConfigError(f"LMGCN: rank must be a positive integer or None, got {self.rank!r}")
        if not self.text and not self.spectral_k:
            raise ConfigError("LMGCN: with text=False the spectral block is the only input")
        if set(self.cold_grid or {}) - set(_COLD_GRID):
            raise ConfigError(f"LMGCN: cold_grid keys are {list(_COLD_GRID)}, got {self.cold_grid}")
        if any(r <= 0 for r in _grid(self.reg, "reg")):
            raise ConfigError(f"LMGCN: reg must be positive, got {self.reg!r}")
        self._check_heads()

    # ---- fitting --------------------------------------------------------------------------
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
        computed with :mod:`lgrec.text` when not given (cached on disk by content hash);
        ``item_graph`` (I × I, optional) adds the knowledge-graph block."""
        self._check_params()
        seed_everything(self.seed)
        if item_graph is not None and item_graph.shape != (data.n_items, data.n_items):
            raise ConfigError(
                f"LMGCN.fit: item_graph must be {data.n_items} × {data.n_items}, "
                f"got {item_graph.shape}"
            )
        x = self._remember(data)
        if x.nnz == 0:
            raise ConfigError("LMGCN.fit: the training data has no interactions")
        if item_emb is None:
            from lgrec.text.encoder import TextEncoder

            item_emb = TextEncoder(self.text_model).encode(data.item_text(tuple(self.text_fields)))
        item_emb = np.asarray(item_emb, dtype=np.float32)
        if item_emb.shape[0] != data.n_items:
            raise ConfigError(
                f"LMGCN.fit: item_emb has {item_emb.shape[0]} rows, "
                f"the data has {data.n_items} items"
            )
        self.text_emb_ = torch.from_numpy(item_emb)
        self.text_model_ = self.text_model
        # items described by ids alone (e.g. check-in data): their "text" embeds the ids
        self.text_used_ = self.text and any(f in data.items.columns for f in self.text_fields)
        if self.text and not self.text_used_:
            log.warning("lmgcn: the items have none of the text fields %s; the text blocks are "
                        "left out", list(self.text_fields))  # fmt: skip
        clock = PhaseClock()
        feats, _ = item_features(
            x,
            item_emb if self.text_used_ else None,
            semantic_k=self.semantic_k,
            semantic_threshold=self.semantic_threshold,
            item_graph=item_graph,
            spectral_k=self.spectral_k,
            seed=self.seed,
        )
        self.blocks_ = dict(feats.blocks)
        self.warm_ = np.diff(x.tocsc().indptr) > 0
        h = self._user_features(data, feats.x, user_profiles)
        clock("features")
        self._fit_core(x, h, feats, valid)
        self.item_hist_ = torch.from_numpy(feats.x @ self.user_map_["hist"].numpy())
        clock("core")
        self._place_cold(data, feats)
        from lgrec.models.newusers import fit_user_text_map

        utm = fit_user_text_map(self, data, mus=tuple(self._cold_grid_values()["mus"]))
        self.user_text_map_, self.user_text_mu_ = utm if utm is not None else (None, None)
        clock("cold items and users")
        self.filter_, self.filter_weight_, self.blend_search_ = fit_filter_blend(  # text off:
            self._core_block, data, valid, _grid(self.filter_weight, "filter_weight"),  # no γ
            params=self.filter_params, item_emb=item_emb if self.text_used_ else None,
            seen=x, seed=self.seed)  # fmt: skip
        clock("filter blend")
        self._fit_heads(data, valid, feats)
        clock("heads")
        self.fit_seconds_ = clock.laps
        log.info("lmgcn fitted in %.1f s: %s", sum(clock.laps.values()), clock.laps)
        return self

    def _user_features(
        self, data: Dataset, fx: np.ndarray, user_profiles: np.ndarray | None
    ) -> np.ndarray:
        """H = [h_u (history aggregation), p_u (profile, optional), 1]; also keeps c_i."""
        hist, self._loo_c = user_history_features(self.seen_, fx)
        parts = [hist]
        if self.profiles and self.text_used_:
            if user_profiles is None:
                from lgrec.text.profiles import history_profiles

                user_profiles = history_profiles(data, self.text_emb_.numpy())
            parts.append(row_normalise(np.asarray(user_profiles, dtype=np.float32)))
        parts.append(np.ones((data.n_users, 1), dtype=np.float32))
        return np.hstack(parts)

    def _fit_core(
        self, x: sp.csr_matrix, h: np.ndarray, feats: ItemFeatures, valid: Dataset | None
    ) -> None:
        """The ridge path on the warm items and λ chosen on ``valid`` (module docstring)."""
        from lgrec.train.distributed_ridge import fit_ridge  # (local: circular import)

        warm = self.warm_  # under torchrun the statistics are summed over the processes
        solver = fit_ridge(h, x[:, warm], feats.x[warm], c=self._loo_c[warm],
                           n_hist=feats.x.shape[1])  # fmt: skip
        regs = _grid(self.reg, "reg")
        vx = valid.matrix("binary") if valid is not None and len(valid) else None
        self.reg_search_: list[dict[str, float]] = []

        def search(grid: list[float]) -> int:  # index of the best reg on validation
            facs = [BilinearRidge.factor(solver.solve(r * solver.scale_), self.rank) for r in grid]
            xt = [torch.from_numpy(_project(feats.x, b)) for _, b in facs]

            def scores(users: Tensor):
                hu = h[users.numpy()]
                return (torch.from_numpy(hu @ a) @ xi.T for (a, _), xi in zip(facs, xt))

            res = validation_grid(scores, len(grid), x, vx, k=20, max_users=2000)
            self.reg_search_ += [{"reg": r, **m} for r, m in zip(grid, res)]
            return int(np.argmax([m["Recall@20"] for m in res]))

        if vx is None or len(regs) == 1:
            reg = regs[len(regs) // 2]  # no validation: the grid's middle
        else:  # the grid, then a factor-of-3 refinement either side of its best
            reg = regs[search(regs)]
            if self.refine and len(regs) > 2:
                near = [reg / 3, reg, reg * 3]
                reg = near[search(near)]
        self.reg_ = reg
        a, b = BilinearRidge.factor(solver.solve(reg * solver.scale_), self.rank)
        self.user_emb_ = torch.from_numpy(h @ a)
        self.item_emb_ = torch.from_numpy(_project(feats.x, b))
        self._map_b = b
        d = feats.x.shape[1]  # user vector = n^{-1/2} Σ_i x_i A_h + p_u A_p + a_1 (fold-in)
        self.user_map_ = {"hist": torch.from_numpy(a[:d]), "bias": torch.from_numpy(a[-1])}
        if h.shape[1] > d + 1:
            self.user_map_["profile"] = torch.from_numpy(a[d:-1])
        log.info("lmgcn core: reg=%.3g (λ=%.4g), %d features, rank %d", reg,
                 reg * solver.scale_, feats.x.shape[1], a.shape[1])  # fmt: skip

    def _cold_grid_values(self) -> dict[str, Any]:
        """``_COLD_GRID`` with the constructor's ``cold_grid`` entries in place of its own."""
        return {**_COLD_GRID, **(self.cold_grid or {})}

    def _place_cold(self, data: Dataset, feats: ItemFeatures) -> None:
        """Graph blocks of cold items from side features; the side-feature-only item vectors
        of every item (for percentile matching)."""
        from lgrec.models.coldstart import fit_side_map

        self.side_emb_ = self.side_choice_ = None
        cols = feats.graph_columns()
        if not len(cols):
            return
        b = self._map_b
        b = np.eye(feats.x.shape[1], dtype=np.float32) if b is None else b
        user_side = self.user_emb_ @ torch.from_numpy(b[cols].T.copy())  # · x_graph: the graph part
        target = torch.from_numpy(feats.x[:, cols].copy())
        grid = self._cold_grid_values()
        sm = fit_side_map(
            data, self.text_emb_, target, user_emb=user_side, seen=self.seen_, seed=self.seed,
            lambdas=tuple(grid["lambdas"]), alphas=tuple(grid["alphas"]), max_users=2000,
        )  # fmt: skip
        if sm is None:
            return
        self.side_choice_ = {"lambdas": (sm.cmap.lam,), "alphas": (sm.cmap.alpha,)}
        side_x = feats.x.copy()
        side_x[:, cols] = sm.embed(np.arange(data.n_items), exclude_self=True).numpy()
        cold = np.flatnonzero(~self.warm_)
        if len(cold):
            fx = feats.x.copy()
            fx[np.ix_(cold, cols)] = side_x[np.ix_(cold, cols)]
            self.item_emb_ = torch.from_numpy(_project(fx, self._map_b))
            self.item_hist_ = torch.from_numpy(fx @ self.user_map_["hist"].numpy())
            log.info("lmgcn: %d cold items placed from side features", len(cold))
        self.side_emb_ = torch.from_numpy(_project(side_x, self._map_b))

    # ---- scoring ----------------------------------------------------------------------------
    def _core_block(self, users: Tensor) -> Tensor:
        return self.user_emb_[users] @ self.item_emb_.T

    def fold_in(self, history: sp.spmatrix, texts: list[str] | None = None) -> Tensor:
        """Scores (n × I) for users unknown at training time, from their interactions
        ``history`` (n × I, any rows may be empty) and/or their ``texts``, without refitting
        (:mod:`lgrec.models.newusers`)."""
        from lgrec.models.newusers import fold_in_scores

        self._check_fitted()
        return fold_in_scores(self, history, texts)

    def _score_block(self, users: Tensor) -> Tensor:
        filt = None
        if getattr(self, "filter_", None) is not None and self.filter_weight_ > 0:
            filt = self.filter_._score_block(users)
        return self.score_vectors(self.user_emb_[users], filt)

    def score_vectors(self, vecs: Tensor, filt: Tensor | None = None) -> Tensor:
        """Final scores of user vectors ``vecs`` (B × rank) given the graph filter's scores of
        the same users (``None``: no filter part): blend, then cold-item percentile matching."""
        s = blend(vecs @ self.item_emb_.T, filt, self.filter_weight_)
        cold = np.flatnonzero(~self.warm_)
        if self.cold != "raw" and len(cold) and self.side_emb_ is not None:
            ref, cold = torch.from_numpy(self._reference_items()), torch.from_numpy(cold)
            side_ref, side_cold = vecs @ self.side_emb_[ref].T, vecs @ self.side_emb_[cold].T
            by = s[:, cold] if self.cold == "percentile" else None
            s[:, cold] = match_percentiles(s[:, ref], side_ref, side_cold, order_by=by)
        return s

    def _reference_items(self, n: int = 4096) -> np.ndarray:
        """The warm items cold items are compared with: all of them, or a fixed (seeded) sample
        of ``n`` (percentiles to within about 1 %, at a fraction of the cost)."""
        warm = np.flatnonzero(self.warm_)
        if len(warm) <= n:
            return warm
        return np.sort(np.random.default_rng(self.seed).choice(warm, n, replace=False))

    def refit_params(self) -> dict[str, Any]:
        params = {**self.get_params(), "reg": self.reg_, "filter_weight": self.filter_weight_}
        chosen = dict(getattr(self, "side_choice_", None) or {})  # the cold parts' choices
        if getattr(self, "user_text_mu_", None) is not None:
            chosen["mus"] = (self.user_text_mu_,)
        params["cold_grid"] = {**(self.cold_grid or {}), **chosen}
        if self.rating_ is not None:
            params["rating_epochs"] = dict(self.rating_.best_epochs)
            params["rating_models"] = list(self.rating_.names)
            params["rating_blend"] = list(self.rating_.weights)
        if self.filter_ is not None:
            fp = self.filter_.refit_params()
            keys = ("k", "alpha", "semantic_weight", "sharpen", "user_exp", "item_exp")
            params["filter_params"] = {k: fp[k] for k in keys}
        return params
