"""The server's side of pseudonymisation: client ids mapped with the key, access logs redacted.

A server on a pseudonymised bundle (``lgrec serve --pseudonymize``) maps every user id a
client sends — ``user=`` query parameters, ``/users/{id}`` paths, ``user``/``user_id`` body
fields — through ``p`` (:mod:`lgrec.privacy.pseudonym`) before it looks the user up, stores an
event or creates a user; answers echo the id the client sent. uvicorn's access log prints
every request line, query string included, so a filter rewrites the ids in it to their
pseudonyms before the line is formatted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from urllib.parse import quote, unquote

from lgrec.privacy.pseudonym import Pseudonymizer, for_bundle

_QUERY_USER = re.compile(r"([?&]user=)([^&#\s]*)")
_PATH_USER = re.compile(r"(/users/)([^?#\s]+)")


def identity(user_id: str) -> str:
    return user_id


def user_mapper(
    model_dir: str, pseudonymize: bool, key_file: str | None = None
) -> Callable[[str], str]:
    """The id mapping of a server on ``model_dir`` (checked against its bundle,
    :func:`lgrec.privacy.pseudonym.for_bundle`); with a key, also redacts the access log."""
    pz = for_bundle(model_dir, pseudonymize, key_file)
    if pz is None:
        return identity
    redact_access_log(pz)
    return pz


def redact(line: str, pz: Pseudonymizer) -> str:
    """``line`` with the user ids of ``?user=…`` and ``/users/…`` replaced by pseudonyms."""

    def sub(m: re.Match) -> str:
        return m.group(1) + quote(pz(unquote(m.group(2).replace("+", " "))), safe="")

    return _PATH_USER.sub(sub, _QUERY_USER.sub(sub, line))


class AccessLogRedactor(logging.Filter):
    """Rewrites the request path of uvicorn access records (``args[2]``) with :func:`redact`."""

    def __init__(self, pz: Pseudonymizer) -> None:
        super().__init__("lgrec.privacy")
        self.pz = pz

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact(args[2], self.pz), *args[3:])
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg, self.pz)
        return True


def redact_access_log(pz: Pseudonymizer) -> None:
    """Install :class:`AccessLogRedactor` on ``uvicorn.access`` (once per process)."""
    logger = logging.getLogger("uvicorn.access")
    for f in list(logger.filters):
        if isinstance(f, AccessLogRedactor):
            logger.removeFilter(f)
    logger.addFilter(AccessLogRedactor(pz))
