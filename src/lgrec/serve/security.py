"""What wraps the endpoints: API keys, size limits, security headers, error bodies.

* Write endpoints need the header ``X-API-Key`` equal to the configured key (env
  ``LGREC_API_KEY`` or ``--api-key-file``; never a command-line argument), compared in
  constant time (:func:`hmac.compare_digest`). Read endpoints are open unless
  ``protect_reads`` (and then only they declare the key in the OpenAPI schema). With no key
  configured, writes are refused (403): a server never accepts writes by accident. Keys are
  never logged or echoed.
* Request headers above ``max_header`` bytes get 431, expensive requests beyond a client's
  rate 429, ``OPTIONS`` an ``Allow`` header (:mod:`lgrec.serve.limits`).
* Request bodies above ``max_body`` bytes get 413 before any endpoint code runs (checked on
  ``Content-Length`` and again on the bytes actually received, for chunked uploads).
* Every error is JSON ``{"error": <code>, "detail": <what was wrong>}``. The client's
  mistakes are 4xx: 400 malformed JSON, 401/403 auth, 404 unknown id or route, 405, 409
  conflict (id exists, idempotency key used for another event), 413 too large, 422 invalid
  values (:class:`~lgrec.errors.ConfigError`, :class:`~lgrec.errors.DataError`), 429 rate
  limited. Faults of the server or its stores are 5xx and logged: 503 with ``Retry-After``
  when a store is unavailable (:class:`~lgrec.errors.StoreUnavailableError`, a graph store
  that is down; the body names which store failed, the log also where it lives), 500 for
  anything else (:class:`~lgrec.errors.ServerFaultError`, any other error), with no
  internals in the body.

Request metrics (``/metrics``) live in :mod:`lgrec.serve.metrics`.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from starlette.exceptions import HTTPException as StarletteHTTPException

from lgrec.errors import (
    ConfigError,
    ConflictError,
    DataError,
    StoreUnavailableError,
    UnknownIdError,
)
from lgrec.store.graphdb import GraphStoreError

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    431: "headers_too_large",
    500: "internal_error",
    503: "unavailable",
}


_URL_PASSWORD = re.compile(r"(://[^/@\s:]*):[^/@\s]*@")


def _redact(exc: BaseException) -> str:
    """``exc``'s message with any ``scheme://user:password@`` password masked (the stores
    keep passwords out of their messages; this guards a URL quoted from elsewhere)."""
    return _URL_PASSWORD.sub(r"\1:***@", str(exc))


def error_body(status: int, detail: Any, error: str | None = None) -> dict[str, Any]:
    return {"error": error or ERROR_CODES.get(status, "error"), "detail": detail}


def error_response(status: int, detail: Any, error: str | None = None, **kw: Any) -> JSONResponse:
    return JSONResponse(error_body(status, detail, error), status_code=status, **kw)


# ---- API key -----------------------------------------------------------------------------------
_scheme = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="API key (env LGREC_API_KEY or server option --api-key-file)",
)


def check_key(expected: bytes | None, given: str | None) -> tuple[int, str] | None:
    """``None`` when ``given`` matches ``expected`` (constant time), else (status, reason)."""
    if expected is None:
        return 403, (
            "this endpoint is disabled: start the server with an API key "
            "(env LGREC_API_KEY or --api-key-file) to enable it"
        )
    if not given:
        return 401, f"missing {API_KEY_HEADER} header"
    if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected):
        return 401, "invalid API key"
    return None


def api_key_dependency(key: str | None, *, required: bool = True) -> Callable[..., None]:
    """A FastAPI dependency checking ``X-API-Key`` against ``key`` in constant time.

    ``required=False`` makes it a no-op that declares nothing (open read endpoints). A required
    key is documented in OpenAPI; :class:`ApiKeyMiddleware` enforces the same check before the
    body is read.
    """
    expected = key.encode("utf-8") if key else None
    if not required:
        return lambda: None

    def check(given: str | None = Security(_scheme)) -> None:
        bad = check_key(expected, given)
        if bad is not None:
            headers = {"WWW-Authenticate": "ApiKey"} if bad[0] == 401 else None
            raise HTTPException(bad[0], bad[1], headers=headers)

    return check


class ApiKeyMiddleware:
    """Check the API key of protected requests before anything reads the body, so an
    unauthenticated client learns nothing about validation (401/403 first)."""

    def __init__(self, app: Any, key: str | None, protect: Callable[[str, str], bool]) -> None:
        self.app, self.protect = app, protect
        self.expected = key.encode("utf-8") if key else None

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and self.protect(scope["method"], scope.get("path", "")):
            raw = dict(scope.get("headers") or []).get(API_KEY_HEADER.lower().encode())
            bad = check_key(self.expected, None if raw is None else raw.decode("latin-1"))
            if bad is not None:
                extra = [(b"www-authenticate", b"ApiKey")] if bad[0] == 401 else []
                await send_json(send, bad[0], error_body(bad[0], bad[1]), extra)
                return
        await self.app(scope, receive, send)


# ---- ASGI middleware ---------------------------------------------------------------------------
class BodyLimitMiddleware:
    """Reject request bodies over ``max_body`` bytes with 413 (pure ASGI, any FastAPI version).

    The body (≤ ``max_body`` bytes) is read here and replayed to the app, so an oversized
    chunked upload is refused as soon as it crosses the limit.
    """

    def __init__(self, app: Any, max_body: int = 64 * 1024) -> None:
        self.app, self.max_body = app, int(max_body)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await send_json(send, 400, error_body(400, "invalid Content-Length header"))
                return
            if int(length) > self.max_body:
                await send_json(send, 413, error_body(413, self._too_large()))
                return
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            size += len(msg.get("body", b""))
            if size > self.max_body:
                await send_json(send, 413, error_body(413, self._too_large()))
                return
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body", False):
                break
        body, done = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal done
            if not done:
                done = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return f"request body larger than {self.max_body} bytes"


class SecurityHeadersMiddleware:
    """``nosniff`` and ``no-referrer`` everywhere; a strict CSP on the web page (``/ui``)."""

    CSP = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ui = scope.get("path", "").startswith("/ui")

        async def wrapped(msg: dict) -> None:
            if msg["type"] == "http.response.start":
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                if ui:
                    extra += [
                        (b"content-security-policy", self.CSP.encode()),
                        (b"x-frame-options", b"DENY"),
                    ]
                msg = {**msg, "headers": [*msg.get("headers", []), *extra]}
            await send(msg)

        await self.app(scope, receive, wrapped)


async def send_json(send: Callable, status: int, body: dict, extra: list | None = None) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": data})


# ---- exception handlers ------------------------------------------------------------------------
def install_error_handlers(app: FastAPI) -> None:
    """Map every error to a JSON ``{"error", "detail"}`` body (see module docstring)."""

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, exc.detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        if any(e["type"] == "json_invalid" for e in errors):
            return error_response(400, errors, "malformed_json")
        return error_response(422, errors)

    @app.exception_handler(UnknownIdError)
    async def _unknown(request: Request, exc: UnknownIdError) -> JSONResponse:
        return error_response(404, str(exc))

    @app.exception_handler(ConflictError)
    async def _conflict(request: Request, exc: ConflictError) -> JSONResponse:
        return error_response(409, str(exc))

    async def _invalid(request: Request, exc: Exception) -> JSONResponse:
        return error_response(422, str(exc), "invalid_request")

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        what = "graph store" if isinstance(exc, GraphStoreError) else "feedback store"
        # where the store lives (host, user, path) goes to the log only, never to the client
        log.error("%s %s: %s unavailable: %s", request.method, request.url.path, what, _redact(exc))
        return error_response(503, f"{what} unavailable; retry later", headers={"Retry-After": "1"})

    for klass in (ConfigError, DataError):
        app.add_exception_handler(klass, _invalid)
    for klass in (StoreUnavailableError, GraphStoreError):
        app.add_exception_handler(klass, _unavailable)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.error("error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal server error (see the server log)")
