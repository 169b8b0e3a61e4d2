"""Erasure in the feedback store: delete a user's events and record, keep a tombstone.

A mixin of :class:`lgrec.store.feedback.FeedbackStore` (it uses the store's ``_write``
transaction and ``_conn`` connection); tombstones are explained in
:mod:`lgrec.privacy.tombstones`. The store's connections run with ``secure_delete=ON``, so the
pages of deleted rows are overwritten with zeros, and an erasure truncates the write-ahead log
(whose old frames would still hold them) when no reader is in the middle of a transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from lgrec.privacy.tombstones import tombstone_hash

log = logging.getLogger(__name__)


class ErasureStoreMixin:
    """``delete_user`` of the SQLite feedback store (``tombstones``, ``is_erased`` and the
    refusal of erased ids are :class:`~lgrec.store.template.FeedbackStoreBase`'s)."""

    path: Path
    _write: Callable[[], AbstractContextManager[Any]]
    _conn: Callable[[], Any]

    def delete_user(self, user_id: str) -> dict[str, int]:
        """Erase a user: delete their events and record and add their tombstone, in one
        transaction; return ``{"events": n deleted, "user": 0/1, "tombstone": 1 new / 0 old}``.

        Idempotent: erasing again deletes nothing and keeps the one tombstone. Afterwards the
        store refuses events and records for this id (:class:`ErasedUserError`).
        """
        uid = str(user_id)
        if not uid.strip():
            from lgrec.errors import DataError

            raise DataError(f"delete_user: user_id must be a non-empty string, got {user_id!r}")
        with self._write() as conn:
            n_ev = conn.execute("DELETE FROM events WHERE user_id = ?", (uid,)).rowcount
            n_user = conn.execute("DELETE FROM users WHERE user_id = ?", (uid,)).rowcount
            new = conn.execute(
                "INSERT INTO tombstones (user_hash, erased_at) VALUES (?, ?) "
                "ON CONFLICT(user_hash) DO NOTHING",
                (tombstone_hash(uid), time.time()),
            ).rowcount
        # the WAL still holds the deleted rows' old pages: checkpoint them into the (zeroed)
        # database file and truncate the WAL; a reader mid-transaction may delay that (busy)
        busy = self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy:
            log.warning(
                "feedback store %s: WAL not truncated after an erasure (readers)", self.path
            )
        log.info("feedback store %s: erased a user (%d events)", self.path, n_ev)
        return {"events": int(n_ev), "user": int(n_user), "tombstone": int(new)}
