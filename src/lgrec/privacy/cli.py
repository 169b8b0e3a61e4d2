"""Command-line parts of the privacy controls: the pseudonym flags and ``lgrec forget``.

Imports stay lazy so that ``lgrec --help`` does not load pandas or torch.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any


def add_pseudonym_args(p: argparse.ArgumentParser) -> None:
    """``--pseudonymize`` and ``--pseudonym-key-file`` (the key itself never is a flag)."""
    g = p.add_argument_group("privacy")
    g.add_argument(
        "--pseudonymize",
        action="store_true",
        default=None,
        help="replace user ids by keyed hashes (HMAC-SHA256) before anything is stored or "
        "trained; key from $LGREC_PSEUDONYM_KEY or --pseudonym-key-file (docs/privacy.md)",
    )
    g.add_argument(
        "--pseudonym-key-file",
        metavar="FILE",
        help="file holding the pseudonym key (default: $LGREC_PSEUDONYM_KEY)",
    )


def add_tombstone_args(p: argparse.ArgumentParser) -> None:
    """``--tombstones STORE``: leave out the users erased in that feedback store."""
    p.add_argument(
        "--tombstones",
        metavar="STORE",
        help="feedback store whose erased users (lgrec forget, DELETE /users) are left out",
    )


def bundle_user_mapper(args: argparse.Namespace, model_dir: str | Path) -> Callable[[str], str]:
    """How a raw user id given to a command on ``model_dir`` becomes the id the bundle uses
    (identity for a plain bundle), after checking the flags against the bundle."""
    from lgrec.privacy.pseudonym import for_bundle

    pz = for_bundle(
        model_dir,
        bool(getattr(args, "pseudonymize", False)),
        getattr(args, "pseudonym_key_file", None),
    )
    return (lambda u: u) if pz is None else pz


def config_user_mapper(cfg: Any) -> Callable[[str], str]:
    """Like :func:`bundle_user_mapper` for a data set prepared with ``cfg``."""
    if not cfg.pseudonymize:
        return lambda u: u
    from lgrec.privacy.pseudonym import load_key

    return load_key(cfg.pseudonym_key_file)
