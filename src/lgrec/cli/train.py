"""``lgrec train`` (one model, saved) and ``lgrec tune`` (hyper-parameter search)."""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path
from typing import Any

from lgrec.cli.common import add_data_args, add_param_arg, run_config
from lgrec.distcli import add_distributed_args
from lgrec.errors import ConfigError
from lgrec.progress import note


def add_parsers(sub: Any) -> None:
    """Register ``train``."""
    s = sub.add_parser("train", help="train one model and save it (safetensors + JSON)")
    add_data_args(s)
    s.add_argument("--model", default="lmgcn", help="model name (see `lgrec evaluate --help`)")
    add_param_arg(s)
    s.add_argument("--out", required=True, help="model directory to write")
    s.add_argument("--no-refit", action="store_true", help="keep the train-only fit")
    s.add_argument(
        "--graph-path", metavar="DIR", help="train on the interactions of this LadybugDB store"
    )
    add_distributed_args(s)  # --distributed … (lgrec.distcli)
    s.set_defaults(run=cmd_train)


def add_tune(sub: Any) -> None:
    """Register ``tune``."""
    s = sub.add_parser("tune", help="search one model's hyper-parameters on the validation split")
    add_data_args(s)
    s.add_argument("--model", required=True, help="model to tune, e.g. lightgcn")
    add_param_arg(s, "fixed, e.g. bprmf.epochs=30")
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
    s.set_defaults(run=cmd_tune)


def cmd_train(args: argparse.Namespace) -> int:
    from lgrec import distcli

    if args.distributed and not distcli.in_torchrun():
        return distcli.launch(args, args.argv)  # the same command, in torchrun's processes
    from lgrec.pipeline import build_model, fit_model, prepare, save_bundle, setup

    cfg = run_config(args, refit=not args.no_refit)
    note(f"the model goes to {Path(args.out).resolve()}")
    setup(cfg)
    prep = prepare(cfg)
    if args.graph_path:  # training interactions from the graph store (lgrec graph export)
        from dataclasses import replace

        from lgrec.store.training import store_split

        split = store_split(prep.split, args.graph_path, valid_ratio=cfg.valid_ratio, seed=cfg.seed)
        prep = replace(prep, split=split)
    model = build_model(args.model, cfg)
    if cfg.kg and "item_graph" not in inspect.signature(model.fit).parameters:
        raise ConfigError(f"--kg: model {args.model!r} takes no item graph (lmgcn does)")
    with distcli.training(args):  # data-parallel with --distributed
        model, fit_s = fit_model(model, prep, cfg)
    if distcli.rank() == 0:
        path = save_bundle(model, prep.data, args.out)
        print(f"trained {args.model} in {fit_s:.1f}s → {path}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from lgrec.pipeline import prepare, setup
    from lgrec.tune import tune
    from lgrec.tune_space import config_table, resolve_space

    cfg = run_config(args)
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
