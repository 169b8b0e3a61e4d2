"""Training data read from the graph store (``lgrec train --graph-path DIR``).

The store written by ``lgrec graph export`` holds a data set's training interactions. Here
they replace the files' training part: :func:`store_split` reads them back
(:func:`lgrec.graphcli.store_dataset`), keeps the files' test part, and carves the validation
part from the store's interactions (:func:`lgrec.data.carve_valid`). The store's users and
items must be the data set's, row for row (same ``idx`` → same id), or the model would learn
on the wrong rows: that is checked first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lgrec.errors import DataError

_IDS = {
    "User": "MATCH (n:User) RETURN n.idx AS idx, n.id AS id ORDER BY idx",
    "Item": "MATCH (n:Item) RETURN n.idx AS idx, n.id AS id ORDER BY idx",
}


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
    from lgrec.graphcli import store_dataset
    from lgrec.store import open_graph_store

    like = split.full_train
    store = open_graph_store("ladybug", path=path, read_only=True, buffer_pool_size=256 << 20)
    try:
        check_same_ids(store, like)
        train = store_dataset(store, like, name=like.name)
    finally:
        store.close()
    check_no_test_pairs(train, like, split.test)
    out = Split(train=train, test=split.test, cold_items=split.cold_items, kind=split.kind)
    return carve_valid(out, ratio=valid_ratio, seed=seed) if valid_ratio > 0 else out
