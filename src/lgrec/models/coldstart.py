"""Cold-start item embeddings: a ridge map from item side information to learned embeddings.

Items never seen in training have no collaborative signal. We describe every item by side
features f_i = [t_i, c_i, y_i] (language-model text embedding, category one-hot, release-year
bucket one-hot when a year is known) and learn a linear map on the warm items,

    W = argmin_W ‖F_warm W − E_warm‖² + λ‖W‖²  =  (F_wᵀF_w + λI)⁻¹ F_wᵀ E_w,

where E_warm are the model's trained item embeddings; a cold item gets e_i = f_i W. λ is chosen
by k-fold cross-validation over warm items, so no test data is touched. With the users'
embeddings and training interactions given, the criterion is the one cold start is judged by:
each fold's items are treated as cold (embedded by the map fitted on the other folds) and every
user ranks just those items by e_u · f_i W; the mean Recall@20 of recovering the user's training
items in the fold picks λ ("pseudo-cold" validation). Without them it is the mean squared error.
"""

from __future__ import annotations

import re

import numpy as np
import scipy.sparse as sp
import torch

from lgrec.data.dataset import Dataset

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
    data: Dataset, text: torch.Tensor, year_edges: np.ndarray | None = None
) -> tuple[torch.Tensor, np.ndarray | None]:
    """F = [normalised text, category one-hot, year-bucket one-hot] and the year bin edges used.

    Year buckets are deciles of the known years (``year_edges`` reuses saved edges).
    """
    parts = [torch.nn.functional.normalize(text.float(), dim=1)]
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
    return torch.cat(parts, dim=1), year_edges


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


def fit_ridge_map(
    f: torch.Tensor,
    e: torch.Tensor,
    lambdas: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0),
    folds: int = 5,
    seed: int = 0,
    user_emb: torch.Tensor | None = None,
    seen: sp.spmatrix | None = None,
) -> tuple[torch.Tensor, float]:
    """Ridge W (features → embeddings) with λ chosen by ``folds``-fold CV on the rows given.

    With ``user_emb`` (U × d) and ``seen`` (U × len(f), the users' training interactions with
    these items) λ maximises pseudo-cold Recall@20 (module docstring); otherwise it minimises
    the held-out squared error.
    """
    f, e = f.double(), e.double()
    n = len(f)
    fold = np.random.default_rng(seed).integers(0, folds, n)
    eye = torch.eye(f.shape[1], dtype=torch.float64)
    ranked = user_emb is not None and seen is not None
    if ranked:
        seen = sp.csc_matrix(seen, dtype=np.float32)
        user_emb = user_emb.float()
    scores = []
    for lam in lambdas:
        err, count = 0.0, 0
        for k in range(folds):
            tr, te = fold != k, fold == k
            if not te.any() or not tr.any():
                continue
            t_tr, t_te = torch.from_numpy(tr), torch.from_numpy(te)
            w = torch.linalg.solve(f[t_tr].T @ f[t_tr] + lam * eye, f[t_tr].T @ e[t_tr])
            pred = f[t_te] @ w
            if ranked:
                r, m = _pseudo_cold_recall(user_emb, seen[:, te].tocsr(), pred.float())
                err, count = err - r, count + m  # minimise −recall
            else:
                err, count = err + float(((pred - e[t_te]) ** 2).sum()), count + int(te.sum())
        scores.append(err / max(1, count))
    lam = lambdas[int(np.argmin(scores))]
    w = torch.linalg.solve(f.T @ f + lam * eye, f.T @ e)
    return w.float(), lam
