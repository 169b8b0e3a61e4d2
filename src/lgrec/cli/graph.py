"""``lgrec graph export/query`` and ``lgrec recommend --friends`` (implemented in
:mod:`lgrec.graphcli`); this module only registers them."""

from __future__ import annotations

import argparse
from typing import Any


def add_parsers(sub: Any, recommend: argparse.ArgumentParser) -> None:
    """Register ``graph`` and add the ``--friends`` options to ``recommend``."""
    from lgrec.graphcli import add_friend_args, add_graph_parsers

    add_graph_parsers(sub)
    sub.choices["graph"].set_defaults(run=cmd_graph)
    add_friend_args(recommend)


def cmd_graph(args: argparse.Namespace) -> int:
    from lgrec.graphcli import cmd_graph as run

    return run(args)
