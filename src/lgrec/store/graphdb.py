"""Graph database over the user–item graph: one interface, two backends.

The property graph (every backend stores the same one)::

    (:User {id, idx})-[:INTERACTED_WITH {event, rating, ts}]->(:Item {id, idx, title, categories})
    (:Item)-[:SIMILAR_TO {score}]->(:Item)        (:Item)-[:IN_CATEGORY]->(:Category {name})
    (:User)-[:FRIEND]->(:User)

``id`` is the external id (string) and ``idx`` the contiguous integer id of the
:class:`~lgrec.data.dataset.Dataset`, so :meth:`GraphStore.interactions_coo` hands training
arrays back in the data set's id space.

Backends: :class:`~lgrec.store.ladybug_backend.LadybugGraphStore` (embedded LadybugDB, the
maintained fork of Kùzu; default), :class:`~lgrec.store.falkordb_backend.FalkorGraphStore`
(a FalkorDB server over its Redis protocol) and :class:`~lgrec.store.bolt_backend.BoltGraphStore`
(Neo4j, or any Bolt server, through the official ``neo4j`` driver). :func:`open_graph_store`
picks one by name. The queries in this module use the Cypher subset all of them understand.

lgrec owns the labels :data:`NODE_LABELS` and relationship types :data:`REL_TYPES` of the
store: :meth:`GraphStore.clear` deletes those and nothing else, so another application's
nodes in the same database survive (still, give lgrec a database or graph of its own).

Recommendation queries (two-hop candidates, explanation paths): :mod:`lgrec.store.graph_queries`.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from lgrec.errors import ConfigError, DataError, LgrecError, StoreError, UnknownIdError
from lgrec.store.graph_queries import PathQueries, _finite, _key
from lgrec.store.graph_tables import GraphTables, graph_tables

if TYPE_CHECKING:  # only for annotations: keeps `import lgrec.store` free of torch
    from lgrec.data.dataset import Dataset

__all__ = ["GraphStore", "GraphStoreError", "GraphTables", "WriteQueryError", "graph_tables"]

log = logging.getLogger(__name__)

NODE_LABELS = ("User", "Item", "Category")
"""The node labels lgrec creates; :meth:`GraphStore.clear` deletes these and nothing else."""
REL_TYPES = ("INTERACTED_WITH", "SIMILAR_TO", "IN_CATEGORY", "FRIEND")
"""The relationship types lgrec creates (always between nodes of :data:`NODE_LABELS`)."""


class GraphStoreError(StoreError):
    """The graph database is unreachable or rejected a query (the message quotes it)."""


class WriteQueryError(LgrecError, PermissionError):
    """The database refused a write sent through the read-only :meth:`GraphStore.query`."""


class GraphStore(PathQueries, ABC):
    """A user–item property graph (see module docstring); subclasses supply the transport.

    Every public method is thread-safe: calls are serialised by a re-entrant lock.
    """

    backend: str = ""

    def __init__(self) -> None:
        self._lock = threading.RLock()

    # ---- what a backend implements ----------------------------------------------------
    @abstractmethod
    def create_schema(self) -> None:
        """Create tables/indexes for the graph of the module docstring (idempotent)."""

    @abstractmethod
    def _run(self, cypher: str, params: dict[str, Any], *, write: bool) -> list[dict[str, Any]]:
        """Run one of lgrec's own statements and return its rows as plain dicts."""

    @abstractmethod
    def _run_read_only(self, cypher: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Run one caller-supplied statement in the database's read-only mode, so that the
        database itself refuses any write (raise :class:`WriteQueryError` then)."""

    @abstractmethod
    def _bulk_load(self, tables: GraphTables, batch_size: int) -> None:
        """Insert all of ``tables`` into an empty graph."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection; the object is unusable afterwards."""

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- queries ----------------------------------------------------------------------
    def query(
        self, cypher: str, params: dict[str, Any] | None = None, *, write: bool = False
    ) -> list[dict[str, Any]]:
        """Run a parameterised Cypher statement; rows come back as dicts.

        Values go in ``params`` (``$name`` in the text), never into the string. Read-only
        unless ``write=True``, enforced by the database (LadybugDB read-only database or
        transaction, Neo4j read-access transaction, FalkorDB ``GRAPH.RO_QUERY``): a write
        raises :class:`WriteQueryError`. Nodes and relationships come back as property dicts.
        """
        with self._lock:
            if write:
                return self._run(cypher, dict(params or {}), write=True)
            return self._run_read_only(cypher, dict(params or {}))

    def counts(self) -> dict[str, int]:
        """Number of nodes per label and relationships per type."""
        out = {}
        with self._lock:
            for label in NODE_LABELS:
                out[label] = self._count(f"MATCH (n:{label}) RETURN count(n) AS n")
            for rel in REL_TYPES:
                out[rel] = self._count(f"MATCH ()-[r:{rel}]->() RETURN count(r) AS n")
        return out

    def _count(self, cypher: str, params: dict[str, Any] | None = None) -> int:
        return int(self._run(cypher, params or {}, write=False)[0]["n"])

    # ---- deleting ---------------------------------------------------------------------
    def clear(self, *, batch_size: int = 20_000) -> dict[str, int]:
        """Delete lgrec's nodes (:data:`NODE_LABELS`) with their relationships, at most
        ``batch_size`` nodes per statement; nodes of any other label stay. Returns how many
        nodes of each label were deleted."""
        if batch_size < 1:
            raise DataError(f"clear: batch_size must be ≥ 1, got {batch_size}")
        deleted = {}
        with self._lock:
            for label in NODE_LABELS:
                total = self._count(f"MATCH (n:{label}) RETURN count(n) AS n")
                for _ in range(-(-total // batch_size)):
                    self._run(
                        f"MATCH (n:{label}) WITH n LIMIT {int(batch_size)} DETACH DELETE n",
                        {},
                        write=True,
                    )
                left = self._count(f"MATCH (n:{label}) RETURN count(n) AS n")
                if left:
                    raise GraphStoreError(f"clear: {left} {label} nodes are left after deleting")
                deleted[label] = total
        return deleted

    def delete_user(self, user_id: str) -> int:
        """Delete one user's node and every relationship touching it (interactions,
        friendships); return how many relationships went with it (0 when the user had none).

        Raises :class:`UnknownIdError` when the store has no such user. The user's ``idx``
        is not reused: :meth:`add_user` keeps counting from the largest one held.
        """
        with self._lock:
            uid = self._require_user(user_id, "delete_user")
            p = {"u": uid}
            n = self._count(_USER_EDGES, p)
            self._run("MATCH (u:User {id: $u}) DETACH DELETE u", p, write=True)
            if self._run("MATCH (u:User {id: $u}) RETURN u.idx AS idx", p, write=False):
                raise GraphStoreError(f"delete_user: user {uid!r} is still in the store")
        log.info("deleted user %r and %d relationships from %s", uid, n, self)
        return n

    # ---- loading ----------------------------------------------------------------------
    def load_dataset(
        self,
        ds: Dataset,
        *,
        similar: sp.spmatrix | None = None,
        social: np.ndarray | None = None,
        batch_size: int = 50_000,
    ) -> dict[str, int]:
        """Bulk-load a data set into an empty store; return :meth:`counts` afterwards.

        ``similar`` is an items × items sparse matrix (row ``i`` → ``SIMILAR_TO`` → column
        ``j`` with the entry as ``score``), ``social`` an ``(n, 2)`` array of user-id pairs
        (``FRIEND`` edges). Raises :class:`DataError` when the store already holds nodes.
        """
        if batch_size < 1:
            raise DataError(f"load_dataset: batch_size must be ≥ 1, got {batch_size}")
        tables = graph_tables(ds, similar, social)
        with self._lock:
            self.create_schema()
            held = self._run("MATCH (n:User) RETURN count(n) AS n", {}, write=False)[0]["n"]
            held += self._run("MATCH (n:Item) RETURN count(n) AS n", {}, write=False)[0]["n"]
            if held:
                raise DataError(
                    f"load_dataset: the {self.backend} store already holds {held} users/items; "
                    "call clear() first or load into a new store"
                )
            t0 = time.perf_counter()
            self._bulk_load(tables, batch_size)
            log.info(
                "loaded %s into %s in %.1fs", ds.name or "dataset", self, time.perf_counter() - t0
            )
            return self.counts()

    def add_user(self, user_id: str) -> int:
        """Add a user (no-op when present); return its integer id ``idx``."""
        uid = _key(user_id, "user_id", "add_user")
        with self._lock:
            found = self._run(
                "MATCH (u:User {id: $id}) RETURN u.idx AS idx", {"id": uid}, write=False
            )
            if found:
                return int(found[0]["idx"])
            idx = self._next_idx("User")
            self._run("CREATE (:User {id: $id, idx: $idx})", {"id": uid, "idx": idx}, write=True)
            return idx

    def add_item(
        self, item_id: str, title: str | None = None, categories: list[str] | None = None
    ) -> int:
        """Add an item with its categories (no-op when present); return its ``idx``."""
        iid = _key(item_id, "item_id", "add_item")
        if isinstance(categories, str):
            raise DataError("add_item: categories must be a list of strings, not one string")
        cats = sorted({str(c) for c in categories or ()})
        with self._lock:
            found = self._run(
                "MATCH (i:Item {id: $id}) RETURN i.idx AS idx", {"id": iid}, write=False
            )
            if found:
                return int(found[0]["idx"])
            idx = self._next_idx("Item")
            params = {"id": iid, "idx": idx, "title": title, "cats": cats}
            self._run(
                "CREATE (:Item {id: $id, idx: $idx, title: $title, categories: $cats})",
                params,
                write=True,
            )
            if cats:
                self._run(
                    "UNWIND $cats AS c MERGE (k:Category {name: c}) WITH k "
                    "MATCH (i:Item {id: $id}) CREATE (i)-[:IN_CATEGORY]->(k)",
                    {"cats": cats, "id": iid},
                    write=True,
                )
            return idx

    def add_interaction(
        self,
        user_id: str,
        item_id: str,
        event: str = "click",
        rating: float | None = None,
        ts: float | None = None,
    ) -> None:
        """Add one ``INTERACTED_WITH`` edge; an unknown user is created, an unknown item raises
        :class:`UnknownIdError`. ``rating`` defaults to 1.0 and ``ts`` to now."""
        iid = _key(item_id, "item_id", "add_interaction")
        if not isinstance(event, str) or not event.strip():
            raise DataError(f"add_interaction: event must be a non-empty string, got {event!r}")
        r = 1.0 if rating is None else _finite(rating, "rating", "add_interaction")
        t = time.time() if ts is None else _finite(ts, "ts", "add_interaction")
        with self._lock:
            if not self._run(
                "MATCH (i:Item {id: $id}) RETURN i.idx AS idx", {"id": iid}, write=False
            ):
                raise UnknownIdError(
                    f"add_interaction: unknown item id {item_id!r} in the graph store"
                )
            self.add_user(user_id)
            self._run(
                "MATCH (u:User {id: $u}), (i:Item {id: $i}) "
                "CREATE (u)-[:INTERACTED_WITH {event: $e, rating: $r, ts: $t}]->(i)",
                {"u": str(user_id), "i": iid, "e": event, "r": r, "t": t},
                write=True,
            )

    def _next_idx(self, label: str) -> int:
        m = self._run(f"MATCH (n:{label}) RETURN max(n.idx) AS m", {}, write=False)[0]["m"]
        return 0 if m is None else int(m) + 1

    # ---- recommendation helpers --------------------------------------------------------
    def _require_user(self, user_id: str, where: str) -> str:
        uid = _key(user_id, "user_id", where)
        if not self._run("MATCH (u:User {id: $id}) RETURN u.idx AS idx", {"id": uid}, write=False):
            raise UnknownIdError(f"{where}: unknown user id {user_id!r} in the graph store")
        return uid

    def interactions_coo(self) -> tuple[np.ndarray, np.ndarray]:
        """(user idx, item idx) int64 arrays of every ``INTERACTED_WITH`` edge, sorted.

        Repeated interactions give repeated pairs. (The query returns an edge property:
        FalkorDB 4.x collapses parallel edges whose variable the query never uses.)
        """
        rows = self._run(COO_QUERY, {}, write=False)
        return _sorted_pairs(
            np.fromiter((r["u"] for r in rows), np.int64, len(rows)),
            np.fromiter((r["i"] for r in rows), np.int64, len(rows)),
        )


def _sorted_pairs(u: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((i, u))
    return u[order], i[order]


_USER_EDGES = "MATCH (u:User {id: $u}) OPTIONAL MATCH (u)-[r]-() RETURN count(r) AS n"
COO_QUERY = "MATCH (u:User)-[r:INTERACTED_WITH]->(i:Item) RETURN u.idx AS u, i.idx AS i, r.ts AS ts"


BACKENDS = ("ladybug", "falkordb", "bolt")


def open_graph_store(backend: str = "ladybug", **kw: Any) -> GraphStore:
    """Open a graph store: ``"ladybug"`` (``path=...``), ``"falkordb"`` (``uri=redis://...,
    user, password, graph``) or ``"bolt"`` (``uri=bolt://..., user, password, database``).

    Keyword arguments go to the backend's constructor, which creates the schema when missing.
    """
    if backend == "ladybug":
        from lgrec.store.ladybug_backend import LadybugGraphStore

        return LadybugGraphStore(**kw)
    if backend == "falkordb":
        from lgrec.store.falkordb_backend import FalkorGraphStore

        return FalkorGraphStore(**kw)
    if backend in ("bolt", "neo4j"):
        from lgrec.store.bolt_backend import BoltGraphStore

        return BoltGraphStore(**kw)
    raise ConfigError(
        f"open_graph_store: unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}"
    )
