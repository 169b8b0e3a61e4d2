"""Secrets (API keys, database passwords) come from the environment or a file, never from a
command-line argument: arguments are visible to every user of the machine in the process
list (``ps``, ``/proc/<pid>/cmdline``).

:func:`add_secret_args` gives a command ``--<name>-file FILE`` and keeps the old ``--<name>``
flag only as an error that says what to use instead; :func:`read_secret` takes the value from
the file, else from the environment variable.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from lgrec.errors import ConfigError


def add_secret_args(parser: argparse.ArgumentParser, name: str, env: str, what: str) -> None:
    """Add ``--<name>-file`` and a refusing ``--<name>`` to ``parser`` (dest ``<name>_file``)."""
    file_flag, flag = f"--{name}-file", f"--{name}"

    class Refuse(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            parser.error(
                f"{flag} is no longer accepted: a {what} on the command line is visible to every "
                f"user in the process list. Set the environment variable {env}, or put it in a "
                f"file readable only by you and pass {file_flag} FILE"
            )

    parser.add_argument(flag, action=Refuse, help=argparse.SUPPRESS)
    parser.add_argument(
        file_flag, metavar="FILE", help=f"file holding the {what} (default: environment {env})"
    )


def read_secret(file: str | os.PathLike | None, env: str) -> str | None:
    """The secret in ``file`` (surrounding white space stripped), else ``$env``, else None."""
    if file is not None:
        path = Path(file)
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ConfigError(f"cannot read the secret file {path}: {e}") from e
        if not value:
            raise ConfigError(f"the secret file {path} is empty")
        return value
    return os.environ.get(env) or None
