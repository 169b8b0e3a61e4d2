"""``lgrec recommend``: top-K items for a user from a saved model (or friends, ``--friends``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lgrec.errors import LgrecError
from lgrec.privacy.cli import add_pseudonym_args


def add_parsers(sub: Any) -> argparse.ArgumentParser:
    """Register ``recommend``; returns its parser (``lgrec.graphcli`` adds ``--friends``)."""
    s = sub.add_parser("recommend", help="top-K items for a user from a saved model")
    s.add_argument("--model", help="saved model directory (with --friends: optional)")
    s.add_argument("--user", required=True, help="external user id")
    s.add_argument("-k", type=int, default=10)
    s.add_argument("--query", help="free-text request that steers the ranking")
    s.add_argument("--include-seen", action="store_true")
    add_pseudonym_args(s)
    s.set_defaults(run=cmd_recommend)
    return s


def cmd_recommend(args: argparse.Namespace) -> int:
    import pandas as pd

    from lgrec.models import Recommender
    from lgrec.privacy.cli import bundle_user_mapper

    if getattr(args, "friends", False):
        from lgrec.graphcli import cmd_friends

        return cmd_friends(args)
    if not args.model:
        raise LgrecError("--model is required (a saved model directory), unless --friends")
    path = Path(args.model)
    model = Recommender.load(path)
    user = bundle_user_mapper(args, path)(args.user)
    users = pd.Index(model.user_ids_)
    if user not in users:
        raise LgrecError(
            f"unknown user {args.user!r} in model {path} "
            f"({len(users):,} users, e.g. {', '.join(users[:3])})"
        )
    uid = users.get_loc(user)
    items, scores = model.recommend(
        [uid], k=args.k, exclude_seen=not args.include_seen, query=args.query
    )
    titles = item_titles(path, model)
    for rank, (i, s) in enumerate(zip(items[0].tolist(), scores[0].tolist()), 1):
        print(f"{rank:>3}. {titles[i]}  (item {model.item_ids_[i]}, score {s:.3f})")
    return 0


def item_titles(path: Path, model: Any) -> list[str]:
    """Item titles of a saved bundle (its ``items.parquet``), else the external item ids."""
    f = path / "items.parquet"
    if f.is_file():
        import pandas as pd

        items = pd.read_parquet(f)
        if "title" in items:
            return [("" if pd.isna(t) else str(t)) for t in items["title"]]  # any dtype
    return list(model.item_ids_)
