"""Cold-start item embeddings: a ridge map from item side information to learned embeddings.

Items never seen in training have no collaborative signal. We describe every item by side
features f_i = [t_i, c_i, y_i] (language-model text embedding, category one-hot, release-year
bucket one-hot when a year is known) and learn a linear map on the warm items,

    W = argmin_W ‖F_warm W − E_warm‖² + λ‖W‖²  =  (F_wᵀF_w + λI)⁻¹ F_wᵀ E_w,

where E_warm are the model's trained item embeddings; a cold item gets e_i = f_i W. λ is chosen
by k-fold cross-validation over warm items (mean squared error), so no test data is touched.
"""

from __future__ import annotations

import re

import numpy as np
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


def fit_ridge_map(
    f: torch.Tensor,
    e: torch.Tensor,
    lambdas: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0),
    folds: int = 5,
    seed: int = 0,
) -> tuple[torch.Tensor, float]:
    """Ridge W (features → embeddings) with λ chosen by ``folds``-fold CV on the rows given."""
    f, e = f.double(), e.double()
    n = len(f)
    fold = torch.from_numpy(np.random.default_rng(seed).integers(0, folds, n))
    eye = torch.eye(f.shape[1], dtype=torch.float64)
    best = (float("inf"), lambdas[0])
    for lam in lambdas:
        err = 0.0
        for k in range(folds):
            tr, te = fold != k, fold == k
            w = torch.linalg.solve(f[tr].T @ f[tr] + lam * eye, f[tr].T @ e[tr])
            err += float(((f[te] @ w - e[te]) ** 2).sum())
        best = min(best, (err / n, lam))
    lam = best[1]
    w = torch.linalg.solve(f.T @ f + lam * eye, f.T @ e)
    return w.float(), lam
