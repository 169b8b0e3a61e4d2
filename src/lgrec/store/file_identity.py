"""Whether the path of a SQLite store still names the file this process opened.

A SQLite connection holds its file open by descriptor, not by name. When the file at a store's
path is replaced under a running server (deleted and re-created, renamed over, restored from a
backup), every connection already open keeps reading and writing the old, now orphaned file,
while new connections open the new one: a commit acknowledged through an old connection is in a
file nobody will open again. :class:`FileIdentity` remembers the ``(st_dev, st_ino)`` of the
file at the path when the store first opened it and compares it with the path's current one
(one ``os.stat``, about a microsecond: docs/serving.md). Once they differ the store is
unavailable until the server is restarted: which of the two files (and of the leftover
``-wal``/``-shm`` files beside the path) holds what can no longer be decided safely.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from lgrec.errors import StoreUnavailableError


class FileIdentity:
    """The identity of the file a store opened at ``path``, and whether it was replaced.

    The first :meth:`check` records the identity of the file at ``path``; later ones raise
    :class:`StoreUnavailableError` (and keep raising it: :attr:`replaced` is set for good)
    when ``path`` names another file or none.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.identity: tuple[int, int] | None = None
        self.replaced: str | None = None
        """The error message once the file was found replaced or removed (None before)."""
        self._lock = threading.Lock()

    def current(self) -> tuple[int, int] | None:
        """``(st_dev, st_ino)`` of the file now at the path (None: there is none)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino

    def check(self) -> None:
        """Record the file's identity (first call) or check that the path still names it."""
        now = self.current()
        if self.identity == now and now is not None:
            return
        with self._lock:
            if self.identity is None and now is not None and self.replaced is None:
                self.identity = now
                return
            if self.replaced is None:
                self.replaced = (
                    f"feedback store {self.path}: the file at {self.path} was replaced or "
                    "removed under the running server (its open connections still write the "
                    "old file); restart the server to use the file now at that path"
                )
        raise StoreUnavailableError(self.replaced)


__all__ = ["FileIdentity"]
