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

Two-hop candidates for a user :math:`u` with history :math:`H(u)` score an unseen item
:math:`j` as

.. math::
    s(j) = \\big|\\{(i, v) : i \\in H(u),\\ v \\ne u,\\ i \\in H(v),\\ j \\in H(v)\\}\\big|
           + w \\sum_{i \\in H(u)} \\mathrm{sim}(i, j),

the number of user → item ← user → item paths plus ``w`` times the summed ``SIMILAR_TO``
scores from the history.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lgrec.errors import ConfigError, DataError, LgrecError, StoreError, UnknownIdError

if TYPE_CHECKING:  # only for annotations: keeps `import lgrec.store` free of torch
    from lgrec.data.dataset import Dataset

log = logging.getLogger(__name__)

NODE_LABELS = ("User", "Item", "Category")
"""The node labels lgrec creates; :meth:`GraphStore.clear` deletes these and nothing else."""
REL_TYPES = ("INTERACTED_WITH", "SIMILAR_TO", "IN_CATEGORY", "FRIEND")
"""The relationship types lgrec creates (always between nodes of :data:`NODE_LABELS`)."""


class GraphStoreError(StoreError):
    """The graph database is unreachable or rejected a query (the message quotes it)."""


class WriteQueryError(LgrecError, PermissionError):
    """The database refused a write sent through the read-only :meth:`GraphStore.query`."""


@dataclass(frozen=True)
class GraphTables:
    """The graph as tables ready for bulk loading (external ids as node keys).

    ``users``: id, idx; ``items``: id, idx, title, categories; ``categories``: name;
    relation tables ``interacted`` (src, dst, event, rating, ts), ``similar`` (src, dst, score),
    ``in_category`` (src, dst) and ``friend`` (src, dst), where src/dst are node keys.
    """

    users: pd.DataFrame
    items: pd.DataFrame
    categories: pd.DataFrame
    interacted: pd.DataFrame
    similar: pd.DataFrame
    in_category: pd.DataFrame
    friend: pd.DataFrame


def graph_tables(
    ds: Dataset, similar: sp.spmatrix | None = None, social: np.ndarray | None = None
) -> GraphTables:
    """Turn a :class:`Dataset` (plus optional item–item similarities and user–user friendship
    pairs) into :class:`GraphTables`; the diagonal of ``similar`` is dropped."""
    uid = ds.users["user_id"].astype(str).to_numpy(dtype=object)
    iid = ds.items["item_id"].astype(str).to_numpy(dtype=object)
    for what, ids in (("user_id", uid), ("item_id", iid)):
        if len(pd.unique(ids)) != len(ids):
            raise DataError(f"load_dataset: column {what!r} of {ds.name!r} has duplicate ids")
    vocab, cat = ds.categories()
    vocab_arr = np.asarray(vocab, dtype=object)
    item_cats = [list(c) for c in np.split(vocab_arr[cat.indices], cat.indptr[1:-1])]
    title = (
        ds.items["title"].astype(object).where(ds.items["title"].notna(), None)
        if "title" in ds.items.columns
        else pd.Series([None] * ds.n_items, dtype=object)
    )
    items = pd.DataFrame(
        {"id": iid, "idx": np.arange(ds.n_items, dtype=np.int64), "title": title.to_numpy()}
    )
    items["categories"] = item_cats if ds.n_items else []
    cat_coo = cat.tocoo()
    inter = ds.interactions
    interacted = pd.DataFrame(
        {
            "src": uid[ds.user_ids],
            "dst": iid[ds.item_ids],
            "event": inter["event"].astype(str).to_numpy(dtype=object),
            "rating": inter["rating"].to_numpy(dtype=np.float64),
            "ts": inter["timestamp"].to_numpy(dtype=np.float64),
        }
    )
    return GraphTables(
        users=pd.DataFrame({"id": uid, "idx": np.arange(ds.n_users, dtype=np.int64)}),
        items=items,
        categories=pd.DataFrame({"name": vocab_arr}),
        interacted=interacted,
        similar=_similar_table(similar, iid),
        in_category=pd.DataFrame({"src": iid[cat_coo.row], "dst": vocab_arr[cat_coo.col]}),
        friend=_friend_table(social, uid),
    )


def _similar_table(similar: sp.spmatrix | None, iid: np.ndarray) -> pd.DataFrame:
    if similar is None:
        return pd.DataFrame({"src": [], "dst": [], "score": []}).astype({"score": np.float64})
    n = len(iid)
    if not sp.issparse(similar) or similar.shape != (n, n):
        raise DataError(
            f"load_dataset: similar must be a sparse {n}×{n} items × items matrix, "
            f"got {type(similar).__name__} of shape {getattr(similar, 'shape', None)}"
        )
    coo = sp.coo_matrix(similar)
    keep = (coo.row != coo.col) & (coo.data != 0)
    if not np.isfinite(coo.data[keep]).all():
        raise DataError("load_dataset: similar holds NaN or infinite scores")
    return pd.DataFrame(
        {
            "src": iid[coo.row[keep]],
            "dst": iid[coo.col[keep]],
            "score": coo.data[keep].astype(np.float64),
        }
    )


def _friend_table(social: np.ndarray | None, uid: np.ndarray) -> pd.DataFrame:
    if social is None:
        return pd.DataFrame({"src": [], "dst": []})
    pairs = np.asarray(social)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or not np.issubdtype(pairs.dtype, np.integer):
        raise DataError(
            f"load_dataset: social must be an integer array of shape (n, 2) (user, friend), "
            f"got {pairs.dtype} array of shape {pairs.shape}"
        )
    if len(pairs) and (pairs.min() < 0 or pairs.max() >= len(uid)):
        raise DataError(f"load_dataset: social holds user ids outside 0..{len(uid) - 1}")
    return pd.DataFrame({"src": uid[pairs[:, 0]], "dst": uid[pairs[:, 1]]})


def _finite(value: Any, name: str, where: str) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {name} must be a number, got {value!r}") from None
    if not math.isfinite(f):
        raise DataError(f"{where}: {name} must be finite, got {value!r}")
    return f


def _key(value: Any, name: str, where: str) -> str:
    ok = isinstance(value, str | int | np.integer) and not isinstance(value, bool)
    s = str(value) if ok else ""
    if not s.strip():
        raise DataError(f"{where}: {name} must be a non-empty string, got {value!r}")
    return s


class GraphStore(ABC):
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

    def neighbors_two_hop(
        self,
        user_id: str,
        k: int = 10,
        *,
        similar_weight: float = 1.0,
        max_co_users: int | None = None,
    ) -> list[tuple[str, float]]:
        """Top-``k`` unseen items two hops from the user (score in the module docstring).

        The paths are counted per co-user: :math:`v` adds its overlap
        :math:`w_v = |H(u) \\cap H(v)|` to each of its items. ``max_co_users`` keeps only
        the co-users with the largest overlap (ties by id), trading exactness for speed on
        dense graphs. Ties between items are broken by item id. Raises
        :class:`UnknownIdError` for an unknown user.
        """
        if max_co_users is not None and max_co_users < 1:
            raise DataError(f"neighbors_two_hop: max_co_users must be ≥ 1, got {max_co_users}")
        limit = "" if max_co_users is None else f"ORDER BY w DESC, v.id LIMIT {int(max_co_users)} "
        with self._lock:
            uid = self._require_user(user_id, "neighbors_two_hop")
            p = {"u": uid}
            seen = self._run(_SEEN, p, write=False)
            collab = self._run(_COLLAB.replace("<LIMIT>", limit), p, write=False)
            content = self._run(_CONTENT, p, write=False) if similar_weight else []
        parts = [pd.DataFrame(collab, columns=["item", "score"])]
        if content:
            c = pd.DataFrame(content, columns=["item", "score"])
            parts.append(c.assign(score=c["score"] * similar_weight))
        scores = pd.concat(parts).astype({"score": np.float64}).groupby("item")["score"].sum()
        scores = scores[~scores.index.isin([r["item"] for r in seen])].reset_index()
        top = scores.sort_values(["score", "item"], ascending=[False, True]).head(int(k))
        return list(zip(top["item"].tolist(), top["score"].tolist()))

    def explain_paths(self, user_id: str, item_id: str, limit: int = 5) -> list[dict[str, Any]]:
        """Paths that connect a user to an item, strongest first, at most ``limit``.

        ``{"kind": "similar", "path": [user, history item, item], "score": sim}`` come first
        (highest similarity first), then ``{"kind": "co_user", "path": [user, shared item,
        other user, item], "score": n}`` where ``n`` is how many items the other user shares
        with the user.
        """
        iid = _key(item_id, "item_id", "explain_paths")
        with self._lock:
            uid = self._require_user(user_id, "explain_paths")
            p = {"u": uid, "i": iid}
            sim = self._run(_EXPLAIN_SIMILAR, p, write=False)
            co = self._run(_EXPLAIN_COUSER, p, write=False)
        out = [
            {"kind": "similar", "path": [uid, r["via"], iid], "score": float(r["score"])}
            for r in sorted(sim, key=lambda r: (-float(r["score"]), r["via"]))
        ]
        if co:
            df = pd.DataFrame(co, columns=["shared", "other"]).drop_duplicates()
            df["n"] = df.groupby("other")["shared"].transform("size")
            df = df.sort_values(["n", "other", "shared"], ascending=[False, True, True])
            out += [
                {"kind": "co_user", "path": [uid, s, o, iid], "score": float(n)}
                for s, o, n in zip(df["shared"], df["other"], df["n"])
            ]
        return out[: max(0, int(limit))]

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
_SEEN = "MATCH (u:User {id: $u})-[:INTERACTED_WITH]->(i:Item) RETURN DISTINCT i.id AS item"
_COLLAB = (
    "MATCH (u:User {id: $u})-[:INTERACTED_WITH]->(i:Item) WITH DISTINCT i "
    "MATCH (i)<-[:INTERACTED_WITH]-(v:User) WHERE v.id <> $u "
    "WITH v, count(DISTINCT i) AS w <LIMIT>"
    "MATCH (v)-[:INTERACTED_WITH]->(j:Item) WITH DISTINCT v, w, j "
    "RETURN j.id AS item, sum(w) AS score"
)
_CONTENT = (
    "MATCH (u:User {id: $u})-[:INTERACTED_WITH]->(h:Item) WITH DISTINCT h "
    "MATCH (h)-[s:SIMILAR_TO]->(j:Item) RETURN j.id AS item, sum(s.score) AS score"
)
_EXPLAIN_SIMILAR = (
    "MATCH (u:User {id: $u})-[:INTERACTED_WITH]->(h:Item) WITH DISTINCT h "
    "MATCH (h)-[s:SIMILAR_TO]->(t:Item {id: $i}) RETURN h.id AS via, max(s.score) AS score"
)
_EXPLAIN_COUSER = (
    "MATCH (u:User {id: $u})-[:INTERACTED_WITH]->(s:Item) WITH DISTINCT s "
    "MATCH (s)<-[:INTERACTED_WITH]-(v:User)-[:INTERACTED_WITH]->(t:Item {id: $i}) "
    "WHERE v.id <> $u AND s.id <> $i RETURN DISTINCT s.id AS shared, v.id AS other"
)


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
