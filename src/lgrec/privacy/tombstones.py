"""Tombstones: the list of erased users that every later step honours.

Erasing a user (``DELETE /users/{id}``, ``lgrec forget``) deletes their events and record
from the feedback store and adds a tombstone there, in the same transaction. A tombstone holds

    t(x) = hex(SHA-256("lgrec-tombstone:" ‖ utf8(x)))

of the stored user id ``x`` (itself a pseudonym with ``--pseudonymize``), not ``x``, so the list
does not spell out who asked to be forgotten. (For small, guessable raw ids a hash can be
reversed by trying every id; with pseudonymised ids it cannot without the key.) What honours
the list:

* the feedback store refuses new events and users with a tombstoned id
  (:class:`ErasedUserError`);
* every server process folds the user out at its next request, and again after a restart
  (:mod:`lgrec.privacy.serving`);
* data loading drops the user's original training interactions (:func:`drop_erased`):
  ``lgrec retrain`` always, ``prepare``/``train``/``evaluate``/``graph export`` with
  ``--tombstones STORE``;
* the graph store loses the user's node and edges (:mod:`lgrec.privacy.erasure`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from typing import Any

import numpy as np

from lgrec.errors import UnknownIdError

_DOMAIN = b"lgrec-tombstone:"


class ErasedUserError(UnknownIdError):
    """The user id was erased (right to be forgotten) and cannot be used again (HTTP 404)."""


def tombstone_hash(user_id: str) -> str:
    """``t(x)`` of the module docstring (64 hex characters)."""
    return hashlib.sha256(_DOMAIN + str(user_id).encode("utf-8", "surrogatepass")).hexdigest()


def erased_mask(user_ids: Any, tombstones: Collection[str]) -> np.ndarray:
    """Boolean mask over ``user_ids``: which of them have a tombstone."""
    if not tombstones:
        return np.zeros(len(user_ids), dtype=bool)
    return np.fromiter(
        (tombstone_hash(u) in tombstones for u in map(str, user_ids)), bool, len(user_ids)
    )


def drop_erased(ds: Any, tombstones: Collection[str]) -> Any:
    """``ds`` without the tombstoned users: their rows of ``users`` and all their interactions
    go, the remaining users are renumbered ``0..n-1`` (items keep their ids)."""
    from lgrec.data.clean import _reindex

    gone = erased_mask(ds.users["user_id"], tombstones)
    if not gone.any():
        return ds
    rows = ~gone[ds.interactions["user"].to_numpy(np.int64)]
    keep_items = np.ones(ds.n_items, dtype=bool)
    return _reindex(ds, ds.interactions[rows], ds.items, ds.users, keep_items, ~gone)


def read_tombstones(path: str) -> frozenset[str]:
    """The tombstones of the feedback store at ``path`` (a SQLite file, opened with its key if
    encrypted, or a ``postgresql://`` URL)."""
    from pathlib import Path

    from lgrec.errors import ConfigError
    from lgrec.store.base import is_postgres_url, open_feedback_store

    if not is_postgres_url(path) and not Path(path).is_file():
        raise ConfigError(f"tombstones: no feedback store at {path}")
    with open_feedback_store(path) as store:
        return store.tombstones()
