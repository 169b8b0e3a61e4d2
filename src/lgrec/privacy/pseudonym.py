"""Pseudonymised user ids: a keyed hash (HMAC-SHA256) in place of every raw user id.

With ``--pseudonymize`` a user id ``x`` is replaced, as soon as the data set is loaded and
before anything is stored or trained, by

    p(x) = hex(HMAC-SHA256(K, "lgrec-user:" ‖ utf8(x)))          (64 hex characters)

with a secret key ``K`` read from the environment (``LGREC_PSEUDONYM_KEY``) or a key file
(``--pseudonym-key-file``), never from a command-line argument (the process list and shell
history would show it). The same key maps the ids a client sends to the server, so clients keep
using their real ids while the bundle, the feedback store, the graph store, the reports and the
logs hold only ``p(x)``. Without ``K`` the mapping cannot be computed, so a guess at a raw id
cannot be checked against a pseudonym (an unkeyed hash of a small id space such as ``1..943``
would be reversed by enumeration); with ``K`` it can: keep the key apart from the data.

A bundle built from pseudonymised data records the scheme and a key fingerprint
``HMAC-SHA256(K, "lgrec-key-id")[:16]`` in ``dataset.json``; the server, ``retrain`` and
``recommend`` refuse a key with another fingerprint instead of answering "unknown user".
Item ids are not pseudonymised (they name catalogue entries, not people).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from lgrec.errors import ConfigError, ModelFileError

log = logging.getLogger(__name__)

KEY_ENV = "LGREC_PSEUDONYM_KEY"
KEY_FILE_ENV = "LGREC_PSEUDONYM_KEY_FILE"
SCHEME = "hmac-sha256"
MIN_KEY_BYTES = 16
_USER_DOMAIN = b"lgrec-user:"
_KEY_ID_DOMAIN = b"lgrec-key-id"


@dataclass(frozen=True)
class Pseudonymizer:
    """``p(x) = hex(HMAC-SHA256(key, "lgrec-user:" ‖ x))`` (module docstring).

    Build it with :func:`load_key`; the key never appears in ``repr``.
    """

    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) < MIN_KEY_BYTES:
            raise ConfigError(
                f"pseudonym key: {len(self.key)} bytes is too short; use at least "
                f"{MIN_KEY_BYTES} random bytes (e.g. `python -c 'import secrets; "
                f"print(secrets.token_hex(32))'`)"
            )

    def __repr__(self) -> str:
        return f"Pseudonymizer(key_id={self.key_id!r})"

    def __call__(self, user_id: str | int) -> str:
        msg = _USER_DOMAIN + str(user_id).encode("utf-8", "surrogatepass")
        return hmac.new(self.key, msg, hashlib.sha256).hexdigest()

    def many(self, user_ids: Iterable[Any]) -> list[str]:
        """``p`` of every id, in order."""
        return [self(u) for u in user_ids]

    @property
    def key_id(self) -> str:
        """Fingerprint of the key (16 hex characters); reveals nothing about ``p``."""
        return hmac.new(self.key, _KEY_ID_DOMAIN, hashlib.sha256).hexdigest()[:16]

    def record(self) -> dict[str, str]:
        """What a bundle's ``dataset.json`` stores under ``"pseudonym"``."""
        return {"scheme": SCHEME, "key_id": self.key_id}


def load_key(key_file: str | os.PathLike | None = None) -> Pseudonymizer:
    """The pseudonymiser of the key in ``key_file`` (or ``$LGREC_PSEUDONYM_KEY_FILE``),
    else of ``$LGREC_PSEUDONYM_KEY``.

    A key file holds the key's bytes (one trailing newline is ignored); a file that other
    users may read is accepted with a warning. Raises :class:`ConfigError` when no key is set.
    """
    key_file = key_file or os.environ.get(KEY_FILE_ENV) or None
    if key_file:
        p = Path(key_file).expanduser()
        try:
            raw = p.read_bytes()
        except OSError as e:
            raise ConfigError(f"pseudonym key file {p}: cannot read it ({e.strerror})") from None
        if p.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("pseudonym key file %s can be read by other users (chmod 600 it)", p)
        return Pseudonymizer(raw.rstrip(b"\r\n"))
    env = os.environ.get(KEY_ENV)
    if not env:
        raise ConfigError(
            f"--pseudonymize needs a key: set {KEY_ENV} or pass --pseudonym-key-file FILE "
            "(a key is never taken from the command line)"
        )
    return Pseudonymizer(env.encode("utf-8"))


def pseudonymize_dataset(ds: Any, pz: Pseudonymizer) -> Any:
    """``ds`` with ``users.user_id`` replaced by pseudonyms and ``meta["pseudonym"]`` set.

    Integer ids, interactions, items and ``meta["social_edges"]`` (integer pairs) are
    unchanged, so every later stage works as before.
    """
    if ds.meta.get("pseudonym"):
        raise ConfigError(f"data set {ds.name!r} is already pseudonymised")
    users = ds.users.copy()
    users["user_id"] = pz.many(users["user_id"].astype(str))
    return replace(ds, users=users, meta={**ds.meta, "pseudonym": pz.record()})


def bundle_record(model_dir: str | os.PathLike) -> dict[str, str] | None:
    """The ``"pseudonym"`` record of a bundle's ``dataset.json`` (None when not pseudonymised)."""
    import json

    f = Path(model_dir) / "dataset.json"
    if not f.is_file():
        return None
    try:
        return json.loads(f.read_text(encoding="utf-8")).get("pseudonym") or None
    except (json.JSONDecodeError, AttributeError) as e:
        raise ModelFileError(f"{f}: not a valid dataset.json ({e})") from None


def for_bundle(
    model_dir: str | os.PathLike, pseudonymize: bool, key_file: str | None = None
) -> Pseudonymizer | None:
    """The pseudonymiser to use with a bundle, checked against what the bundle records.

    A pseudonymised bundle needs ``pseudonymize`` and the same key (fingerprint); a plain one
    must not get ``pseudonymize`` (its trained users have raw ids). Raises
    :class:`ConfigError` naming the mismatch.
    """
    rec = bundle_record(model_dir)
    if rec is None:
        if pseudonymize:
            raise ConfigError(
                f"{model_dir} was trained on raw user ids (no 'pseudonym' in dataset.json): "
                "drop --pseudonymize, or retrain it with --pseudonymize"
            )
        return None
    if not pseudonymize:
        raise ConfigError(
            f"{model_dir} holds pseudonymised user ids: pass --pseudonymize (key from "
            f"{KEY_ENV} or --pseudonym-key-file)"
        )
    pz = load_key(key_file)
    if rec.get("scheme") != SCHEME or rec.get("key_id") != pz.key_id:
        raise ConfigError(
            f"{model_dir} was pseudonymised with key {rec.get('key_id')!r} ({rec.get('scheme')}),"
            f" but the key given has fingerprint {pz.key_id!r}: use the key it was trained with"
        )
    return pz


def map_ids(pz: Pseudonymizer | None, ids: pd.Series | list[str]) -> list[str]:
    """``ids`` through ``pz`` (unchanged when ``pz`` is None)."""
    return list(map(str, ids)) if pz is None else pz.many(ids)
