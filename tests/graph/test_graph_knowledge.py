"""Knowledge-graph item links: RecBole file reading, item–entity matrix, collapse to items."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lgrec.data.dataset import Dataset
from lgrec.errors import ConfigError, DataError, DatasetNotFoundError
from lgrec.graph.knowledge import (
    KnowledgeGraph,
    collapse_item_graph,
    entity_idf,
    item_entity_matrix,
    knowledge_item_graph,
    load_kg,
    read_kg,
    read_link,
)
from lgrec.utils import data_dir

# items "1".."5"; "5" has no entity; the link of "99" names an unknown item
LINKS = [("1", "mA"), ("2", "mB"), ("3", "mC"), ("4", "mD"), ("99", "mZ")]
TRIPLES = [
    ("mA", "film.genre", "gX"),
    ("mB", "film.genre", "gX"),
    ("mC", "film.genre", "gX"),
    ("mZ", "film.genre", "gX"),
    ("mA", "film.actor", "p1"),
    ("mB", "film.actor", "p1"),
    ("mC", "film.actor", "p2"),
    ("mD", "film.sequel", "mA"),
    ("gY", "genre.films", "mD"),  # reverse direction: gY is still one hop from mD
]


def write_kg(folder: Path, triples=TRIPLES, links=LINKS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    kg = ["head_id:token\trelation_id:token\ttail_id:token"] + ["\t".join(t) for t in triples]
    (folder / "toy.kg").write_text("\n".join(kg) + "\n")
    link = ["item_id:token\tentity_id:token"] + ["\t".join(x) for x in links]
    (folder / "toy.link").write_text("\n".join(link) + "\n")
    return folder


def items_only(n: int) -> Dataset:
    inter = pd.DataFrame(
        {"user": [0], "item": [0], "rating": [1.0], "timestamp": [0], "event": ["click"]}
    )
    items = pd.DataFrame({"item_id": [str(i + 1) for i in range(n)]})
    return Dataset(inter, items, pd.DataFrame({"user_id": ["u"]}), name="toy")


@pytest.fixture
def kg(tmp_path) -> KnowledgeGraph:
    return load_kg(write_kg(tmp_path / "kg"))


def test_item_entity_matrix_one_hop_with_self_and_filters(kg):
    b, names = item_entity_matrix(items_only(5), kg)
    got = {i: sorted(names[b[i].indices]) for i in range(5)}
    # mB, mC, p2, gY, mZ touch one known item only and are dropped (min_items=2)
    assert got == {
        0: ["gX", "mA", "mD", "p1"],
        1: ["gX", "p1"],
        2: ["gX"],
        3: ["mA", "mD"],
        4: [],
    }
    b, names = item_entity_matrix(items_only(5), kg, max_items=2)
    assert "gX" not in set(names)
    b, names = item_entity_matrix(items_only(5), kg, include_self=False, min_items=1)
    assert sorted(names[b[3].indices]) == ["gY", "mA"]
    b, names = item_entity_matrix(items_only(5), kg, relations=["film.genre"])
    assert list(names) == ["gX"]


def test_two_hops_reach_entities_behind_a_neighbour(kg):
    b1, n1 = item_entity_matrix(items_only(5), kg, min_items=1)
    b2, n2 = item_entity_matrix(items_only(5), kg, hops=2, min_items=1)
    assert "mA" not in set(n1[b1[1].indices])
    assert "mA" in set(n2[b2[1].indices])  # mB → p1 → mA
    assert b2.nnz > b1.nnz


def test_collapse_matches_hand_computed_idf_weights(kg):
    b, names = item_entity_matrix(items_only(5), kg)
    idf = dict(zip(names, entity_idf(b)))
    assert idf["gX"] == pytest.approx(math.log(5 / 3))
    assert idf["p1"] == pytest.approx(math.log(5 / 2))
    w = collapse_item_graph(b, k=None).toarray()
    two, three = math.log(5 / 2), math.log(5 / 3)
    expect = np.zeros((5, 5))
    expect[0, 1] = expect[1, 0] = three + two  # gX + p1
    expect[0, 2] = expect[2, 0] = three  # gX
    expect[1, 2] = expect[2, 1] = three
    expect[0, 3] = expect[3, 0] = 2 * two  # mA + mD (sequel, own entities)
    np.testing.assert_allclose(w, expect, rtol=1e-6)
    counts = collapse_item_graph(b, k=None, idf=False).toarray()
    shared = [[0, 2, 1, 2, 0], [2, 0, 1, 0, 0], [1, 1, 0, 0, 0], [2, 0, 0, 0, 0], [0] * 5]
    np.testing.assert_array_equal(counts, shared)


def test_collapse_top_k_per_row_then_symmetrised(kg):
    b, _ = item_entity_matrix(items_only(5), kg)
    w = collapse_item_graph(b, k=1)
    # row bests: 0→3 (2·log 2.5), 1→0, 2→0 (tie with 1, lower index wins), 3→0; then union
    assert sorted(zip(*w.nonzero())) == [(0, 1), (0, 2), (0, 3), (1, 0), (2, 0), (3, 0)]
    assert (w != w.T).nnz == 0
    assert w.diagonal().sum() == 0
    assert w.shape == (5, 5)


def test_knowledge_item_graph_from_folder(tmp_path):
    g = knowledge_item_graph(items_only(5), write_kg(tmp_path / "kg"), k=5)
    assert g.shape == (5, 5) and g[4].nnz == 0 and g[0, 3] > g[0, 2] > 0


def test_reading_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.kg"
    bad.write_text("head_id:token\trelation_id:token\n1\tr\n")
    with pytest.raises(DataError, match=r"bad\.kg.*tail_id"):
        read_kg(bad)
    empty = tmp_path / "empty.kg"
    empty.write_text("head_id:token\trelation_id:token\ttail_id:token\na\tr\tb\nc\t\td\n")
    with pytest.raises(DataError, match=r"empty\.kg, line 3"):
        read_kg(empty)
    dup = tmp_path / "dup.link"
    dup.write_text("item_id:token\tentity_id:token\n1\ta\n2\tb\n1\tc\n")
    with pytest.raises(DataError, match=r"dup\.link, line 4: item '1'"):
        read_link(dup)
    with pytest.raises(DatasetNotFoundError, match="nowhere"):
        load_kg(tmp_path / "nowhere")
    (tmp_path / "two").mkdir()
    with pytest.raises(DatasetNotFoundError, match=r"exactly one \*\.kg"):
        load_kg(tmp_path / "two")


def test_bad_arguments(kg):
    with pytest.raises(ConfigError, match="hops"):
        item_entity_matrix(items_only(5), kg, hops=0)
    with pytest.raises(ConfigError, match="unknown relation"):
        item_entity_matrix(items_only(5), kg, relations=["nope"])
    with pytest.raises(ConfigError, match="min_items"):
        item_entity_matrix(items_only(5), kg, min_items=3, max_items=2)
    b, _ = item_entity_matrix(items_only(5), kg)
    with pytest.raises(ConfigError, match="k must"):
        collapse_item_graph(b, k=0)


@pytest.mark.integration
def test_ml100k_knowledge_graph():
    root = data_dir()
    if not (root / "ml-100k-kg").is_dir() or not (root / "ml-100k").is_dir():
        pytest.skip(f"ml-100k / ml-100k-kg not found under {root}")
    from lgrec.data import load_dataset

    kg = load_kg(root / "ml-100k-kg")
    assert len(kg.triples) == 91_631 and len(kg.links) == 1_598
    assert len(kg.relations) == 24
    ds = load_dataset("ml-100k")
    b, _ = item_entity_matrix(ds, kg, max_items=200)
    assert b.shape[0] == 1_682
    assert (np.diff(b.indptr) > 0).sum() <= 1_598
    g = collapse_item_graph(b, k=20)
    assert g.shape == (1_682, 1_682) and (g != g.T).nnz == 0 and g.diagonal().sum() == 0
