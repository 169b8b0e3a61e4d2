"""The prediction heads of LMGCN beyond ranking: ratings, clicks and item categories.

A mixin of :class:`lgrec.models.lmgcn.LMGCN` (it uses the fitted model's ``score_pairs``,
text embeddings and seen matrix), kept apart so each head is found in one place:

* ratings — a validated blend of SVD++-with-text and item autoencoders (:mod:`.rating`);
* clicks — P(click | u, i) = σ(a ŝ_ui + b), Platt-scaled on held-out positives vs negatives;
* categories, from the item features x_i, one of two heads (``category_head``):
  ``"ridge"`` (or ``True``, the default) — closed-form ridge regression with a fitted softmax
  temperature, P(c | i) = softmax(x_i W + b)_c, the categories competing for one unit of
  probability (:func:`lgrec.models.heads.fit_category_head`); ``"logistic"`` — one-vs-rest L2
  logistic regression, P(c | i) = σ(x_i w_c + b_c), each category on its own, as fits items
  with several categories (:func:`lgrec.models.category_logreg.fit_logistic_category_head`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lgrec.data.dataset import Dataset
from lgrec.errors import ConfigError
from lgrec.models.base import Tensor, as_index_tensor
from lgrec.models.category_logreg import fit_logistic_category_head
from lgrec.models.features import ItemFeatures
from lgrec.models.heads import fit_category_head, fit_click_calibration
from lgrec.models.rating import check_components, fit_rating_blend
from lgrec.ranking import topk_stable
from lgrec.train import NegativeSampler

#: the accepted values of ``category_head``
_CATEGORY_HEADS = (True, False, "ridge", "logistic")


class HeadsMixin:
    """Rating, click and category heads (module docstring)."""

    def _check_heads(self) -> None:
        if self.category_head not in _CATEGORY_HEADS:
            raise ConfigError(
                f"{type(self).__name__}: category_head must be one of {_CATEGORY_HEADS}, "
                f"got {self.category_head!r}"
            )

    def _fit_heads(self, data: Dataset, valid: Dataset | None, feats: ItemFeatures) -> None:
        self.categories_, cats = data.categories()
        self.cat_w_ = self.cat_b_ = None
        y = torch.from_numpy(cats.toarray())
        if self.category_head and cats.shape[1] and feats.x.shape[1] and (y.sum(1) > 0).sum() >= 5:
            x = torch.from_numpy(feats.x)
            if self.category_head == "logistic":
                self.cat_w_, self.cat_b_, _ = fit_logistic_category_head(x, y, seed=self.seed)
            else:
                self.cat_w_, self.cat_b_, _ = fit_category_head(x, y)
            self.cat_logits_ = x @ self.cat_w_ + self.cat_b_
        else:
            self.cat_logits_ = None
        src = valid if valid is not None and len(valid) else data
        rng = np.random.default_rng(self.seed)  # ≤ 1,000 users × 5 pairs: scoring is per user
        users = np.unique(src.user_ids)  # (two parameters need far fewer than 5,000 pairs)
        users = rng.choice(users, min(len(users), 1000), replace=False)
        rows = np.flatnonzero(np.isin(src.user_ids, users))
        pick = rng.choice(rows, min(len(rows), 5_000), replace=False)
        u, i = src.user_ids[pick], src.item_ids[pick]
        j = NegativeSampler(self.seen_, rng).sample(u, 1)[:, 0]
        self.click_ab_ = fit_click_calibration(self.score_pairs(u, i), self.score_pairs(u, j))
        self.rating_ = None
        if self.rating_head and data.has_ratings:
            self.rating_ = fit_rating_blend(
                data, valid, self.text_emb_, names=check_components(self.rating_models),
                dim=self.rating_dim, reg=self.rating_reg, epochs=self.rating_epochs,
                weights=self.rating_blend, seed=self.seed,
            )  # fmt: skip
            self.rating_scale_ = list(
                data.rating_scale or (float(data.ratings.min()), float(data.ratings.max()))
            )
        self.has_rating_head = self.rating_ is not None
        for attr in ("_h", "_fx", "_loo_c", "_map_b"):
            self.__dict__.pop(attr, None)

    # ---- heads ------------------------------------------------------------------------------
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
        s = self.score_pairs(users, items)
        a, b = self.click_ab_
        return torch.sigmoid(a * s + b)

    def predict_categories(self, items: Any, k: int = 3) -> list[list[tuple[str, float]]]:
        """Top-``k`` (category, probability) per item from the category head: softmax
        probabilities (ridge head, they sum to 1 over categories) or one-vs-rest ones
        (logistic head, each in [0, 1] on its own)."""
        self._check_fitted()
        if self.cat_logits_ is None:
            raise NotImplementedError("this LMGCN has no category head (no categories in data)")
        i = as_index_tensor(items, self.n_items_, "item")
        logits = self.cat_logits_[i]
        logistic = self.category_head == "logistic"
        p = torch.sigmoid(logits) if logistic else torch.softmax(logits, dim=1)
        vals, ix = topk_stable(p, min(k, p.shape[1]))  # ties: lower category index first
        return [
            [(self.categories_[c], float(s)) for c, s in zip(row_i.tolist(), row_s.tolist())]
            for row_i, row_s in zip(ix, vals)
        ]
