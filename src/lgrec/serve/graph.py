"""The graph store as a serving companion: explanation paths and two-hop candidates.

``lgrec serve --graph-path DIR`` opens the embedded LadybugDB store written by
``lgrec graph export`` read-only (several workers may share it) and adds:

* ``GET /explain``: the store's paths from the user to the item
  (:meth:`lgrec.store.GraphStore.explain_paths`): user → history item → ``SIMILAR_TO`` → item,
  and user → shared item ← other user → item;
* ``GET /recommend?candidates=graph``: the candidate set is the user's unseen items within two
  hops (:meth:`lgrec.store.GraphStore.neighbors_two_hop`, at most ``pool`` of them by their
  path score), which the model then ranks: the answer is
  :math:`\\operatorname{top-k}_{j \\in C(u)} s_{uj}` with :math:`C(u)` the two-hop set minus
  the user's current history and :math:`s_{uj}` the model score.

Every query is parameterised (ids travel as parameters, never inside the Cypher text).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lgrec.errors import ConfigError, UnknownIdError

log = logging.getLogger(__name__)


class GraphCompanion:
    """Read-only view of a LadybugDB graph store for the server.

    Args:
        path: the store directory (``lgrec graph export --path``).
        pool: how many two-hop candidates (by path score) the model ranks.
        buffer_pool_size: bytes of page cache of the embedded database.
    """

    def __init__(self, path: str | Path, *, pool: int = 1000, buffer_pool_size: int = 256 << 20):
        from lgrec.store import open_graph_store

        self.path = Path(path)
        if pool < 1:
            raise ConfigError(f"GraphCompanion(pool={pool!r}): expected an integer ≥ 1")
        self.pool = int(pool)
        self.store = open_graph_store(
            "ladybug", path=self.path, read_only=True, buffer_pool_size=buffer_pool_size
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
