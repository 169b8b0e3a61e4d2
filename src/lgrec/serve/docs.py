"""OpenAPI pages that work on a closed network: Swagger UI (``/docs``) and ReDoc (``/redoc``).

FastAPI's own pages load their JavaScript and CSS from a CDN, so they stay blank where the
server cannot reach the internet. Here the same pages
(:func:`fastapi.openapi.docs.get_swagger_ui_html`, :func:`~fastapi.openapi.docs.get_redoc_html`)
point at files served by the app itself: the Swagger UI bundle, its CSS, the ReDoc standalone
bundle and a favicon shipped by the ``fastapi-offline`` package, mounted under
:data:`ASSETS_URL`. Google fonts are off, Swagger's online validator badge is off, and both
pages carry a Content-Security-Policy allowing only this origin (plus inline code, which the
pages need), so a browser fetches nothing from elsewhere. The ReDoc bundle hard-codes one
external image, its sidebar logo (``cdn.redoc.ly``); the bundle is served with that URL
replaced by an inline empty image (:data:`REDOC_LOGO`), so the page makes no request the CSP
would have to block.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/static-docs"
"""Where the documentation pages' JavaScript, CSS and favicon are served."""
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
_ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
DOCS_PATHS = ("/docs", "/redoc", ASSETS_URL)
"""Paths of the documentation (open even when reads need the API key, like ``/openapi.json``)."""
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
"""Content-Security-Policy of the two pages: nothing is loaded from another origin."""
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
"""The one external URL in ReDoc's bundle (its sidebar logo), replaced when served."""
EMPTY_SVG = "data:image/svg+xml,%3Csvg%20xmlns=%27http://www.w3.org/2000/svg%27/%3E"


def install_docs(app: FastAPI) -> None:
    """Mount the assets and register ``/docs`` and ``/redoc`` on ``app``.

    ``app`` must be built with ``docs_url=None, redoc_url=None`` (FastAPI's CDN pages off).
    URLs honour ``root_path`` so the pages also work behind a reverse proxy under a prefix.
    """
    if app.docs_url or app.redoc_url:
        raise ValueError("install_docs: build the FastAPI app with docs_url=None, redoc_url=None")
    missing = [f for f in _ASSET_FILES if not (ASSETS_DIR / f).is_file()]
    if missing:
        raise FileNotFoundError(f"fastapi-offline assets missing in {ASSETS_DIR}: {missing}")
    redoc_js = (ASSETS_DIR / "redoc.standalone.js").read_bytes()
    redoc_js = redoc_js.replace(REDOC_LOGO.encode(), EMPTY_SVG.encode())

    @app.get(f"{ASSETS_URL}/redoc.standalone.js", include_in_schema=False)
    def redoc_bundle() -> Response:  # registered before the mount, so it wins
        return Response(
            redoc_js,
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - API docs",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None, **(app.swagger_ui_parameters or {})},
        )
        return _with_csp(page)

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
        return _with_csp(page)


def _with_csp(page: Any) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CSP
    return page
