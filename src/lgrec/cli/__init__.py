"""The ``lgrec`` command: one module per command group.

* :mod:`lgrec.cli.data`: ``prepare``, ``embed``, ``profile``
* :mod:`lgrec.cli.train`: ``train``, ``tune``
* :mod:`lgrec.cli.evaluate`: ``evaluate``, ``quickstart``
* :mod:`lgrec.cli.recommend`: ``recommend``
* :mod:`lgrec.cli.categories`: ``predict-categories``
* :mod:`lgrec.cli.graph`: ``graph export/query``, ``recommend --friends`` (``lgrec.graphcli``)
* :mod:`lgrec.cli.serve`: ``serve``, ``retrain``
* :mod:`lgrec.privacy.erasure`: ``forget``

Settings come from a TOML file (``--config``) plus flags; every subcommand has ``--help``.
Each subparser sets ``run`` (its command function) as a default. Errors raised on purpose
(:class:`lgrec.errors.LgrecError`) are printed as one line and exit 2. Modules import the
heavy stages lazily inside the commands, so ``lgrec --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys

from lgrec.cli import categories, data, evaluate, graph, recommend, serve, train
from lgrec.errors import LgrecError
from lgrec.privacy.erasure import add_forget_parser


def build_parser() -> argparse.ArgumentParser:
    """The ``lgrec`` argument parser with every subcommand."""
    p = argparse.ArgumentParser(
        prog="lgrec",
        description="Language models + graph neural networks for recommendation.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    data.add_parsers(sub)
    train.add_parsers(sub)
    evaluate.add_parsers(sub)
    train.add_tune(sub)
    rec = recommend.add_parsers(sub)
    graph.add_parsers(sub, rec)
    categories.add_parsers(sub)
    data.add_profile(sub)
    evaluate.add_quickstart(sub)
    serve.add_parsers(sub)
    add_forget_parser(sub)  # lgrec forget (lgrec.privacy.erasure)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the ``lgrec`` command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # to re-launch (train --distributed)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        return args.run(args)
    except LgrecError as e:
        print(f"lgrec {args.command}: error: {e}", file=sys.stderr)
        return 2


__all__ = ["build_parser", "main"]
