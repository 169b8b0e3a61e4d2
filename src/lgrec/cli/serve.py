"""``lgrec serve`` (HTTP API for a saved model) and ``lgrec retrain`` (refit with feedback)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from lgrec.privacy.cli import add_pseudonym_args

log = logging.getLogger("lgrec")
STORE_HELP = (
    "feedback store: a SQLite file (default: MODEL/feedback.sqlite) or postgresql://user@host/db "
    "(password from PGPASSWORD or a password file, never in the URL)"
)


def add_parsers(sub: Any) -> None:
    """Register ``serve`` and ``retrain``."""
    from lgrec.credentials import add_secret_args

    s = sub.add_parser("serve", help="HTTP API + web page for a saved model (FastAPI/uvicorn)")
    s.add_argument("--model", required=True, help="saved model directory (lgrec train --out)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    s.add_argument("--store", help=STORE_HELP)
    s.add_argument(
        "--sync-interval", type=float, metavar="S",
        help="seconds between looks for other servers' writes (default 0; 0.5 on PostgreSQL)",
    )  # fmt: skip
    add_secret_args(s, "api-key", "LGREC_API_KEY", "key for the write endpoints")
    s.add_argument(
        "--index", choices=("exact", "faiss"), default="exact",
        help="/recommend candidates: score every item, or ask a FAISS index (large catalogues)",
    )  # fmt: skip
    s.add_argument("--index-options", metavar="K=V,…", help="e.g. method=ivf,nprobe=64")
    s.add_argument("--protect-reads", action="store_true", help="read endpoints need the key too")
    s.add_argument("--max-body", type=int, default=64 * 1024, help="max request body bytes")
    s.add_argument("--max-header", type=int, default=16 * 1024, help="max request header bytes")
    s.add_argument(
        "--rate-limit", type=float, default=20.0,
        help="expensive requests (query=, /explain, creates) per second per client and worker "
        "(0: off; bursts of twice as many)",
    )  # fmt: skip
    s.add_argument("--online-lr", type=float, default=0.5, help="η of the feedback fold-in")
    s.add_argument("--no-text", action="store_true", help="disable text (queries, text cold start)")
    s.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    s.add_argument(
        "--score-cache-mb", type=float, default=512.0,
        help="MiB per worker for the trained users' precomputed scores and the item × item "
        "matrices that fold feedback into them (0: off)",
    )  # fmt: skip
    s.add_argument(
        "--graph-path", metavar="DIR", help="LadybugDB graph store: /explain paths, candidates"
    )
    s.add_argument(
        "--graph-uri",
        metavar="URI",
        help="graph store on a server instead: redis://HOST:PORT (FalkorDB) or bolt://HOST:PORT "
        "(Neo4j); user/password/database from $LGREC_GRAPH_USER/PASSWORD/DATABASE",
    )
    s.add_argument("-v", "--verbose", action="store_true")
    add_pseudonym_args(s)
    s.set_defaults(run=cmd_serve)
    s = sub.add_parser("retrain", help="refit a saved model on its data + stored feedback")
    s.add_argument("--model", required=True, help="saved model directory")
    s.add_argument("--store", help=STORE_HELP)
    s.add_argument("--out", required=True, help="directory of the retrained model")
    s.add_argument("--data-dir", help="root folder of the data sets")
    s.add_argument("--config", help="TOML configuration the model was trained with")
    s.add_argument(
        "--seen-only",
        action="store_true",
        help="when the data set cannot be rebuilt, refit a model that did not learn from "
        "ratings on its saved binary interaction matrix (no ratings, no timestamps)",
    )
    s.add_argument("-v", "--verbose", action="store_true")
    add_pseudonym_args(s)
    s.set_defaults(run=cmd_retrain)


def cmd_serve(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from lgrec.credentials import read_secret
    from lgrec.errors import ModelFileError
    from lgrec.serve.app import ServeSettings, create_app

    if not (Path(args.model) / "config.json").is_file():
        raise ModelFileError(f"{args.model} is not a saved lgrec model (no config.json)")
    key = read_secret(args.api_key_file, "LGREC_API_KEY")
    settings = ServeSettings(
        model=args.model, store=args.store, api_key=key, protect_reads=args.protect_reads,
        max_body=args.max_body, max_header=args.max_header, rate_limit=args.rate_limit,
        rate_burst=max(1, int(2 * args.rate_limit)), online_lr=args.online_lr,
        text="off" if args.no_text else "auto", threads=args.threads, graph_path=args.graph_path,
        graph_uri=args.graph_uri, score_cache_mb=args.score_cache_mb,
        pseudonymize=bool(args.pseudonymize), pseudonym_key_file=args.pseudonym_key_file,
        sync_interval=args.sync_interval, index=args.index, index_options=args.index_options,
    )  # fmt: skip
    if not key:
        log.warning("no API key (LGREC_API_KEY / --api-key-file): write endpoints are disabled")
    if args.graph_path:  # erased users leave the graph store before it is opened read-only
        from lgrec.privacy.erasure import purge_graph_path

        purge_graph_path(settings.store_path, args.graph_path)
    level = "info" if args.verbose else "warning"
    if args.workers > 1:
        os.environ.update(settings.to_env())
        os.environ.setdefault("LGREC_LOG_LEVEL", level.upper())
        uvicorn.run(
            "lgrec.serve.app:app_from_env", factory=True, host=args.host, port=args.port,
            workers=args.workers, log_level=level,
        )  # fmt: skip
    else:
        uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=level)
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    from lgrec.serve.retrain import retrain

    store = args.store or str(Path(args.model) / "feedback.sqlite")
    out = retrain(
        args.model, store, args.out, data_dir=args.data_dir, config=args.config,
        seen_only=args.seen_only, pseudonymize=bool(args.pseudonymize),
        pseudonym_key_file=args.pseudonym_key_file,
    )  # fmt: skip
    print(f"retrained {args.model} + feedback from {store} → {out}")
    return 0
