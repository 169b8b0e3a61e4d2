"""The graph-filter blend ŝ = z(a) + λ z(b), and its λ = ∞ point: the filter alone."""

from __future__ import annotations

import json
import math

import numpy as np
import scipy.sparse as sp
import torch

from lgrec.models import LMGCN
from lgrec.models.base import Recommender, _standardise
from lgrec.models.fusion import FILTER_ALONE, blend, fit_filter_blend
from lgrec.models.graphfilter import GraphFilter

PARTS = dict(spectral_k=16, rank=None, reg=0.3, semantic_k=5, rating_head=False)
GF = {"k": 16, "alpha": 0.3, "sharpen": 0.0}


def test_the_filter_alone_is_the_limit_of_the_blend():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 50, generator=g), torch.randn(4, 50, generator=g)
    a[:, :3] = -torch.inf  # e.g. items the learned part rules out
    alone = blend(a, b, FILTER_ALONE)
    assert not torch.isnan(alone).any()
    torch.testing.assert_close(alone, _standardise(b))
    # a large finite λ ranks as the filter does: ∞ is that ranking, without the learned ties
    big = blend(a[:, 3:], b[:, 3:], 1e6)
    assert torch.equal(big.argsort(dim=1), alone[:, 3:].argsort(dim=1))
    # a user the filter knows nothing about (no history: b ≡ 0) is ranked by the learned part
    b[1] = 0.0
    alone = blend(a, b, FILTER_ALONE)
    torch.testing.assert_close(alone[1], _standardise(a)[1])
    torch.testing.assert_close(alone[0], _standardise(b)[0])


def _filter_blend(split, learned, weights):
    return fit_filter_blend(learned, split.train, split.valid, weights, params=GF, item_emb=None,
                            seen=split.train.matrix("binary"))  # fmt: skip


def test_validation_chooses_the_filter_alone_only_when_it_is_better(planted_split):
    s = planted_split
    gf = GraphFilter(**GF).fit(s.train)
    weights = [0.0, 1.0, 4.0, FILTER_ALONE]

    def noise(users: torch.Tensor) -> torch.Tensor:  # a learned part that only hurts
        g = torch.Generator().manual_seed(int(users[0]))
        return 10 * torch.randn(len(users), s.train.n_items, generator=g)

    _, lam, res = _filter_blend(s, noise, weights)
    r = [m["Recall@20"] for m in res]
    assert lam == FILTER_ALONE and r[-1] > max(r[:-1])
    # a learned part equal to the filter: every λ ranks the same, the tie keeps λ = 0
    _, lam, res = _filter_blend(s, gf._score_block, weights)
    assert lam == 0.0 and len({round(m["Recall@20"], 12) for m in res}) == 1
    # without validation data ∞ is never taken by default: it must win on validation
    assert fit_filter_blend(noise, s.train, None, weights, params=GF, item_emb=None,
                            seen=s.train.matrix("binary"))[1] == 4.0  # fmt: skip


def test_lmgcn_with_the_filter_alone_ranks_as_its_filter(planted_split, planted_text_emb, tmp_path):
    s = planted_split
    m = LMGCN(**PARTS, filter_weight=FILTER_ALONE, filter_params=GF).fit(
        s.train, item_emb=planted_text_emb
    )
    users = np.arange(30)
    warm = torch.from_numpy(np.flatnonzero(m.warm_))
    want = m.filter_._score_block(torch.from_numpy(users))[:, warm].argsort(dim=1)
    assert torch.equal(m.score(users)[:, warm].argsort(dim=1), want)
    # λ = ∞ survives saving (JSON) and the refit parameters
    m.save(tmp_path / "m")
    back = Recommender.load(tmp_path / "m")
    assert math.isinf(back.filter_weight_) and math.isinf(m.refit_params()["filter_weight"])
    assert "Infinity" in (tmp_path / "m" / "config.json").read_text()
    json.loads((tmp_path / "m" / "config.json").read_text())  # Python's json reads it back
    torch.testing.assert_close(back.score(users), m.score(users))


def test_the_filter_alone_keeps_a_new_users_text(planted_text_emb):
    # a user known only from text has no history for the filter: their ranking must come from
    # the text (the learned part), not from the filter's all-zero row
    from tests.models.test_lmgcn_parts import _text_planted

    ds, words = _text_planted()
    from lgrec.text.encoder import TextEncoder

    emb = TextEncoder().encode(ds.item_text())
    m = LMGCN(**PARTS, filter_weight=FILTER_ALONE, filter_params=GF).fit(ds, item_emb=emb)
    new = [f"I like {words[t]}" for t in (0, 1, 2)] * 3
    s = m.fold_in(sp.csr_matrix((9, ds.n_items)), new)
    top = torch.topk(s, 5, dim=1).indices.numpy() // 20
    assert (top == (np.arange(9) % 3)[:, None]).mean() > 0.8
