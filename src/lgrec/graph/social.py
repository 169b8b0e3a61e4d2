"""User–user social graphs: adjacency, link-prediction proximities, taste similarity.

With the undirected, binary friendship adjacency F (U × U, no self-loops), Γ(u) the friends
of u and d_w = |Γ(w)|, the proximities of a candidate pair (u, v) are

    common neighbours:     CN(u, v) = |Γ(u) ∩ Γ(v)|                    = (F F)_uv
    Adamic–Adar:           AA(u, v) = Σ_{w ∈ Γ(u) ∩ Γ(v)} 1 / log d_w  = (F D_AA F)_uv
    resource allocation:   RA(u, v) = Σ_{w ∈ Γ(u) ∩ Γ(v)} 1 / d_w      = (F D⁻¹ F)_uv

(a common friend of degree 1 cannot exist for u ≠ v, so its weight is set to 0). Taste
similarity is the cosine of user vectors x_u (rows of an interaction matrix, or learned
embeddings): T(u, v) = x̂_u · x̂_v with x̂ = x / ‖x‖.

The mean of friends' interactions, used to blend social signal into ranking, is
M = D_F⁻¹ F X (row u = average of the interaction rows of u's friends; 0 without friends).

Everything is computed per block of query users, so only |block| × U (or × I) is dense.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from lgrec.errors import ConfigError, DataError

log = logging.getLogger(__name__)

PROXIMITIES = ("adamic_adar", "common_neighbors", "resource_allocation")


def check_edges(edges: np.ndarray, n_users: int, where: str = "edges") -> np.ndarray:
    """Validate an (E, 2) integer array of user ids in 0..n_users-1; return it as int64."""
    e = np.asarray(edges)
    if e.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if e.ndim != 2 or e.shape[1] != 2 or not np.issubdtype(e.dtype, np.integer):
        raise DataError(
            f"{where}: expected an integer array of shape (n, 2) (user, friend), "
            f"got {e.dtype} array of shape {e.shape}"
        )
    if e.min() < 0 or e.max() >= n_users:
        raise DataError(f"{where}: user ids must be in 0..{n_users - 1}, got {e.min()}..{e.max()}")
    return e.astype(np.int64)


def undirected_pairs(edges: np.ndarray, n_users: int) -> np.ndarray:
    """Unique undirected pairs (u < v) of a directed edge list, self-loops dropped, sorted."""
    e = check_edges(edges, n_users)
    lo, hi = np.minimum(e[:, 0], e[:, 1]), np.maximum(e[:, 0], e[:, 1])
    keep = lo != hi
    key = np.unique(lo[keep] * n_users + hi[keep])
    return np.stack([key // n_users, key % n_users], axis=1)


def social_adjacency(edges: np.ndarray, n_users: int) -> sp.csr_matrix:
    """Binary symmetric U × U CSR adjacency F of the friendship edges (no self-loops)."""
    p = undirected_pairs(edges, n_users)
    r, c = np.r_[p[:, 0], p[:, 1]], np.r_[p[:, 1], p[:, 0]]
    f = sp.csr_matrix(
        (np.ones(len(r), dtype=np.float32), (r, c)), shape=(n_users, n_users), dtype=np.float32
    )
    f.sort_indices()
    return f


def split_edges(
    edges: np.ndarray, n_users: int, *, frac: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Hide a seeded share ``frac`` of the undirected friendships: (kept pairs, hidden pairs).

    Both are (n, 2) arrays of undirected pairs u < v; a hidden pair is hidden in both
    directions, so it cannot leak through the reverse edge.
    """
    if not 0.0 < frac < 1.0:
        raise ConfigError(f"split_edges: frac must be strictly between 0 and 1, got {frac!r}")
    p = undirected_pairs(edges, n_users)
    rng = np.random.default_rng(seed)
    n_hide = round(frac * len(p))
    hide = np.zeros(len(p), dtype=bool)
    hide[rng.choice(len(p), n_hide, replace=False)] = True
    return p[~hide], p[hide]


def _node_weights(f: sp.csr_matrix, kind: str) -> np.ndarray:
    d = np.diff(f.indptr).astype(np.float64)
    w = np.zeros_like(d)
    if kind == "common_neighbors":
        w[:] = 1.0
    elif kind == "adamic_adar":
        big = d > 1
        w[big] = 1.0 / np.log(d[big])
    elif kind == "resource_allocation":
        pos = d > 0
        w[pos] = 1.0 / d[pos]
    else:
        raise ConfigError(f"proximity: kind={kind!r}; expected one of {PROXIMITIES}")
    return w


def proximity(f: sp.spmatrix, users: np.ndarray, kind: str = "adamic_adar") -> np.ndarray:
    """Dense (len(users), U) block of CN / AA / RA (module docstring) for the query users.

    The diagonal entry (u, u) is included as computed (it is masked by recommenders).
    """
    f = sp.csr_matrix(f, dtype=np.float32)
    w = _node_weights(f, kind).astype(np.float32)
    return np.asarray((f[np.asarray(users)] @ sp.diags(w) @ f).toarray(), dtype=np.float32)


def taste_similarity(vectors: np.ndarray | sp.spmatrix, users: np.ndarray) -> np.ndarray:
    """Dense (len(users), U) cosine similarities of the query users' vectors to every user.

    ``vectors`` is a U × d dense array (embeddings) or a sparse U × I matrix (interactions);
    zero rows get similarity 0.
    """
    users = np.asarray(users)
    if sp.issparse(vectors):
        x = sp.csr_matrix(vectors, dtype=np.float32)
        norm = np.sqrt(np.asarray(x.multiply(x).sum(1)).ravel())
        inv = np.where(norm > 0, 1.0 / np.maximum(norm, 1e-12), 0.0).astype(np.float32)
        xn = sp.csr_matrix(sp.diags(inv) @ x)
        return np.asarray((xn[users] @ xn.T).toarray(), dtype=np.float32)
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ConfigError(f"taste_similarity: vectors must be 2-D (users × dim), got {x.shape}")
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    xn = np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)
    return xn[users] @ xn.T


def friends_mean(f: sp.spmatrix, x: sp.spmatrix) -> sp.csr_matrix:
    """M = D_F⁻¹ F X: each user's row is the mean of their friends' rows of X (sparse)."""
    f = sp.csr_matrix(f, dtype=np.float32)
    d = np.diff(f.indptr).astype(np.float32)
    inv = np.where(d > 0, 1.0 / np.maximum(d, 1.0), 0.0).astype(np.float32)
    m = sp.csr_matrix(sp.diags(inv) @ f @ sp.csr_matrix(x, dtype=np.float32), dtype=np.float32)
    m.sort_indices()
    return m
