"""Group commit of feedback writes: the events that arrive while a commit runs share the next.

Every acknowledged event must be durable (``synchronous=FULL``: one fsync per transaction on
SQLite, one WAL flush on PostgreSQL). One transaction per request makes writers queue behind
each other's fsync: a slow one (tens to hundreds of ms on a busy disk) stalls every writer
after it, each then paying its own fsync. Profiled under 200 ``/recommend`` + 50
``/feedback`` per second, the feedback threads spent most of their time waiting for the
store's writer lock, not writing (docs/benchmarks.md).

:class:`GroupCommit` makes the writes of one server process leader/follower style: a request
queues its event, then takes the commit lock; if a commit that ran meanwhile already stored
its event it returns that result, else it becomes the leader and stores *every* queued event
in one transaction (:meth:`add_events` of the store). A request still answers only after its
own event is committed, so nothing acknowledged is lost, and ``n`` waiting events cost one
fsync instead of ``n`` serial ones.

If a batch of several events fails (one reuses an idempotency key with another body, names
an erased user, or the store fails), nothing of it was stored (one transaction) and each event
is stored alone, so every request gets its own answer: the same as without batching.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lgrec.store.base import FeedbackStoreProtocol


class _Pending:
    """One queued event and, once committed, its ``(id, created)`` or its error."""

    __slots__ = ("done", "error", "event", "result")

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event
        self.result: tuple[int, bool] | None = None
        self.error: BaseException | None = None
        self.done = False

    def settle(self, result: tuple[int, bool] | None, error: BaseException | None) -> None:
        self.result, self.error, self.done = result, error, True


class GroupCommit:
    """Feedback writes of one process through ``store``, committed in groups (module
    docstring). Thread-safe."""

    def __init__(self, store: FeedbackStoreProtocol) -> None:
        self.store = store
        self._queue: list[_Pending] = []
        self._queue_lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self.commits = 0  # transactions run (for tests and metrics)

    def submit(self, event: dict[str, Any]) -> tuple[int, bool]:
        """Store one event durably (committed when this returns): ``event`` holds the keyword
        arguments of the store's ``add_event``, whose ``(row id, created)`` and errors this
        returns and raises."""
        p = _Pending(event)
        with self._queue_lock:
            self._queue.append(p)
        with self._commit_lock:  # a commit that ran while we waited may have stored it
            if not p.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        if p.error is not None:
            raise p.error
        assert p.result is not None
        return p.result

    def _commit(self, batch: list[_Pending]) -> None:
        """Store ``batch`` in one transaction; each event alone when that fails."""
        if len(batch) > 1:
            self.commits += 1
            try:
                results = self.store.add_events([p.event for p in batch])
            except Exception:  # nothing of the batch was stored: one answer per event
                pass
            else:
                for p, r in zip(batch, results, strict=True):
                    p.settle(r, None)
                return
        for p in batch:
            self.commits += 1
            try:
                p.settle(self.store.add_event(**p.event), None)
            except Exception as e:  # this request's own error (4xx/5xx upstream)
                p.settle(None, e)


__all__ = ["GroupCommit"]
