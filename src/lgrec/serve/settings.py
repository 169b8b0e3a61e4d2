"""Options of ``lgrec serve`` and their round trip through the environment of the workers.

``lgrec serve --workers N`` starts N uvicorn processes that each build the app from the
environment (:func:`lgrec.serve.app.app_from_env`): :meth:`ServeSettings.to_env` writes every
option as ``LGREC_SERVE_<NAME>`` (the API key as ``LGREC_API_KEY``, never on a command line),
and :meth:`ServeSettings.from_env` reads them back with their types.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from lgrec.errors import ConfigError
from lgrec.serve.metrics import shared_metrics_dir

ENV_PREFIX = "LGREC_SERVE_"
API_KEY_ENV = "LGREC_API_KEY"


@dataclass
class ServeSettings:
    """Server options; :meth:`from_env` reads them from ``LGREC_SERVE_*`` + ``LGREC_API_KEY``.

    Limits: ``max_body`` bytes of a request body (413 above), ``max_header`` bytes of all
    request headers together (431 above); ``rate_limit`` expensive requests per second per
    client and worker, with bursts of ``rate_burst`` (429 above; 0 turns it off; see
    :class:`lgrec.serve.limits.RateLimitMiddleware`). ``score_cache_mb``: memory per worker
    for the trained users' precomputed score rows (:mod:`lgrec.serve.scorecache`; 0: off).
    """

    model: str
    store: str | None = None
    api_key: str | None = None
    protect_reads: bool = False
    max_body: int = 64 * 1024
    max_header: int = 16 * 1024
    rate_limit: float = 20.0
    rate_burst: int = 40
    online_lr: float = 0.5
    text: str = "auto"
    threads: int | None = None
    metrics_dir: str | None = None
    metrics_interval: float = 2.0
    graph_path: str | None = None
    graph_uri: str | None = None  # its credentials travel as LGREC_GRAPH_* (lgrec.store.connect)
    score_cache_mb: float = 512.0
    pseudonymize: bool = False  # map client user ids with the key (lgrec.privacy.pseudonym)
    pseudonym_key_file: str | None = None  # the key itself travels as LGREC_PSEUDONYM_KEY

    @property
    def store_path(self) -> Path:
        return Path(self.store) if self.store else Path(self.model) / "feedback.sqlite"

    def to_env(self) -> dict[str, str]:
        """Environment for worker processes (the API key travels as ``LGREC_API_KEY``).

        The workers share ``metrics_dir`` so that ``/metrics`` sums them all; when it is unset,
        a fresh temporary directory is made here (once; removed when this process exits)."""
        if not self.metrics_dir:
            self.metrics_dir = shared_metrics_dir()
        env = {}
        for f in fields(self):
            value = self.store_path if f.name == "store" else getattr(self, f.name)
            if value is None:
                continue
            name = API_KEY_ENV if f.name == "api_key" else ENV_PREFIX + f.name.upper()
            env[name] = ("1" if value else "0") if isinstance(value, bool) else str(value)
        return env

    @classmethod
    def from_env(cls) -> ServeSettings:
        e = os.environ
        if not e.get(f"{ENV_PREFIX}MODEL"):
            raise ConfigError(f"{ENV_PREFIX}MODEL is not set: which model directory to serve?")
        kw = {}
        for f in fields(cls):
            name = API_KEY_ENV if f.name == "api_key" else ENV_PREFIX + f.name.upper()
            raw = e.get(name)
            if not raw:
                continue
            kind = str(f.type)
            try:
                if kind == "bool":
                    kw[f.name] = raw.lower() in ("1", "true", "yes")
                elif kind.startswith("int"):
                    kw[f.name] = int(raw)
                elif kind.startswith("float"):
                    kw[f.name] = float(raw)
                else:
                    kw[f.name] = raw
            except ValueError as err:
                raise ConfigError(f"invalid {name}={raw!r}: {err}") from err
        return cls(**kw)
