"""GraphFilter: closed-form scores match the dense formula; validation picks from the grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lgrec.errors import ConfigError
from lgrec.models import GraphFilter, Recommender
from tests.conftest import topic_precision


def test_linear_filter_matches_dense_formula(planted_split):
    train = planted_split.train
    m = GraphFilter(k=0, alpha=0.0).fit(train)
    r = train.matrix().toarray().astype(np.float64)
    du, di = r.sum(1), r.sum(0)
    rn = r / np.sqrt(np.maximum(du, 1))[:, None] / np.sqrt(np.maximum(di, 1))[None, :]
    expected = r @ rn.T @ rn
    got = m.score(np.arange(train.n_users)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_ideal_filter_and_grid_choice(planted_split, planted):
    m = GraphFilter(k=(2, 4, 8), alpha=(0.0, 0.5)).fit(
        planted_split.train, valid=planted_split.valid
    )
    assert len(m.search_) == 6
    best = max(m.search_, key=lambda r: r["valid_Recall@20"])
    assert (m.k_, m.alpha_) == (best["k"], best["alpha"])
    assert topic_precision(m, planted) > 0.8
    params = m.refit_params()
    assert params["k"] == m.k_ and params["alpha"] == m.alpha_


def test_semantic_filter_and_round_trip(planted_split, planted_text_emb, tmp_path):
    m = GraphFilter(k=4, alpha=0.5, semantic_weight=0.3, semantic_k=5).fit(
        planted_split.train, item_emb=planted_text_emb
    )
    base = GraphFilter(k=4, alpha=0.5).fit(planted_split.train)
    users = torch.arange(20)
    assert not torch.allclose(m.score(users), base.score(users))
    m.save(tmp_path / "gf")
    back = Recommender.load(tmp_path / "gf")
    assert torch.allclose(back.score(users), m.score(users))


def test_bad_grid_values():
    with pytest.raises(ConfigError):
        GraphFilter(alpha=-1.0).fit(None)  # type: ignore[arg-type]


def test_needs_text_only_with_a_semantic_weight(planted_split):
    from lgrec.config import RunConfig
    from lgrec.pipeline import Prepared, fit_model

    assert not GraphFilter().needs_text
    assert GraphFilter(semantic_weight=(0.0, 0.3)).needs_text
    # the pipeline does not encode item text for a model that will not use it
    prep = Prepared(data=planted_split.train, split=planted_split, report=None)
    model, _ = fit_model(GraphFilter(k=4, alpha=0.5), prep, RunConfig(refit=False))
    assert prep.item_emb is None and model.score([0]).shape[1] == planted_split.train.n_items
