"""User profiles from the language model: embedding means, readable summaries, fold-in.

A user's *history profile* is the weighted mean direction of the embeddings of the items in
their history. For user ``u`` with interactions ``(i, r_ui, t_ui)``:

.. math::

    ρ_u(r) = \\max(r - \\bar r_u + 1,\\; ε) \\quad (ε = 0.1)
    \\qquad\\text{(explicit ratings; } ρ ≡ 1 \\text{ for implicit data)}

    w_{ui} = ρ_u(r_{ui}) \\cdot 2^{-(t_{\\max}(u) - t_{ui}) / h}
    \\qquad\\text{(the recency factor is 1 when } h \\text{ is None)}

    p_u = \\frac{s_u}{\\lVert s_u \\rVert},\\qquad s_u = \\sum_i w_{ui}\\, e_i

``r̄_u`` is the user's mean rating, so a rating at the user's mean weighs 1, each star above
it one more, and ratings well below it weigh ε (they still say *something* about taste but
little). ``h`` (``half_life``) is in timestamp units (seconds for MovieLens): an interaction
``h`` older than the user's latest weighs half. ``e_i`` are item embeddings (usually unit
norm). The sum is one sparse product ``S = W E`` with ``W`` the users × items weight matrix.

The *text profile* ("Likes Drama, Comedy. Enjoyed: Fargo (1996), ...") is encoded by the
same language model and mixed with the history profile by :func:`user_text_profiles`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lgrec.data.dataset import Dataset
from lgrec.errors import ConfigError, DataError

RATING_FLOOR = 0.1


def interaction_weights(
    train: Dataset, *, half_life: float | None = None, rating_weight: bool = True
) -> np.ndarray:
    """Weight ``w_ui = ρ_u(r_ui) · 2^{-(t_max(u) - t_ui)/h}`` of every interaction (float64).

    See the module docstring; ``ρ ≡ 1`` when ``rating_weight`` is false or the ratings carry
    no information (implicit data).
    """
    if half_life is not None and not (np.isfinite(half_life) and half_life > 0):
        raise ConfigError(f"half_life={half_life!r}: expected a positive number or None")
    u = train.user_ids
    w = np.ones(len(u), dtype=np.float64)
    if not len(u):
        return w
    if rating_weight and train.has_ratings:
        r = train.ratings.astype(np.float64)
        r = np.where(np.isfinite(r), r, np.nan)
        ok = ~np.isnan(r)
        counts = np.bincount(u[ok], minlength=train.n_users)
        sums = np.bincount(u[ok], weights=r[ok], minlength=train.n_users)
        mean = sums / np.maximum(counts, 1)
        rho = np.maximum(r - mean[u] + 1.0, RATING_FLOOR)
        w *= np.where(ok, rho, 1.0)
    if half_life is not None:
        t = train.interactions["timestamp"].to_numpy(dtype=np.float64)
        t_max = np.full(train.n_users, -np.inf)
        np.maximum.at(t_max, u, t)
        w *= np.exp2(-(t_max[u] - t) / float(half_life))
    return w


def history_profiles(
    train: Dataset,
    item_emb: np.ndarray,
    *,
    half_life: float | None = None,
    rating_weight: bool = True,
) -> np.ndarray:
    """Users × d matrix of history profiles ``p_u = normalise(Σ_i w_ui e_i)`` (float32).

    ``item_emb`` is the items × d embedding matrix (row ``i`` = item ``i``). Weights follow
    the module docstring; repeated interactions add up. Users without history get zero rows.
    """
    item_emb = _check_item_emb(item_emb, train.n_items)
    w = interaction_weights(train, half_life=half_life, rating_weight=rating_weight)
    W = sp.csr_matrix((w, (train.user_ids, train.item_ids)), shape=(train.n_users, train.n_items))
    return _normalise(np.asarray(W @ item_emb.astype(np.float64)))


def profile_texts(train: Dataset, *, n_categories: int = 3, n_titles: int = 3) -> list[str]:
    """A short readable profile per user, e.g.
    ``"Likes Drama, Comedy, Thriller. Enjoyed: Star Wars (1977), Fargo (1996)."``.

    * **Likes**: the user's ``n_categories`` most frequent item categories, each interaction
      counted with weight ``ρ_u(r_ui)`` (so liked films count more) when ratings are explicit.
    * **Enjoyed** (explicit ratings): the ``n_titles`` highest-rated titles among those rated
      at or above the user's mean, most recent first among ties. **Recent** (implicit data):
      the ``n_titles`` most recent distinct titles.
    * The user's own text (``users["text"]``) is appended where present.

    Users with nothing to say get ``""``. Titles come from ``items["title"]`` (else the item
    id). Everything is grouped with pandas/numpy; only the final short lists are joined per
    user.
    """
    for name, v in (("n_categories", n_categories), ("n_titles", n_titles)):
        if not isinstance(v, int | np.integer) or v < 0:
            raise ConfigError(f"profile_texts({name}={v!r}): expected an int >= 0")
    n_users = train.n_users
    parts = [pd.Series("", index=range(n_users), dtype=object) for _ in range(3)]
    w = interaction_weights(train)
    explicit = train.has_ratings

    if n_categories and len(train):
        vocab, IC = train.categories()
        if len(vocab):
            W = sp.csr_matrix((w, (train.user_ids, train.item_ids)), shape=(n_users, train.n_items))
            UC = sp.coo_matrix(W @ IC)
            top = _top_per_row(UC.row, UC.col, UC.data, n_categories)
            names = pd.Series(np.asarray(vocab, dtype=object)[UC.col[top]])
            joined = names.groupby(UC.row[top]).agg(", ".join)
            parts[0].loc[joined.index] = "Likes " + joined + "."

    if n_titles and len(train):
        df = pd.DataFrame(
            {
                "user": train.user_ids,
                "item": train.item_ids,
                "rating": train.ratings,
                "time": train.interactions["timestamp"].to_numpy(),
                "w": w,
            }
        )
        if explicit:
            df = df[df["w"] >= 1.0]  # rated at or above the user's mean
        df = df.sort_values(["user", "rating", "time"], ascending=[True, False, False])
        df = df.drop_duplicates(["user", "item"])
        df = df[df.groupby("user").cumcount() < n_titles]
        titles = _titles(train)
        names = pd.Series(titles[df["item"].to_numpy()])
        joined = names.groupby(df["user"].to_numpy()).agg(", ".join)
        label = "Enjoyed: " if explicit else "Recent: "
        parts[1].loc[joined.index] = label + joined + "."

    if "text" in train.users.columns:
        own = train.users["text"].reset_index(drop=True)
        own = own.where(own.map(lambda v: isinstance(v, str)), "").str.strip()
        parts[2] = own.astype(object)

    out = parts[0].str.cat([parts[1], parts[2]], sep=" ").str.strip()
    return out.str.replace(r"\s{2,}", " ", regex=True).tolist()


def user_text_profiles(
    train: Dataset,
    encoder,
    *,
    alpha: float = 0.5,
    item_emb: np.ndarray | None = None,
    half_life: float | None = None,
    n_categories: int = 3,
    n_titles: int = 3,
) -> np.ndarray:
    """Mix history and text profiles: ``p_u = normalise(α·h_u + (1-α)·enc(text_u))``.

    ``h_u`` is :func:`history_profiles` over ``item_emb`` (encoded from
    ``train.item_text()`` when ``None``) and ``text_u`` is :func:`profile_texts`; users with
    an empty text contribute a zero text vector, users with neither get zero rows. ``encoder``
    is a :class:`~lgrec.text.encoder.TextEncoder` (anything with ``encode(texts)``).
    """
    if not (isinstance(alpha, int | float) and 0.0 <= alpha <= 1.0):
        raise ConfigError(f"user_text_profiles(alpha={alpha!r}): expected a number in [0, 1]")
    if item_emb is None:
        item_emb = encoder.encode(train.item_text())
    hist = history_profiles(train, item_emb, half_life=half_life)
    texts = profile_texts(train, n_categories=n_categories, n_titles=n_titles)
    has_text = np.fromiter((bool(t) for t in texts), dtype=bool, count=len(texts))
    enc = np.zeros_like(hist)
    if has_text.any():
        vecs = _normalise(np.asarray(encoder.encode([t for t in texts if t]), dtype=np.float64))
        if vecs.shape[1] != hist.shape[1]:
            raise DataError(
                f"user_text_profiles: item_emb has {hist.shape[1]} columns but the encoder "
                f"makes {vecs.shape[1]}-dim vectors; encode items with the same encoder"
            )
        enc[has_text] = vecs
    return _normalise(alpha * hist.astype(np.float64) + (1.0 - alpha) * enc)


def fold_in_profile(
    profile: np.ndarray,
    item_emb_rows: np.ndarray,
    weights: float | np.ndarray = 1.0,
    *,
    decay: float = 1.0,
) -> np.ndarray:
    """Update one user's profile with new interactions: ``p' = normalise(γ·p + Σ_j w_j e_j)``.

    With ``p = s/‖s‖`` (history sum ``s``), passing ``w_j = w_uj / ‖s‖`` gives exactly the
    profile :func:`history_profiles` would compute with the new interactions appended;
    ``γ = 2^{-Δt/h}`` (``decay``) ages the old history when the latest time moves on by Δt.
    Callers that do not keep ``‖s‖`` can treat ``w`` as a learning rate (``w = 1`` gives the
    new item as much pull as the whole past). Negative weights push the profile away
    (dislikes). A zero profile (cold user) becomes the weighted mean of the new items.
    """
    p = np.asarray(profile, dtype=np.float64)
    if p.ndim != 1:
        raise DataError(f"fold_in_profile: profile has shape {p.shape}; expected (d,)")
    E = np.asarray(item_emb_rows, dtype=np.float64)
    if E.ndim == 1:
        E = E[None, :]
    if E.ndim != 2 or E.shape[1] != p.shape[0]:
        raise DataError(
            f"fold_in_profile: item_emb_rows has shape {np.shape(item_emb_rows)}; "
            f"expected (n, {p.shape[0]}) like the profile"
        )
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 0:
        w = np.full(E.shape[0], float(w))
    if w.shape != (E.shape[0],):
        raise DataError(
            f"fold_in_profile: weights has shape {np.shape(weights)}; expected a scalar or "
            f"({E.shape[0]},), one per item row"
        )
    if not (np.isfinite(decay) and decay >= 0):
        raise ConfigError(f"fold_in_profile(decay={decay!r}): expected a number >= 0")
    return _normalise((decay * p + w @ E)[None, :])[0]


# ---- helpers -------------------------------------------------------------------------------
def _check_item_emb(item_emb: np.ndarray, n_items: int) -> np.ndarray:
    E = np.asarray(item_emb)
    if E.ndim != 2 or E.shape[0] != n_items:
        raise DataError(
            f"item_emb has shape {E.shape}; expected ({n_items}, d): one row per item of the "
            "data set, in item-id order"
        )
    if not np.isfinite(E).all():
        raise DataError("item_emb holds NaN or infinite values")
    return E


def _normalise(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), as float32."""
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.divide(X, norms, out=np.zeros_like(X), where=norms > 1e-12).astype(np.float32)


def _top_per_row(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest values of each row (ties: lower column first), row-major."""
    order = np.lexsort((cols, -vals, rows))
    r = rows[order]
    starts = np.r_[0, np.flatnonzero(np.diff(r)) + 1]
    rank = np.arange(len(r)) - np.repeat(starts, np.diff(np.r_[starts, len(r)]))
    return order[(rank < k) & (vals[order] > 0)]


def _titles(train: Dataset) -> np.ndarray:
    items = train.items
    ids = items["item_id"].astype(str)
    if "title" not in items.columns:
        return ids.to_numpy(dtype=object)
    t = items["title"].where(items["title"].map(lambda v: isinstance(v, str) and v.strip() != ""))
    return t.fillna(ids).astype(str).str.strip().to_numpy(dtype=object)
