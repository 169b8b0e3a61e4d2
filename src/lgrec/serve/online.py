"""Online updates between retrains: feedback fold-in, cold-start users and items.

Notation: ``e_i`` is item i's vector in the model's scoring space (LightGCN/LMGCN final item
embedding, MF item factor), ``u`` a user's vector, ``t_i`` item i's unit text embedding and
``x̂ = x / ‖x‖``. The model scores ``ŝ_ui = uᵀe_i (+ b_i)``; only the *direction* of ``u``
matters for a user's ranking, so every update below changes the direction and keeps the norm.

**Feedback fold-in** (one event of type ``ε`` on item ``i``):

    α = η · w_ε,        u' = ‖u‖ · normalise(û + α · ê_i)

This is :func:`lgrec.text.profiles.fold_in_profile` applied to the user vector: if ``û`` is
read as the normalised sum of the user's past item directions, ``α`` is the weight of the new
item relative to that whole past (η = 0.5: a like pulls half as hard as everything before).
Event weights ``w_ε`` (:data:`EVENT_WEIGHTS`): view 0.25, click 0.5, like 1, purchase 1.5;
a rating ``r`` on the scale ``[lo, hi]`` weighs ``(r − m) / (hi − m)`` with ``m = (lo+hi)/2``,
so 5★ pulls (+1), 3★ does nothing and 1★ pushes the user away from the item (−1).
Scores of items near ``i`` rise by ``α ‖u‖ ê_iᵀe_j / ‖û + αê_i‖`` relative to the rest.

**New item from text** (semantic-graph fold-in): with the new text embedding ``t`` and the
``k`` items ``N`` of highest cosine ``c_j = tᵀt_j`` (its neighbours in the semantic kNN graph),

    e_new = Σ_{j∈N} w_j e_j / Σ_{j∈N} w_j,     w_j = exp((c_j − max_N c) / τ)     (τ = 0.1)

and likewise ``b_new`` for an item bias, so the item lands where its text neighbours are.

**Graph-filter fusion** (LMGCN with λ > 0 scores ``z(uᵀe) + λ z(GF(x_u))``, GF linear in the
user's interaction row ``x_u``): an online event adds ``1`` at the item to ``x_u``; a runtime
item enters ``x_u`` as its trained text neighbours ``Σ_j w_j 1_j`` and gets the GF score
``Σ_j w_j GF_j`` (same weights as above, over trained items only).

**New user**: the collaborative part is ``c = normalise(mean_{i∈L} ê_i)`` over the liked items
``L``; the text part maps the encoded text ``q`` into item space exactly like a new item,
``m = normalise(Σ_{j∈N(q)} w_j e_j)``. Then ``u = r · normalise(c + m)`` (either part alone
when the other is missing), with ``r`` the median norm of the trained users' vectors. Because
dot-product scores of an under-trained model lean towards popular (large-norm) items, the
user's text also scores directly while their history ``H_u`` is short:
``s_u = z(uᵀV) + w_u · z(cos(q, T))``, ``w_u = 1 / (1 + |H_u| / 5)``.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from lgrec.data.dataset import INTERACTION_COLUMNS, Dataset
from lgrec.errors import ConfigError, ModelFileError
from lgrec.ranking import topk_stable

log = logging.getLogger(__name__)
Tensor = torch.Tensor

TEXT_HALF_HISTORY = 5.0
"""History length at which a text-created user's own text weighs half (``w_u`` above)."""

EVENT_WEIGHTS: dict[str, float] = {"view": 0.25, "click": 0.5, "like": 1.0, "purchase": 1.5}
"""``w_ε`` of each implicit event type; ratings use their value (module docstring)."""


def event_weight(
    event: str, value: float | None, rating_scale: tuple[float, float] = (1.0, 5.0)
) -> float:
    """``w_ε`` of one event (module docstring); 0 for a rating at the scale's midpoint."""
    if event == "rating":
        if value is None or not math.isfinite(value):
            raise ConfigError("event_weight: a rating event needs a finite value")
        lo, hi = rating_scale
        mid = (lo + hi) / 2.0
        half = max((hi - mid), 1e-9)
        return float(np.clip((value - mid) / half, -1.0, 1.0))
    if event not in EVENT_WEIGHTS:
        raise ConfigError(f"event_weight: unknown event {event!r}; expected {list(EVENT_WEIGHTS)}")
    return EVENT_WEIGHTS[event]


def fold_in_coefficients(u: Tensor, e: Tensor, alpha: float) -> tuple[float, float]:
    """``(a, b)`` with ``fold_in(u, e, α) = a·u + b·e`` (module docstring):

        n = ‖û + α ê‖,     a = 1 / n,     b = α ‖u‖ / (n ‖e‖)

    so anything linear in the user's vector (a score row ``V u``) follows an event as
    ``a · (V u) + b · (V e)`` (:mod:`lgrec.serve.foldcache`). Special cases: ``α = 0`` or a
    zero ``e`` changes nothing ``(1, 0)``; a zero ``u`` becomes ``e`` ``(0, 1)``; ``û = −αê``
    gives the zero vector ``(0, 0)``."""
    un, en = float(u.norm()), float(e.norm())
    if en < 1e-12 or alpha == 0.0:
        return 1.0, 0.0
    if un <= 1e-12:
        return 0.0, 1.0
    p = u.double() / un + (float(alpha) / en) * e.double()
    n = float(p.norm())
    if n <= 1e-12:
        return 0.0, 0.0
    return 1.0 / n, float(alpha) * un / (n * en)


def fold_in(u: Tensor, e: Tensor, alpha: float) -> Tensor:
    """``u' = ‖u‖ · normalise(û + α ê)`` = ``a·u + b·e`` (:func:`fold_in_coefficients`);
    a zero ``u`` becomes ``e``."""
    a, b = fold_in_coefficients(u, e, alpha)
    if (a, b) == (1.0, 0.0):
        return u.clone()
    return (a * u.double() + b * e.double()).float()


def unit_rows(x: Tensor) -> Tensor:
    """Rows scaled to unit norm (zero rows stay zero)."""
    return torch.nn.functional.normalize(x.float(), dim=1)


def text_neighbours(q: Tensor, text: Tensor, k: int, tau: float = 0.1) -> tuple[Tensor, Tensor]:
    """The ``k`` items of highest cosine to ``q`` and their weights ``exp((c_j − c_max)/τ)``
    normalised to sum to one (module docstring). ``text`` holds unit rows."""
    if tau <= 0:
        raise ConfigError(f"text_neighbours: tau must be > 0, got {tau!r}")
    c = text @ torch.nn.functional.normalize(q.float(), dim=0)
    kk = min(int(k), len(c))
    vals, ix = topk_stable(c, kk)
    w = torch.exp((vals - vals.max()) / tau)
    return ix, w / w.sum()


def item_from_text(
    q: Tensor, text: Tensor, emb: Tensor, bias: Tensor | None, k: int = 10, tau: float = 0.1
) -> tuple[Tensor, float | None]:
    """Vector (and bias) of a new item with text embedding ``q``: weighted mean over its
    top-``k`` text neighbours (module docstring)."""
    idx, w = text_neighbours(q, text, k, tau)
    vec = (w[:, None] * emb[idx]).sum(0)
    b = None if bias is None else float((w * bias[idx]).sum())
    return vec, b


def user_from_signals(
    emb: Tensor,
    liked: Tensor | None,
    q: Tensor | None,
    text: Tensor | None,
    scale: float,
    k: int = 10,
    tau: float = 0.1,
) -> Tensor:
    """A cold user's vector from liked items and/or encoded text (module docstring)."""
    parts = []
    if liked is not None and len(liked):
        parts.append(torch.nn.functional.normalize(unit_rows(emb[liked]).mean(0), dim=0))
    if q is not None:
        if text is None:
            raise ConfigError("user_from_signals: text given but the server has no item texts")
        idx, w = text_neighbours(q, text, k, tau)
        parts.append(torch.nn.functional.normalize((w[:, None] * emb[idx]).sum(0), dim=0))
    if not parts:
        raise ConfigError("a new user needs liked items or a text")
    return torch.nn.functional.normalize(torch.stack(parts).sum(0), dim=0) * float(scale)


def zscore(s: Tensor) -> Tensor:
    """Z-score of a 1-D score vector over its finite entries (non-finite ones stay as they are)."""
    finite = torch.isfinite(s)
    if not bool(finite.any()):
        return s
    v = s[finite]
    sd = v.std(unbiased=False).clamp(min=1e-8)
    return torch.where(finite, (s - v.mean()) / sd, s)


def blend_cosines(
    emb_unit: Tensor, text_unit: Tensor | None, i: int, blend: float, rows: Tensor | None = None
) -> Tensor:
    """``β · cos(e_i, e_j) + (1 − β) · cos(t_i, t_j)`` for every item ``j`` (or ``rows``).

    Without text the collaborative cosine alone is used (β = 1).
    """
    e = emb_unit if rows is None else emb_unit[rows]
    sim = e @ emb_unit[i]
    if text_unit is not None and blend < 1.0:
        t = text_unit if rows is None else text_unit[rows]
        sim = blend * sim + (1.0 - blend) * (t @ text_unit[i])
    return sim


def filter_row_scores(gf: object, row: sp.csr_matrix) -> Tensor:
    """Scores of a graph filter (:class:`lgrec.models.graphfilter.GraphFilter`, fused into
    LMGCN) for one interaction row ``x`` (1 × items, CSR).

    The filter is linear in the user's row (``s = x R̃ᵀR̃ + α x D^{-1/2} V_k V_kᵀ D^{1/2} + γ x S``)
    and reads only that row from ``x_``, so a shallow copy whose ``x_`` is ``row`` scores any
    online history — trained users with new events and users created at run time alike.
    """
    g = copy.copy(gf)
    g.x_ = sp.csr_matrix(row, dtype=np.float32)
    with torch.no_grad():
        return g._score_block(torch.zeros(1, dtype=torch.long))[0].float()


# ---- bundle helpers ---------------------------------------------------------------------------
DEFAULT_FIELDS = ("title", "categories", "description")


def model_factors(model: Any) -> tuple[Tensor, Tensor, Tensor | None]:
    """``(U, V, b)`` with ``score = U Vᵀ + b`` (up to a per-user constant) for the models the
    server can update online: LightGCN/LMGCN (``user_emb_``) and MF (``user_factors_``)."""
    if hasattr(model, "user_emb_") and hasattr(model, "item_emb_"):
        return model.user_emb_, model.item_emb_, None
    if hasattr(model, "user_factors_") and hasattr(model, "item_factors_"):
        return model.user_factors_, model.item_factors_, getattr(model, "item_bias_", None)
    raise ConfigError(
        f"lgrec serve needs an embedding model (lightgcn, lmgcn, bprmf, biasedmf); "
        f"got {type(model).__name__}, which has no user/item vectors to update online"
    )


def item_texts(items: pd.DataFrame, fields: Sequence[str] = DEFAULT_FIELDS) -> list[str]:
    """Item texts formatted exactly like :meth:`Dataset.item_text` (what the model encoded)."""
    empty = pd.DataFrame({c: [] for c in INTERACTION_COLUMNS})
    return Dataset(empty, items.reset_index(drop=True), pd.DataFrame({"user_id": []})).item_text(
        tuple(fields)
    )


def read_bundle_tables(
    model_dir: Path, item_ids: list[str], n_users: int
) -> tuple[pd.DataFrame, dict[int, str]]:
    """The bundle's item table — columns ``item_id, title, description, categories``, cleaned
    (strings, lists) — and the trained users' own texts ``{user row: text}``."""
    f = model_dir / "items.parquet"
    items = pd.read_parquet(f) if f.is_file() else pd.DataFrame()
    if len(items) and len(items) != len(item_ids):
        raise ModelFileError(f"{f}: {len(items)} rows but the model has {len(item_ids)} items")
    if not len(items):
        items = pd.DataFrame({"item_id": item_ids})
    for col in ("title", "description"):
        items[col] = items[col].fillna("").astype(str) if col in items else ""
    cats = items["categories"].tolist() if "categories" in items else [None] * len(items)
    items["categories"] = [
        [str(c) for c in v] if v is not None and not isinstance(v, str) else [] for v in cats
    ]
    items["item_id"] = items["item_id"].astype(str)
    items = items[["item_id", "title", "description", "categories"]].reset_index(drop=True)
    f = model_dir / "users.parquet"
    users = pd.read_parquet(f) if f.is_file() else pd.DataFrame()
    user_text: dict[int, str] = {}
    if "text" in users and len(users) == n_users:
        txt = users["text"].where(users["text"].map(lambda v: isinstance(v, str)), "")
        user_text = {k: t for k, t in enumerate(txt.tolist()) if t}
    return items, user_text
