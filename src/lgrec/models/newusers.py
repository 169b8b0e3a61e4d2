"""New users without retraining: LMGCN vectors from a few interactions or from text alone.

LMGCN's user vector is linear in the user's features (:mod:`lgrec.models.lmgcn`):

    v_u = n_u^{-1/2} Σ_{i∈H(u)} x_i A_h  +  p_u A_p  +  a_1,

so a user who was not in the training data is folded in *exactly*, the same way a training user
was computed: ``item_hist_`` holds x_i A_h for every item and p_u is the normalised mean text of
the user's items. No optimisation runs, so it costs one sparse product per request.

From text alone (a sign-up form, a self-description): the language model encodes the text to
q_u and a ridge map learned on the training users who have text,

    M = argmin ‖[Q, 1] M − V‖² + μ‖M‖²,     μ chosen by 3-fold Recall@20 of the held-out users,

places the user, v_u = [q_u, 1] M. With both, the text part weighs 1 / (1 + n_u / 5) next to
the history part, so it fades as interactions arrive.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from lgrec.data.dataset import Dataset

log = logging.getLogger(__name__)
Tensor = torch.Tensor

TEXT_HALF = 5.0
"""History length at which the text part of a new user weighs half."""


def _user_texts(data: Dataset) -> list[str] | None:
    if "text" not in data.users.columns:
        return None
    txt = data.users["text"].map(lambda v: v if isinstance(v, str) else "").tolist()
    return txt if sum(bool(t.strip()) for t in txt) >= 20 else None


def fit_user_text_map(
    model: Any,
    data: Dataset,
    mus: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0),
    max_users: int = 2000,
) -> tuple[Tensor, float] | None:
    """The ridge map M of the module docstring ((d + 1) × rank) and its μ, or ``None`` when
    fewer than 20 training users have text. μ is chosen by 3-fold Recall@20 on at most
    ``max_users`` users (a seeded sample); a single μ is taken as given."""
    texts = _user_texts(data)
    if texts is None:
        return None
    enc = model.text_encoder()
    q = np.asarray(enc.encode(texts), dtype=np.float64)
    has = np.array([bool(t.strip()) for t in texts]) & (np.diff(model.seen_.indptr) > 0)
    users = np.flatnonzero(has)
    f = np.hstack([q[users], np.ones((len(users), 1))])
    v = model.user_emb_[torch.from_numpy(users)].double().numpy()
    best = (-1.0, mus[0])
    if len(mus) > 1:
        rng = np.random.default_rng(model.seed)
        fold = rng.integers(0, 3, len(users))
        tested = np.zeros(len(users), dtype=bool)  # scored users: a sample of each held-out fold
        tested[rng.permutation(len(users))[:max_users]] = True
        item_emb = model.item_emb_.double().numpy()
        truth = [model.seen_[users[(fold == k) & tested]].toarray() > 0 for k in range(3)]
        for mu in mus:
            hits = 0.0
            for k in range(3):
                tr, te = fold != k, (fold == k) & tested
                m = np.linalg.solve(f[tr].T @ f[tr] + mu * np.eye(f.shape[1]), f[tr].T @ v[tr])
                s = (f[te] @ m) @ item_emb.T
                top = np.argpartition(-s, 20, axis=1)[:, :20]
                n = np.maximum(truth[k].sum(1), 1)
                hits += float((np.take_along_axis(truth[k], top, 1).sum(1) / n).sum())
            if hits > best[0]:
                best = (hits, mu)
        log.info("user text map: μ=%s on %d users (3-fold Recall@20 %.4f on %d)", best[1],
                 len(users), best[0] / max(1, tested.sum()), tested.sum())  # fmt: skip
    m = np.linalg.solve(f.T @ f + best[1] * np.eye(f.shape[1]), f.T @ v)
    return torch.from_numpy(m.astype(np.float32)), float(best[1])


def history_vectors(model: Any, history: sp.spmatrix) -> Tensor:
    """v_u of the module docstring for each row of ``history`` (n × I); zero rows give a_1."""
    x = sp.csr_matrix(history, dtype=np.float32)
    n = np.diff(x.indptr).astype(np.float32)
    w = np.where(n > 0, np.maximum(n, 1.0) ** -0.5, 0.0).astype(np.float32)
    v = torch.from_numpy(np.asarray((sp.diags(w) @ x) @ model.item_hist_.numpy()))
    prof = model.user_map_.get("profile")
    if prof is not None:
        mean = np.asarray((sp.diags(np.where(n > 0, 1 / np.maximum(n, 1), 0)) @ x)
                          @ model.text_emb_.numpy())  # fmt: skip
        p = torch.nn.functional.normalize(torch.from_numpy(mean.astype(np.float32)), dim=1)
        v = v + p @ prof
    return v + model.user_map_["bias"]


def text_vectors(model: Any, texts: list[str]) -> Tensor | None:
    """[q_u, 1] M for each text (``None`` when the model learned no text map)."""
    m = getattr(model, "user_text_map_", None)
    if m is None:
        return None
    q = torch.as_tensor(model.text_encoder().encode(list(texts), use_cache=False)).float()
    return torch.cat([q, torch.ones(len(q), 1)], dim=1) @ m


def fold_in_scores(model: Any, history: sp.spmatrix, texts: list[str] | None = None) -> Tensor:
    """Final scores (n × I) of new users: history vectors (+ text vectors, weighted by
    1 / (1 + n_u / 5)), the graph filter on the history rows, cold-item percentile matching."""
    x = sp.csr_matrix(history, dtype=np.float32)
    if x.shape[1] != model.n_items_:
        raise ValueError(f"fold_in: history has {x.shape[1]} columns, the model has "
                         f"{model.n_items_} items")  # fmt: skip
    v = history_vectors(model, x)
    n = torch.from_numpy(np.diff(x.indptr).astype(np.float32))
    if texts is not None:
        if len(texts) != x.shape[0]:
            raise ValueError(f"fold_in: {len(texts)} texts for {x.shape[0]} users")
        tv = text_vectors(model, texts)
        if tv is not None:
            w = (1.0 / (1.0 + n / TEXT_HALF))[:, None]
            v = torch.where(n[:, None] > 0, v + w * tv, tv)
    filt = None
    gf = getattr(model, "filter_", None)
    if gf is not None and model.filter_weight_ > 0:
        import copy

        g = copy.copy(gf)
        g.x_ = x
        with torch.no_grad():
            filt = g._score_block(torch.arange(x.shape[0]))
    with torch.no_grad():
        return model.score_vectors(v, filt)
