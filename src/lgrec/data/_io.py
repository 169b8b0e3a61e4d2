"""Shared reading helpers for the loaders: checked file access, delimited tables, int lines.

Every helper raises :class:`~lgrec.errors.DataError` (or
:class:`~lgrec.errors.DatasetNotFoundError`) with the file, the line and what was expected,
so a loader never lets a bare pandas/NumPy error through.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lgrec.errors import DataError, DatasetNotFoundError

log = logging.getLogger(__name__)

#: Where each known data set can be downloaded (used in "not found" messages).
SOURCES: dict[str, str] = {
    "movielens": "https://grouplens.org/datasets/movielens/",
    "ml-100k": "https://grouplens.org/datasets/movielens/100k/",
    "ml-1m": "https://grouplens.org/datasets/movielens/1m/",
    "colakg-ml-1m": "https://github.com/ziqiangcui/CoLaKG (data/ml-1m); titles from "
    "https://grouplens.org/datasets/movielens/1m/",
    "gowalla": "https://github.com/gusye1234/LightGCN-PyTorch (data/gowalla)",
    "lightgcn": "https://github.com/gusye1234/LightGCN-PyTorch (data/<name>)",
    "amazon-videogames": "https://github.com/RUCAIBox/LLMRank (llmrank/dataset/Games, Games-6k)",
    "recbole": "https://github.com/RUCAIBox/RecSysDatasets (RecBole atomic files)",
    "lastfm-social": "https://github.com/gusye1234/LightGCN-PyTorch (data/lastfm); original: "
    "https://grouplens.org/datasets/hetrec-2011/",
}

INTERACTION_DTYPES = {
    "user": np.int32,
    "item": np.int32,
    "rating": np.float32,
    "timestamp": np.int64,
}


def need_file(path: Path, *, dataset: str, source: str | None = None) -> Path:
    """Return ``path`` if it is a file, else raise a not-found error that says where to get it."""
    path = Path(path)
    if path.is_file():
        return path
    where = SOURCES.get(source or dataset)
    hint = f" Download {dataset} from {where} and put it in {path.parent}." if where else ""
    raise DatasetNotFoundError(
        f"{dataset}: required file {path.name!r} not found in {path.parent}.{hint}"
    )


def _line_of(index: pd.Index | np.ndarray, offset: int) -> np.ndarray:
    return np.asarray(index, dtype=np.int64) + 1 + offset


def read_delimited(
    path: Path,
    names: Sequence[str],
    *,
    sep: str = "\t",
    ints: Sequence[str] = (),
    floats: Sequence[str] = (),
    required: Sequence[str] | None = None,
    encoding: str = "utf-8",
    skiprows: int = 0,
    allow_empty: bool = False,
) -> pd.DataFrame:
    """Read a header-less delimited file into columns ``names`` with checked types.

    ``ints`` columns must hold integers, ``floats`` numbers; other columns stay strings.
    ``required`` columns (default: ints + floats) may not be empty. Blank lines are skipped.
    Line numbers in errors count from 1 and include the ``skiprows`` header lines.
    """
    path = Path(path)
    names = list(names)
    if not path.is_file():
        raise DatasetNotFoundError(f"file {path} not found")
    if path.stat().st_size == 0:
        if allow_empty:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in names})
        raise DataError(f"{path}: file is empty; expected lines of {sep!r}-separated {names}")
    src: Path | io.BytesIO = path
    real_sep = sep
    if len(sep) > 1:  # the fast C parser needs a one-character separator
        src = io.BytesIO(path.read_bytes().replace(sep.encode(encoding), b"\x1f"))
        sep = "\x1f"
    str_cols = {c: object for c in names if c not in ints and c not in floats}
    try:
        df = pd.read_csv(
            src,
            sep=sep,
            header=None,
            names=names,
            skiprows=skiprows,
            dtype=str_cols or None,
            encoding=encoding,
            quoting=csv.QUOTE_NONE,
            skip_blank_lines=False,
            keep_default_na=False,
            na_values={c: [""] for c in (*ints, *floats)},
            engine="c",
        )
    except pd.errors.ParserError as e:
        raise DataError(
            f"{path}: malformed line ({e}); expected {len(names)} fields {names} "
            f"separated by {real_sep!r}"
        ) from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: cannot decode as {encoding} ({e})") from None
    # blank lines come back as rows where every field is empty/NaN: drop them, keep line numbers
    blank = np.ones(len(df), dtype=bool)
    for c in names:
        if not blank.any():
            break
        empty = df[c].isna().to_numpy().copy()
        if c in str_cols:
            empty |= (df[c] == "").to_numpy()
        blank &= empty
    if blank.any():
        df = df[~blank]
    if len(df) == 0 and not allow_empty:
        raise DataError(f"{path}: no data lines; expected lines of {real_sep!r}-separated {names}")
    required = list(ints) + list(floats) if required is None else list(required)
    required = [c for c in names if c in required]
    if required and len(df):
        miss = np.column_stack(
            [
                (df[c].isna() | (df[c] == "") if c in str_cols else df[c].isna()).to_numpy()
                for c in required
            ]
        )
        if miss.any():
            row = int(np.argmax(miss.any(axis=1)))
            col = required[int(np.argmax(miss[row]))]
            line = _line_of(df.index[row : row + 1], skiprows)[0]
            raise DataError(
                f"{path}, line {line}: missing value in column {col!r}; expected {len(names)} "
                f"fields {names} separated by {real_sep!r}"
            )
    for c in ints:
        df[c] = to_int(df[c], path=path, column=c, line_offset=skiprows)
    for c in floats:
        df[c] = to_float(df[c], path=path, column=c, line_offset=skiprows)
    return df


def to_int(col: pd.Series, *, path: Path | str, column: str, line_offset: int = 0) -> pd.Series:
    """``col`` as int64, or a DataError naming the first non-integer value and its line."""
    if pd.api.types.is_integer_dtype(col.dtype):
        return col.astype(np.int64)
    num = pd.to_numeric(col, errors="coerce")
    bad = num.isna().to_numpy() | (np.asarray(num.fillna(0) % 1) != 0)
    if bad.any():
        pos = int(np.argmax(bad))
        line = _line_of(col.index[pos : pos + 1], line_offset)[0]
        raise DataError(
            f"{path}, line {line}: column {column!r} has {col.iloc[pos]!r}; expected an integer"
        )
    return num.astype(np.int64)


def to_float(col: pd.Series, *, path: Path | str, column: str, line_offset: int = 0) -> pd.Series:
    """``col`` as float64, or a DataError naming the first non-numeric value and its line."""
    if pd.api.types.is_float_dtype(col.dtype) or pd.api.types.is_integer_dtype(col.dtype):
        return col.astype(np.float64)
    num = pd.to_numeric(col, errors="coerce")
    bad = np.asarray(num.isna() & col.notna())
    if bad.any():
        pos = int(np.argmax(bad))
        line = _line_of(col.index[pos : pos + 1], line_offset)[0]
        raise DataError(
            f"{path}, line {line}: column {column!r} has {col.iloc[pos]!r}; expected a number"
        )
    return num.astype(np.float64)


_WS_TO_NL = bytes.maketrans(b" \t\r", b"\n\n\n")


def parse_int_lines(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Tokenise a file of whitespace-separated non-negative integers without Python loops.

    Returns ``(values, line)``: every integer token in file order and its 0-based line index.
    The bytes are checked with NumPy masks (a token is a maximal run of digits; its line is the
    number of newlines before its first digit); the values are parsed by pandas' C reader after
    turning every separator into a newline (one token per row).
    """
    path = Path(path)
    raw = path.read_bytes()
    buf = np.frombuffer(raw, dtype=np.uint8)
    is_digit = (buf >= 48) & (buf <= 57)
    if not is_digit.any():
        raise DataError(f"{path}: file is empty; expected lines of space-separated integer ids")
    is_nl = buf == 10
    ok = is_digit | is_nl | (buf == 32) | (buf == 9) | (buf == 13)
    if not ok.all():
        pos = int(np.argmin(ok))
        line = int(np.count_nonzero(is_nl[:pos])) + 1
        raise DataError(
            f"{path}, line {line}: unexpected character {chr(buf[pos])!r}; "
            "expected space-separated non-negative integer ids"
        )
    step = np.diff(is_digit.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(step == 1)
    too_long = (np.flatnonzero(step == -1) - starts) > 18
    if too_long.any():
        pos = int(starts[np.argmax(too_long)])
        line = int(np.count_nonzero(is_nl[:pos])) + 1
        raise DataError(f"{path}, line {line}: integer with over 18 digits; expected an id")
    values = pd.read_csv(
        io.BytesIO(raw.translate(_WS_TO_NL)),
        header=None,
        dtype=np.int64,
        skip_blank_lines=True,
        engine="c",
    ).iloc[:, 0]
    values = values.to_numpy()
    line = np.cumsum(is_nl, dtype=np.int64)[starts]
    if len(values) != len(line):  # cannot happen after the byte checks; guard anyway
        raise DataError(f"{path}: could not tokenise the file into integer ids")
    return values, line


FOLDS = ("train", "valid", "test")


def fold_column(values: np.ndarray | pd.Series | str, n: int = 0) -> pd.Categorical:
    """A ``fold`` column: categorical over ``("train", "valid", "test")``.

    ``values`` is one fold name for ``n`` rows, or one value per row; values outside the three
    folds raise a DataError.
    """
    if isinstance(values, str):
        if values not in FOLDS:
            raise DataError(f"fold value {values!r} is not one of {list(FOLDS)}")
        codes = np.full(n, FOLDS.index(values), dtype=np.int8)
        return pd.Categorical.from_codes(codes, categories=list(FOLDS))
    cat = pd.Categorical(values, categories=list(FOLDS))
    bad = np.asarray(cat.isna()) & ~np.asarray(pd.isna(values))
    if bad.any() or cat.isna().any():
        first = np.asarray(values, dtype=object)[np.argmax(np.asarray(cat.isna()))]
        raise DataError(f"fold value {first!r} is not one of {list(FOLDS)}")
    return cat


def finish_interactions(df: pd.DataFrame, *, event: str | pd.Series) -> pd.DataFrame:
    """The standard interaction columns with their dtypes (``event``/``fold`` categorical).

    ``event`` is one name for every row or one per row. Low-cardinality labels are stored as
    pandas categoricals, which compare with plain strings (``df.fold == "test"``) and cost a
    byte per row instead of a string object.
    """
    out = pd.DataFrame(
        {c: df[c].to_numpy().astype(t, copy=False) for c, t in INTERACTION_DTYPES.items()}
    )
    if isinstance(event, str):
        codes = np.zeros(len(out), dtype=np.int8)
        out["event"] = pd.Categorical.from_codes(codes, categories=[event])
    else:
        out["event"] = pd.Categorical(np.asarray(event, dtype=object))
    if "fold" in df.columns:
        out["fold"] = fold_column(df["fold"])
    return out


def map_ids(
    values: np.ndarray,
    known: pd.Index | np.ndarray,
    *,
    path: Path | str | np.ndarray,
    what: str,
    lines: np.ndarray,
) -> np.ndarray:
    """Positions of ``values`` in ``known``; a DataError names the first unknown id and line.

    ``path`` is one file name or one per value (when the values come from several files).
    """
    values = np.asarray(values, dtype=object)
    codes, uniq = pd.factorize(values)  # hash the (few) distinct ids, not every row, twice
    table = pd.Index(np.asarray(known, dtype=object), dtype=object)
    pos = table.get_indexer(np.asarray(uniq, dtype=object))[codes]
    if (pos < 0).any():
        k = int(np.argmax(pos < 0))
        where = path[k] if isinstance(path, np.ndarray) else path
        raise DataError(
            f"{where}, line {int(lines[k])}: {what} id {values[k]!r} is not in the {what} "
            f"table ({len(known)} known ids)"
        )
    return pos


def user_text(age: pd.Series, gender: pd.Series, occupation: pd.Series) -> pd.Series:
    """Readable user profile text (vectorised).

    A numeric age gives ``"24-year-old male technician"``; an age range such as ``"25-34"``
    gives ``"male aged 25-34, college/grad student"``. Unknown/"other" occupations are left out.
    """
    g = gender.fillna("").astype(str).str.upper().map({"M": "male", "F": "female"})
    g = g.fillna("person")
    num = pd.to_numeric(age, errors="coerce")
    numeric = (num.notna() & (num.fillna(0) % 1 == 0)).to_numpy(dtype=bool)
    a = age.astype(object).where(age.notna(), "").astype(str)
    a[numeric] = num[numeric].astype(np.int64).astype(str)
    occ = occupation.astype(object).where(occupation.notna(), "").astype(str)
    occ = occ.replace({"none": "", "other": ""})
    with_occ = occ.ne("").to_numpy()
    text_num = a + "-year-old " + g + (" " + occ).where(with_occ, "")
    text_rng = g + (" aged " + a).where(a.ne(""), "") + (", " + occ).where(with_occ, "")
    return text_num.where(numeric, text_rng).str.strip()


def vocab(*arrays: np.ndarray) -> np.ndarray:
    """External ids in a stable order: numeric order if all are integers, else first seen."""
    allv = pd.unique(np.concatenate([np.asarray(a, dtype=object) for a in arrays]))
    s = pd.Series(allv, dtype=object).astype(str)
    if s.str.fullmatch(r"-?\d+").all():
        return s.to_numpy(dtype=object)[np.argsort(s.astype(np.int64).to_numpy(), kind="stable")]
    return s.to_numpy(dtype=object)
