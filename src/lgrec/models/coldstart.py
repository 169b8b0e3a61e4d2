"""Cold-start item embeddings: a ridge map from item side information to learned embeddings.

Items never seen in training have no collaborative signal. We describe every item by side
features f_i = [t_i, c_i, y_i] (language-model text embedding, category one-hot, release-year
bucket one-hot when a year is known) and learn a linear map on the warm items,

    W = argmin_W ‖F_warm W − E_warm‖² + λ‖W‖²  =  (F_wᵀF_w + λI)⁻¹ F_wᵀ E_w,

where E_warm are the model's trained item embeddings (LMGCN) or any other per-item target
scored by a dot product with a user side (the graph filter's spectral coordinates). The map
is blended with the item's semantic neighbours among the warm items (top-k by text cosine,
softmax weights at temperature τ):

    ẽ_i = Σ_{j ∈ N_k(i)} softmax_j(cos(t_i, t_j) / τ) e_j,      e_i = (1 − α) f_i W + α ẽ_i.

λ and α are chosen by k-fold cross-validation over warm items, so no test data is touched. With
the users' embeddings and training interactions given, the criterion is the one cold start is
judged by: each fold's items are treated as cold (mapped by W fitted on the other folds, and
given neighbours among the other folds only) and every user ranks just those items by e_u · e_i;
the mean Recall@20 of recovering the user's training items in the fold picks (λ, α)
("pseudo-cold" validation, on at most ``max_users`` sampled users). Without them the criterion
is the mean squared error of the embeddings.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from lgrec.data.dataset import Dataset

log = logging.getLogger(__name__)
YEAR_RE = re.compile(r"(1[89]\d\d|20\d\d)")


def item_years(data: Dataset) -> np.ndarray | None:
    """Release year per item (NaN where unknown) from a ``year``/``release_date`` column or a
    trailing "(YYYY)" in the title; ``None`` when no item has one."""
    items = data.items
    for col in ("year", "release_date", "title"):
        if col not in items.columns:
            continue
        s = items[col].astype(str)
        pat = r"\((\d{4})\)\s*$" if col == "title" else r"(1[89]\d\d|20\d\d)"
        y = s.str.extract(pat)[0].astype(float).to_numpy()
        if np.isfinite(y).any():
            return y
    return None


def side_features(
    data: Dataset, text: torch.Tensor | None, year_edges: np.ndarray | None = None
) -> tuple[torch.Tensor | None, np.ndarray | None]:
    """F = [normalised text, category one-hot, year-bucket one-hot] and the year bin edges used.

    Year buckets are deciles of the known years (``year_edges`` reuses saved edges). Parts the
    data lacks are left out (``text=None``: no text part); ``F`` is ``None`` when none is left.
    """
    parts = [] if text is None else [torch.nn.functional.normalize(text.float(), dim=1)]
    _, cats = data.categories()
    if cats.shape[1]:
        parts.append(torch.from_numpy(cats.toarray()))
    years = item_years(data)
    if years is not None:
        known = years[np.isfinite(years)]
        if year_edges is None:
            year_edges = np.unique(np.quantile(known, np.linspace(0.1, 0.9, 9)))
        b = np.digitize(np.nan_to_num(years, nan=np.median(known)), year_edges)
        onehot = np.eye(len(year_edges) + 1, dtype=np.float32)[b]
        onehot[~np.isfinite(years)] = 0.0
        parts.append(torch.from_numpy(onehot))
    return (torch.cat(parts, dim=1) if parts else None), year_edges


def _pseudo_cold_recall(
    user_emb: torch.Tensor, seen: sp.csr_matrix, emb: torch.Tensor, k: int = 20
) -> tuple[float, int]:
    """(Σ Recall@k, users counted) of users ranking only the given items by ``user_emb · embᵀ``;
    ``seen`` (users × these items) holds the relevant items."""
    n_rel = np.diff(seen.indptr)
    users = np.flatnonzero(n_rel > 0)
    k = min(k, emb.shape[0])
    total = 0.0
    for s in range(0, len(users), 1024):
        ub = users[s : s + 1024]
        top = torch.topk(user_emb[ub] @ emb.T, k, dim=1).indices.numpy()
        hits = np.take_along_axis(seen[ub].toarray() > 0, top, axis=1).sum(1)
        total += float((hits / n_rel[ub]).sum())
    return total, len(users)


def neighbour_estimate(
    t_query: torch.Tensor, t_pool: torch.Tensor, e_pool: torch.Tensor, k: int, tau: float
) -> torch.Tensor:
    """ẽ = Σ_{j ∈ top-k} softmax(cos/τ)_j e_j for each query row (``t_*`` L2-normalised)."""
    out = torch.empty(len(t_query), e_pool.shape[1], dtype=e_pool.dtype)
    k = min(k, len(t_pool))
    for s in range(0, len(t_query), 2048):
        sim = t_query[s : s + 2048] @ t_pool.T
        top = torch.topk(sim, k, dim=1)
        w = torch.softmax(top.values / tau, dim=1).to(e_pool.dtype)
        out[s : s + 2048] = (w[:, :, None] * e_pool[top.indices]).sum(1)
    return out


@dataclass
class ColdMap:
    """A fitted cold-start map (module docstring): ridge ``w``, its ``lam``, the neighbour
    weight ``alpha`` with its ``k`` and temperature ``tau``."""

    w: torch.Tensor
    lam: float
    alpha: float
    k: int = 20
    tau: float = 0.1

    def embed(
        self,
        f: torch.Tensor,
        t: torch.Tensor | None,
        t_pool: torch.Tensor | None,
        e_pool: torch.Tensor,
    ) -> torch.Tensor:
        """e = (1 − α) f W + α ẽ for items with features ``f`` and normalised text ``t``,
        neighbours taken from the pool (the warm items' text and embeddings)."""
        e = f.to(self.w.dtype) @ self.w
        if self.alpha > 0 and t is not None and t_pool is not None:
            nb = neighbour_estimate(t, t_pool, e_pool.to(e.dtype), self.k, self.tau)
            e = (1 - self.alpha) * e + self.alpha * nb
        return e


def fit_cold_map(
    f: torch.Tensor,
    t: torch.Tensor | None,
    e: torch.Tensor,
    *,
    lambdas: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0),
    alphas: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0),
    k: int = 20,
    tau: float = 0.1,
    folds: int = 5,
    seed: int = 0,
    user_emb: torch.Tensor | None = None,
    seen: sp.spmatrix | None = None,
    max_users: int = 5000,
) -> ColdMap:
    """Fit W on all rows with (λ, α) chosen by ``folds``-fold CV over the rows (warm items).

    ``f`` side features, ``t`` normalised text embeddings (``None``: no neighbour term, α = 0)
    and ``e`` target embeddings, one row per warm item. With ``user_emb`` (U × d) and ``seen``
    (U × len(f), the users' training interactions with these items) the choice maximises
    pseudo-cold Recall@20, else it minimises the squared error (module docstring).
    """
    f, e = f.double(), e.double()
    if t is None:
        alphas = (0.0,)
    else:
        t = t.float()
    n = len(f)
    rng = np.random.default_rng(seed)
    fold = rng.integers(0, folds, n)
    eye = torch.eye(f.shape[1], dtype=torch.float64)
    ranked = user_emb is not None and seen is not None
    if ranked:
        seen = sp.csr_matrix(seen, dtype=np.float32)
        users = np.flatnonzero(np.diff(seen.indptr) > 0)
        if len(users) > max_users:
            users = np.sort(rng.choice(users, max_users, replace=False))
        seen = sp.csc_matrix(seen[users])
        user_emb = user_emb[torch.from_numpy(users)].float()
    err = np.zeros((len(lambdas), len(alphas)))
    count = 0
    for fo in range(folds if err.size > 1 else 0):  # one (λ, α): nothing to choose
        tr, te = fold != fo, fold == fo
        if not te.any() or not tr.any():
            continue
        t_tr, t_te = torch.from_numpy(tr), torch.from_numpy(te)
        nb = neighbour_estimate(t[t_te], t[t_tr], e[t_tr], k, tau) if t is not None else 0.0
        truth = seen[:, te].tocsr() if ranked else None
        for a, lam in enumerate(lambdas):
            w = torch.linalg.solve(f[t_tr].T @ f[t_tr] + lam * eye, f[t_tr].T @ e[t_tr])
            ridge = f[t_te] @ w
            for b, alpha in enumerate(alphas):
                pred = (1 - alpha) * ridge + alpha * nb
                if ranked:
                    err[a, b] -= _pseudo_cold_recall(user_emb, truth, pred.float())[0]  # −recall
                else:
                    err[a, b] += float(((pred - e[t_te]) ** 2).sum())
        count += int((np.diff(truth.indptr) > 0).sum()) if ranked else int(te.sum())
    a, b = np.unravel_index(np.argmin(err), err.shape)
    lam, alpha = lambdas[a], alphas[b]
    w = torch.linalg.solve(f.T @ f + lam * eye, f.T @ e).float()
    if err.size > 1:
        log.info("cold-start map: λ=%s α=%s (CV %s %.4f)", lam, alpha,
                 "Recall@20" if ranked else "MSE", abs(err[a, b]) / max(1, count))  # fmt: skip
    return ColdMap(w, float(lam), float(alpha), k, tau)


@dataclass
class SideMap:
    """A :class:`ColdMap` fitted on the warm items, with what it needs to place any item:
    side features ``f`` and normalised text ``t`` of every item, the ``warm`` mask and the
    warm items' ``targets``."""

    cmap: ColdMap
    f: torch.Tensor
    t: torch.Tensor | None
    warm: np.ndarray
    targets: torch.Tensor

    def embed(self, items: np.ndarray, exclude_self: bool = False) -> torch.Tensor:
        """Placements of ``items`` from side features alone. ``exclude_self`` (for warm items,
        to see them as if they were cold) drops each item from its own neighbour pool."""
        w = torch.from_numpy(self.warm)
        idx = torch.from_numpy(np.asarray(items, dtype=np.int64))
        e = self.f[idx].to(self.cmap.w.dtype) @ self.cmap.w
        if self.cmap.alpha > 0 and self.t is not None:
            pool = torch.from_numpy(np.flatnonzero(self.warm))
            t_pool, e_pool = self.t[w], self.targets[w].to(e.dtype)
            nb = torch.empty_like(e)
            k = min(self.cmap.k, len(pool) - int(exclude_self))
            for s in range(0, len(idx), 2048):
                q = idx[s : s + 2048]
                sim = self.t[q] @ t_pool.T
                if exclude_self:
                    sim[q[:, None] == pool[None, :]] = -torch.inf
                top = torch.topk(sim, k, dim=1)
                wt = torch.softmax(top.values / self.cmap.tau, dim=1).to(e.dtype)
                nb[s : s + 2048] = (wt[:, :, None] * e_pool[top.indices]).sum(1)
            e = (1 - self.cmap.alpha) * e + self.cmap.alpha * nb
        return e.to(self.targets.dtype)


def fit_side_map(
    data: Dataset,
    text: torch.Tensor | None,
    targets: torch.Tensor,
    *,
    user_emb: torch.Tensor,
    seen: sp.csr_matrix,
    seed: int = 0,
    **grid: object,
) -> SideMap | None:
    """A :class:`SideMap` from side features to ``targets`` (I × d rows; only the rows of items
    with an interaction in ``seen`` are used), chosen by pseudo-cold Recall@20 of ``user_emb``
    · target (``grid``: ``lambdas``, ``alphas``, ``max_users`` … of :func:`fit_cold_map`).
    ``None`` when there is no side feature or fewer than 10 warm items."""
    f, _ = side_features(data, text)
    warm = np.diff(sp.csc_matrix(seen).indptr) > 0
    if f is None or int(warm.sum()) < 10:
        return None
    t = None if text is None else torch.nn.functional.normalize(text.float(), dim=1)
    w = torch.from_numpy(warm)
    cm = fit_cold_map(
        f[w],
        None if t is None else t[w],
        targets[w],
        seed=seed,
        user_emb=user_emb,
        seen=sp.csr_matrix(seen)[:, warm],
        **grid,  # type: ignore[arg-type]
    )
    return SideMap(cm, f, t, warm, targets)


def embed_cold_items(
    data: Dataset,
    text: torch.Tensor | None,
    targets: torch.Tensor,
    *,
    user_emb: torch.Tensor,
    seen: sp.csr_matrix,
    seed: int = 0,
) -> tuple[np.ndarray, torch.Tensor] | None:
    """Embed the items of ``data`` that have no interaction in ``seen`` (U × I) from their side
    features (:func:`fit_side_map`). Returns (cold item indices, their embeddings), or ``None``
    when there is nothing to embed, no side feature, or fewer than 10 warm items."""
    warm = np.diff(sp.csc_matrix(seen).indptr) > 0
    if warm.all():
        return None
    sm = fit_side_map(data, text, targets, user_emb=user_emb, seen=seen, seed=seed)
    if sm is None:
        return None
    cold = np.flatnonzero(~warm)
    return cold, sm.embed(cold)
