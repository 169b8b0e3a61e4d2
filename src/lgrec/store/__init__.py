"""Durable state beside the models: the SQLite feedback store and the graph database.

* :class:`FeedbackStore`: events (click, purchase, rating, view, like), users and items in one
  SQLite file, crash-safe and idempotent; :class:`~lgrec.store.postgres.PostgresFeedbackStore`
  the same in PostgreSQL, shared by servers on several machines. Both implement
  :class:`FeedbackStoreProtocol`; :func:`open_feedback_store` opens a path or a
  ``postgresql://`` URL.
* :class:`GraphStore`: the user–item property graph behind one interface, embedded LadybugDB
  (default), FalkorDB over its Redis protocol, or a Bolt server (Neo4j); open one with
  :func:`open_graph_store`.
"""

from lgrec.store.base import FeedbackStoreProtocol, open_feedback_store
from lgrec.store.feedback import EVENT_TYPES, FeedbackStore
from lgrec.store.graphdb import (
    GraphStore,
    GraphStoreError,
    WriteQueryError,
    graph_tables,
    open_graph_store,
)

__all__ = [
    "EVENT_TYPES",
    "FeedbackStore",
    "FeedbackStoreProtocol",
    "GraphStore",
    "GraphStoreError",
    "WriteQueryError",
    "graph_tables",
    "open_feedback_store",
    "open_graph_store",
]
