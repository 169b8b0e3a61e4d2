"""The graph store as a serving companion: explanation paths and two-hop candidates.

``lgrec serve --graph-path DIR`` opens the embedded LadybugDB store written by
``lgrec graph export`` read-only (several workers may share it), ``lgrec serve --graph-uri
URI`` a FalkorDB (``redis://``) or Neo4j (``bolt://``, ``neo4j://``) server (user, password and
database from the environment, see :mod:`lgrec.store.connect`), and adds:

* ``GET /explain``: the store's paths from the user to the item
  (:meth:`lgrec.store.GraphStore.explain_paths`): user → history item → ``SIMILAR_TO`` → item,
  and user → shared item ← other user → item;
* ``GET /recommend?candidates=graph``: the candidate set is the user's unseen items within two
  hops (:meth:`lgrec.store.GraphStore.neighbors_two_hop`, at most ``pool`` of them by their
  path score), which the model then ranks: the answer is
  :math:`\\operatorname{top-k}_{j \\in C(u)} s_{uj}` with :math:`C(u)` the two-hop set minus
  the user's current history and :math:`s_{uj}` the model score.

Every query is parameterised (ids travel as parameters, never inside the Cypher text). A
store that fails raises :class:`~lgrec.store.GraphStoreError`, a
:class:`~lgrec.errors.StoreError` (HTTP 503).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lgrec.errors import ConfigError, UnknownIdError

log = logging.getLogger(__name__)


class GraphCompanion:
    """Read-only view of a graph store for the server.

    Args:
        path: a LadybugDB store directory (``lgrec graph export --path``), or
        uri: a FalkorDB or Neo4j server holding a store (``lgrec graph export --uri``).
        pool: how many two-hop candidates (by path score) the model ranks.
        buffer_pool_mb: MiB of page cache of an embedded (LadybugDB) store.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        uri: str | None = None,
        pool: int = 1000,
        buffer_pool_mb: int = 256,
    ):
        from lgrec.store.connect import connect_graph_store

        if pool < 1:
            raise ConfigError(f"GraphCompanion(pool={pool!r}): expected an integer ≥ 1")
        self.path = Path(path) if path else None
        self.pool = int(pool)
        self.store = connect_graph_store(
            path=path, uri=uri, buffer_pool_mb=buffer_pool_mb, read_only=True
        )

    def paths(self, user_id: str, item_id: str, limit: int = 5) -> list[dict[str, Any]]:
        """Paths user → … → item, strongest first (empty for a user the store lacks)."""
        try:
            return self.store.explain_paths(user_id, item_id, limit=limit)
        except UnknownIdError:
            return []

    def candidates(self, user_id: str) -> list[str] | None:
        """Item ids two hops from the user that the store has not seen them use (at most
        :attr:`pool`, strongest paths first); ``None`` for a user the store lacks."""
        try:
            pairs = self.store.neighbors_two_hop(user_id, k=self.pool)
        except UnknownIdError:
            return None
        return [item for item, _ in pairs]

    def close(self) -> None:
        self.store.close()
