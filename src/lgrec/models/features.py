"""Graph-propagated language-model features: the input layer of LMGCN's linear GNN.

Simplified graph convolution (SGC, Wu et al. 2019) propagates node *features* over the graph
once, before any learning, so the learned part is a linear map. LMGCN does this with the
language model's item vectors. With the binary interactions R (U × I), R̃ = D_U^{-1/2} R D_I^{-1/2},
the co-consumption operator P = R̃ᵀR̃ (spectrum in [0, 1]), the unit text embeddings T (I × d),
the symmetric-normalised semantic kNN graph S̃ (:mod:`lgrec.graph.semantic`) and an optional
extra item graph G̃ (e.g. knowledge-graph links), the item feature blocks are

    text            T                         what the item says
    text@graph      row-normalise(P T)        what the items consumed with it say (2 hops)
    text@semantic   row-normalise(S̃ T)        what its text neighbours say
    text@kg         row-normalise(G̃ T)        what its knowledge-graph neighbours say
    spectral        √(I/k) · V_k              graph position: top-k right singular vectors of R̃

(the √(I/k) makes the spectral rows unit-norm on average, like the text rows). Each block is a
constructor choice of LMGCN, so an ablation switches it off by a parameter. Users are described
by their history, h_u = n_u^{-a} Σ_{i ∈ H(u)} x_i (one more hop, user ← items), optionally next
to a *profile* block (a rating- and recency-weighted language profile of the history, or the
encoded text of users who have one).

Items without training interactions (cold items) have P T = 0 and V_k = 0: the graph said
nothing about them. Their graph blocks are imputed from side features by
:func:`lgrec.models.coldstart.embed_cold_items` (chosen by pseudo-cold validation), so every
item is described in the same space and a new item is scored by the same map as a warm one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd

from lgrec.graph.bipartite import normalized_biadjacency
from lgrec.graph.semantic import normalize_graph, semantic_knn

__all__ = ["ItemFeatures", "item_features", "row_normalise", "user_history_features"]

#: item blocks that come from the interaction graph (zero for cold items, imputed)
GRAPH_BLOCKS = ("text@graph", "spectral")


@dataclass
class ItemFeatures:
    """Item feature matrix ``x`` (I × D, float32) and the column range of each named block."""

    x: np.ndarray
    blocks: dict[str, tuple[int, int]] = field(default_factory=dict)

    def graph_columns(self) -> np.ndarray:
        """Column indices of the blocks the interaction graph provides (imputed for cold items)."""
        cols = [np.arange(*self.blocks[b]) for b in GRAPH_BLOCKS if b in self.blocks]
        return np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)


def row_normalise(m: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    n = np.linalg.norm(m, axis=1, keepdims=True)
    return (m / np.where(n > 0, n, 1.0)).astype(np.float32)


def item_features(
    x: sp.csr_matrix,
    text: np.ndarray | None,
    *,
    text_blocks: bool = True,
    semantic_k: int = 10,
    semantic_threshold: float = 0.0,
    item_graph: sp.spmatrix | None = None,
    spectral_k: int = 256,
    seed: int = 0,
) -> tuple[ItemFeatures, sp.csr_matrix | None]:
    """The item blocks of the module docstring for the interactions ``x`` (U × I, binary).

    ``text`` (I × d) is needed for the text blocks; ``text_blocks=False`` leaves them all out
    (the text-free ablation). ``semantic_k = 0`` leaves out the semantic block, ``item_graph``
    ``None`` the KG block and ``spectral_k = 0`` the spectral block. Returns the features and
    the semantic graph S (raw cosine kNN, for explanations; ``None`` without it).
    """
    n_items = x.shape[1]
    rn = normalized_biadjacency(x, 0.5, 0.5).tocsr().astype(np.float32)
    parts: list[tuple[str, np.ndarray]] = []
    sem = None
    if text_blocks and text is not None:
        t = row_normalise(np.asarray(text, dtype=np.float32))
        parts.append(("text", t))
        parts.append(("text@graph", row_normalise(rn.T @ (rn @ t))))
        if semantic_k > 0:
            sem = semantic_knn(t, k=semantic_k, threshold=semantic_threshold)
            parts.append(("text@semantic", row_normalise(normalize_graph(sem, "sym") @ t)))
        if item_graph is not None and item_graph.nnz:
            g = normalize_graph(sp.csr_matrix(item_graph, dtype=np.float32), "sym")
            parts.append(("text@kg", row_normalise(g @ t)))
    k = min(int(spectral_k), min(x.shape) - 1)
    if k > 0:  # under P > 1 processes V_k comes from each one's users (distributed_spectrum)
        from lgrec.train.distributed_spectrum import data_parallel_spectrum  # (circular import)

        _, v, shards = data_parallel_spectrum(x, k, 0.5, 0.5, seed)
        if shards == 1:
            _, _, vt = randomized_svd(rn, k, n_iter=6, random_state=seed)
            v = vt.T
        parts.append(("spectral", (v * np.sqrt(n_items / k)).astype(np.float32)))
    if not parts:
        return ItemFeatures(np.zeros((n_items, 0), dtype=np.float32)), sem
    blocks, start = {}, 0
    for name, m in parts:
        blocks[name] = (start, start + m.shape[1])
        start += m.shape[1]
    return ItemFeatures(np.hstack([m for _, m in parts]).astype(np.float32), blocks), sem


def user_history_features(
    x: sp.spmatrix, item_x: np.ndarray, exponent: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """``(H, c)``: h_u = n_u^{-a} Σ_{i∈H(u)} x_i for every user (U × D), and the total weight
    each item receives, c_i = Σ_{u ∋ i} n_u^{-a} (the leave-one-out correction needs it).

    c is summed in float64, so c summed over shards of users equals the whole's c to float64
    round-off (:func:`lgrec.train.distributed_ridge.fit_ridge` with ``sharded=True``)."""
    x = sp.csr_matrix(x, dtype=np.float32)
    n = np.diff(x.indptr).astype(np.float64)
    w = np.where(n > 0, np.maximum(n, 1.0) ** -exponent, 0.0)
    agg = sp.diags(w.astype(np.float32)) @ x
    h = np.asarray(agg @ item_x, dtype=np.float32)
    c = np.asarray(x.T.astype(np.float64) @ w, dtype=np.float64).ravel()
    return h, c
