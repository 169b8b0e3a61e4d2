"""Small shared helpers: seeding, progress bars, atomic writes, data/cache directories."""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch from one integer; return a NumPy generator seeded alike."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def progress(it: Iterable[T], desc: str = "", total: int | None = None, **kw) -> Iterable[T]:
    """Progress of a loop: a bar on a terminal, lines with an ETA in logs and pipes
    (:func:`lgrec.progress.progress`)."""
    from lgrec.progress import progress as _progress

    return _progress(it, desc, total, **kw)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Text variant of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The cache directory: ``override``, else ``$LGREC_CACHE_DIR``, else ``~/.cache/lgrec``."""
    p = override or os.environ.get("LGREC_CACHE_DIR") or Path.home() / ".cache" / "lgrec"
    p = Path(p).expanduser()
    p.mkdir(parents=True, exist_ok=True)
    return p


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """The data root: ``override``, else ``$LGREC_DATA_DIR``, else ``../shared/data`` if present.

    The last fallback looks beside the current directory and beside the installed source tree,
    so a checkout next to ``shared/`` works without configuration.
    """
    if override:
        return Path(override).expanduser()
    env = os.environ.get("LGREC_DATA_DIR")
    if env:
        return Path(env).expanduser()
    here = Path(__file__).resolve()
    for base in (Path.cwd(), *here.parents):
        cand = base.parent / "shared" / "data"
        if cand.is_dir():
            return cand
    return Path.cwd() / "data"


class PhaseClock:
    """Seconds per named phase of a long computation: ``clock("name")`` records the time since
    the previous call (or creation) under ``name`` in ``laps``."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._t, 3)
        self._t = now
