"""Rating prediction as a validated blend of diverse rating models.

    r̂_ui = w₀ + Σ_k w_k r̂ᵏ_ui

over the components

* ``svdpp``: the SVD++-with-text head of :mod:`lgrec.models.heads` (user side: own factor plus
  its rated items; item side: own factor plus a projection of the item's text embedding),
* ``autorec``: an item-based autoencoder, I-AutoRec (:mod:`lgrec.models.autorec`),
* ``kernel_autorec``: the same with two hidden layers gated by local kernels (GLocal-K's local
  stage).

A factor model and item autoencoders make different errors, so the blend is better than each
part. The weights w are the least-squares fit of the validation ratings on the components'
validation predictions, constrained to a convex combination (w₀ = 0); each component is
early-stopped on the same validation split. A refit on train + valid reuses w and each
component's best epoch count. Without validation data and without given weights the
components are averaged.

The autoencoders hold O(U · h) parameters; they are skipped, with a log line, when
U · h exceeds ``max_ae_params``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from lgrec.data.dataset import Dataset
from lgrec.errors import ConfigError
from lgrec.models.autorec import ItemAutoRec, fit_item_autorec
from lgrec.models.autorec import predict as autorec_predict
from lgrec.models.heads import fit_rating_head

log = logging.getLogger(__name__)

#: autoencoder settings per component: hidden width, hidden layers, kernel, L2 weight λ
AE_SETTINGS: dict[str, dict[str, Any]] = {
    "autorec": {"hidden": 500, "n_hidden": 1, "kernel": False, "lam": 100.0},
    "kernel_autorec": {"hidden": 500, "n_hidden": 2, "kernel": True, "lam": 5.0},
}
COMPONENTS = ("svdpp", *AE_SETTINGS)


def check_components(names: Any) -> tuple[str, ...]:
    """The component names as a tuple; error naming an unknown one."""
    names = (names,) if isinstance(names, str) else tuple(names)
    bad = [n for n in names if n not in COMPONENTS]
    if bad or not names:
        raise ConfigError(f"rating_models: unknown {bad or names!r}; choose from {COMPONENTS}")
    return names


@dataclass
class RatingBlend:
    """A fitted blend: the SVD++ factors, the autoencoders, their input and the weights."""

    names: list[str]
    weights: list[float]  # [w₀, w_1, ...] in the order of ``names``
    head: dict[str, Tensor] | None = None
    nets: dict[str, ItemAutoRec] = field(default_factory=dict)
    x: sp.csr_matrix | None = None  # item × user training ratings (autoencoder input)
    best_epochs: dict[str, int] = field(default_factory=dict)

    def components(self, users: Tensor, items: Tensor) -> Tensor:
        """(n, K) matrix of each component's prediction for the pairs."""
        cols = []
        for name in self.names:
            if name == "svdpp":
                h = self.head
                cols.append(
                    h["mu"]
                    + h["bu"][users]
                    + h["bi"][items]
                    + (h["user"][users] * h["item"][items]).sum(1)
                )
            else:
                cols.append(autorec_predict(self.nets[name], self.x, users, items))
        return torch.stack(cols, 1)

    def predict(self, users: Tensor, items: Tensor) -> Tensor:
        """w₀ + Σ_k w_k r̂ᵏ_ui (unclipped)."""
        w = torch.tensor(self.weights, dtype=torch.float32)
        return w[0] + self.components(users, items) @ w[1:]

    # ---- persistence (tensors for safetensors, JSON-able meta) ----------------------------
    def state(self) -> dict[str, Tensor]:
        st = {f"rating.{k}": v for k, v in (self.head or {}).items()}
        for name, net in self.nets.items():
            st.update({f"rating_{name}.{k}": v for k, v in net.state_dict().items()})
        if self.x is not None:
            st["rating_x.indptr"] = torch.from_numpy(self.x.indptr.astype(np.int64))
            st["rating_x.indices"] = torch.from_numpy(self.x.indices.astype(np.int64))
            st["rating_x.data"] = torch.from_numpy(self.x.data.astype(np.float32))
        return st

    def meta(self) -> dict[str, Any]:
        return {
            "names": self.names,
            "weights": self.weights,
            "best_epochs": self.best_epochs,
            "x_shape": list(self.x.shape) if self.x is not None else None,
        }

    @classmethod
    def from_state(cls, tensors: dict[str, Tensor], meta: dict[str, Any] | None) -> RatingBlend:
        """Inverse of :meth:`state`/:meth:`meta`. Bundles from before the blend (no meta)
        hold the SVD++ head alone."""
        head = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith("rating.")}
        if not meta:
            return cls(["svdpp"], [0.0, 1.0], head=head)
        blend = cls(
            list(meta["names"]),
            list(meta["weights"]),
            head=head or None,
            best_epochs=dict(meta.get("best_epochs", {})),
        )
        if meta.get("x_shape"):
            blend.x = sp.csr_matrix(
                (
                    tensors["rating_x.data"].numpy(),
                    tensors["rating_x.indices"].numpy(),
                    tensors["rating_x.indptr"].numpy(),
                ),
                shape=tuple(meta["x_shape"]),
            )
        for name in blend.names:
            if name in AE_SETTINGS:
                s = AE_SETTINGS[name]
                net = ItemAutoRec(blend.x.shape[1], s["hidden"], s["n_hidden"], s["kernel"])
                pre = f"rating_{name}."
                net.load_state_dict(
                    {k[len(pre) :]: v for k, v in tensors.items() if k.startswith(pre)}
                )
                blend.nets[name] = net.eval()
        return blend


def convex_blend(preds: np.ndarray, target: np.ndarray) -> list[float]:
    """[0, w_1..w_K] minimising ‖P w − r‖² with w ≥ 0, Σ w = 1 (P: n × K predictions).

    A convex combination cannot amplify a component or set two against each other, so it
    does not overfit a small validation split the way free least squares does (the slot
    w₀ = 0 keeps room for an intercept). The equality is a heavily weighted extra row of an
    NNLS.
    """
    from scipy.optimize import nnls

    big = 1e3 * np.sqrt(len(target))
    a = np.vstack([preds, np.full((1, preds.shape[1]), big)])
    w = nnls(a, np.append(target, big))[0]
    w = w / w.sum() if w.sum() > 0 else np.full(preds.shape[1], 1 / preds.shape[1])
    return [0.0, *map(float, w)]


def fit_rating_blend(
    train: Dataset,
    valid: Dataset | None,
    text: Tensor | None,
    *,
    names: tuple[str, ...] = COMPONENTS,
    dim: int = 64,
    reg: float = 0.05,
    epochs: int | dict[str, int] = 300,
    weights: list[float] | None = None,
    max_ae_params: int = 50_000_000,
    seed: int = 0,
) -> RatingBlend:
    """Fit each component on ``train`` (early-stopped on ``valid``), then the blend weights
    on ``valid`` unless ``weights`` are given. ``epochs`` is a cap for every component, or a
    per-component count (a refit)."""
    names = check_components(names)
    if any(n in AE_SETTINGS for n in names):
        too_big = (
            train.n_users * max(AE_SETTINGS[n]["hidden"] for n in names if n in AE_SETTINGS)
            > max_ae_params
        )
        if too_big:
            log.info(
                "rating: %d users × hidden > %d parameters, autoencoders skipped",
                train.n_users,
                max_ae_params,
            )
            names = tuple(n for n in names if n not in AE_SETTINGS) or ("svdpp",)
            weights = None
    n_epochs = (lambda n: epochs[n]) if isinstance(epochs, dict) else (lambda n: epochs)
    blend = RatingBlend(list(names), [])
    for name in names:
        if name == "svdpp":
            head, op, info = fit_rating_head(
                train, valid, text, dim=dim, reg=reg, epochs=n_epochs(name), seed=seed
            )
            with torch.no_grad():
                uf, itf = head.factors(op)
            blend.head = {
                "user": uf.detach().clone(),
                "item": itf.detach().clone(),
                "bu": head.bu.detach().clone(),
                "bi": head.bi.detach().clone(),
                "mu": torch.tensor([head.mu]),
            }
        else:
            net, blend.x, info = fit_item_autorec(
                train, valid, epochs=n_epochs(name), seed=seed, **AE_SETTINGS[name]
            )
            blend.nets[name] = net
        blend.best_epochs[name] = int(info["best_epoch"])
        log.info("rating component %s: %s", name, info)
    if weights is not None:
        if len(weights) != len(names) + 1:
            raise ConfigError(
                f"rating_blend: {len(names) + 1} weights needed for "
                f"{names} (intercept first), got {len(weights)}"
            )
        blend.weights = [float(w) for w in weights]
    elif valid is not None and len(valid) and len(names) > 1:
        u = torch.from_numpy(valid.user_ids.astype(np.int64))
        i = torch.from_numpy(valid.item_ids.astype(np.int64))
        with torch.no_grad():
            c = blend.components(u, i).double().numpy()
        blend.weights = convex_blend(c, valid.ratings.astype(np.float64))
        log.info("rating blend weights %s", np.round(blend.weights, 3).tolist())
    else:
        blend.weights = [0.0] + [1.0 / len(names)] * len(names)
    return blend
