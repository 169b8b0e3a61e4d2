"""Why an item is recommended: the history items behind it, shared categories, one sentence.

For user ``u`` with history ``H`` and a recommended item ``i``, each history item ``h`` gets

    contribution(h → i) = β · cos(e_h, e_i) + (1 − β) · cos(t_h, t_i),     h ∈ H, h ≠ i

(``e`` the model's item vectors — collaborative similarity —, ``t`` the item text embeddings —
semantic similarity —, β = ``blend``; β = 1 without text). The score ``uᵀe_i`` of embedding
models is large when ``u`` points where the user's items point, so the history items most
similar to ``i`` are the ones that put it on the list; the ranking uses no ``u``-specific
weights, so the explanation is the same whichever way ``u`` was learned. The top contributors
(each history item once), the categories ``i`` shares with them and a template sentence form
the explanation, e.g. *"Recommended because of "Alien" and "Aliens" in your history, which
attract the same users; all three are Sci-Fi."* No generative language model is used: a
template is exact, instant and needs no download.

Every clause states something measured. A history item is only *in your history* (it may
have been a view or a low rating, so nothing says "you liked" it). The item *matches* a text —
the request's ``query`` or the user's own text — only when it is among the :data:`TEXT_TOP`
share of the catalogue closest to that text: ``#{j : cos(t_j, q) > cos(t_i, q)} < TEXT_TOP · I``;
otherwise the sentence says nothing about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from lgrec.serve.online import unit_rows

Tensor = torch.Tensor

TEXT_TOP = 0.10
"""An item *matches* a text when at most this share of the catalogue is closer to it."""


@dataclass
class Explanation:
    """The explanation of one (user, item) pair; indices are item rows."""

    item: int
    because: list[int] = field(default_factory=list)
    contribution: list[float] = field(default_factory=list)
    collaborative: list[float] = field(default_factory=list)
    semantic: list[float | None] = field(default_factory=list)
    shared_categories: list[str] = field(default_factory=list)
    text_match: float | None = None
    text_matches: bool = False
    query_match: float | None = None
    query_matches: bool = False
    sentence: str = ""


def explain_items(
    history: np.ndarray,
    items: np.ndarray,
    V: Tensor,
    T: Tensor | None,
    titles: list[str],
    categories: list[list[str]],
    *,
    blend: float = 0.5,
    top: int = 3,
    user_text: Tensor | None = None,
    query: str | None = None,
    query_vec: Tensor | None = None,
) -> list[Explanation]:
    """Explanations of ``items`` for a user with ``history`` (item rows), vectorised over both.

    ``user_text`` is the unit embedding of the user's own text (cold users), used when the
    history is empty or to add how well the item matches it; ``query_vec`` is the embedding
    of the request's ``query``. Repeated history items count once.
    """
    items_t = torch.as_tensor(np.asarray(items, dtype=np.int64))
    history = np.asarray(history, dtype=np.int64)
    _, first = np.unique(history, return_index=True)
    hist = torch.as_tensor(history[np.sort(first)])  # each history item once, in order
    use_text = T is not None and blend < 1.0
    beta = blend if use_text else 1.0
    out = [Explanation(item=int(i)) for i in items_t.tolist()]
    if T is not None:
        for vec, attr in ((user_text, "text"), (query_vec, "query")):
            if vec is None:
                continue
            cos, matches = text_match(T, items_t, vec)
            for ex, c, t in zip(out, cos.tolist(), matches.tolist()):
                setattr(ex, f"{attr}_match", float(c))
                setattr(ex, f"{attr}_matches", bool(t))
    if len(hist) and len(items_t):
        Vh, Vi = unit_rows(V[hist]), unit_rows(V[items_t])
        collab = Vh @ Vi.T  # H × K
        sem = T[hist] @ T[items_t].T if use_text else None
        contrib = beta * collab + (1.0 - beta) * sem if sem is not None else collab
        contrib = contrib.masked_fill(hist[:, None] == items_t[None, :], -torch.inf)
        n = min(top, len(hist))
        best = torch.topk(contrib, n, dim=0)  # n × K
        for k, ex in enumerate(out):
            rows = best.indices[:, k][torch.isfinite(best.values[:, k])]
            ex.because = hist[rows].tolist()
            ex.contribution = contrib[rows, k].tolist()
            ex.collaborative = collab[rows, k].tolist()
            ex.semantic = sem[rows, k].tolist() if sem is not None else [None] * len(rows)
    for ex in out:
        ex.shared_categories = _shared(ex, categories)
        ex.sentence = _sentence(ex, titles, categories, query)
    return out


def text_match(T: Tensor, items: Tensor, q: Tensor) -> tuple[Tensor, Tensor]:
    """``(cos(t_i, q), matches)`` for ``items``: an item matches when fewer than
    ``TEXT_TOP · I`` catalogue items are closer to ``q`` (module docstring)."""
    all_cos = T @ torch.nn.functional.normalize(q.float(), dim=0)
    cos = all_cos[items]
    closer = (all_cos[None, :] > cos[:, None]).sum(1)
    return cos, closer < TEXT_TOP * len(all_cos)


def _shared(ex: Explanation, categories: list[list[str]]) -> list[str]:
    mine = categories[ex.item]
    if not ex.because or not mine:
        return []
    count = {c: sum(c in categories[h] for h in ex.because) for c in mine}
    return [c for c in sorted(mine, key=lambda c: -count[c]) if count[c] > 0]


def _names(titles: list[str]) -> str:
    q = [f'"{t}"' for t in titles]
    return q[0] if len(q) == 1 else ", ".join(q[:-1]) + " and " + q[-1]


def _sentence(
    ex: Explanation, titles: list[str], categories: list[list[str]], query: str | None
) -> str:
    tail = ""
    if query and ex.query_matches:
        tail = (
            f"; it is among the {TEXT_TOP:.0%} of items closest in text to your query "
            f'"{_clip(query)}"'
        )
    if not ex.because:
        if ex.text_matches:
            return f"Recommended because it matches what you told us about yourself{tail}."
        return f"Recommended from what similar users liked{tail}."
    names = _names([titles[h] for h in ex.because[:2]])
    c = float(np.mean(ex.collaborative[:2]))
    s_vals = [v for v in ex.semantic[:2] if v is not None]
    s = float(np.mean(s_vals)) if s_vals else None
    plural = len(ex.because[:2]) > 1
    if s is None or c >= s + 0.1:
        how = "which attract the same users" if plural else "which attracts the same users"
    elif s >= c + 0.1:
        how = "which have similar descriptions" if plural else "which has a similar description"
    elif plural:
        how = "which are similar both in who chooses them and in content"
    else:
        how = "which is similar both in who chooses it and in content"
    named = ex.because[:2]
    in_all = [c for c in ex.shared_categories if all(c in categories[h] for h in named)]
    cats = ""
    if in_all:
        word = "both" if len(named) == 1 else "all three"
        cats = f"; {word} are {' and '.join(in_all[:2])}"
    elif ex.shared_categories:
        cats = f"; it is also {' and '.join(ex.shared_categories[:2])}"
    return f"Recommended because of {names} in your history, {how}{cats}{tail}."


def _clip(text: str | None, n: int = 60) -> str:
    text = (text or "").strip()
    return text if len(text) <= n else text[: n - 1] + "…"
