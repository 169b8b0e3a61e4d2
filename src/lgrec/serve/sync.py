"""Online sync with the feedback store: durable writes first, then fold-in in event-id order.

The feedback store (:class:`~lgrec.store.base.FeedbackStoreProtocol`: a SQLite file, or a
PostgreSQL database shared by servers on several machines) is the source of truth. A write
is stored durably by the process's writer thread (:mod:`lgrec.serve.groupcommit`), which then
calls :meth:`SyncMixin.sync`: it applies every stored event with an id above the last applied
one, in id order, after loading users/items it has not seen (:mod:`lgrec.serve.catalog`).
One event of type ``ε`` by user ``u`` on item ``i`` moves the user's vector (math in
:mod:`lgrec.serve.online`)::

    u ← fold_in(u, e_i, η · w_ε)

and marks ``i`` seen. Several server processes sharing one store therefore converge to the same
state, and a restarted server replays the store and loses nothing acknowledged. A request
looks for news with one indexed read of the store's watermarks (max event id, max user/item/
tombstone rowid): microseconds on SQLite, no DataFrame; a failing store is
:class:`~lgrec.errors.StoreUnavailableError` (HTTP 503). With ``sync_interval`` > 0 (the
default for PostgreSQL, where each look is a network round trip) a request looks only when
the last look is older than that: an event written through another server is served here
within one interval; this server's own writes are applied before their response, as always.

A mixin of :class:`lgrec.serve.state.ServeState`: it works on the attributes declared below.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import torch

from lgrec.serve import online
from lgrec.serve.groupcommit import FeedbackWriter, Stored
from lgrec.serve.scorecache import ScoreCache
from lgrec.store.base import FeedbackStoreProtocol

log = logging.getLogger(__name__)
Tensor = torch.Tensor


class SyncMixin:
    """Feedback writes and the sync loop of :class:`~lgrec.serve.state.ServeState`."""

    store: FeedbackStoreProtocol
    _writes: FeedbackWriter
    lock: threading.RLock
    _sync_lock: threading.Lock
    _catalog_mark: tuple[int, int]
    sync_interval: float
    _last_look: float
    _tomb_mark: int
    last_event: int
    n_base_users: int
    online_lr: float
    rating_scale: tuple[float, float]
    U: Tensor
    V: Tensor
    _uidx: dict[str, int]
    _iidx: dict[str, int]
    online_seen: dict[int, dict[int, None]]
    online_events: dict[int, int]
    score_cache: ScoreCache | None

    # provided by the catalogue part of ServeState
    user_index: Callable[[str], int]
    item_index: Callable[[str], int]
    _load_catalog: Callable[[], None]
    _apply_tombstones: Callable[[], int]
    _fold_user: Callable[[int, int, float], None]  # lgrec.serve.foldcache

    # ---- writes: store durably, then sync ----------------------------------------------------
    def add_feedback(
        self,
        user_id: str,
        item_id: str,
        event: str,
        value: float | None = None,
        ts: float | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[int, bool]:
        """Store one event (durable when this returns), fold it in; ``(event id, created)``."""
        got = self._writes.write(dict(user_id=user_id, item_id=item_id, event=event, value=value,
                                      ts=ts, idempotency_key=idempotency_key))  # fmt: skip
        return got.id, got.created

    def submit_feedback(self, event: dict) -> Future[Stored]:
        """Hand ``event`` (the keyword arguments of the store's ``add_event``) to this
        process's writer thread (:mod:`lgrec.serve.groupcommit`): the future resolves once it
        is durable and applied, or raises its error (unknown user/item, conflict, store
        down)."""
        return self._writes.submit(event)

    def _check_feedback(self, event: dict) -> None:
        """The writer's check before storing: the user and the item exist (404 otherwise)."""
        self.user_index(event["user_id"])
        self.item_index(event["item_id"])

    # ---- sync with the store -------------------------------------------------------------------
    def sync(self, force_catalog: bool = False, *, fresh: bool = False, wait: bool = True) -> int:
        """Apply what the store holds and this process has not applied; return #events applied.

        Users/items tables are re-read when ``force_catalog`` or when their watermarks moved;
        events with id > the last applied one are applied in id order (a loop over *new* events
        only — a few per request, all of them once at start). Without ``fresh`` or
        ``force_catalog``, nothing is read when the store was looked at less than
        ``sync_interval`` seconds ago.

        The watermarks are read before taking the sync lock: a request that finds nothing new
        returns at once instead of queueing behind the thread applying events (under load a
        preempted lock holder stalled every request of the worker: lock convoy). With
        ``wait=False`` (``/recommend``) a request that finds new *events* only does not apply
        them itself: it asks the writer thread to (:meth:`FeedbackWriter.request_apply`) and
        serves the state of that moment; the events count from the requests after they are
        applied, milliseconds later (a write's own response still waits for its event). An
        erasure or a new user/item is applied before the request that sees it, as with
        ``wait=True``: an erased user is gone from every process's next answer.
        """
        now = time.monotonic()
        if not (fresh or force_catalog) and now - self._last_look < self.sync_interval:
            return 0
        self._last_look = now
        marks = self.store.watermarks()
        if not force_catalog and self._up_to_date(marks):
            return 0
        if not (wait or force_catalog) and self._only_events_new(marks):
            self._writes.request_apply()  # the writer thread applies them
            return 0
        with self._sync_lock:
            ev_max, users_max, items_max, tomb_max = self.store.watermarks()
            if tomb_max != self._tomb_mark:  # users erased (lgrec.privacy.serving)
                self._apply_tombstones()
                self._tomb_mark = tomb_max
            if force_catalog or (users_max, items_max) != self._catalog_mark:
                self._load_catalog()
                self._catalog_mark = (users_max, items_max)
            n, batch = 0, 10_000
            while ev_max > self.last_event:
                rows = self.store.event_rows(since_id=self.last_event, limit=batch)
                if not rows:
                    break
                uidx, iidx = self._uidx, self._iidx
                if not all(r[1] in uidx and r[2] in iidx for r in rows):
                    self._load_catalog()
                for row in rows:
                    n += self._apply_event(*row)
                self.last_event = int(rows[-1][0])
            return n

    def _up_to_date(self, marks: tuple[int, int, int, int]) -> bool:
        """Whether this process has applied everything the watermarks ``marks`` show. Read
        without the lock: the fields only move forward, after their changes are applied."""
        ev_max, users_max, items_max, tomb_max = marks
        return (
            ev_max <= self.last_event
            and (users_max, items_max) == self._catalog_mark
            and tomb_max == self._tomb_mark
        )

    def _only_events_new(self, marks: tuple[int, int, int, int]) -> bool:
        """Whether the watermarks ``marks`` show new events only: no erasure, no new user or
        item (those are applied before the request that sees them, wherever it is)."""
        _, users_max, items_max, tomb_max = marks
        return (users_max, items_max) == self._catalog_mark and tomb_max == self._tomb_mark

    def replay_unlearned(self, learned: str) -> int:
        """Fold in the stored events up to :attr:`last_event` (the bundle's
        ``feedback_until``) that its retrain did not learn (:mod:`lgrec.serve.retrain`): with
        ``learned == "rating"`` every other event type, and every event of a user the model
        does not hold; with ``"all"`` none. Returns the number applied."""
        if learned == "all" or self.last_event <= 0:
            return 0
        with self._sync_lock:
            self._load_catalog()
            n, since = 0, 0
            n_base = self.n_base_users
            while since < self.last_event:
                rows = self.store.event_rows(since_id=since, limit=10_000)
                if not rows:
                    break
                for row in rows:
                    if row[0] > self.last_event:
                        return n
                    u = self._uidx.get(row[1])
                    if row[3] != learned or (u is not None and u >= n_base):
                        n += self._apply_event(*row)
                since = int(rows[-1][0])
            return n

    def close(self) -> None:
        """Settle the queued writes, stop the writer thread, close the store."""
        self._writes.close()
        self.store.close()

    def _apply_event(
        self, eid: int, user_id: str, item_id: str, event: str, value: float | None
    ) -> int:
        """Fold one stored event in: 1 when applied, 0 when it names an unknown user/item."""
        u, i = self._uidx.get(user_id), self._iidx.get(item_id)
        if u is None or i is None:
            log.warning("event %d names unknown %s/%s: skipped", eid, user_id, item_id)
            return 0
        value = None if value is None or math.isnan(value) else float(value)
        alpha = self.online_lr * online.event_weight(event, value, self.rating_scale)
        with self.lock:
            self._fold_user(u, i, alpha)  # the vector and its cached score rows
            seen = self.online_seen.setdefault(u, {})
            seen.pop(i, None)  # once, at its most recent place
            seen[i] = None
            self.online_events[u] = self.online_events.get(u, 0) + 1
        return 1
