"""A prepared data set on disk: the cleaned interactions split into folds, as partitioned Parquet.

``lgrec prepare --out DIR`` writes it with pandas, ``lgrec prepare --engine spark --out DIR``
with Spark (:mod:`lgrec.data.spark`); ``lgrec train/evaluate --prepared DIR`` read it back with
:func:`read_prepared` into the same :class:`~lgrec.data.dataset.Dataset` and
:class:`~lgrec.data.dataset.Split` the in-memory pipeline builds. Layout::

    DIR/meta.json                       name, rating scale, split kind, cleaning report, counts
    DIR/interactions/fold=train/*.parquet   row, user, item, rating, timestamp, event
    DIR/interactions/fold=valid/*.parquet   (when there is a validation part)
    DIR/interactions/fold=test/*.parquet
    DIR/items/*.parquet, DIR/users/*.parquet  one row per id, column ``item``/``user`` = the id
    DIR/cold_items.parquet              items held out by the cold-start split (may be empty)

``row`` is the position of the interaction in the cleaned data set, so sorting by it gives back
the exact row order (and each part's order) of the in-memory split.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from lgrec.data._io import FOLDS, finish_interactions
from lgrec.data.clean import CleanReport, CleanStep
from lgrec.data.dataset import Dataset, Split
from lgrec.errors import DataError, DatasetNotFoundError
from lgrec.utils import atomic_write_text

FORMAT = "lgrec-prepared/1"
COLUMNS = ("row", "user", "item", "rating", "timestamp", "event")


def report_to_dict(report: CleanReport) -> dict:
    return asdict(report)


def report_from_dict(d: dict) -> CleanReport:
    steps = [CleanStep(**s) for s in d.get("steps", [])]
    return CleanReport(
        d["name"], d["n_before"], d["n_after"], tuple(d["users"]), tuple(d["items"]), steps,
        list(d.get("notes", [])),
    )  # fmt: skip


def meta_dict(
    *,
    engine: str,
    name: str,
    rating_scale: tuple[float, float] | None,
    kind: str,
    has_fold: bool,
    source: str,
    n_users: int,
    n_items: int,
    sizes: dict[str, int],
    report: CleanReport,
    pseudonym: dict | None = None,
) -> dict:
    """The ``meta.json`` content (JSON-safe), the same for both engines.

    ``pseudonym`` is the record of :func:`lgrec.privacy.pseudonym.pseudonymize_dataset`, kept
    so that a bundle trained from the folder knows its user ids are pseudonyms.
    """
    return {
        "format": FORMAT,
        "engine": engine,
        "name": name,
        "rating_scale": list(rating_scale) if rating_scale else None,
        "kind": kind,
        "has_fold": has_fold,
        "source": source,
        "n_users": n_users,
        "n_items": n_items,
        "sizes": {p: sizes[p] for p in FOLDS if p in sizes},
        "report": report_to_dict(report),
        **({"pseudonym": pseudonym} if pseudonym else {}),
    }


def check_out_dir(out: str | Path) -> Path:
    """``out`` must be absent, empty, or a prepared folder (which is then replaced).

    Nothing else is overwritten: a folder with other files raises a DataError.
    """
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise DataError(f"--out {out}: exists and is not a folder")
        if any(out.iterdir()) and not (out / "meta.json").is_file():
            raise DataError(
                f"--out {out}: folder is not empty and holds no prepared data set (no meta.json); "
                "choose a new or empty folder"
            )
    return out


def clear_prepared(out: Path) -> None:
    """Remove the parts of an earlier prepared data set in ``out`` (checked by check_out_dir)."""
    for name in ("interactions", "items", "users"):
        if (out / name).is_dir():
            shutil.rmtree(out / name)
    for name in ("cold_items.parquet", "meta.json"):
        (out / name).unlink(missing_ok=True)


def with_row_column(data: Dataset) -> Dataset:
    """``data`` with a ``row`` column (0..n-1) that every split part carries along."""
    return data.with_interactions(data.interactions.assign(row=np.arange(len(data))))


def write_prepared(
    data: Dataset, split: Split, report: CleanReport, out: str | Path, *, engine: str = "pandas"
) -> Path:
    """Write a split data set in the layout of the module docstring (pandas + pyarrow).

    The split must come from :func:`with_row_column` data, so each part knows its rows.
    """
    out = check_out_dir(out)
    clear_prepared(out)
    parts = {p: getattr(split, p) for p in FOLDS if getattr(split, p) is not None}
    has_fold = "fold" in data.interactions.columns
    for name, part in parts.items():
        df = part.interactions
        if "row" not in df.columns:
            raise DataError(
                "write_prepared: the split parts need a 'row' column (the position in the "
                "cleaned data set); split a data set made by with_row_column()"
            )
        frame = pd.DataFrame({"row": df["row"].to_numpy(dtype=np.int64)})
        for c in COLUMNS[1:]:
            frame[c] = df[c].astype(str) if c == "event" else df[c].to_numpy()
        d = out / "interactions" / f"fold={name}"
        d.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(d / "part-00000.parquet", index=False)
    for key, table in (("item", data.items), ("user", data.users)):
        (out / f"{key}s").mkdir(parents=True, exist_ok=True)
        t = table.copy()
        t.insert(0, key, np.arange(len(t), dtype=np.int64))
        t.to_parquet(out / f"{key}s" / "part-00000.parquet", index=False)
    cold = pd.DataFrame({"item": np.asarray(split.cold_items, dtype=np.int64)})
    cold.to_parquet(out / "cold_items.parquet", index=False)
    meta = meta_dict(
        engine=engine, name=data.name, rating_scale=data.rating_scale, kind=split.kind,
        has_fold=has_fold, source=str(data.meta.get("source", "")), n_users=data.n_users,
        n_items=data.n_items, sizes={p: len(d) for p, d in parts.items()}, report=report,
        pseudonym=data.meta.get("pseudonym"),
    )  # fmt: skip
    atomic_write_text(out / "meta.json", json.dumps(meta, indent=1))
    return out


def read_prepared(path: str | Path) -> tuple[Dataset, Split, CleanReport]:
    """Read a prepared folder into (cleaned data set, split, cleaning report)."""
    path = Path(path)
    meta_f = path / "meta.json"
    if not meta_f.is_file():
        raise DatasetNotFoundError(
            f"--prepared {path}: no meta.json; expected a folder written by `lgrec prepare --out`"
        )
    meta = json.loads(meta_f.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT:
        raise DataError(f"{meta_f}: format {meta.get('format')!r}; expected {FORMAT!r}")
    items = _read_table(path / "items", "item")
    users = _read_table(path / "users", "user")
    frames = []
    for name in FOLDS:
        d = path / "interactions" / f"fold={name}"
        if d.is_dir():
            df = pd.read_parquet(d, columns=list(COLUMNS))
            df["fold"] = name
            frames.append(df)
    if not frames:
        raise DataError(f"{path}/interactions: no fold=train/valid/test folders")
    all_rows = pd.concat(frames, ignore_index=True).sort_values("row", kind="stable")
    if not np.array_equal(all_rows["row"].to_numpy(), np.arange(len(all_rows))):
        raise DataError(f"{path}/interactions: row positions are not 0..{len(all_rows) - 1}")
    fold = all_rows["fold"].to_numpy(dtype=object)
    inter = finish_interactions(
        all_rows.assign(fold=fold) if meta["has_fold"] else all_rows.drop(columns="fold"),
        event=all_rows["event"].to_numpy(dtype=object),
    )
    scale = tuple(meta["rating_scale"]) if meta.get("rating_scale") else None
    data = Dataset(
        inter.reset_index(drop=True),
        items,
        users,
        name=meta["name"],
        rating_scale=scale,
        meta={
            "source": meta.get("source", ""),
            "prepared": str(path),
            **({"pseudonym": meta["pseudonym"]} if meta.get("pseudonym") else {}),
        },
    )
    parts = {n: data.subset(fold == n) for n in FOLDS if (fold == n).any() or n == "test"}
    cold = pd.read_parquet(path / "cold_items.parquet")["item"].to_numpy(dtype=np.int64)
    split = Split(
        train=parts["train"],
        test=parts["test"],
        valid=parts.get("valid"),
        cold_items=cold,
        kind=meta["kind"],
    )
    return data, split, report_from_dict(meta["report"])


def _read_table(d: Path, key: str) -> pd.DataFrame:
    if not d.is_dir():
        raise DataError(f"{d}: missing; a prepared folder has items/ and users/")
    t = pd.read_parquet(d).sort_values(key, kind="stable").reset_index(drop=True)
    if not np.array_equal(t[key].to_numpy(), np.arange(len(t))):
        raise DataError(f"{d}: ids in column {key!r} are not 0..{len(t) - 1}")
    t = t.drop(columns=key)
    if "categories" in t.columns:
        t["categories"] = [list(v) if v is not None else [] for v in t["categories"]]
    return t
