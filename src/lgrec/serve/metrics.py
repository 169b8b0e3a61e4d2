"""Request metrics in the Prometheus text format, summed over all server worker processes.

Each process counts its requests in memory (:class:`Metrics`, fed by :class:`MetricsMiddleware`:
a counter per ``(endpoint, method, status)`` and a latency histogram per endpoint), which costs
a dict update per request and no I/O. With several uvicorn workers a ``/metrics`` request
reaches one of them, so the workers publish their counts through a directory they share
(``ServeSettings.metrics_dir``, handed to the workers in their environment):

* every worker writes its counts to ``worker-<id>.json`` there (write to a temporary file,
  then :func:`os.replace`, so a reader never sees half a file) — from a background thread every
  ``interval`` seconds when something changed, at each ``/metrics`` request it answers, and
  once more when it shuts down;
* ``/metrics`` adds the answering worker's live counts to the files of the other workers:
  ``n_total(e, m, s) = Σ_w n_w(e, m, s)``, each histogram bucket and latency sum likewise.

The totals include workers that have exited (their last written counts), so a restarted worker
never makes a counter go down; ``lgrec_workers`` is the number of live workers that reported,
and ``lgrec_worker_requests_total{worker}`` each worker's own request count. Counts of another
worker are at most ``interval`` seconds old. The directory must belong to one server run
(``ServeSettings.to_env`` makes a fresh temporary one): files left by an earlier run would be
counted. Without a shared directory ``/metrics`` reports the one process.

The temporary directory is named ``lgrec-metrics-<pid>-<random>`` after the process that made
it and removed when that process exits. A process killed with ``kill -9`` cannot remove it, so
:func:`shared_metrics_dir` first removes such directories left by processes that no longer
run (and that hold nothing but worker files).
"""

from __future__ import annotations

import atexit
import bisect
import itertools
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from lgrec.errors import ConfigError

log = logging.getLogger(__name__)

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds (seconds) of the latency histogram buckets (plus ``+Inf``)."""
REQUESTS = "lgrec_http_requests_total"
DURATION = "lgrec_http_request_duration_seconds"
_instances = itertools.count()


PREFIX = "lgrec-metrics-"
_OURS = re.compile(r"^\.?worker-[\w-]+\.json(\.tmp)?$")


def shared_metrics_dir() -> str:
    """A fresh temporary directory for the workers of one server run, removed at exit;
    directories of earlier runs whose process is gone are removed first (module docstring)."""
    remove_stale_metrics_dirs()
    path = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")
    atexit.register(shutil.rmtree, path, True)
    return path


def remove_stale_metrics_dirs(root: str | Path | None = None) -> list[Path]:
    """Remove ``lgrec-metrics-<pid>-*`` directories in ``root`` (the temporary folder) whose
    process ``pid`` no longer runs and which hold only worker files; return those removed."""
    removed = []
    for d in Path(root or tempfile.gettempdir()).glob(f"{PREFIX}*-*"):
        pid = d.name[len(PREFIX) :].split("-", 1)[0]
        if not (pid.isdigit() and d.is_dir()) or _alive(int(pid)):
            continue
        try:
            if all(_OURS.match(f.name) and f.is_file() for f in d.iterdir()):
                shutil.rmtree(d)
                removed.append(d)
        except OSError as e:  # another server removed it meanwhile, or no permission
            log.debug("metrics: cannot remove stale %s (%s)", d, e)
    if removed:
        log.info("metrics: removed %d directories of stopped servers", len(removed))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Metrics:
    """Request counters and latency histograms of this process, optionally shared (module
    docstring).

    Args:
        shared_dir: directory the workers of one server run share; ``None``: this process only.
        interval: seconds between background writes of this worker's counts (when changed).
    """

    BUCKETS = BUCKETS

    def __init__(self, shared_dir: str | Path | None = None, interval: float = 2.0) -> None:
        if not interval > 0:
            raise ConfigError(f"Metrics(interval={interval!r}): expected seconds > 0")
        self.lock = threading.Lock()
        self.counts: dict[tuple[str, str, int], int] = defaultdict(int)
        self.hist: dict[str, list[int]] = {}
        self.sums: dict[str, float] = defaultdict(float)
        self.pid = os.getpid()
        k = next(_instances)  # several apps in one process (tests) get distinct ids
        self.worker = str(self.pid) if k == 0 else f"{self.pid}-{k}"
        self.interval = float(interval)
        self.dir = None if shared_dir is None else Path(shared_dir)
        if self.dir is not None:
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ConfigError(f"metrics directory {self.dir}: cannot create it ({e})") from e
        self._version = 0  # bumped by every observation
        self._written = -1  # version last written to the shared directory
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> Path | None:
        """This worker's file in the shared directory."""
        return None if self.dir is None else self.dir / f"worker-{self.worker}.json"

    # ---- the request path ----------------------------------------------------------------------
    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """Count one request (in memory only)."""
        with self.lock:
            self.counts[(endpoint, method, status)] += 1
            h = self.hist.setdefault(endpoint, [0] * (len(self.BUCKETS) + 1))
            h[bisect.bisect_left(self.BUCKETS, seconds)] += 1
            self.sums[endpoint] += seconds
            self._version += 1

    # ---- sharing -------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """This worker's counts as plain JSON-able data."""
        with self.lock:
            return {
                "worker": self.worker,
                "pid": self.pid,
                "buckets": list(self.BUCKETS),
                "version": self._version,
                "counts": [[ep, m, st, n] for (ep, m, st), n in self.counts.items()],
                "hist": {ep: list(h) for ep, h in self.hist.items()},
                "sums": dict(self.sums),
            }

    def flush(self) -> bool:
        """Write this worker's counts to the shared directory if they changed; True if written."""
        if self.dir is None:
            return False
        with self._write_lock:
            snap = self.snapshot()
            if snap["version"] == self._written:
                return False
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            tmp.write_text(json.dumps(snap), encoding="utf-8")
            os.replace(tmp, self.path)
            self._written = snap["version"]
            return True

    def start(self) -> None:
        """Start the background writer (no-op without a shared directory or when running)."""
        if self.dir is None or (self._thread is not None and self._thread.is_alive()):
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"lgrec-metrics-{self.worker}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the background writer and write the final counts."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._safe_flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._safe_flush()

    def _safe_flush(self) -> None:
        try:
            self.flush()
        except OSError as e:
            log.warning("metrics: cannot write %s (%s)", self.path, e)

    def collect(self) -> list[dict[str, Any]]:
        """Counts of every worker: this one live, the others from their files."""
        own = self.snapshot()
        if self.dir is None:
            return [own]
        self._safe_flush()
        snaps = [own]
        for f in sorted(self.dir.glob("worker-*.json")):
            if f == self.path:
                continue
            try:
                snap = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:  # vanished or foreign file
                log.debug("metrics: skipping %s (%s)", f, e)
                continue
            if snap.get("buckets") != own["buckets"]:
                log.warning("metrics: %s has other histogram buckets: skipped", f)
                continue
            snaps.append(snap)
        return snaps

    # ---- rendering -------------------------------------------------------------------------------
    def render(self, gauges: dict[str, float]) -> str:
        """The Prometheus text exposition: totals over all workers, then per-worker series and
        ``gauges`` (this worker's values, label ``worker``)."""
        snaps = self.collect()
        counts: dict[tuple[str, str, int], int] = defaultdict(int)
        hist: dict[str, list[int]] = {}
        sums: dict[str, float] = defaultdict(float)
        per_worker: dict[str, int] = {}
        for snap in snaps:
            total = 0
            for ep, m, st, n in snap["counts"]:
                counts[(ep, m, int(st))] += int(n)
                total += int(n)
            for ep, h in snap["hist"].items():
                acc = hist.setdefault(ep, [0] * len(h))
                for k, n in enumerate(h):
                    acc[k] += int(n)
            for ep, s in snap["sums"].items():
                sums[ep] += float(s)
            per_worker[str(snap["worker"])] = total
        live = sum(1 for s in snaps if s is snaps[0] or _alive(int(s["pid"])))
        out = [
            f"# HELP {REQUESTS} HTTP requests by endpoint, method and status (all workers).",
            f"# TYPE {REQUESTS} counter",
        ]
        for (ep, m, st), n in sorted(counts.items()):
            out.append(f'{REQUESTS}{{endpoint="{ep}",method="{m}",status="{st}"}} {n}')
        out += [
            f"# HELP {DURATION} Request latency by endpoint (all workers).",
            f"# TYPE {DURATION} histogram",
        ]
        for ep, h in sorted(hist.items()):
            acc = 0
            for le, n in zip([*map(str, self.BUCKETS), "+Inf"], h):
                acc += n
                out.append(f'{DURATION}_bucket{{endpoint="{ep}",le="{le}"}} {acc}')
            out.append(f'{DURATION}_sum{{endpoint="{ep}"}} {sums[ep]:.6f}')
            out.append(f'{DURATION}_count{{endpoint="{ep}"}} {acc}')
        out += [
            "# HELP lgrec_worker_requests_total HTTP requests answered by each worker.",
            "# TYPE lgrec_worker_requests_total counter",
            *(f'lgrec_worker_requests_total{{worker="{w}"}} {n}' for w, n in per_worker.items()),
            "# HELP lgrec_workers Live worker processes that reported metrics.",
            "# TYPE lgrec_workers gauge",
            f"lgrec_workers {live}",
        ]
        w = f'worker="{self.worker}"'
        for g, v in gauges.items():
            out += [f"# TYPE {g} gauge", f"{g}{{{w}}} {v}"]
        return "\n".join(out) + "\n"


class MetricsMiddleware:
    """Times every HTTP request; labels it with the matched route's path template."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0, status = time.perf_counter(), [500]

        async def wrapped(msg: dict) -> None:
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, wrapped)
        finally:
            route = scope.get("route")
            ep = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(ep, scope["method"], status[0], time.perf_counter() - t0)


__all__ = [
    "BUCKETS",
    "Metrics",
    "MetricsMiddleware",
    "remove_stale_metrics_dirs",
    "shared_metrics_dir",
]
