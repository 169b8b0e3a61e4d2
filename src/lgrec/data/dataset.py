"""The :class:`Dataset`: the one object the ``data`` stage hands on.

A data set is three tables that share contiguous integer ids:

* ``interactions``: one row per event, columns ``user`` (int32), ``item`` (int32),
  ``rating`` (float32; 1.0 for implicit data), ``timestamp`` (int64; event order when the
  source has no time) and ``event`` (str: ``"rating"``, ``"click"``, ``"purchase"``, ...).
  Loaders with a fixed split add a ``fold`` column (``"train"``/``"valid"``/``"test"``).
* ``items``: row ``i`` describes item ``i``. Column ``item_id`` is the external id (str);
  optional columns ``title``, ``description`` (str) and ``categories`` (list of str), plus any
  other text or attribute columns.
* ``users``: row ``u`` describes user ``u``. Column ``user_id`` is the external id (str);
  optional ``text`` and attribute columns.

External ids are mapped once here; every later stage uses the integer ids only. A
:class:`Split` holds train/valid/test views that share the item and user tables, so ids mean
the same thing in every part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lgrec.errors import DataError, UnknownIdError

INTERACTION_COLUMNS = ("user", "item", "rating", "timestamp", "event")


@dataclass(frozen=True)
class Dataset:
    """Interactions plus item and user tables with contiguous ids (see module docstring)."""

    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    name: str = ""
    rating_scale: tuple[float, float] | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [c for c in INTERACTION_COLUMNS if c not in self.interactions.columns]
        if missing:
            raise DataError(
                f"Dataset {self.name!r}: interactions lack column(s) {missing}; "
                f"expected {list(INTERACTION_COLUMNS)}"
            )
        if "item_id" not in self.items.columns or "user_id" not in self.users.columns:
            raise DataError(
                f"Dataset {self.name!r}: items need an 'item_id' column, users a 'user_id' column"
            )
        if len(self.interactions):
            u, i = self.interactions["user"].to_numpy(), self.interactions["item"].to_numpy()
            if u.min() < 0 or u.max() >= len(self.users):
                raise DataError(f"Dataset {self.name!r}: user ids outside 0..{len(self.users) - 1}")
            if i.min() < 0 or i.max() >= len(self.items):
                raise DataError(f"Dataset {self.name!r}: item ids outside 0..{len(self.items) - 1}")

    # ---- sizes -------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def __len__(self) -> int:
        return len(self.interactions)

    # ---- arrays ------------------------------------------------------------------------
    @property
    def user_ids(self) -> np.ndarray:
        """Integer user id of every interaction (int64)."""
        return self.interactions["user"].to_numpy(dtype=np.int64)

    @property
    def item_ids(self) -> np.ndarray:
        """Integer item id of every interaction (int64)."""
        return self.interactions["item"].to_numpy(dtype=np.int64)

    @property
    def ratings(self) -> np.ndarray:
        return self.interactions["rating"].to_numpy(dtype=np.float32)

    @property
    def has_ratings(self) -> bool:
        """True when ratings carry information (not all equal, e.g. explicit 1..5 stars)."""
        r = self.interactions["rating"]
        return len(r) > 0 and r.nunique() > 1

    def matrix(self, value: str = "binary", dtype=np.float32) -> sp.csr_matrix:
        """Users × items CSR matrix; ``value`` is ``"binary"``, ``"rating"`` or ``"count"``.

        Duplicate (user, item) pairs are summed for ``"count"`` and collapsed to one for the
        other two (the last rating wins).
        """
        u, i = self.user_ids, self.item_ids
        shape = (self.n_users, self.n_items)
        if value == "count":
            data = np.ones(len(u), dtype=dtype)
            m = sp.csr_matrix((data, (u, i)), shape=shape)
        elif value in ("binary", "rating"):
            key = u * self.n_items + i
            _, last = np.unique(key[::-1], return_index=True)
            keep = len(key) - 1 - last
            data = (
                np.ones(len(keep), dtype=dtype)
                if value == "binary"
                else self.ratings[keep].astype(dtype)
            )
            m = sp.csr_matrix((data, (u[keep], i[keep])), shape=shape)
        else:
            raise ValueError(f"matrix(value={value!r}): expected 'binary', 'rating' or 'count'")
        m.sort_indices()
        return m

    # ---- ids ---------------------------------------------------------------------------
    def user_index(self, external: str | int) -> int:
        """Integer id of an external user id; :class:`UnknownIdError` when absent."""
        return _lookup(self.users["user_id"], external, "user", self.name)

    def item_index(self, external: str | int) -> int:
        """Integer id of an external item id; :class:`UnknownIdError` when absent."""
        return _lookup(self.items["item_id"], external, "item", self.name)

    # ---- text --------------------------------------------------------------------------
    def item_text(
        self, fields: Sequence[str] = ("title", "categories", "description")
    ) -> list[str]:
        """One text per item from the given columns: ``"Title. Categories: a, b. Description"``.

        Columns that are absent are skipped; list columns are joined with commas.
        """
        parts: list[pd.Series] = []
        for f in fields:
            if f not in self.items.columns:
                continue
            col = self.items[f]
            if f == "categories":
                s = col.map(
                    lambda v: (
                        ("Genres: " + ", ".join(v)) if isinstance(v, list | tuple) and v else ""
                    )
                )
            else:
                s = col.fillna("").astype(str).str.strip()
            parts.append(s)
        if not parts:
            return self.items["item_id"].astype(str).tolist()
        out = parts[0]
        for s in parts[1:]:
            out = out.str.cat(s, sep=". ").str.strip(". ")
        return out.str.replace(r"(\. )+", ". ", regex=True).tolist()

    def categories(self) -> tuple[list[str], sp.csr_matrix]:
        """Category vocabulary and the items × categories binary CSR matrix (empty if none)."""
        if "categories" not in self.items.columns:
            return [], sp.csr_matrix((self.n_items, 0), dtype=np.float32)
        cats = self.items["categories"].map(
            lambda v: list(v) if isinstance(v, list | tuple) else []
        )
        vocab = sorted({c for cs in cats for c in cs})
        index = {c: k for k, c in enumerate(vocab)}
        rows = np.repeat(np.arange(self.n_items), cats.map(len).to_numpy())
        cols = np.array([index[c] for cs in cats for c in cs], dtype=np.int64)
        m = sp.csr_matrix(
            (np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(self.n_items, len(vocab))
        )
        return vocab, m

    # ---- views -------------------------------------------------------------------------
    def with_interactions(self, interactions: pd.DataFrame, name: str | None = None) -> Dataset:
        """Same item/user tables, other interactions (used for train/valid/test views)."""
        return replace(
            self, interactions=interactions.reset_index(drop=True), name=name or self.name
        )

    def subset(self, mask: np.ndarray | pd.Series, name: str | None = None) -> Dataset:
        """Interactions where ``mask`` is true, with the same id space."""
        return self.with_interactions(self.interactions[np.asarray(mask)], name=name)

    def summary(self) -> str:
        density = len(self) / max(1, self.n_users * self.n_items)
        return (
            f"{self.name or 'dataset'}: {self.n_users:,} users × {self.n_items:,} items, "
            f"{len(self):,} interactions (density {density:.4%})"
        )


@dataclass(frozen=True)
class Split:
    """Train / validation / test views of one data set (shared id space).

    ``valid`` is carved from the training data and is what early stopping and tuning see;
    ``test`` is only for the final report. ``cold_items`` lists items held out entirely
    (cold-start protocol) and is empty otherwise.
    """

    train: Dataset
    test: Dataset
    valid: Dataset | None = None
    cold_items: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    kind: str = ""

    @property
    def full_train(self) -> Dataset:
        """Training plus validation interactions (to refit once hyper-parameters are chosen)."""
        if self.valid is None:
            return self.train
        df = pd.concat([self.train.interactions, self.valid.interactions], ignore_index=True)
        return self.train.with_interactions(df)


def _lookup(col: pd.Series, external: str | int, what: str, name: str) -> int:
    idx = pd.Index(col.astype(str))
    key = str(external)
    try:
        pos = idx.get_loc(key)
    except KeyError:
        raise UnknownIdError(f"unknown {what} id {external!r} in data set {name!r}") from None
    if not isinstance(pos, int | np.integer):
        raise DataError(f"{what} id {external!r} is not unique in data set {name!r}")
    return int(pos)
