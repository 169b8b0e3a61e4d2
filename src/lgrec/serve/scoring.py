"""Scoring for a running server: scores, top-k lists, similar items, histories.

The scores of user ``u`` over all items are those of the model (``uᵀV + b``, or with an LMGCN
graph filter ``z(uᵀV) + λ z(GF(x_u))``) computed on the server's mutable copies of the vectors,
so online fold-in and runtime items count at once; free text adds a z-scored cosine term
(:meth:`ScoringMixin.scores`). Reads take the state's lock only to copy a row or to take the
current ``(V, b, T)``: those tensors are replaced, never changed in place, when items are
added, so a request scores against one consistent snapshot.

A mixin of :class:`lgrec.serve.state.ServeState`: it works on the attributes declared below.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from lgrec.errors import ServerFaultError
from lgrec.models.base import Recommender
from lgrec.models.fusion import blend_parts
from lgrec.ranking import topk_stable
from lgrec.serve import online
from lgrec.serve.explain import explain_items
from lgrec.serve.foldcache import ItemOperators
from lgrec.serve.index import FaissIndex, candidate_scores
from lgrec.serve.scorecache import ScoreCache

log = logging.getLogger(__name__)
Tensor = torch.Tensor


class ScoringMixin:
    """Reads and rankings of :class:`~lgrec.serve.state.ServeState`."""

    model: Recommender
    lock: threading.RLock
    U: Tensor
    V: Tensor
    b: Tensor | None
    T: Tensor | None
    seen_base: sp.csr_matrix
    filter: Any
    filter_weight: float
    online_seen: dict[int, dict[int, None]]
    user_query: dict[int, Tensor]
    _gf_mix: sp.csr_matrix
    score_cache: ScoreCache | None
    item_ops: ItemOperators | None
    n_base_users: int
    n_base_items: int
    titles: list[str]
    categories: list[list[str]]
    user_text: dict[int, str]
    index: FaissIndex | None

    # provided by the other parts of ServeState
    encode: Callable[[str], Tensor]
    text_enabled: bool

    # ---- reads -------------------------------------------------------------------------------
    def history(self, u: int) -> np.ndarray:
        """Item rows the user has interacted with, each once: training items, then online
        ones from the least to the most recent (an item used again moves to the end)."""
        seen = self.seen_base
        base = seen.indices[seen.indptr[u] : seen.indptr[u + 1]] if u < self.n_base_users else []
        base = np.asarray(base, dtype=np.int64)
        with self.lock:
            extra = np.fromiter(self.online_seen.get(u, ()), dtype=np.int64)
        if len(extra) and len(base):
            base = base[~np.isin(base, extra)]
        return np.concatenate([base, extra])

    def snapshot(self) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """``(V, b, T)`` of this moment (replaced, never mutated in place, on growth)."""
        with self.lock:
            return self.V, self.b, self.T

    def user_vector(self, u: int) -> Tensor:
        with self.lock:
            return self.U[u].clone()

    def scores(self, u: int, query: str | None = None, query_weight: float = 1.0) -> Tensor:
        """Scores of every item for user ``u``, as the model scores: ``uᵀV + b``, or with its
        graph filter ``z(uᵀV) + λ z(GF(x_u))`` (``z(GF(x_u))`` alone for λ = ∞). A user created
        from text adds ``w_u · z(cos(q_u, T))`` with ``w_u = 1 / (1 + |H_u| / 5)`` (their text
        counts while their history ``H_u`` is short); a query adds ``w · z(cos(q, T))`` (like
        :meth:`Recommender.recommend`)."""
        q = self.encode(query) if query else None
        with self.lock:  # one consistent catalogue: V, T and M grow together
            V, b, T, mix = self.V, self.b, self.T, self._gf_mix
        s, gf = self._model_parts(u, V, mix)
        if b is not None:
            s = s + b
        if gf is not None:
            s = blend_parts(online.zscore(s), online.zscore(gf), self.filter_weight)
        q_u = self.user_query.get(u)
        if q_u is not None:  # a runtime user's own text, fading as their history grows
            w = 1.0 / (1.0 + len(self.history(u)) / online.TEXT_HALF_HISTORY)
            s = online.zscore(s) + w * online.zscore(T @ q_u)
        if q is not None:
            s = online.zscore(s) + query_weight * online.zscore(T @ q)
        if bool(torch.isnan(s).any()):
            raise ServerFaultError(
                f"the model's scores for user row {u} contain NaN: the served vectors are "
                "corrupt (restart the server; retrain if it persists)"
            )
        return s

    def _model_parts(self, u: int, V: Tensor, mix: sp.csr_matrix) -> tuple[Tensor, Tensor | None]:
        """``(V e_u, GF(x_u) or None)`` over every item of ``V``.

        A trained user's rows over the trained items come from the :class:`ScoreCache`
        (recomputed and stored again when an event made them stale); runtime items add
        ``V_R e_u`` and ``M g_u`` (``mix``: :meth:`_filter_base`). Other users are computed
        here."""
        nb, cache = self.n_base_items, self.score_cache
        with self.lock:
            e_u = self.U[u].clone()
            got, version = cache.get(u) if cache is not None and u < cache.n_users else (None, -1)
        if got is None:
            core = V[:nb] @ e_u
            gf = self._filter_base(u, mix) if self.filter is not None else None
            if version >= 0:
                with self.lock:
                    cache.put(u, version, core, gf)
        else:
            core, gf = got
        if len(V) > nb:
            core = torch.cat([core, V[nb:] @ e_u])
        return core, None if gf is None else _with_runtime_items(gf, mix)

    def _filter_scores(self, u: int) -> Tensor:
        """Graph-filter scores ``GF(x_u)`` of ``u``'s current history over every item."""
        with self.lock:
            mix = self._gf_mix
        return _with_runtime_items(self._filter_base(u, mix), mix)

    def _filter_base(self, u: int, mix: sp.csr_matrix) -> Tensor:
        """``GF(x_u)`` over the trained items.

        A runtime item ``r`` is its trained text neighbours: row ``m_r`` of the mix matrix
        ``M`` (runtime × trained items). So ``x_u = min(1, 1_H + Σ_{r∈H} m_r)`` over the
        trained items: a sparse sum, no Python loop over runtime items (their number only adds
        rows to ``M``)."""
        hist = self.history(u)
        nb = self.n_base_items
        base = hist[hist < nb]
        row = sp.csr_matrix(
            (np.ones(len(base), dtype=np.float32), (np.zeros(len(base), dtype=np.int64), base)),
            shape=(1, nb),
        )
        runtime = hist[hist >= nb] - nb
        runtime = runtime[runtime < mix.shape[0]]  # items newer than this request: left out
        if len(runtime):
            row = (row + sp.csr_matrix(mix[runtime].sum(axis=0))).tocsr()
            row.data = np.minimum(row.data, 1.0)  # keep the row binary-like
        ops = self.item_ops
        if ops is not None and ops.filt is not None:  # x F (lgrec.serve.foldcache)
            return ops.filter_scores(row)
        return online.filter_row_scores(self.filter, row)

    def recommend(
        self,
        u: int,
        k: int,
        *,
        exclude_seen: bool = True,
        query: str | None = None,
        query_weight: float = 1.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item rows and scores for user row ``u`` (ties: lower row first): from the
        FAISS index's candidates when the server has one and the score is the plain dot product
        (no ``query``, not a user created from text), else over every item."""
        if self.index is not None and query is None and u not in self.user_query:
            V, b, _ = self.snapshot()
            seen = self.history(u) if exclude_seen else np.empty(0, dtype=np.int64)
            bias = None if b is None else b.numpy()
            ix, v = candidate_scores(self.index, self.user_vector(u).numpy(), V.numpy(), bias, k,
                                     seen)  # fmt: skip
            if np.isnan(v).any():
                raise ServerFaultError(f"the model's scores for user row {u} contain NaN")
            return ix, v
        s = self.scores(u, query, query_weight)
        if exclude_seen:
            hist = self.history(u)
            s[torch.from_numpy(hist[hist < len(s)])] = -torch.inf
        k = min(k, int(torch.isfinite(s).sum()))
        v, ix = topk_stable(s, k)
        return ix.numpy(), v.numpy()

    def explanations(self, u: int, items: np.ndarray, query: str | None = None) -> list:
        """:func:`~lgrec.serve.explain.explain_items` of ``items`` for user row ``u`` (their
        history, own text and the request's ``query``)."""
        V, _, T = self.snapshot()
        usable = T is not None and self.text_enabled
        ut = self.encode(self.user_text[u]) if u in self.user_text and usable else None
        qv = self.encode(query) if query and usable else None
        return explain_items(
            self.history(u), items, V, T, self.titles, self.categories,
            user_text=ut, query=query, query_vec=qv,
        )  # fmt: skip

    def similar(self, i: int, k: int, blend: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
        """Items most associated with item ``i``: ``β cos(e_i, e_j) + (1−β) cos(t_i, t_j)``."""
        V, _, T = self.snapshot()
        sim = online.blend_cosines(online.unit_rows(V), T, i, blend)
        sim[i] = -torch.inf
        v, ix = topk_stable(sim, min(k, len(sim) - 1))
        return ix.numpy(), v.numpy()

    def _check_parity(self) -> None:
        """Warn when the online scores of a trained user differ from ``model.score``."""
        if not self.n_base_users:
            return
        want = self.model.score([0])[0].float()
        got = self.scores(0)
        if not torch.allclose(got, want, rtol=1e-3, atol=1e-3 * float(want.abs().max())):
            log.warning(
                "online scoring of %s differs from model.score (max |Δ| %.3g): the server's "
                "rankings may differ slightly from `lgrec recommend`",
                self.model.name, float((got - want).abs().max()),
            )  # fmt: skip


def _with_runtime_items(gf: Tensor, mix: sp.csr_matrix) -> Tensor:
    """Trained items' filter scores ``g`` extended to the runtime items: ``[g, M g]``."""
    if not mix.shape[0]:
        return gf
    return torch.cat([gf, torch.from_numpy(mix @ gf.numpy()).float()])
