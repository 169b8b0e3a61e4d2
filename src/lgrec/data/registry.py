"""Load a data set by name (resolved under the data directory) or by path (auto-detected).

Known names and their folders under :func:`lgrec.utils.data_dir` (flag ``--data-dir`` or
``LGREC_DATA_DIR``): ``ml-100k``, ``ml-1m``, ``colakg-ml-1m``, ``gowalla``,
``amazon-videogames``, ``lastfm-social``. A path is detected by its files: MovieLens
(``u.data``/``ratings.dat``), CoLaKG (``item_map.txt`` + ``train.txt``), Last.fm
(``data1.txt``), LightGCN (``train.txt``), RecBole (``*.inter``) or one table file.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from lgrec.data._io import SOURCES
from lgrec.data.colakg import load_colakg
from lgrec.data.dataset import Dataset
from lgrec.data.lightgcn_txt import load_lastfm, load_lightgcn
from lgrec.data.movielens import load_movielens
from lgrec.data.recbole import load_recbole
from lgrec.data.tabular import load_tabular
from lgrec.errors import ConfigError, DataError, DatasetNotFoundError
from lgrec.utils import data_dir as resolve_data_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Entry:
    folder: str
    loader: Callable[..., Dataset]
    marker: str  # a file whose presence means the folder holds this data set


DATASETS: dict[str, _Entry] = {
    "ml-100k": _Entry("ml-100k", load_movielens, "u.data"),
    "ml-1m": _Entry("ml-1m", partial(load_movielens, fold=None), "ratings.dat"),
    "colakg-ml-1m": _Entry("colakg-ml-1m", load_colakg, "train.txt"),
    "gowalla": _Entry("gowalla", partial(load_lightgcn, name="gowalla"), "train.txt"),
    "amazon-videogames": _Entry("amazon-videogames", load_recbole, "Games.item"),
    "lastfm-social": _Entry("lastfm-social", load_lastfm, "data1.txt"),
}
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson", ".json")


def _where(root: Path) -> str:
    env = os.environ.get("LGREC_DATA_DIR")
    src = f"LGREC_DATA_DIR={env}" if env else "default"
    return f"data directory {root} ({src}; change it with --data-dir or LGREC_DATA_DIR)"


def load_dataset(
    name_or_path: str | os.PathLike, *, data_dir: str | os.PathLike | None = None, **kw
) -> Dataset:
    """Load a known data set by name, or any supported folder/file by path.

    Extra keyword arguments go to the loader (e.g. ``fold="u2"`` for ML-100K).

    Raises:
        DatasetNotFoundError: the folder or a required file is missing; the message names the
            folder it looked in, the ``--data-dir``/``LGREC_DATA_DIR`` setting and where to
            download the data set.
    """
    key = str(name_or_path)
    root = resolve_data_dir(data_dir)
    if key in DATASETS:
        entry = DATASETS[key]
        folder = root / entry.folder
        if not folder.is_dir():
            raise DatasetNotFoundError(
                f"data set {key!r} not found: no folder {folder} in the {_where(root)}. "
                f"Download it from {SOURCES[key]} and unpack it into {folder}."
            )
        check_loader_args(entry.loader, kw, key)
        try:
            ds = entry.loader(folder, **kw)
        except DatasetNotFoundError as e:
            raise DatasetNotFoundError(
                f"{e} [data set {key!r} looked up in the {_where(root)}; source: {SOURCES[key]}]"
            ) from None
        return replace(ds, name=key)
    path = Path(name_or_path).expanduser()
    if not path.exists() and (root / key).exists():
        path = root / key
    if not path.exists():
        raise DatasetNotFoundError(
            f"{key!r} is neither a known data set {sorted(DATASETS)} nor an existing path "
            f"(also looked in the {_where(root)})"
        )
    return _load_path(path, **kw)


def check_loader_args(loader: Callable[..., Dataset], kw: dict, what: str) -> None:
    """Raise a :class:`ConfigError` naming the arguments ``loader`` does not take."""
    params = inspect.signature(loader).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    takes = [n for n, p in params.items() if p.kind is not inspect.Parameter.POSITIONAL_ONLY]
    bad = sorted(set(kw) - set(takes[1:]))
    if bad:
        raise ConfigError(
            f"the loader of {what} ({getattr(loader, 'func', loader).__name__}) takes no "
            f"argument(s) {bad}; it takes {takes[1:]}"
        )


def detect(path: Path) -> str:
    """Which loader reads ``path``: movielens, colakg, lastfm, lightgcn, recbole or tabular."""
    if path.is_file():
        if path.name.endswith(".inter"):
            return "recbole"
        if any(path.name.lower().split(".gz")[0].endswith(s) for s in TABLE_SUFFIXES):
            return "tabular"
        raise DataError(f"{path}: cannot tell the format from the suffix {path.suffix!r}")
    has = {p.name for p in path.iterdir()}
    if has & {"u.data", "u1.base", "ratings.dat", "movies.dat"}:
        return "movielens"
    if {"item_map.txt", "train.txt"} <= has:
        return "colakg"
    if "data1.txt" in has:
        return "lastfm"
    if "train.txt" in has:
        return "lightgcn"
    if any(n.endswith(".inter") for n in has):
        return "recbole"
    raise DatasetNotFoundError(
        f"{path}: no known data files (u.data, ratings.dat, train.txt, data1.txt, *.inter); "
        f"found {sorted(has)[:20]}"
    )


def _load_path(path: Path, **kw) -> Dataset:
    kind = detect(path)
    log.info("loading %s as %s", path, kind)
    loaders: dict[str, Callable[..., Dataset]] = {
        "movielens": load_movielens,
        "colakg": load_colakg,
        "lastfm": load_lastfm,
        "lightgcn": load_lightgcn,
        "recbole": load_recbole,
        "tabular": load_tabular,
    }
    check_loader_args(loaders[kind], kw, f"{path} ({kind})")
    return loaders[kind](path, **kw)
