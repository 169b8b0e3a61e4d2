"""The server's side of the privacy controls: pseudonymised ids, erasure.

**Pseudonymised ids.** A server on a pseudonymised bundle (``lgrec serve --pseudonymize``)
maps every user id a client sends — ``user=`` query parameters, ``/users/{id}`` paths,
``user``/``user_id`` body fields — through ``p`` (:mod:`lgrec.privacy.pseudonym`) before it
looks the user up, stores an event or creates a user; answers echo the id the client sent.
uvicorn's access log prints every request line, query string included, so a filter rewrites
the ids in it to their pseudonyms before the line is formatted.

**Erasure.** ``DELETE /users/{id}`` (API key required) erases the user in the feedback store
and folds them out of every server process (:class:`ErasureMixin`). A graph store opened by
the server is read-only (LadybugDB lets several processes read or one write), so until the
user's node is deleted — by the next ``lgrec serve`` before it starts its workers, or by
``lgrec forget`` while no server holds the store (:mod:`lgrec.privacy.erasure`) — the
server's view of it (:class:`ErasureAwareGraph`) leaves erased users out of explanation
paths and ranks every item instead of the two-hop candidates their edges would still sway.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote

from pydantic import BaseModel

from lgrec.privacy.pseudonym import Pseudonymizer, for_bundle
from lgrec.privacy.tombstones import erased_mask, tombstone_hash

log = logging.getLogger(__name__)

_QUERY_USER = re.compile(r"([?&]user=)([^&#\s]*)")
_PATH_USER = re.compile(r"(/users/)([^?#\s]+)")


def identity(user_id: str) -> str:
    return user_id


def user_mapper(
    model_dir: str, pseudonymize: bool, key_file: str | None = None
) -> Callable[[str], str]:
    """The id mapping of a server on ``model_dir`` (checked against its bundle,
    :func:`lgrec.privacy.pseudonym.for_bundle`); with a key, also redacts the access log."""
    pz = for_bundle(model_dir, pseudonymize, key_file)
    if pz is None:
        return identity
    redact_access_log(pz)
    return pz


def redact(line: str, pz: Pseudonymizer) -> str:
    """``line`` with the user ids of ``?user=…`` and ``/users/…`` replaced by pseudonyms."""

    def sub(m: re.Match) -> str:
        return m.group(1) + quote(pz(unquote(m.group(2).replace("+", " "))), safe="")

    return _PATH_USER.sub(sub, _QUERY_USER.sub(sub, line))


class AccessLogRedactor(logging.Filter):
    """Rewrites the request path of uvicorn access records (``args[2]``) with :func:`redact`."""

    def __init__(self, pz: Pseudonymizer) -> None:
        super().__init__("lgrec.privacy")
        self.pz = pz

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact(args[2], self.pz), *args[3:])
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg, self.pz)
        return True


def redact_access_log(pz: Pseudonymizer) -> None:
    """Install :class:`AccessLogRedactor` on ``uvicorn.access`` (once per process)."""
    logger = logging.getLogger("uvicorn.access")
    for f in list(logger.filters):
        if isinstance(f, AccessLogRedactor):
            logger.removeFilter(f)
    logger.addFilter(AccessLogRedactor(pz))


# ---- erasure in a running server ------------------------------------------------------------
class ErasureMixin:
    """Folding erased users out of :class:`~lgrec.serve.state.ServeState` (module docstring of
    :mod:`lgrec.privacy.tombstones`).

    :meth:`erase_user` writes the erasure to the store (events, record, tombstone: durable);
    :meth:`_apply_tombstones`, called by ``sync`` whenever the store's tombstone watermark
    moves — in this process at once, in every other process at its next request, and at
    start — folds each tombstoned user out: their row leaves the id map (so they are unknown
    from then on: no recommendations, profile or feedback), their vector is zeroed, and their
    online history, text and event counts are dropped. Other users' vectors never depend on
    another user's online events (a fold-in moves only the acting user's row), so nothing
    else changes; the trained item vectors still carry the user's *training* data until the
    next ``lgrec retrain``, which drops it.
    """

    tombstones: frozenset[str] = frozenset()
    _tomb_mark: int = -1

    def erase_user(self, user_id: str) -> dict[str, int]:
        """Erase ``user_id`` (a stored id, pseudonym included); :class:`UnknownIdError` when
        neither the model nor the store knows it and it was never erased."""
        from lgrec.errors import UnknownIdError

        st = self.store
        known = self.has_user(user_id) or st.get_user(user_id) is not None or st.count(user_id)
        if not known and not st.is_erased(user_id):
            raise UnknownIdError(f"unknown user {user_id!r}")
        counts = st.delete_user(user_id)
        self.sync(fresh=True)  # this server forgets at once, whatever its sync interval
        return counts

    def _apply_tombstones(self) -> int:
        """Fold out every user whose id has a tombstone in the store; return how many."""
        self.tombstones = self.store.tombstones()
        if not self.tombstones:
            return 0
        with self.lock:
            ids = list(self._uidx)
        gone = [u for u, hit in zip(ids, erased_mask(ids, self.tombstones)) if hit]
        for user_id in gone:
            self._fold_out(user_id)
        return len(gone)

    def _fold_out(self, user_id: str) -> None:
        with self.lock:
            u = self._uidx.pop(user_id, None)
            if u is None:
                return
            self.U[u] = 0.0
            cache = getattr(self, "score_cache", None)  # precomputed rows (lgrec.serve.scorecache)
            if cache is not None:
                cache.erase(u)
            self.user_ids[u] = ""  # the row stays (rows never move) but names nobody
            for table in (self.online_seen, self.online_events, self.user_text, self.user_query):
                table.pop(u, None)
            if u < self.n_base_users:  # the trained history
                seen = self.seen_base.copy()
                seen.data[seen.indptr[u] : seen.indptr[u + 1]] = 0
                seen.eliminate_zeros()
                self.seen_base = seen
        log.info("folded an erased user out of the served model (row %d)", u)

    def listed_user_ids(self) -> list[str]:
        """User ids in row order, erased users left out."""
        with self.lock:
            return [u for u in self.user_ids if u]


class ErasedOut(BaseModel):
    """Answer of ``DELETE /users/{id}``."""

    user_id: str
    erased: bool = True
    events_deleted: int
    already_erased: bool
    graph_pending: bool  # the server's graph store still holds the node until a restart


def install_erasure(app: Any, st: Any, pid: Callable[[str], str], write: Any, graph: Any) -> None:
    """Register ``DELETE /users/{id}`` on ``app`` (``write``: the API-key dependency)."""
    from lgrec.serve.schemas import ErrorBody

    errs = {c: {"model": ErrorBody} for c in (401, 403, 404)}

    @app.delete(
        "/users/{user_id:path}", response_model=ErasedOut, responses=errs, dependencies=[write]
    )
    def erase_user(user_id: str) -> ErasedOut:
        """Erase a user everywhere (right to be forgotten): their events and record leave the
        feedback store, every server process forgets them at once (no recommendations, no
        history; their id is refused from then on), the next ``lgrec retrain`` leaves out their
        training interactions, and the graph store loses their node (at the server's next start
        or with ``lgrec forget``; meanwhile answers leave it out). Repeating it is harmless."""
        counts = st.erase_user(pid(user_id))
        pending = graph is not None and bool(graph.pending())
        return ErasedOut(
            user_id=user_id,
            events_deleted=counts["events"],
            already_erased=not counts["tombstone"],
            graph_pending=pending,
        )


class ErasureAwareGraph:
    """The server's graph companion (:class:`lgrec.serve.graph.GraphCompanion`) with erased
    users left out while their nodes are still in the read-only store (module docstring)."""

    def __init__(self, graph: Any, state: Any) -> None:
        self.graph, self.state = graph, state
        self._by_hash: dict[str, str] | None = None

    def pending(self) -> set[str]:
        """Ids of tombstoned users that the graph store still holds."""
        tomb = self.state.tombstones
        if not tomb:
            return set()
        if self._by_hash is None:  # the store is read-only here: its users never change
            rows = self.graph.store.query("MATCH (u:User) RETURN u.id AS id")
            self._by_hash = {tombstone_hash(r["id"]): r["id"] for r in rows}
        return {self._by_hash[h] for h in tomb if h in self._by_hash}

    def candidates(self, user_id: str) -> list[str] | None:
        """Two-hop candidates, or None (rank every item) while erased users are pending."""
        return None if self.pending() else self.graph.candidates(user_id)

    def paths(self, user_id: str, item_id: str, limit: int = 5) -> list[dict[str, Any]]:
        """Explanation paths that pass through no erased user."""
        pending = self.pending()
        if not pending:
            return self.graph.paths(user_id, item_id, limit=limit)
        if user_id in pending:
            return []
        got = self.graph.paths(user_id, item_id, limit=limit + 50)
        return [p for p in got if pending.isdisjoint(p["path"])][:limit]

    def close(self) -> None:
        self.graph.close()

    def __getattr__(self, name: str) -> Any:  # everything else: the companion's own
        return getattr(self.graph, name)
