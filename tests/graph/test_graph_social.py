"""Social graph: adjacency, proximities vs hand counts, edge hiding, friend suggestions, blend."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lgrec.errors import ConfigError, DataError, NotFittedError
from lgrec.graph.social import (
    friends_mean,
    proximity,
    social_adjacency,
    split_edges,
    taste_similarity,
    undirected_pairs,
)
from lgrec.models import Popularity
from lgrec.models.base import _standardise
from lgrec.models.friends import FriendRecommender, SocialBlend
from tests.conftest import topic_precision

# 0-1, 0-2, 1-2, 2-3, 3-4, 1-3 (given once or twice, plus a self-loop and a duplicate)
EDGES = np.array([[0, 1], [1, 0], [0, 2], [2, 1], [2, 3], [3, 4], [1, 3], [4, 4], [3, 2]])


def test_adjacency_is_binary_symmetric_without_loops():
    f = social_adjacency(EDGES, 6)
    assert f.shape == (6, 6) and f.nnz == 12
    assert (f != f.T).nnz == 0 and f.diagonal().sum() == 0 and set(f.data) == {1.0}
    assert undirected_pairs(EDGES, 6).tolist() == [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3], [3, 4]]
    with pytest.raises(DataError, match=r"0\.\.5"):
        social_adjacency(np.array([[0, 6]]), 6)
    with pytest.raises(DataError, match="shape"):
        social_adjacency(np.array([0.0, 1.0]), 6)


def test_proximities_match_hand_counts():
    f = social_adjacency(EDGES, 5)  # degrees 2, 3, 3, 3, 1
    l3 = 1 / math.log(3)
    cn = proximity(f, np.array([0, 1]), "common_neighbors")
    aa = proximity(f, np.array([0, 1]), "adamic_adar")
    ra = proximity(f, np.array([0, 1]), "resource_allocation")
    assert cn.shape == (2, 5)
    # (0, 3): common friends 1 and 2 (degree 3 each); (1, 4): common friend 3 (degree 3)
    assert cn[0, 3] == 2 and aa[0, 3] == pytest.approx(2 * l3) and ra[0, 3] == pytest.approx(2 / 3)
    assert cn[1, 4] == 1 and aa[1, 4] == pytest.approx(l3) and ra[1, 4] == pytest.approx(1 / 3)
    assert cn[0, 4] == 0 and aa[0, 4] == 0
    # (0, 1): common friend 2 only
    assert cn[0, 1] == 1 and aa[0, 1] == pytest.approx(l3)
    with pytest.raises(ConfigError, match="kind"):
        proximity(f, np.array([0]), "jaccard")


def test_taste_similarity_sparse_and_dense_agree():
    x = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 2, 2]], dtype=np.float32)
    dense = taste_similarity(x, np.array([0, 2]))
    sparse = taste_similarity(sp.csr_matrix(x), np.array([0, 2]))
    np.testing.assert_allclose(dense, sparse, atol=1e-6)
    np.testing.assert_allclose(dense[0], [1.0, 1 / math.sqrt(2), 0.0, 0.0], atol=1e-6)
    assert (dense[1] == 0).all()  # a user without interactions is similar to nobody


def test_split_edges_hides_whole_undirected_pairs():
    rng = np.random.default_rng(3)
    e = rng.integers(0, 40, size=(300, 2))
    all_pairs = undirected_pairs(e, 40)
    kept, hidden = split_edges(e, 40, frac=0.2, seed=7)
    assert len(hidden) == round(0.2 * len(all_pairs))
    assert len(kept) + len(hidden) == len(all_pairs)
    k = set(map(tuple, kept.tolist()))
    h = set(map(tuple, hidden.tolist()))
    assert not k & h and (k | h) == set(map(tuple, all_pairs.tolist()))
    again = split_edges(e, 40, frac=0.2, seed=7)[1]
    np.testing.assert_array_equal(again, hidden)
    assert not np.array_equal(split_edges(e, 40, frac=0.2, seed=8)[1], hidden)
    with pytest.raises(ConfigError, match="frac"):
        split_edges(e, 40, frac=1.0)


def test_friends_mean_averages_friend_rows():
    f = social_adjacency(np.array([[0, 1], [0, 2]]), 4)
    x = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 0], [0, 1, 1], [1, 1, 1]], dtype=np.float32))
    m = friends_mean(f, x).toarray()
    np.testing.assert_allclose(m[0], [0, 1, 0.5])
    np.testing.assert_allclose(m[1], [1, 0, 0])
    np.testing.assert_allclose(m[3], [0, 0, 0])  # no friends


def test_friend_recommender_extremes_and_exclusions():
    x = sp.csr_matrix(
        np.array(
            [[1, 1, 0], [1, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1]],
            dtype=np.float32,
        )
    )
    f_edges = np.array([[0, 1], [1, 2], [2, 4], [0, 2]])
    social = FriendRecommender(alpha=0.0).fit(f_edges, x)
    ids, _ = social.recommend([0], k=2)
    # 0's friends 1, 2 are excluded; 4 shares friend 2 (AA > 0), 3 shares nobody
    assert ids[0].tolist() == [4, 3]
    taste = FriendRecommender(alpha=1.0).fit(f_edges, x)
    ids, _ = taste.recommend([0], k=2)
    assert ids[0].tolist() == [3, 4]  # 3 has the same items as 0
    ids, _ = taste.recommend([0], k=4, exclude_known=False)
    assert 0 not in ids[0] and ids[0][0] in (1, 3)
    with pytest.raises(NotFittedError):
        FriendRecommender().recommend([0])
    with pytest.raises(ConfigError, match="alpha"):
        FriendRecommender(alpha=1.5).fit(f_edges, x)


def planted_friends(n_users: int, seed: int = 0, p_in: float = 0.25) -> np.ndarray:
    """Friendships mostly inside the planted taste clusters (user u is in cluster u % 3)."""
    rng = np.random.default_rng(seed)
    a, b = np.triu_indices(n_users, 1)
    same = (a % 3) == (b % 3)
    keep = rng.random(len(a)) < np.where(same, p_in, 0.01)
    return np.stack([a[keep], b[keep]], axis=1)


def test_social_blend_formula_and_validated_beta(planted_split, planted):
    edges = planted_friends(planted.n_users)
    base = Popularity()
    blend = SocialBlend(base, edges, beta=(0.0, 0.5, 2.0)).fit(
        planted_split.train, valid=planted_split.valid
    )
    users = torch.arange(6)
    m = friends_mean(social_adjacency(edges, planted.n_users), planted_split.train.matrix())
    expect = _standardise(base.score(users)) + blend.beta_ * _standardise(
        torch.from_numpy(m[:6].toarray())
    )
    torch.testing.assert_close(blend.score(users), expect)
    # popularity is the same for everyone; friends' tastes personalise it
    assert blend.beta_ > 0
    assert blend.valid_scores_[blend.beta_] > blend.valid_scores_[0.0]
    assert topic_precision(blend, planted) > topic_precision(base, planted) + 0.2
    # β = 0 is exactly the base ranking
    plain = SocialBlend(Popularity(), edges, beta=0.0).fit(planted_split.train)
    torch.testing.assert_close(plain.score(users), _standardise(base.score(users)))
    # friends' model scores instead of interactions
    by_scores = SocialBlend(Popularity(), edges, beta=1.0, source="scores")
    by_scores.fit(planted_split.train)
    assert by_scores.score(users).shape == (6, planted.n_items)
    params = blend.refit_params()
    assert params["beta"] == blend.beta_ and isinstance(params["base"], Popularity)
    with pytest.raises(ConfigError, match="valid"):
        SocialBlend(Popularity(), edges, beta=(0.0, 1.0)).fit(planted_split.train)
    with pytest.raises(NotImplementedError):
        blend.save("nowhere")
