"""The feedback store: one implementation of its logic, two databases beneath it, and
:func:`open_feedback_store` choosing one.

Both backends are subclasses of :class:`~lgrec.store.template.FeedbackStoreBase`, which
implements the whole interface once over a few primitives each backend supplies (a write
transaction, reads, the event insert, its SQL dialect):

* :class:`lgrec.store.feedback.FeedbackStore` — one SQLite file (the default, zero set-up;
  SQLCipher-encrypted with a key), shared by the processes of one machine;
* :class:`lgrec.store.postgres.PostgresFeedbackStore` — a PostgreSQL database, shared by
  servers on several machines (``postgresql://…``).

The guarantees the server relies on (:mod:`lgrec.serve.sync`):

1. **Durable acknowledgement** — when ``add_event``/``add_events`` return, the event is on
   disk (fsync'ed) and survives ``kill -9`` of the writer.
2. **Idempotency** — an event with an ``idempotency_key`` that is already stored stores
   nothing; a true replay returns the first event's id with ``created=False``, a key reused
   for another event raises :class:`~lgrec.errors.ConflictError`
   (:func:`lgrec.store.records.check_replay`).
3. **Fold-in watermark** — event ids grow in commit order: once a reader has seen an event
   with id ``n``, no event with an id ``≤ n`` can appear later. A server applying events with
   ``id > last applied`` in id order therefore misses none; ``watermarks()`` gives the
   current maxima in one cheap read, so every request can look for news.
4. **One creator per id** — ``add_user``/``add_item`` with ``exist_ok=False`` let the
   database's primary key decide (``ON CONFLICT DO NOTHING`` inserted nothing): of concurrent
   creators of one id (threads, processes, servers) exactly one succeeds, the others get
   :class:`~lgrec.errors.AlreadyExistsError`.
5. **Errors** — invalid input is :class:`~lgrec.errors.DataError` and stores nothing; a
   closed store or a failing database is :class:`~lgrec.errors.StoreUnavailableError` (every
   public method maps the backend's driver errors, :func:`~lgrec.store.template.guarded`;
   an integrity error, a bug rather than an outage, passes through).
6. **Erasure** — ``delete_user`` removes a user's events and record and leaves a tombstone in
   the same transaction; both backends then refuse that id (:mod:`lgrec.privacy.tombstones`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lgrec.store.template import FeedbackStoreBase

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
"""URL prefixes that select the PostgreSQL backend in :func:`open_feedback_store`."""

FeedbackStoreProtocol = FeedbackStoreBase
"""The name the server's type hints use for any feedback store."""


def is_postgres_url(spec: str | Path) -> bool:
    """Whether ``spec`` names a PostgreSQL database rather than a SQLite file."""
    return isinstance(spec, str) and spec.lower().startswith(POSTGRES_SCHEMES)


def open_feedback_store(spec: str | Path, **kwargs: Any) -> FeedbackStoreBase:
    """The store named by ``spec``: a ``postgresql://`` URL (password from ``PGPASSWORD`` or a
    password file, never in the URL) or the path of a SQLite file. ``kwargs`` go to the
    backend's constructor."""
    if is_postgres_url(spec):
        from lgrec.store.postgres import PostgresFeedbackStore

        return PostgresFeedbackStore(str(spec), **kwargs)
    from lgrec.store.feedback import FeedbackStore

    return FeedbackStore(spec, **kwargs)
