"""Erasure in the feedback store: delete a user's events and record, keep a tombstone.

A mixin of :class:`lgrec.store.feedback.FeedbackStore`: ``delete_user`` is the shared
:class:`~lgrec.store.template.FeedbackStoreBase`'s, which calls
:meth:`ErasureStoreMixin._after_erasure` once the erasure committed; tombstones are explained in
:mod:`lgrec.privacy.tombstones`. The store's connections run with ``secure_delete=ON``, so the
pages of deleted rows are overwritten with zeros, and an erasure truncates the write-ahead log
(whose old frames would still hold them) when no reader is in the middle of a transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class ErasureStoreMixin:
    """The SQLite feedback store's step after an erasure (``delete_user`` itself, ``tombstones``,
    ``is_erased`` and the refusal of erased ids are
    :class:`~lgrec.store.template.FeedbackStoreBase`'s)."""

    path: Path
    _conn: Callable[[], Any]

    def _after_erasure(self) -> None:
        """The WAL still holds the deleted rows' old pages: checkpoint them into the (zeroed)
        database file and truncate the WAL; a reader mid-transaction may delay that (busy)."""
        busy = self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy:
            log.warning(
                "feedback store %s: WAL not truncated after an erasure (readers)", self.path
            )
