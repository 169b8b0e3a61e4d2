"""TextEncoder with the real packaged all-MiniLM-L6-v2 (local, loaded once per session)."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

import lgrec.text.cache as cache_mod
from lgrec.errors import ConfigError, DataError
from lgrec.text.encoder import TextEncoder


class CountingModel:
    """Wraps a SentenceTransformer and records every text it is asked to encode."""

    def __init__(self, inner, fail_on_call: int | None = None):
        self.inner = inner
        self.calls: list[list[str]] = []
        self.fail_on_call = fail_on_call

    def encode(self, texts, **kw):
        self.calls.append(list(texts))
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise KeyboardInterrupt("simulated interruption")
        return self.inner.encode(texts, **kw)

    @property
    def texts(self) -> list[str]:
        return [t for c in self.calls for t in c]

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __setattr__(self, name, value):
        if name == "max_seq_length":
            self.inner.max_seq_length = value
        else:
            object.__setattr__(self, name, value)

    def __getitem__(self, i):
        return self.inner[i]


@pytest.fixture(scope="session")
def st_model():
    return TextEncoder().model


@pytest.fixture
def counting(st_model, tmp_path):
    """An encoder with a private cache folder whose model counts calls."""
    enc = TextEncoder(cache_dir=tmp_path, batch_size=4)
    enc._model = CountingModel(st_model)
    return enc


SIMILAR = ["A cat is sleeping on the sofa.", "A kitten naps on the couch."]
UNRELATED = "The central bank raised interest rates by half a point."


def test_shape_norm_and_semantics(st_model, tmp_path):
    enc = TextEncoder(cache_dir=tmp_path)
    X = enc.encode([*SIMILAR, UNRELATED])
    assert X.shape == (3, 384) and X.dtype == np.float32 and enc.dim == 384
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    assert X[0] @ X[1] > X[0] @ X[2] + 0.3
    assert X[0] @ X[1] > X[1] @ X[2] + 0.3


def test_order_restored_and_matches_direct_model(counting, st_model):
    texts = ["short", "a much longer sentence about films and music", "", "mid length text", "x"]
    X = counting.encode(texts, use_cache=False)
    direct = st_model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(X, direct, atol=1e-5)
    # batches went longest first (length sorting)
    lengths = [len(t) for t in counting.model.texts]
    assert lengths == sorted(lengths, reverse=True)


def test_duplicates_encoded_once_and_empty_string_allowed(counting):
    X = counting.encode(["same", "", "same", "other"], use_cache=False)
    assert sorted(counting.model.texts) == ["", "other", "same"]
    np.testing.assert_array_equal(X[0], X[2])
    assert np.isfinite(X[1]).all() and X.shape == (4, 384)


def test_cache_second_run_and_superset(counting, monkeypatch):
    first = counting.encode(["alpha", "beta", "gamma"])
    n_calls = len(counting.model.calls)
    again = counting.encode(["gamma", "alpha", "beta"])
    assert len(counting.model.calls) == n_calls  # nothing re-encoded
    np.testing.assert_array_equal(again, first[[2, 0, 1]])
    counting.encode(["alpha", "beta", "gamma", "delta", "epsilon"])
    assert sorted(counting.model.texts[3:]) == ["delta", "epsilon"]
    # a fresh encoder in a new process reads it all from disk
    monkeypatch.setattr(cache_mod, "_CACHES", {})
    fresh = TextEncoder(cache_dir=counting.cache_dir)
    fresh._model = CountingModel(counting.model.inner)
    fresh.encode(["epsilon", "alpha"])
    assert fresh._model.calls == []


def test_unnormalised_rows_are_cached_separately(counting):
    a = counting.encode(["norms differ"], normalize=True)
    b = counting.encode(["norms differ"], normalize=False)
    assert len(counting.model.calls) == 2
    # all-MiniLM-L6-v2 ends in a Normalize module, so both agree here
    np.testing.assert_allclose(b / np.linalg.norm(b), a, atol=1e-5)
    assert counting.fingerprint_for(False) != counting.fingerprint


def test_corrupted_cache_is_recovered(counting, caplog, monkeypatch):
    texts = ["one", "two", "three"]
    X = counting.encode(texts)
    for p in counting.cache().path.glob("shard-*.safetensors"):
        p.write_bytes(p.read_bytes()[:50])
    monkeypatch.setattr(cache_mod, "_CACHES", {})  # a new process: nothing in memory
    fresh = TextEncoder(cache_dir=counting.cache_dir)
    fresh._model = CountingModel(counting.model.inner)
    with caplog.at_level(logging.WARNING, logger="lgrec.text.cache"):
        Y = fresh.encode(texts)
    assert sorted(fresh._model.texts) == sorted(texts)
    np.testing.assert_allclose(Y, X, atol=1e-5)
    assert any("unreadable" in r.getMessage() for r in caplog.records)


def test_interrupted_run_keeps_flushed_batches(counting):
    texts = [f"text number {i}" for i in range(10)]  # 3 batches of 4
    counting.model.fail_on_call = 3
    with pytest.raises(KeyboardInterrupt):
        counting._encode_uncached(texts, True, False, counting.cache(), flush_every=1)
    _, found = counting.cache().lookup(texts)
    assert found.sum() == 8


def test_bad_texts_name_the_index(counting):
    with pytest.raises(DataError, match=r"texts\[2\] is None"):
        counting.encode(["a", "b", None])
    with pytest.raises(DataError, match=r"texts\[1\] is NaN"):
        counting.encode(["a", float("nan")])
    with pytest.raises(DataError, match="single string"):
        counting.encode("just one string")
    assert counting.model.calls == []


def test_empty_input(counting):
    assert counting.encode([]).shape == (0, 384)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"max_length": 0}, "max_length"),
        ({"backend": "tensorflow"}, "backend"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        TextEncoder(**kwargs)


def test_missing_model_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("no-such-org/no-such-model-xyz", str(tmp_path / "nowhere")):
        enc = TextEncoder(name, cache_dir=tmp_path)
        with pytest.raises(ConfigError, match=r"installed\s+locally") as e:
            enc.encode(["hello"])
        assert name in str(e.value)


def test_fingerprint_and_sharing(st_model):
    a, b = TextEncoder(), TextEncoder("all-MiniLM-L6-v2")
    assert a.fingerprint == b.fingerprint and a.model_name == b.model_name
    assert a.model is b.model is st_model  # loaded once per process
    assert TextEncoder(max_length=64).fingerprint != a.fingerprint
    assert TextEncoder(max_length=None).fingerprint != a.fingerprint


def test_max_length_truncates(st_model, tmp_path):
    long = "The film follows a family. " + "They travel across the desert for days. " * 40
    short = TextEncoder(max_length=8, cache_dir=tmp_path).encode([long])
    head = TextEncoder(max_length=8, cache_dir=tmp_path).encode(["The film follows a family."])
    full = TextEncoder(max_length=None, cache_dir=tmp_path).encode([long])
    assert (short @ full.T).item() < 0.99
    assert (short @ head.T).item() > (full @ head.T).item()
    assert st_model.max_seq_length == 512  # None means the model's position limit


def test_onnx_without_onnxruntime_names_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    enc = TextEncoder(backend="onnx", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="pip install onnxruntime"):
        enc.encode(["hello"])
    with pytest.raises(ConfigError, match="cpu"):
        TextEncoder(backend="onnx", device="cuda")


def test_onnx_int8_agrees_with_torch(st_model, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    texts = [*SIMILAR, UNRELATED, "", "Toy Story (1995). Genres: Animation, Comedy"]
    on = TextEncoder(backend="onnx", cache_dir=tmp_path)
    X = on.encode(texts, use_cache=False)
    Y = TextEncoder(cache_dir=tmp_path).encode(texts, use_cache=False)
    assert X.shape == Y.shape == (5, 384)
    assert (X * Y).sum(1).min() > 0.95
    assert on.fingerprint != TextEncoder().fingerprint
    assert list((tmp_path / "onnx").glob("*/model_qint8.onnx"))  # exported into the cache
