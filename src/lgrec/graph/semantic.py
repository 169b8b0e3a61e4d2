"""Item–item semantic association graphs: text-embedding kNN and category co-membership.

Semantic kNN. With item text embeddings E (I × d) and their unit-norm rows ê_i = e_i / ‖e_i‖,
the cosine similarity is s_ij = ê_i · ê_j and the directed kNN graph is

    A_ij = s_ij   if j ∈ N_k(i) and s_ij ≥ τ,   else 0,

where N_k(i) holds the k most similar items to i (i itself excluded by default) and τ is the
threshold. It is computed in row blocks B: S_B = Ê_B Êᵀ (|B| × I, a torch matmul) followed by
``topk``, so peak memory is O(|B| · I) and the dense I × I matrix never exists.

Category graph. With the items × categories binary matrix M (I × C), n_i = Σ_c M_ic the number
of categories of item i and |c| = Σ_i M_ic the size of category c:

    jaccard:       w_ij = |C_i ∩ C_j| / |C_i ∪ C_j| = (MMᵀ)_ij / (n_i + n_j − (MMᵀ)_ij)
    inverse_size:  w_ij = Σ_c M_ic M_jc / |c|   (resource allocation: big categories count less)

Normalisation: ``normalize_graph`` gives D_r^{-1/2} A D_c^{-1/2} (``"sym"``, D_r / D_c the row /
column sums, equal for a symmetric A) or D_r^{-1} A (``"row"``, rows sum to one).
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
import torch

from lgrec.errors import ConfigError
from lgrec.graph.cooccurrence import topk_per_row
from lgrec.ranking import topk_stable

log = logging.getLogger(__name__)

_SYMMETRIZE = ("max", "none", "mean", "min")


def semantic_knn(
    emb: np.ndarray | torch.Tensor,
    *,
    k: int = 20,
    threshold: float = 0.0,
    block_size: int = 2048,
    exclude_self: bool = True,
    symmetrize: str = "max",
) -> sp.csr_matrix:
    """Cosine kNN graph of item embeddings (I × I float32 CSR; see module docstring).

    Args:
        emb: item embeddings, I × d (rows need not be unit-norm; zero rows get no edges).
        k: neighbours per item before symmetrisation.
        threshold: minimum cosine similarity τ of a kept edge.
        block_size: rows per block; peak memory ≈ 4 · block_size · I bytes for the scores.
        exclude_self: drop the self-loop i → i.
        symmetrize: ``"max"`` (union: keep an edge found from either end), ``"mean"``
            ((A + Aᵀ)/2: an edge found from one end only keeps half its weight), ``"min"``
            (mutual kNN: keep an edge found from both ends) or ``"none"`` (directed A).
    """
    if not isinstance(k, int | np.integer) or isinstance(k, bool) or k <= 0:
        raise ConfigError(f"semantic_knn: k must be a positive integer, got {k!r}")
    if block_size <= 0:
        raise ConfigError(f"semantic_knn: block_size must be positive, got {block_size!r}")
    if symmetrize not in _SYMMETRIZE:
        raise ConfigError(f"semantic_knn: symmetrize={symmetrize!r}; expected one of {_SYMMETRIZE}")
    e = torch.as_tensor(np.asarray(emb) if not isinstance(emb, torch.Tensor) else emb)
    if e.ndim != 2:
        raise ConfigError(f"semantic_knn: emb must be a 2-D (items × dim) array, got {e.shape}")
    e = torch.nn.functional.normalize(e.detach().float(), dim=1)
    n = e.shape[0]
    kk = min(int(k), n - 1 if exclude_self else n)
    if kk <= 0:
        return sp.csr_matrix((n, n), dtype=np.float32)
    rows, cols, vals = [], [], []
    with torch.no_grad():
        for start in range(0, n, block_size):
            stop = min(start + block_size, n)
            s = e[start:stop] @ e.T
            if exclude_self:
                r = torch.arange(stop - start)
                s[r, r + start] = -torch.inf
            v, ix = topk_stable(s, kk)  # equal cosines: lower item index first
            keep = v >= threshold
            rows.append((torch.nonzero(keep)[:, 0] + start).numpy())
            cols.append(ix[keep].numpy())
            vals.append(v[keep].numpy())
            del s
    a = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, n),
        dtype=np.float32,
    )
    a.eliminate_zeros()
    out = symmetrize_graph(a, symmetrize)
    log.debug("semantic_knn: %d items, k=%d, %d edges", n, kk, out.nnz)
    return out


def symmetrize_graph(a: sp.spmatrix, how: str = "max") -> sp.csr_matrix:
    """Make a directed graph undirected: ``"max"``/``"mean"``/``"min"``/``"none"`` (see above).

    ``"max"`` takes the larger stored value over the union of edges (so negative weights are
    kept, not compared with implicit zeros); ``"min"`` keeps the smaller value over edges stored
    in both directions.
    """
    if how not in _SYMMETRIZE:
        raise ConfigError(f"symmetrize={how!r}; expected one of {_SYMMETRIZE}")
    a = sp.csr_matrix(a, dtype=np.float32)
    if how == "none":
        a.sort_indices()
        return a
    if how == "mean":
        out = sp.csr_matrix((a + a.T) * 0.5, dtype=np.float32)
    else:
        c, t = a.tocoo(), a.T.tocoo()
        r = np.concatenate([c.row, t.row])
        j = np.concatenate([c.col, t.col])
        v = np.concatenate([c.data, t.data])
        order = np.lexsort((j, r))
        r, j, v = r[order], j[order], v[order]
        first = np.ones(len(r), dtype=bool)
        first[1:] = (r[1:] != r[:-1]) | (j[1:] != j[:-1])
        starts = np.flatnonzero(first)
        if how == "max":
            red = np.maximum.reduceat(v, starts) if len(v) else v
        else:
            red = np.minimum.reduceat(v, starts) if len(v) else v
            both = np.diff(np.append(starts, len(r))) == 2
            starts, red = starts[both], red[both]
        out = sp.csr_matrix((red, (r[starts], j[starts])), shape=a.shape, dtype=np.float32)
    out.sort_indices()
    return out


def category_graph(
    item_cat: sp.spmatrix,
    *,
    max_per_category: int | None = 200,
    weight: float = 1.0,
    kind: str = "jaccard",
    symmetrize: str = "max",
    block_size: int = 512,
    seed: int = 0,
) -> sp.csr_matrix:
    """Item–item graph from shared categories (I × I float32 CSR; see module docstring).

    Args:
        item_cat: items × categories matrix (non-zero = member), e.g. ``Dataset.categories()[1]``.
        max_per_category: the most neighbours an item keeps (its strongest co-members); this
            bounds a category of n items to at most n · max_per_category edges instead of n².
            Ties (common: items with the same genres) are broken by a seeded hash of the pair,
            so no low-id item becomes a hub. ``None`` keeps every co-member.
        weight: multiplier of every edge weight (to mix with other graphs).
        kind: ``"jaccard"`` or ``"inverse_size"`` (Σ over shared categories of 1/|c|).
        symmetrize: applied after the per-item cut, as in :func:`semantic_knn`.
        block_size: items per block of the blocked product M_B Mᵀ.
        seed: seed of the tie-breaking hash.
    """
    if max_per_category is not None and (
        not isinstance(max_per_category, int | np.integer) or max_per_category <= 0
    ):
        raise ConfigError(
            f"category_graph: max_per_category must be a positive integer or None, "
            f"got {max_per_category!r}"
        )
    if kind not in ("jaccard", "inverse_size"):
        raise ConfigError(f"category_graph: kind={kind!r}; expected 'jaccard' or 'inverse_size'")
    if block_size <= 0:
        raise ConfigError(f"category_graph: block_size must be positive, got {block_size!r}")
    m = sp.csr_matrix(item_cat, dtype=np.float32)
    m.eliminate_zeros()
    m.data[:] = 1.0
    n = m.shape[0]
    n_i = np.diff(m.indptr).astype(np.float64)
    size = np.asarray(m.sum(0)).ravel()
    left = m if kind == "jaccard" else sp.csr_matrix(m @ sp.diags(1.0 / np.maximum(size, 1.0)))
    mt = sp.csr_matrix(m.T)
    parts = []
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        c = (left[start:stop] @ mt).tocoo()
        gi = c.row.astype(np.int64) + start
        keep = gi != c.col
        gi, j, w = gi[keep], c.col[keep].astype(np.int64), c.data[keep].astype(np.float64)
        if kind == "jaccard":
            w = w / (n_i[gi] + n_i[j] - w)
        blk = sp.csr_matrix(
            ((w * weight).astype(np.float32), (gi - start, j)), shape=(stop - start, n)
        )
        blk.sort_indices()
        r = np.repeat(np.arange(stop - start, dtype=np.int64) + start, np.diff(blk.indptr))
        tb = _pair_hash(r, blk.indices.astype(np.int64), seed)
        parts.append(topk_per_row(blk, max_per_category, tiebreak=tb))
    a = sp.vstack(parts, format="csr") if parts else sp.csr_matrix((n, n), dtype=np.float32)
    return symmetrize_graph(a, symmetrize)


def normalize_graph(a: sp.spmatrix, kind: str = "sym") -> sp.csr_matrix:
    """``"sym"``: D_r^{-1/2} A D_c^{-1/2}; ``"row"``: D_r^{-1} A (zero-degree rows stay zero)."""
    if kind not in ("sym", "row"):
        raise ConfigError(f"normalize_graph: kind={kind!r}; expected 'sym' or 'row'")
    a = sp.csr_matrix(a, dtype=np.float32)
    dr = np.asarray(a.sum(1)).ravel().astype(np.float64)
    if kind == "row":
        out = sp.diags(_inv_pow(dr, 1.0)) @ a
    else:
        dc = np.asarray(a.sum(0)).ravel().astype(np.float64)
        out = sp.diags(_inv_pow(dr, 0.5)) @ a @ sp.diags(_inv_pow(dc, 0.5))
    out = sp.csr_matrix(out, dtype=np.float32)
    out.sort_indices()
    return out


def _inv_pow(d: np.ndarray, p: float) -> np.ndarray:
    out = np.zeros_like(d)
    pos = d > 0
    out[pos] = d[pos] ** -p
    return out


def _pair_hash(i: np.ndarray, j: np.ndarray, seed: int) -> np.ndarray:
    """A deterministic pseudo-random uint64 key per (i, j) pair (splitmix64 finaliser)."""
    z = i.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + j.astype(np.uint64)
    z = z + np.uint64(seed & 0xFFFFFFFF) * np.uint64(0xD1B54A32D192ED03)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))
