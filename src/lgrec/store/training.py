"""Training data read from the graph store (``lgrec train --graph-path DIR``).

The store written by ``lgrec graph export`` holds a data set's training interactions. Here
they replace the files' training part: :func:`store_split` reads them back with their rating,
time and event type (:func:`store_interactions`; a model with a rating head learns the same
ratings as from the files), keeps the files' test part, and carves the validation part from
the store's interactions (:func:`lgrec.data.carve_valid`). The store's users and items must be
the data set's, row for row (same ``idx`` → same id), or the model would learn on the wrong
rows: that is checked first. An edge without a rating or time is refused, not guessed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lgrec.errors import DataError

_IDS = {
    "User": "MATCH (n:User) RETURN n.idx AS idx, n.id AS id ORDER BY idx",
    "Item": "MATCH (n:Item) RETURN n.idx AS idx, n.id AS id ORDER BY idx",
}


INTERACTIONS = (
    "MATCH (u:User)-[r:INTERACTED_WITH]->(i:Item) "
    "RETURN u.idx AS u, i.idx AS i, r.rating AS rating, r.ts AS ts, r.event AS event"
)


def store_interactions(store: Any, like: Any) -> Any:
    """A :class:`Dataset` with ``like``'s user/item tables and the store's interactions,
    each edge with its ``rating``, ``ts`` (→ ``timestamp``) and ``event``, ordered by user,
    then item. Raises :class:`DataError` for an idx outside ``like`` or an edge that lacks a
    rating or a time (the store was not written by ``lgrec graph export``)."""
    rows = store.query(INTERACTIONS)
    df = pd.DataFrame(rows, columns=["u", "i", "rating", "ts", "event"])
    if len(df) and (df["u"].max() >= like.n_users or df["i"].max() >= like.n_items):
        raise DataError(
            f"graph store: it holds user/item idx up to {df['u'].max()}/{df['i'].max()}, but "
            f"{like.name!r} has {like.n_users} users and {like.n_items} items"
        )
    missing = df[["rating", "ts"]].isna().any(axis=1) | ~np.isfinite(
        df[["rating", "ts"]].astype(float)
    ).all(axis=1)
    if bool(missing.any()):
        raise DataError(
            f"graph store: {int(missing.sum()):,} INTERACTED_WITH edges lack a finite rating or "
            "ts; re-export the data set with `lgrec graph export`"
        )
    df = df.sort_values(["u", "i"], kind="stable")
    inter = pd.DataFrame(
        {
            "user": df["u"].to_numpy(np.int32),
            "item": df["i"].to_numpy(np.int32),
            "rating": df["rating"].to_numpy(np.float32),
            "timestamp": df["ts"].to_numpy(np.float64).astype(np.int64),
            "event": df["event"].fillna("interaction").astype(str).to_numpy(),
        }
    )
    return like.with_interactions(inter, name=like.name)


def check_same_ids(store: Any, like: Any) -> None:
    """Raise :class:`DataError` unless the store's users/items are ``like``'s, in order."""
    expected = {
        "User": like.users["user_id"].astype(str).tolist(),
        "Item": like.items["item_id"].astype(str).tolist(),
    }
    for label, cypher in _IDS.items():
        rows = store.query(cypher)
        got = [r["id"] for r in rows]
        idx = [int(r["idx"]) for r in rows]
        want = expected[label]
        if idx != list(range(len(got))) or got != want:
            first = next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), None)
            where = f"first difference at idx {first}" if first is not None else "sizes differ"
            raise DataError(
                f"graph store: its {len(got)} {label} nodes are not the {len(want)} of data set "
                f"{like.name!r} ({where}); export this data set with `lgrec graph export`"
            )


def check_no_test_pairs(stored: Any, train: Any, test: Any) -> None:
    """Raise :class:`DataError` when the store holds (user, item) pairs that only the test
    split has (a store exported with ``--all-folds``): training on them would leak the test."""
    leaked = (stored.matrix("binary") > 0).astype(int) - (train.matrix("binary") > 0)
    leaked = leaked.multiply(test.matrix("binary") > 0)
    n = int((leaked > 0).sum())
    if n:
        raise DataError(
            f"graph store: it holds {n:,} (user, item) pairs of the test split that the "
            "training files do not; it was exported with --all-folds. Export the training "
            "part only (`lgrec graph export` without --all-folds) to train from it"
        )


def store_split(split: Any, path: str | Path, *, valid_ratio: float, seed: int) -> Any:
    """``split`` with its training (+ validation) part replaced by the store's interactions.

    ``split.test`` is kept; with ``valid_ratio > 0`` a validation part is carved from the
    store's interactions (``carve_valid(ratio=valid_ratio, seed=seed)``).
    """
    from lgrec.data import carve_valid
    from lgrec.data.dataset import Split
    from lgrec.store import open_graph_store

    like = split.full_train
    store = open_graph_store("ladybug", path=path, read_only=True, buffer_pool_size=256 << 20)
    try:
        check_same_ids(store, like)
        train = store_interactions(store, like)
    finally:
        store.close()
    check_no_test_pairs(train, like, split.test)
    out = Split(train=train, test=split.test, cold_items=split.cold_items, kind=split.kind)
    return carve_valid(out, ratio=valid_ratio, seed=seed) if valid_ratio > 0 else out
