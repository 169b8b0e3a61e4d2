"""Generic tables: CSV/TSV, Parquet or JSON lines, with a column mapping.

The reader is chosen by the file suffix (``.csv``, ``.tsv``/``.tab``/``.txt``, ``.parquet``/
``.pq``, ``.jsonl``/``.ndjson``/``.json``; a trailing ``.gz``/``.bz2``/``.zip``/``.xz`` is
allowed for text formats). Timestamps may be integers (kept, e.g. Unix seconds) or date/time
strings (parsed as ISO 8601 and turned into Unix seconds, UTC).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lgrec.data._io import FOLDS, finish_interactions, fold_column, map_ids, user_text, vocab
from lgrec.data.dataset import Dataset
from lgrec.errors import DataError, DatasetNotFoundError

log = logging.getLogger(__name__)

_COMPRESSED = {".gz", ".bz2", ".zip", ".xz"}
_TEXT_SEP = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": "\t"}


def _kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if suffix in _TEXT_SEP:
        return suffix
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "json"
    raise DataError(
        f"{path}: unknown table format {suffix!r}; expected .csv, .tsv, .parquet or .jsonl"
    )


def read_table(
    path: str | Path, *, sep: str | None = None, str_cols: Sequence[str] = ()
) -> tuple[pd.DataFrame, int]:
    """Read one table; returns (frame, line offset) where file line = row index + offset.

    ``str_cols`` are read as strings (ids keep leading zeros). Empty tables raise DataError.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"table file {path} not found")
    kind = _kind(path)
    try:
        if kind == "parquet":
            df, offset = pd.read_parquet(path), 1  # "line" = row number
        elif kind == "json":
            lines = path.suffix.lower() != ".json" or _looks_like_lines(path)
            df, offset = pd.read_json(path, lines=lines, dtype=False), 1
        else:
            df = pd.read_csv(
                path,
                sep=sep or _TEXT_SEP[kind],
                dtype={c: object for c in str_cols},
                keep_default_na=False,
                na_values=[""],
            )
            offset = 2  # header line + 1-based
    except (pd.errors.ParserError, ValueError) as e:
        raise DataError(f"{path}: cannot read as {kind.lstrip('.')} ({e})") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty; expected a header and data rows") from None
    if len(df) == 0:
        raise DataError(f"{path}: no data rows; columns found: {list(df.columns)}")
    return df, offset


def _looks_like_lines(path: Path) -> bool:
    with open(path, encoding="utf-8") as fh:
        head = fh.read(1).strip()
    return head != "["


def _need(df: pd.DataFrame, path: Path, cols: Mapping[str, str | None]) -> None:
    for arg, col in cols.items():
        if col is not None and col not in df.columns:
            raise DataError(
                f"{path}: column {col!r} ({arg}) not found; columns found: {list(df.columns)}"
            )


def _ids(df: pd.DataFrame, col: str, path: Path, offset: int) -> np.ndarray:
    """An id column as strings; missing ids raise with the line; 3.0 → "3" for float columns."""
    s = df[col]
    miss = np.asarray(s.isna())
    if miss.any():
        k = int(np.argmax(miss))
        raise DataError(f"{path}, line {k + offset}: column {col!r} is empty; expected an id")
    if pd.api.types.is_float_dtype(s.dtype) and (s % 1 == 0).all():
        s = s.astype(np.int64)
    return s.astype(str).to_numpy(dtype=object)


def parse_time(s: pd.Series, *, path: Path, column: str, offset: int) -> np.ndarray:
    """Integers as they are; date/time strings (ISO 8601) → Unix seconds (int64, UTC)."""
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        dt = pd.to_datetime(s, utc=True)
    else:
        num = pd.to_numeric(s, errors="coerce")
        if num.notna().all():
            return np.round(num.to_numpy(dtype=np.float64)).astype(np.int64)
        dt = pd.to_datetime(s, errors="coerce", utc=True, format="ISO8601")
    bad = np.asarray(dt.isna())
    if bad.any():
        k = int(np.argmax(bad))
        raise DataError(
            f"{path}, line {k + offset}: column {column!r} has {s.iloc[k]!r}; expected an integer "
            "timestamp or an ISO 8601 date/time"
        )
    return (dt - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)


def split_categories(s: pd.Series) -> list[list[str]]:
    """A categories column → list of str per row (lists kept; strings split on ``|`` or ``,``)."""
    vals = s.tolist()
    if all(isinstance(v, list | tuple | np.ndarray) or v is None for v in vals):
        return [[str(x) for x in v] if v is not None else [] for v in vals]
    text = s.fillna("").astype(str)
    sep = "|" if text.str.contains("|", regex=False).any() else ","
    parts = text.str.split(sep, regex=False)
    return [[p.strip() for p in ps if p.strip()] for ps in parts.tolist()]


def _side_table(
    path: Path,
    key_col: str,
    key: str,
    cols: Mapping[str, str] | Sequence[str] | None,
    sep: str | None,
) -> pd.DataFrame:
    raw, offset = read_table(path, sep=sep, str_cols=[key_col])
    _need(raw, path, {"id column": key_col})
    if cols is not None:
        mapping = dict(cols) if isinstance(cols, Mapping) else {c: c for c in cols}
        _need(raw, path, {f"column mapping {c!r}": c for c in mapping})
        raw = raw[[key_col, *[c for c in mapping if c != key_col]]].rename(columns=mapping)
    ids = _ids(raw, key_col, path, offset)
    dup = pd.Index(ids).duplicated()
    if dup.any():
        k = int(np.argmax(dup))
        raise DataError(f"{path}, line {k + offset}: {key_col} {ids[k]!r} appears twice")
    out = raw.drop(columns=[key_col]).reset_index(drop=True)
    out.insert(0, key, ids)
    if "categories" in out.columns:
        out["categories"] = split_categories(out["categories"])
    return out


def load_tabular(
    path: str | Path,
    *,
    user_col: str = "user_id",
    item_col: str = "item_id",
    rating_col: str | None = None,
    time_col: str | None = None,
    event_col: str | None = None,
    items_path: str | Path | None = None,
    item_cols: Mapping[str, str] | Sequence[str] | None = None,
    users_path: str | Path | None = None,
    sep: str | None = None,
) -> Dataset:
    """Load interactions (and optional item/user tables) from generic table files.

    Args:
        path: interactions file. A column named ``fold`` (train/valid/test) is kept.
        user_col, item_col: id columns (read as strings).
        rating_col: explicit rating/weight column; absent → implicit (1.0).
        time_col: integer or ISO date/time column; absent → row order.
        event_col: event type column; absent → ``"rating"`` with ratings, else ``"click"``.
        items_path: item table keyed by ``item_col``; ``title``, ``description`` and
            ``categories`` (a list, or a ``|``/``,``-separated string) are recognised.
        item_cols: columns of the item table to keep: a list, or ``{file column: name}``
            (e.g. ``{"name": "title", "genres": "categories"}``). Default: all.
        users_path: user table keyed by ``user_col`` (a ``text`` column, or ``age``/``gender``/
            ``occupation`` from which one is built).
        sep: separator for CSV/TSV files (default by suffix).
    """
    path = Path(path)
    df, offset = read_table(path, sep=sep, str_cols=[user_col, item_col])
    _need(
        df,
        path,
        {
            "user_col": user_col,
            "item_col": item_col,
            "rating_col": rating_col,
            "time_col": time_col,
            "event_col": event_col,
        },
    )
    users_raw = _ids(df, user_col, path, offset)
    items_raw = _ids(df, item_col, path, offset)
    if items_path is not None:
        items = _side_table(Path(items_path), item_col, "item_id", item_cols, sep)
        items = _append_missing(items, "item_id", items_raw, items_path)
    else:
        items = pd.DataFrame({"item_id": vocab(items_raw)})
    if users_path is not None:
        users = _side_table(Path(users_path), user_col, "user_id", None, sep)
        users = _append_missing(users, "user_id", users_raw, users_path)
        if "text" not in users.columns and {"age", "gender", "occupation"} <= set(users.columns):
            users["text"] = user_text(users["age"], users["gender"], users["occupation"])
    else:
        users = pd.DataFrame({"user_id": vocab(users_raw)})
    lines = np.arange(len(df)) + offset
    out = pd.DataFrame(
        {
            "user": map_ids(users_raw, users["user_id"], path=path, what="user", lines=lines),
            "item": map_ids(items_raw, items["item_id"], path=path, what="item", lines=lines),
        }
    )
    if rating_col is not None:
        r = pd.to_numeric(df[rating_col], errors="coerce")
        bad = np.asarray(r.isna())
        if bad.any():
            k = int(np.argmax(bad))
            raise DataError(
                f"{path}, line {k + offset}: column {rating_col!r} has "
                f"{df[rating_col].iloc[k]!r}; expected a number"
            )
        out["rating"] = r.to_numpy(dtype=np.float64)
    else:
        out["rating"] = 1.0
    if time_col is not None:
        out["timestamp"] = parse_time(df[time_col], path=path, column=time_col, offset=offset)
    else:
        out["timestamp"] = np.arange(len(df))
    if "fold" in df.columns:
        folds = df["fold"].astype(str).str.strip().str.lower()
        unknown = ~folds.isin(FOLDS).to_numpy()
        if unknown.any():
            k = int(np.argmax(unknown))
            raise DataError(
                f"{path}, line {k + offset}: column 'fold' has {df['fold'].iloc[k]!r}; "
                f"expected one of {list(FOLDS)}"
            )
        out["fold"] = fold_column(folds.to_numpy(dtype=object))
    if event_col is not None:
        event = df[event_col].fillna("").astype(str).to_numpy(dtype=object)
    else:
        event = "rating" if rating_col is not None else "click"
    scale = (float(out["rating"].min()), float(out["rating"].max())) if rating_col else None
    return Dataset(
        finish_interactions(out, event=event),
        items,
        users,
        name=path.name.split(".")[0],
        rating_scale=scale,
        meta={"source": str(path)},
    )


def _append_missing(
    table: pd.DataFrame, key: str, used: np.ndarray, where: str | Path
) -> pd.DataFrame:
    """Add rows (id only) for ids used in interactions but absent from the table."""
    known = pd.Index(table[key].to_numpy(dtype=object), dtype=object)
    new = pd.unique(used[~pd.Index(used, dtype=object).isin(known)])
    if len(new):
        log.warning("%s: %d ids used in interactions are not in the table", where, len(new))
        table = pd.concat([table, pd.DataFrame({key: new})], ignore_index=True)
    return table
