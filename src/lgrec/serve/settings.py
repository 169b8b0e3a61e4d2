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
from lgrec.store.base import is_postgres_url

ENV_PREFIX = "LGREC_SERVE_"
API_KEY_ENV = "LGREC_API_KEY"
PG_SYNC_INTERVAL = 0.5
"""Default seconds between looks at a PostgreSQL store for other servers' writes."""


@dataclass
class ServeSettings:
    """Server options; :meth:`from_env` reads them from ``LGREC_SERVE_*`` + ``LGREC_API_KEY``.

    Limits: ``max_body`` bytes of a request body (413 above), ``max_header`` bytes of all
    request headers together (431 above); ``rate_limit`` expensive requests per second per
    client and worker, with bursts of ``rate_burst`` (429 above; 0 turns it off; see
    :class:`lgrec.serve.limits.RateLimitMiddleware`). ``score_cache_mb``: memory per worker
    for the trained users' precomputed score rows (:mod:`lgrec.serve.scorecache`) and the
    matrices that fold feedback into them (:mod:`lgrec.serve.foldcache`; 0: off).

    Scaling out: ``store`` may be a ``postgresql://`` URL (no password in it), shared by servers
    on several machines, which look for each other's writes every ``sync_interval`` seconds
    (:attr:`sync_seconds`); ``index="faiss"`` takes ``/recommend`` candidates from a FAISS
    index with ``index_options`` (:mod:`lgrec.serve.index`).
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
    sync_interval: float | None = None  # None: sync_seconds' default
    index: str = "exact"
    index_options: str | None = None  # e.g. "method=ivf,nprobe=64"
    pseudonymize: bool = False  # map client user ids with the key (lgrec.privacy.pseudonym)
    pseudonym_key_file: str | None = None  # the key itself travels as LGREC_PSEUDONYM_KEY

    def __post_init__(self) -> None:
        if is_postgres_url(self.store_path):
            from lgrec.store.pg_setup import check_url

            check_url(str(self.store_path))  # no password in a URL (command lines are visible)
        if self.sync_interval is not None and not self.sync_interval >= 0:
            raise ConfigError(f"sync_interval must be seconds ≥ 0, got {self.sync_interval!r}")

    @property
    def store_path(self) -> Path | str:
        """The SQLite file (default ``MODEL/feedback.sqlite``), or the ``postgresql://`` URL."""
        if self.store and is_postgres_url(self.store):
            return self.store
        return Path(self.store) if self.store else Path(self.model) / "feedback.sqlite"

    @property
    def sync_seconds(self) -> float:
        """``sync_interval``, by default 0 (every request) on SQLite and
        :data:`PG_SYNC_INTERVAL` on PostgreSQL (a look is a network round trip there)."""
        if self.sync_interval is not None:
            return self.sync_interval
        return PG_SYNC_INTERVAL if is_postgres_url(self.store_path) else 0.0

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
