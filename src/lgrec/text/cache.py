"""On-disk embedding cache: one append-only shard store per encoder fingerprint.

Layout under :func:`lgrec.utils.cache_dir` (flag or ``LGREC_CACHE_DIR``)::

    embeddings/<sha256(fingerprint)[:20]>/
        FINGERPRINT                 the fingerprint in plain text (for humans)
        shard-<digest>.safetensors  keys (n × 32 uint8) + emb (n × d float32)

Each text is keyed by ``sha256(fingerprint + "\\0" + text)``, so a row can be found whatever
set of texts it was first encoded with: a second run on the same texts reads everything back,
and a run on a superset encodes only the new texts (they are appended as a new shard). Shards
are written atomically (temp file + rename) and named by the digest of their keys, so
concurrent writers never clobber each other. Safetensors holds raw arrays only: nothing is
ever pickled. When a fingerprint has more than ``max_shards`` shards they are merged into one.

A shard that cannot be read (truncated, wrong shapes, non-finite values) is logged as a
warning and deleted; its texts then count as missing and are re-encoded by the caller.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lgrec.utils import atomic_write_bytes, atomic_write_text, cache_dir

logger = logging.getLogger(__name__)

KEY_BYTES = 32
_SHARD_GLOB = "shard-*.safetensors"


def text_key(fingerprint: str, text: str) -> bytes:
    """The 32-byte cache key of one text: ``sha256(fingerprint + "\\0" + text)``."""
    return hashlib.sha256(f"{fingerprint}\0{text}".encode()).digest()


class EmbeddingCache:
    """Per-text embedding store for one encoder fingerprint (see module docstring).

    Parameters
    ----------
    fingerprint:
        The encoder's fingerprint (model, max length, normalisation, backend).
    root:
        Cache root; ``None`` → :func:`lgrec.utils.cache_dir` (``$LGREC_CACHE_DIR`` or
        ``~/.cache/lgrec``).
    max_shards:
        Merge the shards into one when there are more than this many.

    Loaded shards are kept in memory and the folder is re-listed on every lookup, so rows
    written by other processes are picked up without re-reading the shards already seen.
    """

    def __init__(
        self, fingerprint: str, root: str | os.PathLike | None = None, *, max_shards: int = 32
    ) -> None:
        if not fingerprint:
            raise ValueError("EmbeddingCache(fingerprint=''): expected a non-empty fingerprint")
        self.fingerprint = fingerprint
        digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:20]
        self.path = cache_dir(root) / "embeddings" / digest
        self.max_shards = max(1, int(max_shards))
        self._lock = threading.Lock()
        self._shards: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # file name → (keys, emb)
        self._index: dict[bytes, tuple[str, int]] = {}
        self._dim: int | None = None

    # ---- public ------------------------------------------------------------------------
    def keys(self, texts: Sequence[str]) -> list[bytes]:
        """Cache keys of ``texts`` (one sha256 per text)."""
        return [text_key(self.fingerprint, t) for t in texts]

    def lookup(self, texts: Sequence[str]) -> tuple[np.ndarray | None, np.ndarray]:
        """Cached rows of ``texts``.

        Returns ``(emb, found)``: ``found`` is a boolean mask over ``texts``; ``emb`` is a
        ``len(texts) × d`` float32 matrix whose rows are valid where ``found`` is true (zeros
        elsewhere), or ``None`` when nothing is cached yet.
        """
        keys = self.keys(texts)
        with self._lock:
            self._refresh()
            found = np.zeros(len(keys), dtype=bool)
            if self._dim is None:
                return None, found
            hits = [self._index.get(k) for k in keys]
            out = self._gather(hits, np.zeros((len(keys), self._dim), dtype=np.float32))
        found[:] = [h is not None for h in hits]
        return out, found

    def put(self, texts: Sequence[str], emb: np.ndarray) -> None:
        """Append ``emb[j]`` as the cached row of ``texts[j]`` (rows already cached are skipped)."""
        emb = np.asarray(emb, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != len(texts):
            raise ValueError(
                f"EmbeddingCache.put: emb has shape {emb.shape}; expected ({len(texts)}, d)"
            )
        if not len(texts):
            return
        keys = self.keys(texts)
        with self._lock:
            self._refresh()
            if self._dim is not None and emb.shape[1] != self._dim:
                raise ValueError(
                    f"EmbeddingCache.put: emb has {emb.shape[1]} columns but the cache at "
                    f"{self.path} holds {self._dim}-dim rows for the same fingerprint"
                )
            new: dict[bytes, int] = {}
            for j, k in enumerate(keys):
                if k not in self._index and k not in new:
                    new[k] = j
            if not new:
                return
            rows = np.fromiter(new.values(), dtype=np.int64, count=len(new))
            key_arr = np.frombuffer(b"".join(new), dtype=np.uint8).reshape(-1, KEY_BYTES)
            self._write_shard(key_arr, np.ascontiguousarray(emb[rows]))
            if len(self._shards) > self.max_shards:
                self._compact()

    def compact(self) -> None:
        """Merge every shard of this fingerprint into one."""
        with self._lock:
            self._refresh()
            if len(self._shards) > 1:
                self._compact()

    def clear(self) -> None:
        """Delete every cached row of this fingerprint."""
        with self._lock:
            for p in self.path.glob(_SHARD_GLOB):
                p.unlink(missing_ok=True)
            self._shards.clear()
            self._index.clear()
            self._dim = None

    def __len__(self) -> int:
        with self._lock:
            self._refresh()
            return len(self._index)

    # ---- internals (called with the lock held) -----------------------------------------
    def _refresh(self) -> None:
        """Load shards that appeared on disk and forget shards that disappeared."""
        on_disk = {p.name for p in self.path.glob(_SHARD_GLOB)} if self.path.is_dir() else set()
        gone = set(self._shards) - on_disk
        for name in gone:
            self._shards.pop(name)
        if gone:
            self._rebuild_index()
        for name in sorted(on_disk - set(self._shards)):
            loaded = self._read_shard(self.path / name)
            if loaded is not None:
                self._add(name, *loaded)

    def _rebuild_index(self) -> None:
        shards, self._shards, self._index = self._shards, {}, {}
        self._dim = None
        for name, (keys, emb) in shards.items():
            self._add(name, keys, emb)

    def _add(self, name: str, keys: np.ndarray, emb: np.ndarray) -> None:
        """Register a loaded shard; keys already indexed keep their first row."""
        self._shards[name] = (keys, emb)
        for r, k in enumerate(keys):
            self._index.setdefault(k.tobytes(), (name, r))
        self._dim = int(emb.shape[1])

    def _gather(self, hits: list[tuple[str, int] | None], out: np.ndarray) -> np.ndarray:
        """Copy the rows named by ``hits`` into ``out`` (one fancy-index per shard)."""
        by_shard: dict[str, tuple[list[int], list[int]]] = {}
        for j, h in enumerate(hits):
            if h is not None:
                dst, src = by_shard.setdefault(h[0], ([], []))
                dst.append(j)
                src.append(h[1])
        for name, (dst, src) in by_shard.items():
            out[dst] = self._shards[name][1][src]
        return out

    def _read_shard(self, path: Path) -> tuple[np.ndarray, np.ndarray] | None:
        from safetensors.numpy import load

        try:
            data = load(path.read_bytes())
            keys, emb = data["keys"], data["emb"]
            if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != KEY_BYTES:
                raise ValueError(f"'keys' has dtype {keys.dtype} shape {keys.shape}")
            if emb.dtype != np.float32 or emb.ndim != 2 or emb.shape[0] != keys.shape[0]:
                raise ValueError(f"'emb' has dtype {emb.dtype} shape {emb.shape}")
            if self._dim is not None and emb.shape[1] != self._dim:
                raise ValueError(f"'emb' has {emb.shape[1]} columns, other shards {self._dim}")
            if not np.isfinite(emb).all():
                raise ValueError("'emb' holds NaN or infinite values")
        except FileNotFoundError:  # removed by a concurrent compaction
            return None
        except Exception as exc:
            logger.warning(
                "embedding cache file %s is unreadable (%s); deleting it, its texts will be "
                "re-encoded",
                path,
                exc,
            )
            path.unlink(missing_ok=True)
            return None
        return keys, emb

    def _write_shard(self, keys: np.ndarray, emb: np.ndarray) -> None:
        from safetensors.numpy import save

        self.path.mkdir(parents=True, exist_ok=True)
        marker = self.path / "FINGERPRINT"
        if not marker.exists():
            atomic_write_text(marker, self.fingerprint + "\n")
        name = f"shard-{hashlib.sha256(keys.tobytes()).hexdigest()[:24]}.safetensors"
        atomic_write_bytes(self.path / name, save({"keys": keys, "emb": emb}))
        self._add(name, keys, emb)
        logger.debug("embedding cache: wrote %d rows to %s", len(keys), self.path / name)

    def _compact(self) -> None:
        if not self._index:
            return
        old = list(self._shards)
        keys = np.frombuffer(b"".join(self._index), dtype=np.uint8).reshape(-1, KEY_BYTES)
        emb = self._gather(
            list(self._index.values()), np.empty((len(self._index), self._dim), np.float32)
        )
        self._shards.clear()
        self._index.clear()
        self._write_shard(keys, emb)
        for name in old:
            if name not in self._shards:
                (self.path / name).unlink(missing_ok=True)
        logger.info(
            "embedding cache %s: merged %d shards (%d rows)", self.path, len(old), len(keys)
        )


_DIGESTS: dict[str, str] = {}


def model_digest(model: str) -> str:
    """Short digest of a local model folder, or of the model name when it is not a folder.

    A folder is hashed by its file names, sizes and contents (small files whole, large files
    head and tail only, so it is cheap), never by its path: the same model installed
    elsewhere has the same digest. Memoised per process.
    """
    if model in _DIGESTS:
        return _DIGESTS[model]
    root = Path(model).expanduser()
    h = hashlib.sha256()
    if root.is_dir():
        for p in sorted(q for q in root.rglob("*") if q.is_file()):
            rel = p.relative_to(root).as_posix()
            if rel.startswith((".", "onnx/")) or rel.lower().endswith(".md"):
                continue
            size = p.stat().st_size
            h.update(f"{rel}\0{size}\0".encode())
            with open(p, "rb") as fh:
                if size <= 1 << 20:
                    h.update(fh.read())
                else:
                    h.update(fh.read(1 << 16))
                    fh.seek(-(1 << 16), os.SEEK_END)
                    h.update(fh.read())
    else:
        h.update(f"name:{model}".encode())
    digest = h.hexdigest()[:16]
    _DIGESTS[model] = digest
    return digest


_CACHES: dict[Path, EmbeddingCache] = {}
_CACHES_LOCK = threading.Lock()


def get_cache(fingerprint: str, root: str | os.PathLike | None = None) -> EmbeddingCache:
    """The process-wide :class:`EmbeddingCache` of ``fingerprint`` under ``root``.

    Sharing one object per folder keeps the loaded rows in memory once, however many
    encoders (CLI, server, models) ask for them.
    """
    cache = EmbeddingCache(fingerprint, root)
    with _CACHES_LOCK:
        return _CACHES.setdefault(cache.path, cache)
