"""Recommendation queries over the graph store: two-hop candidates and explanation paths.

Two-hop candidates for a user :math:`u` with history :math:`H(u)` score an unseen item
:math:`j` as

.. math::
    s(j) = \\big|\\{(i, v) : i \\in H(u),\\ v \\ne u,\\ i \\in H(v),\\ j \\in H(v)\\}\\big|
           + w \\sum_{i \\in H(u)} \\mathrm{sim}(i, j),

the number of user → item ← user → item paths plus ``w`` times the summed ``SIMILAR_TO``
scores from the history.

The queries use the Cypher subset that LadybugDB, FalkorDB and Neo4j all run. None of them
asks the database for "items the user has not seen" (``WHERE NOT (u)-[:INTERACTED_WITH]->(j)``
runs on LadybugDB and FalkorDB, ``NOT EXISTS {...}`` on LadybugDB and Neo4j but not on
FalkorDB): the user's history is read by its own query and removed here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from lgrec.errors import DataError


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


class PathQueries:
    """Mixin of :class:`~lgrec.store.graphdb.GraphStore`: uses its ``_run``, ``_lock`` and
    ``_require_user``."""

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
