"""RecBole atomic files: ``<name>.inter``, ``.item``, ``.user``, ``.text`` (tab-separated).

The first line of each file declares its fields as ``name:type`` with type ``token``,
``token_seq`` (space-separated tokens), ``float`` or ``float_seq``. Standard fields are mapped
(``user_id``, ``item_id``, ``rating``, ``timestamp``; item ``title`` and
``categories``/``genre``/``class``); other fields are kept as extra columns.

Two interaction layouts are read:

* general: one ``<name>.inter`` (or ``<name>.{train,valid,test}.inter``, giving ``fold``)
  with one interaction per row;
* sequential benchmark (LLMRank's ``Games-6k.{train,valid,test}.inter``, UniSRec's
  ``Scientific.{train,valid,test}.inter``): ``user_id item_id_list item_id`` rows whose target
  ``item_id`` follows the history ``item_id_list``, whole or truncated to its last items. Each
  user's sequence is rebuilt once (:mod:`lgrec.data.sequences`), item k of it gets
  ``timestamp = k``; the position a valid/test row predicts gets that fold, every other
  position is ``train``. So every item appears once per position — the training targets and
  the earlier items no row predicts (e.g. the first) — without double counting.

UniSRec's ``<name>.item2index``/``.user2index`` turn the indices into raw ids (ASINs) and its
``<name>.text`` (keyed by ASIN) gives ``description`` (:mod:`lgrec.data.unisrec`). How many
items got text is kept in ``meta["text_source"]``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from lgrec.data._io import (
    FOLDS,
    finish_interactions,
    fold_column,
    map_ids,
    read_delimited,
    user_text,
    vocab,
)
from lgrec.data.dataset import Dataset
from lgrec.data.sequences import expand_sequences
from lgrec.data.unisrec import join_extras
from lgrec.errors import DataError, DatasetNotFoundError

log = logging.getLogger(__name__)

FIELD_TYPES = ("token", "token_seq", "float", "float_seq")
TITLE_FIELDS = ("title", "movie_title", "name", "item_name")
CATEGORY_FIELDS = ("categories", "category", "genre", "genres", "class")
DESCRIPTION_FIELDS = ("description", "text", "desc", "item_text")


def read_atomic(path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """Read one atomic file → (table with plain field names, {field: type}).

    ``float`` fields become numbers (a non-number gives file and line); the rest stay strings.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"RecBole file {path} not found")
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().rstrip("\r\n")
    if not header:
        raise DataError(f"{path}: file is empty; expected a header line of 'field:type' names")
    types: dict[str, str] = {}
    for k, spec in enumerate(header.split("\t"), start=1):
        fname, _, ftype = spec.partition(":")
        if not fname or ftype not in FIELD_TYPES:
            raise DataError(
                f"{path}, line 1, column {k}: header field {spec!r} is not 'name:type' with type "
                f"in {FIELD_TYPES}"
            )
        types[fname] = ftype
    floats = [f for f, t in types.items() if t == "float"]
    df = read_delimited(path, list(types), skiprows=1, floats=floats, required=[], allow_empty=True)
    return df, types


def _need_fields(
    df: pd.DataFrame, path: Path, fields: tuple[str, ...], nonempty: tuple[str, ...] | None = None
) -> None:
    """Fields must exist (else list the ones found); ``nonempty`` ones (default all) have values."""
    missing = [f for f in fields if f not in df.columns]
    if missing:
        raise DataError(
            f"{path}: missing field(s) {missing}; fields found: {list(df.columns)} "
            "(RecBole header 'name:type')"
        )
    for f in fields if nonempty is None else nonempty:
        empty = np.asarray(df[f].isna() | (df[f] == ""))
        if empty.any():
            line = int(df.index[np.argmax(empty)]) + 2
            raise DataError(f"{path}, line {line}: field {f!r} is empty")


def _find(directory: Path, name: str, suffix: str) -> Path | None:
    """``<name>.<suffix>``, else the only ``*.<suffix>`` in the folder, else None."""
    exact = directory / f"{name}.{suffix}"
    if exact.is_file():
        return exact
    cands = sorted(directory.glob(f"*.{suffix}"))
    if len(cands) == 1:
        log.info("using %s as the %s file of %r", cands[0].name, suffix, name)
        return cands[0]
    return None


def _inter_files(directory: Path, name: str | None) -> tuple[str, list[tuple[Path, str | None]]]:
    inters = sorted(directory.glob("*.inter"))
    if not inters:
        raise DatasetNotFoundError(
            f"no RecBole .inter file in {directory}; expected <name>.inter or "
            "<name>.{train,valid,test}.inter (see https://recbole.io/atomic_files.html)"
        )
    stems: dict[str, list[tuple[Path, str | None]]] = {}
    for f in inters:
        stem = f.name[: -len(".inter")]
        base, _, fold = stem.rpartition(".")
        if base and fold in FOLDS:
            stems.setdefault(base, []).append((f, fold))
        else:
            stems.setdefault(stem, []).append((f, None))
    if name is None:
        if len(stems) != 1:
            raise DataError(f"{directory}: several data sets {sorted(stems)}; pass name=")
        name = next(iter(stems))
    if name not in stems:
        raise DatasetNotFoundError(
            f"no {name}.inter or {name}.{{train,valid,test}}.inter in {directory}; "
            f"found {sorted(stems)}"
        )
    files = stems[name]
    if any(fold is None for _, fold in files) and len(files) > 1:
        files = [(f, fold) for f, fold in files if fold is not None]
    order = {None: -1, **{k: i for i, k in enumerate(FOLDS)}}
    return name, sorted(files, key=lambda t: order[t[1]])


def _table(path: Path | None, key: str, extra_ids: np.ndarray, kind: str) -> pd.DataFrame:
    """Item or user table from an atomic file (or ids only), plus ids seen only in .inter."""
    if path is None:
        return pd.DataFrame({key: vocab(extra_ids)})
    raw, types = read_atomic(path)
    _need_fields(raw, path, (key,))
    if raw[key].duplicated().any():
        line = int(raw.index[np.argmax(raw[key].duplicated().to_numpy())]) + 2
        raise DataError(f"{path}, line {line}: {key} {raw[key][line - 2]!r} appears twice")
    out = pd.DataFrame({key: raw[key].astype(str).to_numpy(dtype=object)})
    for f, t in types.items():
        if f == key:
            continue
        col = raw[f]
        if kind == "item" and f in TITLE_FIELDS and "title" not in out:
            out["title"] = col.fillna("").to_numpy(dtype=object)
        elif kind == "item" and f in CATEGORY_FIELDS and "categories" not in out:
            s = col.fillna("").astype(str)
            out["categories"] = (
                s.str.split() if t == "token_seq" else s.map(lambda v: [v] if v else [])
            )
        elif kind == "item" and f in DESCRIPTION_FIELDS and "description" not in out:
            out["description"] = col.fillna("").to_numpy(dtype=object)
        else:
            out[f] = col.to_numpy()
    used = pd.unique(np.asarray(extra_ids, dtype=object))
    known = pd.Index(out[key].to_numpy(dtype=object), dtype=object)
    more = used[known.get_indexer(used) < 0]
    if len(more):
        log.warning("%s: %d %s ids used in interactions are not in the file", path, len(more), kind)
        out = pd.concat([out, pd.DataFrame({key: more})], ignore_index=True)
    if kind == "user" and {"age", "gender", "occupation"} <= set(out.columns):
        out["text"] = user_text(out["age"], out["gender"], out["occupation"]).to_numpy()
    return out


def load_recbole(path: str | Path, name: str | None = None) -> Dataset:
    """Load RecBole atomic files from a folder (or a ``.inter`` file path); see module doc."""
    path = Path(path)
    if path.is_file() and path.suffix == ".inter":
        directory = path.parent
        stem = path.name[: -len(".inter")]
        base, _, fold = stem.rpartition(".")
        name = name or (base if base and fold in FOLDS else stem)
    else:
        directory = path
        if not directory.is_dir():
            raise DatasetNotFoundError(f"RecBole data folder {directory} not found")
    name, files = _inter_files(directory, name)
    frames, names = [], [str(f) for f, _ in files]
    for k, (f, fold) in enumerate(files):
        df, _ = read_atomic(f)
        if len(df) == 0:
            raise DataError(f"{f}: no data lines after the header")
        df["file"] = pd.Categorical.from_codes(np.full(len(df), k, np.int8), categories=names)
        df["line"] = df.index.to_numpy() + 2
        if fold is not None:
            df["fold"] = fold_column(fold, len(df))
        frames.append(df)
    raw = pd.concat(frames, ignore_index=True)
    seq_field = "item_id_list" if "item_id_list" in raw.columns else None
    if seq_field:
        for (f, _), df in zip(files, frames):
            _need_fields(df, f, ("user_id", seq_field, "item_id"), ("user_id", "item_id"))
        raw, n_targets = expand_sequences(raw, seq_field)
    else:
        for (f, _), df in zip(files, frames):
            _need_fields(df, f, ("user_id", "item_id"))
    item_f = _find(directory, name, "item") or _find(directory, name.split("-")[0], "item")
    items = _table(item_f, "item_id", raw["item_id"].to_numpy(), "item")
    users = _table(_find(directory, name, "user"), "user_id", raw["user_id"].to_numpy(), "user")
    where = {"path": _file_names(raw), "lines": raw["line"].to_numpy()}
    df = pd.DataFrame(
        {
            what: map_ids(
                raw[f"{what}_id"].to_numpy(dtype=object),
                table[f"{what}_id"].to_numpy(dtype=object),
                what=what,
                **where,
            )
            for what, table in (("user", users), ("item", items))
        }
    )
    has_rating = "rating" in raw.columns
    df["rating"] = raw["rating"].to_numpy() if has_rating else 1.0
    if "timestamp" in raw.columns:
        ts = pd.to_numeric(raw["timestamp"], errors="coerce").to_numpy(dtype=np.float64)
        if np.isnan(ts).any():  # a token-typed timestamp that is not a number
            k = int(np.argmax(np.isnan(ts)))
            raise DataError(
                f"{raw['file'].iloc[k]}, line {int(raw['line'].iloc[k])}: field 'timestamp' has "
                f"{raw['timestamp'].iloc[k]!r}; expected a number"
            )
        df["timestamp"] = np.round(ts).astype(np.int64)
    else:
        df["timestamp"] = np.arange(len(df))
    if "fold" in raw.columns:
        df["fold"] = fold_column(raw["fold"])
    scale = (float(df["rating"].min()), float(df["rating"].max())) if has_rating else None
    meta: dict = {"source": str(directory)}
    items, users, text_source = join_extras(directory, name, items, users, _find)
    if text_source is not None:
        meta["text_source"] = text_source
    if seq_field:
        meta["n_target_rows"] = n_targets
    return Dataset(
        finish_interactions(df, event="rating" if has_rating else "click"),
        items,
        users,
        name=name,
        rating_scale=scale,
        meta=meta,
    )


def _file_names(raw: pd.DataFrame) -> np.ndarray:
    """The source file of every row (the ``file`` column is categorical) as an object array."""
    cat = raw["file"].cat
    return np.asarray(cat.categories, dtype=object)[cat.codes.to_numpy()]
