"""The feedback store interface, and :func:`open_feedback_store` choosing its backend.

Two backends implement :class:`FeedbackStoreProtocol` with the same guarantees:

* :class:`lgrec.store.feedback.FeedbackStore` — one SQLite file (the default, zero set-up),
  shared by the processes of one machine;
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
   ``id > last applied`` in id order therefore misses none; :meth:`watermarks` gives the
   current maxima in one cheap read, so every request can look for news.
4. **One creator per id** — ``add_user``/``add_item`` with ``exist_ok=False`` let the
   database's primary key decide: of concurrent creators of one id (threads, processes,
   servers) exactly one succeeds, the others get :class:`~lgrec.errors.AlreadyExistsError`.
5. **Errors** — invalid input is :class:`~lgrec.errors.DataError` and stores nothing; a
   closed store or a failing database is :class:`~lgrec.errors.StoreUnavailableError`.
6. **Erasure** — ``delete_user`` removes a user's events and record and leaves a tombstone in
   the same transaction; both backends then refuse that id (:mod:`lgrec.privacy.tombstones`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pandas as pd

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
"""URL prefixes that select the PostgreSQL backend in :func:`open_feedback_store`."""


@runtime_checkable
class FeedbackStoreProtocol(Protocol):
    """What the server, ``lgrec retrain`` and the tests use of a feedback store.

    Events: ``add_event`` / ``add_events`` (validated, durable, idempotent), ``events`` (a
    DataFrame), ``event_rows`` (plain tuples, the fast path), ``get_event``, ``count``. Users
    and items: ``add_user`` / ``add_item`` (insert or update, or with ``exist_ok=False`` create
    only; True when new), ``get_*``, ``list_*``.
    ``watermarks`` is ``(max event id, max users seq, max items seq, max tombstones seq)``;
    the middle two grow whenever a user/item is added, so a reader learns that it must re-read
    the catalogue, and the last whenever a user is erased (``delete_user``, ``tombstones``,
    ``is_erased``: :mod:`lgrec.privacy.tombstones`).
    """

    location: str
    """Where the data lives, for messages (a file path, or a URL without password)."""

    def add_event(
        self,
        user_id: str,
        item_id: str,
        event: str,
        value: float | None = None,
        ts: float | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[int, bool]: ...

    def add_events(self, events: Iterable[Mapping[str, Any]]) -> list[tuple[int, bool]]: ...

    def events(
        self, since_id: int = 0, user_id: str | None = None, limit: int | None = None
    ) -> pd.DataFrame: ...

    def event_rows(
        self,
        since_id: int = 0,
        user_id: str | None = None,
        limit: int | None = None,
        columns: Sequence[str] = ("id", "user_id", "item_id", "event", "value"),
    ) -> list[tuple]: ...

    def get_event(self, event_id: int) -> dict[str, Any] | None: ...

    def count(self, user_id: str | None = None) -> int: ...

    def watermarks(self) -> tuple[int, int, int, int]: ...

    def delete_user(self, user_id: str) -> dict[str, int]: ...

    def tombstones(self) -> frozenset[str]: ...

    def is_erased(self, user_id: str) -> bool: ...

    def add_user(
        self,
        user_id: str,
        text: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        *,
        exist_ok: bool = True,
    ) -> bool: ...

    def add_item(
        self,
        item_id: str,
        title: str | None = None,
        description: str | None = None,
        categories: Sequence[str] | None = None,
        *,
        exist_ok: bool = True,
    ) -> bool: ...

    def get_user(self, user_id: str) -> dict[str, Any] | None: ...

    def get_item(self, item_id: str) -> dict[str, Any] | None: ...

    def list_users(self, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]: ...

    def list_items(self, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...

    def __enter__(self) -> FeedbackStoreProtocol: ...

    def __exit__(self, *exc: object) -> None: ...


def is_postgres_url(spec: str | Path) -> bool:
    """Whether ``spec`` names a PostgreSQL database rather than a SQLite file."""
    return isinstance(spec, str) and spec.lower().startswith(POSTGRES_SCHEMES)


def open_feedback_store(spec: str | Path, **kwargs: Any) -> FeedbackStoreProtocol:
    """The store named by ``spec``: a ``postgresql://`` URL (password from ``PGPASSWORD`` or a
    password file, never in the URL) or the path of a SQLite file. ``kwargs`` go to the
    backend's constructor."""
    if is_postgres_url(spec):
        from lgrec.store.postgres import PostgresFeedbackStore

        return PostgresFeedbackStore(str(spec), **kwargs)
    from lgrec.store.feedback import FeedbackStore

    return FeedbackStore(spec, **kwargs)
