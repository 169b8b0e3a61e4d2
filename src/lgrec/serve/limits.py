"""Limits on what one request or one client may cost, and ``OPTIONS`` answers.

* :class:`HeaderLimitMiddleware`: request headers above ``max_header`` bytes in total (names +
  values) get 431 before any endpoint code runs.
* :class:`RateLimitMiddleware`: a token bucket per client and worker for *expensive* requests
  (:func:`is_expensive`: anything with a free-text ``query``, ``/explain``, creating users and
  items, which encode text or walk the history). A client is its ``X-API-Key`` when it sends
  one, else its address. The bucket holds at most ``burst`` tokens and refills at ``rate``
  per second: at time ``t`` a client has ``min(burst, b + rate · (t − t_last))`` tokens; a
  request takes one, and without one it gets 429 with ``Retry-After`` (seconds until the next
  token). With N workers a client may reach N times the rate. ``rate = 0`` turns it off. At
  most :data:`MAX_CLIENTS` buckets are kept (least recently seen dropped first), so memory is
  bounded whatever the number of clients.
* :class:`OptionsMiddleware`: ``OPTIONS`` on a route answers 204 with ``Allow`` listing its
  methods (404 for an unknown path), instead of 405.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from starlette.routing import Match

from lgrec.errors import ConfigError
from lgrec.serve.security import API_KEY_HEADER, error_body, send_json

MAX_CLIENTS = 10_000
"""Rate-limit buckets kept at most (one per recently seen client)."""

EXPENSIVE_PATHS = ("/explain",)
EXPENSIVE_WRITES = ("/users", "/items")


def is_expensive(method: str, path: str, query_string: bytes) -> bool:
    """Requests that encode free text or explain (the rate-limited ones)."""
    if method == "POST":
        return path in EXPENSIVE_WRITES
    return path in EXPENSIVE_PATHS or any(
        part.startswith(b"query=") and len(part) > 6 for part in query_string.split(b"&")
    )


class HeaderLimitMiddleware:
    """431 for requests whose headers exceed ``max_header`` bytes (module docstring)."""

    def __init__(self, app: Any, max_header: int = 16 * 1024) -> None:
        if max_header < 1024:
            raise ConfigError(f"max_header={max_header!r}: expected at least 1024 bytes")
        self.app, self.max_header = app, int(max_header)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http":
            size = sum(len(k) + len(v) for k, v in scope.get("headers") or ())
            if size > self.max_header:
                detail = f"request headers total {size} bytes, more than {self.max_header}"
                await send_json(send, 431, error_body(431, detail))
                return
        await self.app(scope, receive, send)


class TokenBuckets:
    """Token buckets keyed by client (module docstring), safe across threads."""

    def __init__(self, rate: float, burst: int, max_clients: int = MAX_CLIENTS) -> None:
        if not (math.isfinite(rate) and rate >= 0) or burst < 1:
            raise ConfigError(
                f"rate limit {rate!r}/s with burst {burst!r}: need rate ≥ 0, burst ≥ 1"
            )
        self.rate, self.burst, self.max_clients = float(rate), int(burst), int(max_clients)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str, now: float | None = None) -> float:
        """Take one token for ``client``: 0 when allowed, else seconds until one is free."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + self.rate * max(0.0, now - last))
            wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate
            self._buckets[client] = (tokens - 1.0 if wait == 0.0 else tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            return wait


class RateLimitMiddleware:
    """429 for a client's expensive requests beyond its token bucket (module docstring)."""

    def __init__(self, app: Any, rate: float = 20.0, burst: int = 40) -> None:
        self.app = app
        self.buckets = TokenBuckets(rate, burst) if rate > 0 else None

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if (
            self.buckets is not None
            and scope["type"] == "http"
            and is_expensive(scope["method"], scope.get("path", ""), scope.get("query_string", b""))
        ):
            wait = self.buckets.take(_client(scope))
            if wait > 0:
                retry = str(max(1, math.ceil(wait)))
                detail = (
                    f"too many expensive requests (free-text query, explain, creates): at most "
                    f"{self.buckets.rate:g}/s per client, bursts of {self.buckets.burst}; "
                    f"retry in {retry} s"
                )
                await send_json(
                    send, 429, error_body(429, detail), [(b"retry-after", retry.encode())]
                )
                return
        await self.app(scope, receive, send)


def _client(scope: dict) -> str:
    """The client's key (hashed: never kept in clear) or, without one, its address."""
    key = dict(scope.get("headers") or ()).get(API_KEY_HEADER.lower().encode())
    if key:
        return "key:" + hashlib.sha256(key).hexdigest()[:16]
    client = scope.get("client")
    return f"addr:{client[0] if client else '?'}"


class OptionsMiddleware:
    """``OPTIONS <path>``: 204 with ``Allow`` (the route's methods + OPTIONS), or 404."""

    def __init__(self, app: Any, routes: Callable[[], list]) -> None:
        self.app, self.routes = app, routes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["method"] != "OPTIONS":
            await self.app(scope, receive, send)
            return
        methods: set[str] = set()
        for route in self.routes():
            match, _ = route.matches(scope)
            if match != Match.NONE:
                methods |= set(getattr(route, "methods", None) or ("GET", "HEAD"))
        if not methods:
            await send_json(send, 404, error_body(404, "Not Found"))
            return
        allow = ", ".join(sorted(methods | {"OPTIONS"})).encode()
        headers = [(b"allow", allow), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
