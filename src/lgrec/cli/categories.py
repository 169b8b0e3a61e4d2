"""``lgrec predict-categories``: an item's most likely categories from a saved model.

The category head of LMGCN (``category_head=True``, fitted when the data has categories) is a
ridge regression on the item features with a fitted softmax temperature
(:func:`lgrec.models.heads.fit_category_head`); this
command prints its top-``k`` categories with their probabilities for the given items, or for
every item with ``--all``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lgrec.errors import ConfigError, UnknownIdError


def add_parsers(sub: Any) -> None:
    """Register ``predict-categories``."""
    s = sub.add_parser(
        "predict-categories",
        help="most likely categories of items from a saved model's category head (LMGCN)",
    )
    s.add_argument("--model", required=True, help="saved model directory (lgrec train --out)")
    s.add_argument("--item", action="append", metavar="ID", help="external item id (repeatable)")
    s.add_argument("--all", action="store_true", help="every item of the model")
    s.add_argument("-k", type=int, default=3, help="categories per item (default 3)")
    s.add_argument("--json", action="store_true", help="one JSON object per line")
    s.set_defaults(run=cmd_predict_categories)


def category_predictions(model: Any, rows: list[int], k: int) -> list[list[tuple[str, float]]]:
    """Top-``k`` (category, probability) of each item row; a clear error without a head."""
    if not hasattr(model, "predict_categories"):
        raise ConfigError(f"model {model.name!r} has no category head (LMGCN has one)")
    if not isinstance(k, int) or k <= 0:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    try:
        return model.predict_categories(rows, k=k)
    except NotImplementedError as e:
        raise ConfigError(f"{e}; refit with category_head=True on data with categories") from e


def cmd_predict_categories(args: argparse.Namespace) -> int:
    from lgrec.cli.recommend import item_titles
    from lgrec.models import Recommender

    if not args.item and not args.all:
        raise ConfigError("give --item ID (repeatable) or --all")
    path = Path(args.model)
    model = Recommender.load(path)
    index = {i: r for r, i in enumerate(model.item_ids_)}
    if args.all:
        rows = list(range(len(model.item_ids_)))
    else:
        missing = [i for i in args.item if i not in index]
        if missing:
            raise UnknownIdError(
                f"unknown item id(s) {missing[:5]} in model {path} "
                f"({len(index):,} items, e.g. {', '.join(model.item_ids_[:3])})"
            )
        rows = [index[i] for i in args.item]
    preds = category_predictions(model, rows, args.k)
    titles = item_titles(path, model)
    for r, pred in zip(rows, preds):
        if args.json:
            cats = [{"category": c, "probability": round(p, 6)} for c, p in pred]
            item = {"item_id": model.item_ids_[r], "title": titles[r], "categories": cats}
            print(json.dumps(item, ensure_ascii=False))
        else:
            text = ", ".join(f"{c} {p:.2f}" for c, p in pred)
            print(f"{model.item_ids_[r]}\t{titles[r]}\t{text}")
    return 0
