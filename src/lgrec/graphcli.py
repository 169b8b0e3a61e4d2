"""The ``lgrec graph`` subcommands, friend suggestions, and training from the graph store.

* ``lgrec graph export``: a data set's training interactions, its items' semantic
  associations (cosine kNN of the language-model embeddings of the item text) and its social
  edges (when the data set has them) written in bulk into a graph store
  (:meth:`lgrec.store.GraphStore.load_dataset`).
* ``lgrec graph query "CYPHER" --param name=value``: one parameterised, read-only query;
  rows printed as a table or JSON.
* ``lgrec recommend --friends --dataset lastfm-social --user U``: friend suggestions
  (:class:`lgrec.models.friends.FriendRecommender`).
* :func:`store_dataset` / :func:`fit_from_store`: a data set's training interactions read
  back from the store (:meth:`GraphStore.interactions_coo`) to train a model.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from lgrec.errors import ConfigError, DataError
from lgrec.privacy.cli import add_pseudonym_args, add_tombstone_args
from lgrec.progress import working

if TYPE_CHECKING:  # numpy/pandas load lazily: `lgrec --help` stays fast
    import numpy as np

log = logging.getLogger("lgrec.graph")


# ---- argument parsing ----------------------------------------------------------------------
def _store_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "graph store (password: $LGREC_GRAPH_PASSWORD or --password-file, never a flag)"
    )
    g.add_argument(
        "--backend",
        choices=["ladybug", "falkordb", "bolt"],
        help="default: ladybug with --path, falkordb with redis://, bolt with bolt:// or neo4j://",
    )
    g.add_argument("--path", help="LadybugDB directory")
    g.add_argument("--uri", help="server: redis://HOST:PORT (FalkorDB) or bolt://HOST:PORT (Neo4j)")
    g.add_argument("--user", dest="db_user", help="user name (default: $LGREC_GRAPH_USER)")
    g.add_argument("--password-file", help="file whose first line is the password")
    g.add_argument(
        "--database",
        help="Neo4j database, or FalkorDB graph name (default lgrec; or $LGREC_GRAPH_DATABASE)",
    )
    g.add_argument("--buffer-pool-mb", type=int, default=1024, help="LadybugDB page cache in MiB")
    g.add_argument("--password", dest="db_password", help=argparse.SUPPRESS)


def add_graph_parsers(sub: Any) -> None:
    """Register ``graph export`` and ``graph query`` on the top-level subparsers."""
    p = sub.add_parser("graph", help="export a data set to a graph database; query it")
    gsub = p.add_subparsers(dest="graph_command", required=True)
    s = gsub.add_parser("export", help="bulk-write interactions, semantic links, social edges")
    s.add_argument("--dataset", required=True, help="data set name or path")
    s.add_argument("--data-dir", help="root folder of the data sets")
    s.add_argument("--fold", help="MovieLens-100K fold (u1..u5, ua, ub)")
    s.add_argument("--similar-k", type=int, default=20, help="semantic neighbours (0: none)")
    s.add_argument("--similar-threshold", type=float, default=0.0, help="min cosine of a link")
    s.add_argument("--all-folds", action="store_true", help="export test interactions too")
    s.add_argument("--replace", action="store_true", help="clear a non-empty store first")
    s.add_argument("--text-model", help="sentence-transformers model (default MiniLM)")
    s.add_argument("--threads", type=int, help="torch CPU threads")
    s.add_argument("-v", "--verbose", action="store_true")
    _store_args(s)
    add_pseudonym_args(s)
    add_tombstone_args(s)
    s = gsub.add_parser("query", help="run one read-only, parameterised Cypher query")
    s.add_argument("cypher", help="the query; values as $name, given with --param")
    s.add_argument(
        "--param",
        action="append",
        metavar="NAME[:TYPE]=VALUE",
        help="query parameter (repeatable): text, or TYPE int/float/bool/str for others, "
        "e.g. --param u=42 (an id: ids are text) --param k:int=5",
    )
    s.add_argument("--json", action="store_true", help="print rows as JSON lines")
    s.add_argument("-v", "--verbose", action="store_true")
    _store_args(s)


def add_friend_args(p: argparse.ArgumentParser) -> None:
    """``--friends`` (and its data options) on ``lgrec recommend``."""
    g = p.add_argument_group("friend suggestions (--friends)")
    g.add_argument("--friends", action="store_true", help="suggest friends instead of items")
    g.add_argument("--dataset", help="data set with social edges, e.g. lastfm-social")
    g.add_argument("--data-dir", help="root folder of the data sets")
    g.add_argument("--alpha", type=float, help="taste weight α in [0, 1] (default: validated)")


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``["u=42", "k:int=5", "t=Toy Story"]`` → {"u": "42", "k": 5, "t": "Toy Story"}.

    A value is text unless typed: ``NAME:TYPE=VALUE`` with TYPE ``int``, ``float``, ``bool``
    or ``str``. Every backend then gets the same Python type: lgrec's ids are text, and a
    number compared with a text property fails on LadybugDB ("Could not convert ... to
    INT8") and matches nothing on FalkorDB and Neo4j.
    """
    casts = {"str": str, "int": int, "float": float, "bool": _to_bool}
    out: dict[str, Any] = {}
    for text in items or []:
        key, sep, raw = text.partition("=")
        name, _, kind = key.strip().partition(":")
        if not sep or not name.isidentifier() or (kind and kind not in casts):
            raise ConfigError(
                f"--param {text!r}: expected NAME=VALUE or NAME:TYPE=VALUE with TYPE in "
                f"{sorted(casts)}, e.g. u=42 or k:int=5"
            )
        try:
            out[name] = casts[kind or "str"](raw.strip() if kind else raw)
        except ValueError:
            raise ConfigError(f"--param {text!r}: {raw.strip()!r} is not a {kind}") from None
    return out


def _to_bool(raw: str) -> bool:
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise ValueError(raw)


# ---- stores and data -----------------------------------------------------------------------
def open_store(args: argparse.Namespace, *, read_only: bool = False) -> Any:
    """Open the graph store named by the flags of :func:`_store_args` (see
    :mod:`lgrec.store.connect`)."""
    from lgrec.store.connect import ENV_PASSWORD, connect_graph_store

    if getattr(args, "db_password", None):
        raise ConfigError(
            f"--password: a password on the command line shows in the process list; set "
            f"${ENV_PASSWORD} or give --password-file FILE"
        )
    return connect_graph_store(
        path=args.path,
        uri=args.uri,
        backend=args.backend,
        user=args.db_user,
        database=args.database,
        password_file=args.password_file,
        buffer_pool_mb=args.buffer_pool_mb,
        read_only=read_only,
    )


def train_part(ds: Any) -> Any:
    """The training interactions (``fold == "train"``) when the data set has folds."""
    if "fold" not in ds.interactions.columns:
        return ds
    return ds.subset((ds.interactions["fold"] == "train").to_numpy(), name=ds.name)


def export_dataset(
    ds: Any,
    store: Any,
    *,
    similar_k: int = 20,
    similar_threshold: float = 0.0,
    item_emb: np.ndarray | None = None,
    text_model: str | None = None,
) -> dict[str, Any]:
    """Write ``ds`` (+ semantic kNN links of its item text, + ``meta["social_edges"]``) into
    an empty ``store``; return the store counts and the seconds of each stage."""
    from lgrec.graph.semantic import semantic_knn

    info: dict[str, Any] = {}
    similar = None
    has_text = any(c in ds.items.columns for c in ("title", "description"))
    if similar_k > 0 and (has_text or item_emb is not None):
        t0 = time.perf_counter()
        if item_emb is None:
            from lgrec.text.encoder import TextEncoder

            with working(f"graph export: encoding {ds.n_items:,} item texts"):
                item_emb = TextEncoder(text_model).encode(ds.item_text())
        info["encode_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        with working(f"graph export: {similar_k} semantic neighbours per item"):
            similar = semantic_knn(item_emb, k=similar_k, threshold=similar_threshold)
        info["knn_s"] = time.perf_counter() - t0
    elif similar_k > 0:
        log.warning("%s: items have no title/description text; no SIMILAR_TO links", ds.name)
    social = ds.meta.get("social_edges")
    t0 = time.perf_counter()
    with working(f"graph export: writing {ds.n_users:,} users, {ds.n_items:,} items and "
                 f"{len(ds.interactions):,} interactions to {store.backend}"):  # fmt: skip
        counts = store.load_dataset(ds, similar=similar, social=social)
    info["load_s"] = time.perf_counter() - t0
    return {**counts, **info}


def store_dataset(store: Any, like: Any, name: str | None = None) -> Any:
    """A :class:`Dataset` with ``like``'s item/user tables and the store's interactions.

    Interactions come from :meth:`GraphStore.interactions_coo` (one row per edge, implicit:
    rating 1.0, event ``"click"``, timestamp = row order); ids must fit ``like``'s id space.
    """
    import numpy as np
    import pandas as pd

    u, i = store.interactions_coo()
    if len(u) and (u.max() >= like.n_users or i.max() >= like.n_items):
        raise DataError(
            f"store_dataset: the store holds user/item idx up to {u.max()}/{i.max()}, but "
            f"{like.name!r} has {like.n_users} users and {like.n_items} items"
        )
    inter = pd.DataFrame(
        {
            "user": u.astype(np.int32),
            "item": i.astype(np.int32),
            "rating": np.ones(len(u), dtype=np.float32),
            "timestamp": np.arange(len(u), dtype=np.int64),
            "event": "click",
        }
    )
    return like.with_interactions(inter, name=name or f"{like.name}@store")


def fit_from_store(model: Any, store: Any, like: Any, **fit_kw: Any) -> Any:
    """Fit ``model`` on the interactions held by ``store`` (see :func:`store_dataset`)."""
    return model.fit(store_dataset(store, like), **fit_kw)


# ---- commands ------------------------------------------------------------------------------
def cmd_graph(args: argparse.Namespace) -> int:
    """Entry point of ``lgrec graph ...``."""
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    return {"export": _cmd_export, "query": _cmd_query}[args.graph_command](args)


def _cmd_export(args: argparse.Namespace) -> int:
    from lgrec.data import load_dataset

    kw = {"fold": args.fold} if args.fold else {}
    t0 = time.perf_counter()
    with working(f"graph export: loading {args.dataset}"):
        ds = load_dataset(args.dataset, data_dir=args.data_dir, **kw)
    if not args.all_folds:
        ds = train_part(ds)
    if args.pseudonymize:  # user nodes get keyed-hash ids (lgrec.privacy.pseudonym)
        from lgrec.privacy.pseudonym import load_key, pseudonymize_dataset

        ds = pseudonymize_dataset(ds, load_key(args.pseudonym_key_file))
    if args.tombstones:  # users erased since (lgrec.privacy.tombstones)
        from lgrec.privacy.tombstones import drop_erased, read_tombstones

        ds = drop_erased(ds, read_tombstones(args.tombstones))
    read_s = time.perf_counter() - t0
    store = open_store(args)
    try:
        if args.replace:
            deleted = store.clear()
            print("replaced:", "  ".join(f"{k}={v:,}" for k, v in deleted.items()), "deleted")
        info = export_dataset(
            ds,
            store,
            similar_k=args.similar_k,
            similar_threshold=args.similar_threshold,
            text_model=args.text_model,
        )
    finally:
        store.close()
    print(f"exported {ds.summary()} → {store.backend} {args.path or args.uri}")
    print(f"read {read_s:.1f}s", *(f"{k} {v:.1f}s" for k, v in info.items() if k.endswith("_s")))
    print("  ".join(f"{k}={v:,}" for k, v in info.items() if not k.endswith("_s")))
    return 0


def _cmd_query(args: argparse.Namespace) -> int:
    params = parse_params(args.param)
    store = open_store(args, read_only=True)
    try:
        rows = store.query(args.cypher, params)
    finally:
        store.close()
    import pandas as pd

    if args.json:
        for r in rows:
            print(json.dumps(r, default=str, ensure_ascii=False))
    elif rows:
        print(pd.DataFrame(rows).to_string(index=False))
    else:
        print("(no rows)")
    return 0


def cmd_friends(args: argparse.Namespace) -> int:
    """``lgrec recommend --friends``: top-k friend suggestions with their shared evidence."""
    import numpy as np

    from lgrec.data import load_dataset
    from lgrec.graph.social import social_adjacency
    from lgrec.models.friends import FriendRecommender

    if not args.dataset:
        raise ConfigError("--friends needs --dataset (a data set with social edges)")
    ds = load_dataset(args.dataset, data_dir=args.data_dir)
    edges = ds.meta.get("social_edges")
    if edges is None or not len(edges):
        raise DataError(f"data set {ds.name!r} has no social edges (meta['social_edges'])")
    vectors: Any = ds.matrix("binary")
    if args.model:
        from lgrec.models import Recommender

        model = Recommender.load(args.model)
        emb = getattr(model, "user_emb_", None)
        if emb is None or model.user_ids_ != ds.users["user_id"].astype(str).tolist():
            raise ConfigError(f"{args.model}: no user embeddings for the users of {ds.name!r}")
        vectors = emb.numpy()
    alpha = FriendRecommender().alpha if args.alpha is None else args.alpha
    rec = FriendRecommender(alpha=alpha).fit(edges, vectors)
    u = ds.user_index(args.user)
    ids, scores = rec.recommend([u], k=args.k)
    f, x = social_adjacency(edges, ds.n_users), ds.matrix("binary")
    common = np.asarray(f[ids[0]] @ f[u].T.toarray()).ravel()
    shared = np.asarray(x[ids[0]] @ x[u].T.toarray()).ravel()
    uid = ds.users["user_id"].astype(str).to_numpy()
    print(f"friend suggestions for user {args.user} (α={rec.alpha_:g}, {f[u].nnz} friends):")
    for rank, (v, s, c, h) in enumerate(zip(ids[0], scores[0], common, shared), 1):
        print(
            f"{rank:>3}. user {uid[v]}  (score {s:.3f}, {int(c)} common friends, "
            f"{int(h)} shared items)"
        )
    return 0
