"""Project exceptions. Every message says what was wrong, where, and what was expected."""

from __future__ import annotations


class LgrecError(Exception):
    """Base class of every error lgrec raises on purpose."""


class DataError(LgrecError, ValueError):
    """A data file or table is missing, malformed or inconsistent."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """A data set directory or file does not exist; the message says where to get it."""


class ConfigError(LgrecError, ValueError):
    """A configuration value or command-line flag is invalid."""


class NotFittedError(LgrecError, RuntimeError):
    """A model method that needs a fitted model was called before ``fit``/``load``."""


class UnknownIdError(LgrecError, KeyError):
    """A user or item id is not known to the data set or model."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class StoreError(LgrecError, RuntimeError):
    """A store the server depends on (feedback database, graph database) is unreachable or
    failed; a fault of the server's side, not of the request (HTTP 503: a retry may help)."""


class ModelFileError(LgrecError, OSError):
    """A saved model directory is missing, incomplete, or not an lgrec model."""


# ---- HTTP-facing split: the client's mistake (4xx) or the server's fault (5xx) ------------------
class ConflictError(LgrecError, ValueError):
    """The request contradicts what is stored: an id that already exists, an idempotency key
    already used for another event (HTTP 409)."""


class AlreadyExistsError(ConflictError):
    """A user or item with this id already exists (HTTP 409)."""


class ServerFaultError(LgrecError, RuntimeError):
    """A fault of the server or of a store it depends on, not of the request (HTTP 500): e.g.
    a model that produced non-finite scores. Logged with its traceback."""


class StoreUnavailableError(ServerFaultError):
    """A store is unreachable, locked, closed or failed an I/O operation (HTTP 503: the same
    request may succeed when retried). The message names the store and the cause."""
