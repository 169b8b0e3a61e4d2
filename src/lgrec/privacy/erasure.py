"""Erasure outside the server: ``lgrec forget`` and purging erased users from a graph store.

``lgrec forget --user ID --store FILE [--graph-path DIR]`` erases a user without a running
server, or beside one that shares the store (it folds the user out at its next request):

1. the feedback store deletes their events and record and keeps a tombstone
   (:meth:`lgrec.store.FeedbackStore.delete_user`), in one transaction;
2. the graph store loses the node and every edge of each tombstoned user it still holds
   (:func:`purge_graph`; ``lgrec serve --graph-path`` runs the same before its workers start,
   since a store a server has open read-only cannot be written);
3. the next ``lgrec retrain`` drops their training interactions
   (:func:`lgrec.privacy.tombstones.drop_erased`).

Model bundles written earlier still hold the user's trained vector: retrain, and delete the
old bundle, to remove it from disk (lgrec deletes no file it did not create).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from lgrec.errors import ConfigError, LgrecError
from lgrec.privacy.tombstones import erased_mask
from lgrec.store.base import is_postgres_url, open_feedback_store

log = logging.getLogger(__name__)


def purge_graph(graph: Any, tombstones: frozenset[str]) -> list[str]:
    """Delete from ``graph`` (a writable :class:`lgrec.store.GraphStore`) every user whose id
    has a tombstone, with all their relationships; return the ids deleted."""
    if not tombstones:
        return []
    ids = [r["id"] for r in graph.query("MATCH (u:User) RETURN u.id AS id")]
    gone = [u for u, hit in zip(ids, erased_mask(ids, tombstones)) if hit]
    for user_id in gone:
        if hasattr(graph, "delete_user"):
            graph.delete_user(user_id)
        else:  # graph stores without delete_user (before lgrec.store gained it)
            graph.query("MATCH (u:User {id: $u}) DETACH DELETE u", {"u": user_id}, write=True)
    if gone:
        log.info("graph store %s: purged %d erased user(s)", graph, len(gone))
    return gone


def purge_graph_path(store_path: str | Path, graph_path: str | Path) -> list[str]:
    """:func:`purge_graph` on the LadybugDB store at ``graph_path`` with the tombstones of the
    feedback store at ``store_path`` (nothing to do, and nothing opened, without either)."""
    from lgrec.privacy.tombstones import read_tombstones
    from lgrec.store import open_graph_store

    if not is_postgres_url(store_path) and not Path(store_path).is_file():
        return []
    tomb = read_tombstones(str(store_path))
    if not tomb:
        return []
    with open_graph_store("ladybug", path=graph_path, buffer_pool_size=256 << 20) as graph:
        return purge_graph(graph, tomb)


def forget(
    user_id: str, store_path: str | Path, graph: Any | None = None, *, create: bool = False
) -> dict[str, Any]:
    """Erase ``user_id`` (as stored: already pseudonymised when the data are) in the feedback
    store at ``store_path`` (created only with ``create``) and purge every tombstoned user
    from the writable graph store ``graph`` when given. Returns the store's counts
    (:meth:`~lgrec.store.FeedbackStore.delete_user`) plus ``graph_nodes`` removed."""
    if not create and not is_postgres_url(store_path) and not Path(store_path).is_file():
        raise ConfigError(f"lgrec forget: no feedback store at {store_path}")
    with open_feedback_store(store_path) as store:
        counts = store.delete_user(user_id)
        tomb = store.tombstones()
    purged = purge_graph(graph, tomb) if graph is not None else []
    return {**counts, "graph_nodes": len(purged)}


def add_forget_parser(sub: Any) -> None:
    """``lgrec forget`` on the top-level subparsers."""
    from lgrec.privacy.cli import add_pseudonym_args

    s = sub.add_parser("forget", help="erase a user: feedback store, graph store, next retrain")
    s.add_argument("--user", required=True, help="external user id")
    s.add_argument("--model", help="model directory (its feedback.sqlite, its pseudonym key)")
    s.add_argument(
        "--store",
        help="feedback store: SQLite file (default: MODEL/feedback.sqlite) or postgresql://…",
    )
    s.add_argument("--graph-path", metavar="DIR", help="LadybugDB graph store to purge too")
    s.add_argument("-v", "--verbose", action="store_true")
    add_pseudonym_args(s)
    s.set_defaults(run=cmd_forget)


def cmd_forget(args: argparse.Namespace) -> int:
    """Entry point of ``lgrec forget``."""
    from lgrec.privacy.cli import bundle_user_mapper

    if not (args.store or args.model):
        raise ConfigError("lgrec forget needs --store FILE or --model DIR")
    store = args.store or str(Path(args.model) / "feedback.sqlite")
    if args.model:
        user = bundle_user_mapper(args, args.model)(args.user)
    elif args.pseudonymize:
        from lgrec.privacy.pseudonym import load_key

        user = load_key(args.pseudonym_key_file)(args.user)
    else:
        user = args.user
    graph = None
    if args.graph_path:
        from lgrec.store import open_graph_store

        try:
            graph = open_graph_store("ladybug", path=args.graph_path, buffer_pool_size=256 << 20)
        except LgrecError as e:
            raise ConfigError(
                f"lgrec forget: cannot open the graph store {args.graph_path} for writing ({e}); "
                "if a server has it open, the user's node goes when that server restarts — "
                "or stop it and run lgrec forget again"
            ) from None
    try:
        got = forget(user, store, graph, create=not args.store)
    finally:
        if graph is not None:
            graph.close()
    again = "" if got["tombstone"] else " (already erased before)"
    print(
        f"erased user {args.user}{again}: {got['events']} feedback events deleted, "
        f"{got['graph_nodes']} graph node(s) removed, tombstone in {store} "
        "(the next `lgrec retrain` leaves out their training interactions)"
    )
    return 0
