"""Cleaning: text normalisation, invalid rows, duplicates, rating range, empty text, k-core.

:func:`clean` returns the cleaned :class:`Dataset` and a :class:`CleanReport` that accounts for
every interaction it removed (``n_before − n_after = Σ step.removed``). When items or users
are dropped (empty text, k-core) the ids are re-indexed to stay contiguous; the external ids
in ``items.item_id``/``users.user_id`` are kept, and ``meta["social_edges"]`` is re-mapped.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from lgrec.data.dataset import Dataset
from lgrec.errors import ConfigError

log = logging.getLogger(__name__)

TEXT_FIELDS = ("title", "description")


@dataclass
class CleanStep:
    """One cleaning step: interactions removed, items/users removed, and why."""

    name: str
    removed: int
    reason: str
    items_removed: int = 0
    users_removed: int = 0


@dataclass
class CleanReport:
    """What :func:`clean` did, step by step; ``str(report)`` is a printable table."""

    name: str
    n_before: int
    n_after: int = 0
    users: tuple[int, int] = (0, 0)  # (before, after)
    items: tuple[int, int] = (0, 0)
    steps: list[CleanStep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. how many items have text

    @property
    def removed(self) -> int:
        """Interactions removed over all steps (equals ``n_before - n_after``)."""
        return sum(s.removed for s in self.steps)

    def add(self, name: str, removed: int, reason: str, items: int = 0, users: int = 0) -> None:
        self.steps.append(CleanStep(name, int(removed), reason, int(items), int(users)))
        if removed or items or users:
            log.info("clean %s: %s removed %d interactions (%s)", self.name, name, removed, reason)

    def __str__(self) -> str:
        w = max([len(s.name) for s in self.steps] + [4])
        lines = [
            f"Cleaning {self.name or 'dataset'}: {self.n_before:,} → {self.n_after:,} interactions "
            f"({self.n_before - self.n_after:,} removed)",
            f"  {'step':<{w}}  {'removed':>9}  {'items':>6}  {'users':>6}  reason",
        ]
        for s in self.steps:
            lines.append(
                f"  {s.name:<{w}}  {s.removed:>9,}  {s.items_removed:>6,}  {s.users_removed:>6,}"
                f"  {s.reason}"
            )
        lines.append(
            f"  users {self.users[0]:,} → {self.users[1]:,}; items {self.items[0]:,} → "
            f"{self.items[1]:,}"
        )
        lines.extend(f"  {n}" for n in self.notes)
        return "\n".join(lines)


def normalize_series(s: pd.Series) -> pd.Series:
    """NFKC, HTML tags stripped and entities unescaped, whitespace collapsed (vectorised).

    Non-string values (NaN, numbers) are left as they are.
    """
    is_str = s.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    if not is_str.any():
        return s
    t = s[is_str].astype(str).str.normalize("NFKC")
    t = t.str.replace(r"<[^>]*>", " ", regex=True)
    has_entity = t.str.contains("&", regex=False).to_numpy(dtype=bool)
    if has_entity.any():
        t[has_entity] = t[has_entity].map(html.unescape)
    t = t.str.replace(r"\s+", " ", regex=True).str.strip()
    out = s.astype(object).copy()
    out[is_str] = t.to_numpy(dtype=object)
    return out


def _normalize_table(df: pd.DataFrame, key: str) -> pd.DataFrame:
    df = df.copy()
    for c in df.columns:
        if c == key:
            continue
        if c == "categories":  # normalise all labels at once, then cut back into lists
            cats = [list(v) if isinstance(v, list | tuple | np.ndarray) else [] for v in df[c]]
            flat = normalize_series(pd.Series([x for cs in cats for x in cs], dtype=object))
            parts = np.split(flat.to_numpy(dtype=object), np.cumsum([len(cs) for cs in cats])[:-1])
            df[c] = [[x for x in p if isinstance(x, str) and x] for p in parts]
        elif df[c].dtype == object or pd.api.types.is_string_dtype(df[c].dtype):
            df[c] = normalize_series(df[c])
    return df


def _empty_text_items(items: pd.DataFrame) -> np.ndarray | None:
    cols = [c for c in TEXT_FIELDS if c in items.columns]
    if not cols:
        return None
    empty = np.ones(len(items), dtype=bool)
    for c in cols:
        empty &= items[c].fillna("").astype(str).str.strip().eq("").to_numpy(dtype=bool)
    return empty


def k_core_mask(
    u: np.ndarray, i: np.ndarray, n_users: int, n_items: int, k_user: int, k_item: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of the iterative k-core: repeat until stable

        keep ← keep ∧ deg_U(u) ≥ k_user ∧ deg_I(i) ≥ k_item,

    with degrees counted over kept rows (``np.bincount``). Returns (row mask, user mask,
    item mask); users/items with fewer than k kept interactions (including none) are dropped.
    """
    keep = np.ones(len(u), dtype=bool)
    while True:
        du = np.bincount(u[keep], minlength=n_users)
        di = np.bincount(i[keep], minlength=n_items)
        new = keep & (du[u] >= k_user) & (di[i] >= k_item)
        if new.sum() == keep.sum():
            break
        keep = new
    du = np.bincount(u[keep], minlength=n_users)
    di = np.bincount(i[keep], minlength=n_items)
    return keep, (du >= max(k_user, 1)), (di >= max(k_item, 1))


def clean(
    ds: Dataset,
    *,
    rating_range: tuple[float, float] | None = None,
    k_core: int | tuple[int, int] | None = None,
    dedupe: str | None = "latest",
    drop_empty_text: bool = False,
    normalize_text: bool = True,
) -> tuple[Dataset, CleanReport]:
    """Clean a data set; returns (cleaned data set, report).

    Steps, in order: text normalisation of item/user tables; rows with missing or
    out-of-range ids; missing/non-finite ratings; ratings outside ``rating_range`` (default:
    ``ds.rating_scale``; ``None`` for both keeps all); items without title/description text
    and their rows (``drop_empty_text``); duplicate (user, item) pairs (``dedupe="latest"``
    keeps the latest by timestamp, ``"first"`` the earliest, ``None`` keeps all); the
    iterative k-core (``k_core=k`` or ``(k_user, k_item)``).
    """
    if dedupe not in ("latest", "first", None):
        raise ConfigError(f"clean(dedupe={dedupe!r}): expected 'latest', 'first' or None")
    k_user, k_item = (k_core, k_core) if isinstance(k_core, int) else (k_core or (0, 0))
    if min(k_user, k_item) < 0:
        raise ConfigError(f"clean(k_core={k_core!r}): expected non-negative counts")
    df = ds.interactions
    rep = CleanReport(ds.name, len(df), users=(ds.n_users, 0), items=(ds.n_items, 0))
    items, users = ds.items, ds.users
    if normalize_text:
        items, users = _normalize_table(items, "item_id"), _normalize_table(users, "user_id")
        rep.add("normalize_text", 0, "NFKC, HTML tags/entities, whitespace (tables only)")

    def drop(mask: np.ndarray, name: str, reason: str, **kw) -> None:
        nonlocal df
        rep.add(name, int(mask.sum()), reason, **kw)
        if mask.any():
            df = df[~mask]

    u = pd.to_numeric(df["user"], errors="coerce").to_numpy(dtype=np.float64)
    i = pd.to_numeric(df["item"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(u) & np.isfinite(i))
    bad |= ~bad & ((u < 0) | (u >= ds.n_users) | (i < 0) | (i >= ds.n_items))
    drop(bad, "invalid_ids", f"missing ids or outside 0..{ds.n_users - 1} / 0..{ds.n_items - 1}")
    r = df["rating"].to_numpy(dtype=np.float64)
    drop(~np.isfinite(r), "invalid_rating", "missing or non-finite rating")
    lo_hi = rating_range if rating_range is not None else ds.rating_scale
    if lo_hi is not None:
        r = df["rating"].to_numpy(dtype=np.float64)
        drop((r < lo_hi[0]) | (r > lo_hi[1]), "rating_range", f"rating outside {list(lo_hi)}")
    keep_items = np.ones(ds.n_items, dtype=bool)
    keep_users = np.ones(ds.n_users, dtype=bool)
    if drop_empty_text:
        empty = _empty_text_items(items)
        if empty is None:
            rep.add("empty_text", 0, "skipped: items have no title/description column")
        else:
            keep_items &= ~empty
            it = df["item"].to_numpy(dtype=np.int64)
            drop(empty[it], "empty_text", "items without title/description", items=empty.sum())
    if dedupe is not None:
        order = np.argsort(df["timestamp"].to_numpy(), kind="stable")
        key = df[["user", "item"]].iloc[order]
        dup_sorted = key.duplicated(keep="last" if dedupe == "latest" else "first").to_numpy()
        dup = np.zeros(len(df), dtype=bool)
        dup[order] = dup_sorted
        which = "latest" if dedupe == "latest" else "earliest"
        drop(dup, "duplicates", f"repeated (user, item); kept the {which} by timestamp")
    if k_user or k_item:
        uu, ii = df["user"].to_numpy(np.int64), df["item"].to_numpy(np.int64)
        rows, ku, ki = k_core_mask(uu, ii, ds.n_users, ds.n_items, k_user, k_item)
        ku &= keep_users
        ki &= keep_items
        drop(
            ~rows,
            "k_core",
            f"users with < {k_user} or items with < {k_item} interactions (iterated)",
            items=int(keep_items.sum() - ki.sum()),
            users=int(keep_users.sum() - ku.sum()),
        )
        keep_items, keep_users = ki, ku
    out = _reindex(ds, df, items, users, keep_items, keep_users)
    rep.n_after, rep.users, rep.items = (
        len(out),
        (ds.n_users, out.n_users),
        (ds.n_items, out.n_items),
    )
    assert rep.n_before - rep.n_after == rep.removed, "clean report does not add up"
    rep.notes.extend(text_notes(out))
    return out, rep


def text_notes(ds: Dataset) -> list[str]:
    """Report lines on item text: how many items have a title or description, and where a
    loader's text came from (``meta["text_source"]``, e.g. which key a CoLaKG file used)."""
    empty = _empty_text_items(ds.items)
    if empty is None:
        return ["items with text: none (no title/description column)"]
    cols = "/".join(c for c in TEXT_FIELDS if c in ds.items.columns)
    notes = [f"items with text ({cols}): {int((~empty).sum()):,} of {ds.n_items:,}"]
    src = ds.meta.get("text_source")
    if isinstance(src, dict):
        notes.append(
            f"text from {Path(src['file']).name}, keyed by {src['how']}: "
            f"{src['items_with_text']:,} of {src['n_items']:,} items got text"
        )
    return notes


def _reindex(
    ds: Dataset,
    df: pd.DataFrame,
    items: pd.DataFrame,
    users: pd.DataFrame,
    keep_items: np.ndarray,
    keep_users: np.ndarray,
) -> Dataset:
    """Drop table rows, map ids to 0..n-1 over the kept rows, re-map social edges."""
    new_item = np.cumsum(keep_items) - 1
    new_user = np.cumsum(keep_users) - 1
    df = df.copy()
    df["user"] = new_user[df["user"].to_numpy(np.int64)].astype(np.int32)
    df["item"] = new_item[df["item"].to_numpy(np.int64)].astype(np.int32)
    meta = dict(ds.meta)
    edges = meta.get("social_edges")
    if isinstance(edges, np.ndarray) and edges.ndim == 2 and len(edges):
        ok = keep_users[edges[:, 0]] & keep_users[edges[:, 1]]
        meta["social_edges"] = new_user[edges[ok]]
    return replace(
        ds,
        interactions=df.reset_index(drop=True),
        items=items[keep_items].reset_index(drop=True),
        users=users[keep_users].reset_index(drop=True),
        meta=meta,
    )
