"""Saving and loading LMGCN: its tensors (safetensors) and JSON metadata, never pickle.

A mixin of :class:`lgrec.models.lmgcn.LMGCN`; the graph filter of the blend and the rating
blend are stored inside the same files under the ``filter.`` and ``rating`` prefixes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lgrec.models.base import Tensor
from lgrec.models.rating import RatingBlend


class LMGCNStateMixin:
    """``_state`` / ``_meta`` / ``_load_state`` of LMGCN (see :meth:`Recommender.save`)."""

    # ---- persistence ------------------------------------------------------------------------
    def _state(self) -> dict[str, Tensor]:
        st = {**super()._state(), "user_emb": self.user_emb_, "item_emb": self.item_emb_}
        st["warm"] = torch.from_numpy(self.warm_.astype(np.uint8))
        st["item_hist"] = self.item_hist_
        st.update({f"user_map.{k}": v for k, v in self.user_map_.items()})
        if self.user_text_map_ is not None:
            st["user_text_map"] = self.user_text_map_
        if self.side_emb_ is not None:
            st["side_emb"] = self.side_emb_
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
            "reg_": self.reg_,
            "blocks": {k: list(v) for k, v in self.blocks_.items()},
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
        self.user_emb_, self.item_emb_ = tensors["user_emb"], tensors["item_emb"]
        self.warm_ = tensors["warm"].numpy().astype(bool)
        self.item_hist_ = tensors["item_hist"]
        self.user_map_ = {k[9:]: v for k, v in tensors.items() if k.startswith("user_map.")}
        self.user_text_map_ = tensors.get("user_text_map")
        self.side_emb_ = tensors.get("side_emb")
        self.reg_ = meta["reg_"]
        self.blocks_ = {k: tuple(v) for k, v in meta["blocks"].items()}
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
