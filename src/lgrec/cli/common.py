"""Options shared by the data-driven commands and the run configuration built from them."""

from __future__ import annotations

import argparse
from typing import Any

from lgrec.privacy.cli import add_pseudonym_args, add_tombstone_args


def add_data_args(p: argparse.ArgumentParser) -> None:
    """The data, split, text and cache options of prepare/embed/train/evaluate/tune/profile."""
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
    g.add_argument(
        "--cold-items",
        metavar="FILE",
        help="with --split cold: these items are the cold ones (one external item id per line)",
    )
    g.add_argument(
        "--kg",
        metavar="DIR",
        help="knowledge graph folder (RecBole <name>.kg + <name>.link), a path or a folder "
        "under the data root: its item links become LMGCN's item graph (item_graph=)",
    )
    g.add_argument(
        "--loader-arg",
        action="append",
        metavar="NAME=VALUE",
        help="argument of the data set's loader (repeatable), e.g. text_key=mapped for a "
        "CoLaKG folder whose llm_response_item.json is keyed by the mapped index",
    )
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
    g.add_argument(
        "--prepared",
        metavar="DIR",
        help="use the cleaned data and split in DIR (written by `lgrec prepare --out`, pandas "
        "or Spark) instead of --dataset/--split",
    )
    g.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    add_pseudonym_args(p)
    add_tombstone_args(g)


def add_param_arg(p: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--param MODEL.NAME=VALUE`` (repeatable)."""
    p.add_argument(
        "--param",
        action="append",
        metavar="MODEL.NAME=VALUE",
        help=help or "model hyper-parameter, e.g. lmgcn.spectral_k=128 (repeatable)",
    )


def run_config(args: argparse.Namespace, **extra: Any) -> Any:
    """The :class:`~lgrec.config.RunConfig` of ``--config`` + flags (+ ``extra``)."""
    from lgrec.config import load_config, parse_param
    from lgrec.errors import ConfigError

    params: dict = {}
    for text in getattr(args, "param", None) or []:
        model, name, value = parse_param(text)
        params.setdefault(model, {})[name] = value
    loader = parse_loader_args(getattr(args, "loader_arg", None))
    over = dict(
        dataset=args.dataset,
        data_dir=args.data_dir,
        fold=args.fold,
        split=args.split,
        cold_items=getattr(args, "cold_items", None),
        kg=getattr(args, "kg", None),
        valid_ratio=args.valid_ratio,
        k_core=args.k_core,
        seed=args.seed,
        text_model=args.text_model,
        text_max_length=args.text_max_length,
        threads=args.threads,
        cache_dir=args.cache_dir,
        prepared=getattr(args, "prepared", None),
        pseudonymize=getattr(args, "pseudonymize", None),
        pseudonym_key_file=getattr(args, "pseudonym_key_file", None),
        tombstones=getattr(args, "tombstones", None),
    )
    if over["prepared"]:  # the folder fixes data and split: refuse flags it would ignore
        fixed = ("dataset", "fold", "split", "cold_items", "valid_ratio", "k_core")
        fixed += ("pseudonymize", "tombstones")  # `lgrec prepare` applied (and records) them
        given = [k for k in fixed if over[k] is not None] + (["loader_arg"] if loader else [])
        if given:
            raise ConfigError(
                f"--prepared {over['prepared']} already fixes the data and split; drop "
                + ", ".join("--" + k.replace("_", "-") for k in given)
            )
    over.update(extra)
    cfg = load_config(args.config, **over)
    for model, kv in params.items():
        cfg.params.setdefault(model, {}).update(kv)
    cfg.loader.update(loader)
    return cfg


def parse_loader_args(items: list[str] | None) -> dict[str, Any]:
    """``["text_key=mapped", "fold=u2"]`` → {"text_key": "mapped", "fold": "u2"} (values read
    as TOML scalars, else plain text)."""
    import tomllib

    from lgrec.errors import ConfigError

    out: dict[str, Any] = {}
    for text in items or []:
        name, sep, raw = text.partition("=")
        if not sep or not name.strip().isidentifier():
            raise ConfigError(f"--loader-arg {text!r}: expected NAME=VALUE, e.g. text_key=mapped")
        try:
            out[name.strip()] = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[name.strip()] = raw.strip()
    return out
