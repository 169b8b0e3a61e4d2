"""EmbeddingCache on its own (no model): round trips, supersets, compaction, corruption."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from lgrec.text.cache import EmbeddingCache, get_cache, text_key


def _rows(n: int, d: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def test_round_trip_and_partial_lookup(tmp_path):
    c = EmbeddingCache("fp-a", tmp_path)
    emb, found = c.lookup(["x", "y"])
    assert emb is None and not found.any()
    E = _rows(3)
    c.put(["a", "b", "c"], E)
    emb, found = c.lookup(["c", "zzz", "a"])
    assert found.tolist() == [True, False, True]
    np.testing.assert_array_equal(emb[0], E[2])
    np.testing.assert_array_equal(emb[2], E[0])
    np.testing.assert_array_equal(emb[1], 0)
    assert len(c) == 3


def test_superset_appends_only_new_rows(tmp_path):
    c = EmbeddingCache("fp", tmp_path)
    c.put(["a", "b"], _rows(2, seed=1))
    c.put(["a", "b", "c"], _rows(3, seed=2))  # a, b already cached: kept, only c appended
    emb, found = c.lookup(["a", "b", "c"])
    assert found.all()
    np.testing.assert_array_equal(emb[:2], _rows(2, seed=1))
    np.testing.assert_array_equal(emb[2], _rows(3, seed=2)[2])
    assert len(list(c.path.glob("shard-*.safetensors"))) == 2


def test_other_process_sees_rows_and_fingerprints_are_separate(tmp_path):
    EmbeddingCache("fp", tmp_path).put(["a"], _rows(1))
    fresh = EmbeddingCache("fp", tmp_path)  # a new object re-reads the folder
    assert fresh.lookup(["a"])[1].all()
    assert not EmbeddingCache("other-fp", tmp_path).lookup(["a"])[1].any()
    assert text_key("fp", "a") != text_key("other-fp", "a")
    assert get_cache("fp", tmp_path) is get_cache("fp", tmp_path)


def test_compaction_keeps_every_row(tmp_path):
    c = EmbeddingCache("fp", tmp_path, max_shards=3)
    E = _rows(10)
    for j in range(10):
        c.put([f"t{j}"], E[j : j + 1])
    assert len(list(c.path.glob("shard-*.safetensors"))) <= 3
    emb, found = EmbeddingCache("fp", tmp_path).lookup([f"t{j}" for j in range(10)])
    assert found.all()
    np.testing.assert_array_equal(emb, E)


def test_truncated_shard_warns_and_is_dropped(tmp_path, caplog):
    EmbeddingCache("fp", tmp_path).put(["a", "b"], _rows(2))
    EmbeddingCache("fp", tmp_path).put(["c"], _rows(1, seed=5))
    shards = sorted(EmbeddingCache("fp", tmp_path).path.glob("shard-*.safetensors"))
    victim = max(shards, key=lambda p: p.stat().st_size)  # the a, b shard
    victim.write_bytes(victim.read_bytes()[:40])
    with caplog.at_level(logging.WARNING, logger="lgrec.text.cache"):
        emb, found = EmbeddingCache("fp", tmp_path).lookup(["a", "b", "c"])
    assert found.tolist() == [False, False, True]
    np.testing.assert_array_equal(emb[2], _rows(1, seed=5)[0])
    assert any("unreadable" in r.getMessage() for r in caplog.records)
    assert not victim.exists()


def test_put_checks_shapes(tmp_path):
    c = EmbeddingCache("fp", tmp_path)
    with pytest.raises(ValueError, match="expected \\(2, d\\)"):
        c.put(["a", "b"], _rows(3))
    c.put(["a"], _rows(1, d=4))
    with pytest.raises(ValueError, match="4-dim"):
        c.put(["b"], _rows(1, d=5))
    with pytest.raises(ValueError, match="fingerprint"):
        EmbeddingCache("", tmp_path)
