"""The ``lgrec`` command: prepare, embed, train, evaluate, tune, recommend, profile, quickstart.

Settings come from a TOML file (``--config``) plus flags; every subcommand has ``--help``.
Errors raised on purpose (:class:`lgrec.errors.LgrecError`) are printed as one line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from lgrec.errors import LgrecError

log = logging.getLogger("lgrec")


# ---- argument parsing ----------------------------------------------------------------------
def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--config", help="TOML configuration file (flags override it)")
    g.add_argument(
        "--dataset",
        help="data set name (ml-100k, ml-1m, colakg-ml-1m, gowalla, "
        "amazon-videogames, lastfm-social) or a path",
    )
    g.add_argument(
        "--data-dir",
        help="root folder of the data sets (default: $LGREC_DATA_DIR, else ../shared/data)",
    )
    g.add_argument("--fold", help="MovieLens-100K fold (u1..u5, ua, ub); default u1")
    g.add_argument("--split", choices=["fixed", "random", "temporal", "cold"])
    g.add_argument("--valid-ratio", type=float, help="share of training data used for validation")
    g.add_argument("--k-core", type=int, help="drop users/items with fewer interactions")
    g.add_argument("--seed", type=int)
    g.add_argument(
        "--text-model",
        help="sentence-transformers model name or path (default: packaged all-MiniLM-L6-v2)",
    )
    g.add_argument(
        "--text-max-length",
        type=int,
        help="truncate item texts to this many tokens when encoding (default 128; 64 is "
        "5x faster than 256 on long descriptions at equal quality, see docs/benchmarks.md)",
    )
    g.add_argument("--threads", type=int, help="torch CPU threads")
    g.add_argument(
        "--cache-dir", help="embedding cache (default $LGREC_CACHE_DIR or ~/.cache/lgrec)"
    )
    g.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")


def _cfg(args: argparse.Namespace, **extra):
    from lgrec.config import load_config, parse_param

    params: dict = {}
    for text in getattr(args, "param", None) or []:
        model, name, value = parse_param(text)
        params.setdefault(model, {})[name] = value
    over = dict(
        dataset=args.dataset,
        data_dir=args.data_dir,
        fold=args.fold,
        split=args.split,
        valid_ratio=args.valid_ratio,
        k_core=args.k_core,
        seed=args.seed,
        text_model=args.text_model,
        text_max_length=args.text_max_length,
        threads=args.threads,
        cache_dir=args.cache_dir,
    )
    over.update(extra)
    cfg = load_config(args.config, **over)
    for model, kv in params.items():
        cfg.params.setdefault(model, {}).update(kv)
    return cfg


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lgrec",
        description="Language models + graph neural networks for recommendation.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("prepare", help="load, clean and split a data set; print the report")
    _common(s)
    s.add_argument("--out", help="write the cleaned tables as Parquet here")

    s = sub.add_parser("embed", help="encode item texts with the language model (cached)")
    _common(s)

    s = sub.add_parser("train", help="train one model and save it (safetensors + JSON)")
    _common(s)
    s.add_argument("--model", default="lmgcn", help="model name (see `lgrec evaluate --help`)")
    s.add_argument(
        "--param",
        action="append",
        metavar="MODEL.NAME=VALUE",
        help="model hyper-parameter, e.g. lmgcn.spectral_k=128 (repeatable)",
    )
    s.add_argument("--out", required=True, help="model directory to write")
    s.add_argument("--no-refit", action="store_true", help="keep the train-only fit")
    s.add_argument(
        "--graph-path", metavar="DIR", help="train on the interactions of this LadybugDB store"
    )

    s = sub.add_parser("evaluate", help="fit every model on one split; comparison table + chart")
    _common(s)
    s.add_argument("--models", help="comma-separated model names (default: all baselines + lmgcn)")
    s.add_argument("--param", action="append", metavar="MODEL.NAME=VALUE")
    s.add_argument("--out", help="report folder (default runs/<dataset>-<split>)")
    s.add_argument("--no-refit", action="store_true", help="do not refit on train + valid")

    s = sub.add_parser("tune", help="search one model's hyper-parameters on the validation split")
    _common(s)
    s.add_argument("--model", required=True, help="model to tune, e.g. lightgcn")
    s.add_argument(
        "--param", action="append", metavar="MODEL.NAME=VALUE", help="fixed, e.g. bprmf.epochs=30"
    )
    s.add_argument(
        "--space",
        action="append",
        metavar="NAME=LOW:HIGH[:log] | NAME=A,B,C",
        help="search range or choices (repeatable; overrides the default and [tune.MODEL])",
    )
    s.add_argument("--no-default-space", action="store_true", help="search only what is given")
    s.add_argument("--metric", help="Recall@20 (default; RMSE for biasedmf), NDCG@10, ...")
    s.add_argument("--trials", type=int, default=20, help="number of trials (default 20)")
    s.add_argument("--timeout", type=float, help="stop starting trials after SECONDS")
    s.add_argument("--out", default="tune.toml", help="best [params.MODEL] as TOML")
    s.add_argument("--log", help="JSON log of every trial (default: OUT with .json)")

    s = sub.add_parser("recommend", help="top-K items for a user from a saved model")
    s.add_argument("--model", help="saved model directory (with --friends: optional)")
    s.add_argument("--user", required=True, help="external user id")
    s.add_argument("-k", type=int, default=10)
    s.add_argument("--query", help="free-text request that steers the ranking")
    s.add_argument("--include-seen", action="store_true")
    _graph_parsers(sub, s)  # graph export/query, recommend --friends (lgrec.graphcli)

    s = sub.add_parser("profile", help="a user's language profile: text, categories, history")
    _common(s)
    s.add_argument("--user", required=True, help="external user id")

    s = sub.add_parser("quickstart", help="the whole pipeline on MovieLens-100K (u1) in one go")
    s.add_argument("--data-dir")
    s.add_argument("--out", default="runs/quickstart")
    s.add_argument("--threads", type=int)
    s.add_argument("--models", help="comma-separated subset of models")
    s.add_argument("--config", help="TOML configuration file")
    s.add_argument("--param", action="append", metavar="MODEL.NAME=VALUE")
    s.add_argument("-v", "--verbose", action="store_true")
    _serve_parsers(sub)  # serve, retrain (lgrec.serve)
    return p


# ---- commands ------------------------------------------------------------------------------
def cmd_prepare(args) -> int:
    from lgrec.pipeline import prepare, setup

    cfg = _cfg(args)
    setup(cfg)
    prep = prepare(cfg)
    print(prep.report)
    sp = prep.split
    print(prep.data.summary())
    valid_n = len(sp.valid) if sp.valid is not None else 0
    print(
        f"split {cfg.split}: train {len(sp.train):,}  valid {valid_n:,}  test {len(sp.test):,}"
        + (f"  cold items {len(sp.cold_items):,}" if len(sp.cold_items) else "")
    )
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for part in ("train", "valid", "test"):
            d = getattr(sp, part)
            if d is not None:
                d.interactions.to_parquet(out / f"{part}.parquet", index=False)
        prep.data.items.to_parquet(out / "items.parquet", index=False)
        prep.data.users.to_parquet(out / "users.parquet", index=False)
        print(f"wrote {out}")
    return 0


def cmd_embed(args) -> int:
    from lgrec.pipeline import encode_items, prepare, setup

    cfg = _cfg(args, valid_ratio=0.0)
    setup(cfg)
    prep = prepare(cfg)
    emb = encode_items(prep, cfg)
    n = len(emb)
    print(
        f"encoded {n:,} item texts → {emb.shape[1]}-d in {prep.encode_seconds:.1f}s "
        f"({n / max(prep.encode_seconds, 1e-9):,.0f} texts/s, cached)"
    )
    return 0


def cmd_train(args) -> int:
    from lgrec.pipeline import build_model, fit_model, prepare, save_bundle, setup

    cfg = _cfg(args, refit=not args.no_refit)
    setup(cfg)
    prep = prepare(cfg)
    if args.graph_path:  # training interactions from the graph store (lgrec graph export)
        from dataclasses import replace

        from lgrec.store.training import store_split

        split = store_split(prep.split, args.graph_path, valid_ratio=cfg.valid_ratio, seed=cfg.seed)
        prep = replace(prep, split=split)
    model = build_model(args.model, cfg)
    model, fit_s = fit_model(model, prep, cfg)
    path = save_bundle(model, prep.data, args.out)
    print(f"trained {args.model} in {fit_s:.1f}s → {path}")
    return 0


def cmd_evaluate(args, *, title: str | None = None) -> tuple[int, list[dict], Path]:
    from lgrec.eval.report import comparison_table, write_report
    from lgrec.pipeline import evaluate_all, prepare, setup

    extra = {"refit": not args.no_refit}
    if args.models:
        extra["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    cfg = _cfg(args, **extra)
    setup(cfg)
    prep = prepare(cfg)
    out = Path(args.out or f"runs/{Path(cfg.dataset).name}-{cfg.split}")
    rows = evaluate_all(cfg, prep, out=out)
    print(comparison_table(rows, columns=_columns(rows, cfg.ks)))
    paths = write_report(
        rows,
        out,
        title=title or f"lgrec on {prep.data.name} ({cfg.split} split)",
        chart_metrics=(f"Recall@{max(cfg.ks)}", f"NDCG@{max(cfg.ks)}"),
        meta={
            "dataset": prep.data.summary(),
            "encode_s": round(prep.encode_seconds, 2),
            "config": {k: v for k, v in vars(cfg).items() if k != "params"}
            | {"params": cfg.params},
        },
    )
    print("report: " + ", ".join(str(p) for p in paths.values()))
    return 0, rows, out


def cmd_tune(args) -> int:
    from lgrec.pipeline import prepare, setup
    from lgrec.tune import tune
    from lgrec.tune_space import config_table, resolve_space

    cfg = _cfg(args)
    setup(cfg)
    space = resolve_space(
        args.model,
        table=config_table(cfg.tune, args.model),
        flags=args.space or [],
        defaults=not args.no_default_space,
    )
    prep = prepare(cfg)
    res = tune(
        prep, cfg, args.model, space, metric=args.metric, trials=args.trials, timeout=args.timeout
    )
    print(res.table())
    toml_path, log_path = res.write(args.out, args.log)
    print(f"best valid {res.metric.name} {res.best['value']:.4f}: {toml_path} (log {log_path})")
    return 0


def _columns(rows: list[dict], ks) -> list[str]:
    k1, k2 = min(ks), max(ks)
    want = [
        f"Recall@{k2}",
        f"NDCG@{k2}",
        f"NDCG@{k1}",
        f"Precision@{k1}",
        f"HitRate@{k1}",
        "RMSE",
        "MAE",
        "AUC",
        "Accuracy",
        f"cold_Recall@{k2}",
        f"cold_all_Recall@{k2}",
        "fit_s",
        "eval_s",
    ]
    present = {k for r in rows for k in r}
    return ["model"] + [c for c in want if c in present]


def cmd_recommend(args) -> int:
    import pandas as pd

    from lgrec.models import Recommender

    if getattr(args, "friends", False):
        from lgrec.graphcli import cmd_friends

        return cmd_friends(args)
    if not args.model:
        raise LgrecError("--model is required (a saved model directory), unless --friends")
    path = Path(args.model)
    model = Recommender.load(path)
    users = pd.Index(model.user_ids_)
    if args.user not in users:
        raise LgrecError(
            f"unknown user {args.user!r} in model {path} "
            f"({len(users):,} users, e.g. {', '.join(users[:3])})"
        )
    uid = users.get_loc(args.user)
    items, scores = model.recommend(
        [uid], k=args.k, exclude_seen=not args.include_seen, query=args.query
    )
    titles = _titles(path, model)
    for rank, (i, s) in enumerate(zip(items[0].tolist(), scores[0].tolist()), 1):
        print(f"{rank:>3}. {titles[i]}  (item {model.item_ids_[i]}, score {s:.3f})")
    return 0


def _titles(path: Path, model) -> list[str]:
    f = path / "items.parquet"
    if f.is_file():
        import pandas as pd

        items = pd.read_parquet(f)
        if "title" in items:
            return items["title"].fillna("").astype(str).tolist()
    return list(model.item_ids_)


def cmd_profile(args) -> int:
    from lgrec.pipeline import prepare, setup
    from lgrec.text.profiles import profile_texts

    cfg = _cfg(args, valid_ratio=0.0)
    setup(cfg)
    prep = prepare(cfg)
    train = prep.split.train
    u = prep.data.user_index(args.user)
    text = profile_texts(train.subset(train.interactions["user"].to_numpy() == u))[u]
    hist = train.interactions[train.interactions["user"] == u].sort_values("timestamp")
    print(f"user {args.user}: {len(hist)} training interactions")
    print(f"profile: {text}")
    if "title" in prep.data.items:
        recent = prep.data.items["title"].to_numpy()[hist["item"].to_numpy()[-5:]]
        print("recent: " + "; ".join(map(str, recent)))
    return 0


def cmd_quickstart(args) -> int:
    t0 = time.perf_counter()
    ns = argparse.Namespace(
        config=args.config,
        dataset="ml-100k",
        data_dir=args.data_dir,
        fold="u1",
        split="fixed",
        valid_ratio=None,
        k_core=None,
        seed=None,
        text_model=None,
        text_max_length=None,
        threads=args.threads,
        cache_dir=None,
        models=args.models,
        param=args.param,
        out=args.out,
        no_refit=False,
    )
    print("lgrec quickstart: MovieLens-100K, fold u1 (80,000 train / 20,000 test ratings)\n")
    _, rows, out = cmd_evaluate(ns, title="lgrec quickstart: MovieLens-100K u1")
    best = "lmgcn" if any(r["model"] == "lmgcn" for r in rows) else rows[-1]["model"]
    print(f"\nexample recommendations from {best}:")
    for user in ("1", "42"):
        print(f"\nuser {user}:")
        cmd_recommend(
            argparse.Namespace(
                model=str(out / "models" / best), user=user, k=5, query=None, include_seen=False
            )
        )
    print(f"\ndone in {time.perf_counter() - t0:.0f}s")
    return 0


# ---- serve / retrain (owned by lgrec.serve) ------------------------------------------------
def _serve_parsers(sub) -> None:
    from lgrec.credentials import add_secret_args

    s = sub.add_parser("serve", help="HTTP API + web page for a saved model (FastAPI/uvicorn)")
    s.add_argument("--model", required=True, help="saved model directory (lgrec train --out)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    s.add_argument("--store", help="feedback SQLite file (default: MODEL/feedback.sqlite)")
    add_secret_args(s, "api-key", "LGREC_API_KEY", "key for the write endpoints")
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
        help="MiB per worker for the trained users' precomputed scores (0: off)",
    )  # fmt: skip
    s.add_argument(
        "--graph-path", metavar="DIR", help="LadybugDB graph store: /explain paths, candidates"
    )
    s.add_argument("-v", "--verbose", action="store_true")
    s = sub.add_parser("retrain", help="refit a saved model on its data + stored feedback")
    s.add_argument("--model", required=True, help="saved model directory")
    s.add_argument("--store", help="feedback SQLite file (default: MODEL/feedback.sqlite)")
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


def cmd_serve(args) -> int:
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
        score_cache_mb=args.score_cache_mb,
    )  # fmt: skip
    if not key:
        log.warning("no API key (LGREC_API_KEY / --api-key-file): write endpoints are disabled")
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


def cmd_retrain(args) -> int:
    from lgrec.serve.retrain import retrain

    store = args.store or str(Path(args.model) / "feedback.sqlite")
    out = retrain(
        args.model, store, args.out, data_dir=args.data_dir, config=args.config,
        seen_only=args.seen_only,
    )  # fmt: skip
    print(f"retrained {args.model} + feedback from {store} → {out}")
    return 0


# ---- graph (owned by lgrec.graphcli) -------------------------------------------------------
def _graph_parsers(sub, recommend) -> None:
    from lgrec.graphcli import add_friend_args, add_graph_parsers

    add_graph_parsers(sub)
    add_friend_args(recommend)


def cmd_graph(args) -> int:
    from lgrec.graphcli import cmd_graph as run

    return run(args)


COMMANDS = {
    "prepare": cmd_prepare,
    "embed": cmd_embed,
    "train": cmd_train,
    "evaluate": lambda a: cmd_evaluate(a)[0],
    "tune": cmd_tune,
    "recommend": cmd_recommend,
    "profile": cmd_profile,
    "quickstart": cmd_quickstart,
    "serve": cmd_serve,
    "retrain": cmd_retrain,
    "graph": cmd_graph,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        return COMMANDS[args.command](args)
    except LgrecError as e:
        print(f"lgrec {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["build_parser", "main"]
