"""Feedback writes through one writer thread per server process, committed in groups.

Every acknowledged event must be durable (``synchronous=FULL``: one fsync per transaction on
SQLite, one WAL flush on PostgreSQL). One transaction per request makes writers queue behind
each other's fsync, each then paying its own. And a request that waits for its fsync in a
thread of the server's pool holds that thread: under 200 ``/recommend`` + 50 ``/feedback``
per second a slow fsync (tens to hundreds of ms on the shared virtual disk) left a crowd of
blocked feedback threads that all woke at once, applied their events and answered together,
and the ``/recommend`` threads of that process queued behind them for the GIL
(docs/benchmarks.md).

:class:`FeedbackWriter` owns the writes of one process. A request hands its event over
(:meth:`FeedbackWriter.submit`, a :class:`concurrent.futures.Future`; the async ``/feedback``
endpoint awaits it without holding a thread) and the writer thread, in a loop:

1. takes *every* queued event (those that arrived while the previous group was committed),
   checks each (``check``: unknown user or item → that request's 404, nothing stored);
2. stores them in one transaction (:meth:`add_events` of the store): ``n`` waiting events
   cost one fsync instead of ``n`` serial ones. If a group of several fails (an idempotency
   key reused with another body, an erased user, a failing store), nothing of it was stored
   and each event is stored alone, so every request gets its own answer (409, 503, …) exactly
   as without grouping;
3. folds the new events into the served state (``apply``: :meth:`SyncMixin.sync`, which also
   applies other processes' events), so a write answers after its own event is applied;
4. reads each stored row back (the response body; a replay returns the *stored* event) and
   only then resolves the futures. Nothing is acknowledged before its commit returned.

:meth:`FeedbackWriter.request_apply` asks the same thread to apply what other processes
stored, without a write: ``/recommend`` calls it when it sees news, instead of applying events
on its own request path. The thread starts with the first call and stops at :meth:`close`
(after the queued events are settled).
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from lgrec.errors import StoreUnavailableError

if TYPE_CHECKING:
    from lgrec.store.base import FeedbackStoreProtocol

log = logging.getLogger(__name__)
Future = concurrent.futures.Future


class Stored(NamedTuple):
    """A settled write: the event's row id, whether this request created it (False: a replay
    of its idempotency key) and the stored row (:meth:`FeedbackStore.get_event`)."""

    id: int
    created: bool
    row: dict[str, Any] | None


class FeedbackWriter:
    """The feedback writes of one process (module docstring). Thread-safe.

    Args:
        store: the feedback store; events are the keyword arguments of its ``add_event``.
        check: called with each event before it is stored; what it raises is that request's
            answer and the event is not stored (e.g. an unknown user).
        apply: called after each commit (and on :meth:`request_apply`) to fold the stored
            events into the served state; what it raises after a commit answers the group's
            requests (their events are stored: a retry with the idempotency key replays them).
    """

    def __init__(
        self,
        store: FeedbackStoreProtocol,
        *,
        check: Callable[[dict[str, Any]], None] | None = None,
        apply: Callable[[], Any] | None = None,
    ) -> None:
        self.store, self._check, self._apply = store, check, apply
        self._queue: list[tuple[dict[str, Any], Future]] = []
        self._cond = threading.Condition()
        self._apply_asked = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self.commits = 0  # transactions run (for tests and metrics)

    # ---- callers -----------------------------------------------------------------------
    def submit(self, event: dict[str, Any]) -> Future:
        """Queue ``event``; the future resolves to :class:`Stored` once the event is durable
        and applied, or raises the store's (or ``check``'s) error for it."""
        fut: Future = Future()
        with self._cond:
            if self._closed:
                raise StoreUnavailableError("the feedback writer is closed (server stopping)")
            self._queue.append((event, fut))
            self._start()
            self._cond.notify()
        return fut

    def write(self, event: dict[str, Any]) -> Stored:
        """:meth:`submit` and wait: the :class:`Stored` result, or the event's error."""
        return self.submit(event).result()

    def request_apply(self) -> None:
        """Ask the writer thread to fold in what other processes stored (returns at once)."""
        with self._cond:
            if self._closed or self._apply is None:
                return
            self._apply_asked = True
            self._start()
            self._cond.notify()

    def close(self, timeout: float = 30.0) -> None:
        """Settle the queued events, then stop the thread (idempotent)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # ---- the writer thread ---------------------------------------------------------------
    def _start(self) -> None:
        """Start the thread on first use (the caller holds ``_cond``)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="lgrec-feedback-writer")
            self._thread.daemon = True  # a killed server loses nothing unacknowledged
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._queue or self._apply_asked or self._closed):
                    self._cond.wait()
                batch, self._queue = self._queue, []
                asked, self._apply_asked = self._apply_asked, False
                if self._closed and not batch:
                    return
            try:
                self._round(batch, asked)
            except BaseException as e:  # never leave a request waiting
                log.exception("feedback writer: unexpected error")
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)

    def _round(self, batch: list[tuple[dict[str, Any], Future]], asked: bool) -> None:
        """Check, commit, apply, read back and answer one group (module docstring)."""
        ready = []
        for event, fut in batch:
            if not fut.set_running_or_notify_cancel():
                continue  # the request went away before its event was taken: not stored
            try:
                if self._check is not None:
                    self._check(event)
            except Exception as e:  # this request's own error (4xx upstream)
                fut.set_exception(e)
            else:
                ready.append((event, fut))
        stored = [(fut, r) for fut, r in self._commit(ready) if r is not None]
        if stored or asked:
            try:
                if self._apply is not None:
                    self._apply()
            except Exception as e:  # durable, not applied: the requests learn it (5xx)
                log.warning("feedback writer: applying stored events failed: %s", e)
                for fut, _ in stored:
                    fut.set_exception(e)
                return
        for fut, (eid, created) in stored:
            try:
                fut.set_result(Stored(eid, created, self.store.get_event(eid)))
            except Exception as e:
                fut.set_exception(e)

    def _commit(self, ready: list[tuple[dict[str, Any], Future]]) -> list[tuple[Future, Any]]:
        """Store ``ready`` in one transaction (each event alone when that fails); for each
        future its ``(id, created)``, or None when its error has been set."""
        if len(ready) > 1:
            self.commits += 1
            try:
                results = self.store.add_events([event for event, _ in ready])
            except Exception:  # nothing of the group was stored: one answer per event
                pass
            else:
                return [(fut, r) for (_, fut), r in zip(ready, results, strict=True)]
        out: list[tuple[Future, Any]] = []
        for event, fut in ready:
            self.commits += 1
            try:
                out.append((fut, self.store.add_event(**event)))
            except Exception as e:  # this request's own error (4xx/5xx upstream)
                fut.set_exception(e)
                out.append((fut, None))
        return out


__all__ = ["FeedbackWriter", "Stored"]
