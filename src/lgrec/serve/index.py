"""Candidate retrieval for ``/recommend``: exact scoring (default) or a FAISS index.

Exact scoring computes ``s = V u + b`` for every item: right for small catalogues. For
10⁵–10⁶ items ``lgrec serve --index faiss`` asks a FAISS index for candidates and re-scores
only those exactly, so the returned scores are the model's.

**Inner product as nearest neighbours.** With item ``i``'s vector ``e_i`` and bias ``b_i``
(0 without), the score is an inner product ``s_ui = qᵀx_i`` of ``q = [u, 1]`` and
``x_i = [e_i, b_i]``. Maximum inner product is not a metric search, so graph and cluster
indexes built for distances lose recall on it. The transform of Bachrach et al. (2014)
appends one coordinate that makes it one:

    x̃_i = [x_i, √(M² − ‖x_i‖²)],   q̃ = (M / ‖q‖) · [q, 0],   M = max_i ‖x_i‖
    ‖q̃ − x̃_i‖² = 2M² − 2 (M / ‖q‖) qᵀx_i

so the L2-nearest ``x̃_i`` of ``q̃`` are exactly the items of highest score (every ``x̃_i``
lies on the sphere of radius ``M``; scaling the query onto it changes no ranking but makes it
look like a data point to the index). The index is IVF (the default: ``IndexIVFFlat``,
k-means cells of the ``x̃_i``; the ``nprobe`` cells nearest to ``q̃`` are scanned) or HNSW
(``IndexHNSWFlat``: a layered proximity graph; ``ef_search`` candidates kept while walking
it). On the synthetic catalogues of ``benchmarks/serve_index.py`` IVF scanning 35 % of its
cells (the default) reached recall 0.9936 of the exact top-100 at 10⁶ items, and HNSW 0.64
at 10⁵ (``docs/serving.md``).

A request asks for ``max(candidates, k) + |seen|`` neighbours, drops the seen items, adds the
items created at run time (appended after the index was built; scored exactly), re-scores all
of them with ``V u + b`` and keeps the top ``k``.

**When the exact path is used anyway.** A model whose score is not one dot product of a user
and an item vector — LMGCN with its graph-filter blend ``z(uᵀV) + λ z(GF(x_u))`` — gets no
index (a log line says so); a request with a free-text ``query``, and a user created from
text (whose own text is blended in), are scored exactly.

Built indexes are cached under ``<cache dir>/faiss/`` keyed by a hash of the vectors and the
settings, so a restarted server loads instead of rebuilding.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lgrec.errors import ConfigError
from lgrec.utils import cache_dir, progress

log = logging.getLogger(__name__)
INDEX_KINDS = ("exact", "faiss")
PROBE_SHARE = 0.35
"""Share of the IVF cells scanned per search by default (``nprobe=0``): recall is set by the
share scanned. On ``benchmarks/serve_index.py`` a quarter of the cells gave recall@100 0.9958
at 10⁵ items but 0.9891 at 10⁶; 35 % gave 0.9936 at 10⁶ (docs/serving.md)."""


@dataclass(frozen=True)
class IndexSettings:
    """Settings of the FAISS index (see module docstring).

    Args:
        method: ``"hnsw"`` or ``"ivf"``.
        candidates: neighbours asked of the index per request (at least ``k``), before the
            user's seen items are dropped; all of them are re-scored exactly.
        m, ef_construction, ef_search: HNSW links per node, and the candidate lists kept
            while building and while searching.
        nlist, nprobe: IVF cells (0: ``2·√n``, trained on ``64·nlist`` sampled items) and
            cells scanned per search (0: 35 % of the cells, :data:`PROBE_SHARE`).
    """

    method: str = "ivf"
    candidates: int = 200
    m: int = 32
    ef_construction: int = 128
    ef_search: int = 256
    nlist: int = 0
    nprobe: int = 0

    def __post_init__(self) -> None:
        if self.method not in ("hnsw", "ivf"):
            raise ConfigError(f"index method {self.method!r}: expected 'hnsw' or 'ivf'")
        for name in ("candidates", "m", "ef_construction", "ef_search"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"index setting {name} must be ≥ 1, got {getattr(self, name)}")
        for name in ("nlist", "nprobe"):
            if int(getattr(self, name)) < 0:
                raise ConfigError(f"index setting {name} must be ≥ 0, got {getattr(self, name)}")


def parse_index_options(text: str | None) -> IndexSettings:
    """``IndexSettings`` from ``"method=ivf,nprobe=64"`` (empty: the defaults)."""
    if not text:
        return IndexSettings()
    kw: dict[str, Any] = {}
    fields = IndexSettings.__dataclass_fields__
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in fields:
            raise ConfigError(
                f"index option {part.strip()!r}: expected key=value with key one of {list(fields)}"
            )
        try:
            kw[key] = value.strip() if key == "method" else int(value)
        except ValueError:
            raise ConfigError(f"index option {key}: {value!r} is not an integer") from None
    return IndexSettings(**kw)


def augment(items: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """``x̃_i = [e_i, b_i, √(M² − ‖x_i‖²)]`` (float32; module docstring)."""
    x = items.astype(np.float32, copy=False)
    if bias is not None:
        x = np.hstack([x, bias.reshape(-1, 1).astype(np.float32)])
    sq = np.einsum("ij,ij->i", x, x, dtype=np.float64)
    extra = np.sqrt(np.maximum(sq.max(initial=0.0) - sq, 0.0)).astype(np.float32)
    return np.ascontiguousarray(np.hstack([x, extra[:, None]]))


def query_vector(user: np.ndarray, with_bias: bool, radius: float) -> np.ndarray:
    """``q̃ = (M / ‖q‖) · [u, 1, 0]`` (``[u, 0]`` without biases) as a 1 × d float32 row."""
    tail = [1.0, 0.0] if with_bias else [0.0]
    q = np.concatenate([user.astype(np.float32), np.asarray(tail, np.float32)])
    norm = float(np.linalg.norm(q))
    return (q * (radius / norm if norm > 0 else 1.0))[None, :].astype(np.float32)


class FaissIndex:
    """A FAISS index over a model's item vectors (module docstring); :meth:`search` gives
    candidate item rows. Items appended later are not in it (``n_indexed`` tells how many
    are): the caller scores those exactly."""

    def __init__(self, items: np.ndarray, bias: np.ndarray | None, settings: IndexSettings,
                 *, cache: bool = True, threads: int | None = None) -> None:  # fmt: skip
        faiss = _faiss()
        if threads:
            faiss.omp_set_num_threads(int(threads))
        self.settings = settings
        self.with_bias = bias is not None
        self.n_indexed = len(items)
        x = augment(items, bias)
        self.radius = float(np.linalg.norm(x[0])) if len(x) else 1.0  # M: every row's norm
        path = _cache_path(x, settings) if cache else None
        t0 = time.perf_counter()
        if path is not None and path.is_file():
            self.index = faiss.read_index(str(path))
            log.info("FAISS %s index of %d items loaded from %s", settings.method, len(x), path)
        else:
            self.index = _build(faiss, x, settings)
            log.info("FAISS %s index of %d items built in %.1fs", settings.method, len(x),
                     time.perf_counter() - t0)  # fmt: skip
            if path is not None:
                _write_index(faiss, self.index, path)
        self._faiss = faiss

    def search(self, user: np.ndarray, n: int) -> np.ndarray:
        """Rows of (up to) the ``n`` indexed items of highest ``uᵀe_i + b_i``, best first.
        Search settings travel with the call, so threads may search at once."""
        n = min(int(n), self.n_indexed)
        s = self.settings
        if s.method == "hnsw":
            params = self._faiss.SearchParametersHNSW(efSearch=max(s.ef_search, n))
        else:
            nprobe = s.nprobe or max(1, round(self.index.nlist * PROBE_SHARE))
            params = self._faiss.SearchParametersIVF(nprobe=nprobe)
        q = query_vector(user, self.with_bias, self.radius)
        _, idx = self.index.search(q, n, params=params)
        row = idx[0]
        return row[row >= 0]


def candidate_scores(
    index: FaissIndex,
    user: np.ndarray,
    items: np.ndarray,
    bias: np.ndarray | None,
    k: int,
    exclude: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` rows and exact scores ``e_iᵀu + b_i`` among the index's candidates and the
    rows appended after it was built, ``exclude`` (seen rows) left out; ties: lower row first."""
    want = max(index.settings.candidates, k) + len(exclude)
    cand = np.union1d(index.search(user, want), np.arange(index.n_indexed, len(items)))  # sorted
    if len(exclude):
        cand = cand[~np.isin(cand, exclude)]
    s = items[cand] @ user
    if bias is not None:
        s = s + bias[cand]
    top = np.argsort(-s, kind="stable")[:k]
    return cand[top], s[top]


def dot_product_form(filter_weight: float, model_name: str) -> bool:
    """Whether the served score is one dot product ``uᵀe_i + b_i`` (else: log and False)."""
    if filter_weight > 0:
        log.warning(
            "--index faiss: %s scores with a graph-filter blend z(uᵀV) + λ z(GF(x_u)) (λ = %g), "
            "which is not one dot product of user and item vectors; using exact scoring",
            model_name, filter_weight,
        )  # fmt: skip
        return False
    return True


# ---- building, caching --------------------------------------------------------------------------
def _faiss() -> Any:
    try:
        import faiss
    except ImportError as e:
        raise ConfigError(
            f"--index faiss needs the faiss-cpu package ({e}); pip install 'lgrec[faiss]'"
        ) from None
    return faiss


def _build(faiss: Any, x: np.ndarray, s: IndexSettings) -> Any:
    n, d = x.shape
    if s.method == "hnsw":
        index = faiss.IndexHNSWFlat(d, s.m)
        index.hnsw.efConstruction = s.ef_construction
    else:
        nlist = s.nlist or max(1, min(n // 39, round(2 * np.sqrt(n))))
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist)
        rng = np.random.default_rng(0)
        sample = x[np.sort(rng.choice(n, min(n, 64 * nlist), replace=False))]
        log.info("training IVF (%d cells) on %d vectors", nlist, len(sample))
        index.train(sample)
    step = 20_000
    t0, shown = time.perf_counter(), time.perf_counter()
    for start in progress(range(0, n, step), desc=f"FAISS {s.method}", total=-(-n // step)):
        index.add(x[start : start + step])
        now = time.perf_counter()
        done = min(start + step, n)
        if now - shown > 10 and done < n:  # progress lines for logs and pipes
            eta = (now - t0) / done * (n - done)
            log.info("FAISS %s: %d/%d items indexed, ETA %.0fs", s.method, done, n, eta)
            shown = now
    return index


def _cache_path(x: np.ndarray, s: IndexSettings) -> Path:
    h = hashlib.sha256(np.ascontiguousarray(x).view(np.uint8).data)
    keep = {k: v for k, v in asdict(s).items() if k not in ("candidates", "ef_search", "nprobe")}
    h.update(repr(sorted(keep.items())).encode())
    return cache_dir() / "faiss" / f"{s.method}-{len(x)}-{h.hexdigest()[:20]}.index"


def _write_index(faiss: Any, index: Any, path: Path) -> None:
    """``faiss.write_index`` to a temporary file in the cache folder, then rename."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            faiss.write_index(index, tmp)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as e:
        log.warning("FAISS index not cached (%s): it will be rebuilt at the next start", e)
