"""``lgrec prepare``, ``lgrec embed`` and ``lgrec profile``: the data and text stages alone."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lgrec.cli.common import add_data_args, run_config


def add_parsers(sub: Any) -> None:
    """Register ``prepare`` and ``embed`` (``profile`` comes later, see :func:`add_profile`)."""
    s = sub.add_parser("prepare", help="load, clean and split a data set; print the report")
    add_data_args(s)
    s.add_argument("--out", help="write the cleaned tables as Parquet here")
    s.set_defaults(run=cmd_prepare)

    s = sub.add_parser("embed", help="encode item texts with the language model (cached)")
    add_data_args(s)
    s.set_defaults(run=cmd_embed)


def add_profile(sub: Any) -> None:
    """Register ``profile``."""
    s = sub.add_parser("profile", help="a user's language profile: text, categories, history")
    add_data_args(s)
    s.add_argument("--user", required=True, help="external user id")
    s.set_defaults(run=cmd_profile)


def cmd_prepare(args: argparse.Namespace) -> int:
    from lgrec.pipeline import prepare, setup

    cfg = run_config(args)
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


def cmd_embed(args: argparse.Namespace) -> int:
    from lgrec.pipeline import encode_items, prepare, setup

    cfg = run_config(args, valid_ratio=0.0)
    setup(cfg)
    prep = prepare(cfg)
    emb = encode_items(prep, cfg)
    n = len(emb)
    print(
        f"encoded {n:,} item texts → {emb.shape[1]}-d in {prep.encode_seconds:.1f}s "
        f"({n / max(prep.encode_seconds, 1e-9):,.0f} texts/s, cached)"
    )
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from lgrec.pipeline import prepare, setup
    from lgrec.privacy.cli import config_user_mapper
    from lgrec.text.profiles import profile_texts

    cfg = run_config(args, valid_ratio=0.0)
    setup(cfg)
    prep = prepare(cfg)
    train = prep.split.train
    u = prep.data.user_index(config_user_mapper(cfg)(args.user))
    text = profile_texts(train.subset(train.interactions["user"].to_numpy() == u))[u]
    hist = train.interactions[train.interactions["user"] == u].sort_values("timestamp")
    print(f"user {args.user}: {len(hist)} training interactions")
    print(f"profile: {text}")
    if "title" in prep.data.items:
        recent = prep.data.items["title"].to_numpy()[hist["item"].to_numpy()[-5:]]
        print("recent: " + "; ".join(map(str, recent)))
    return 0
