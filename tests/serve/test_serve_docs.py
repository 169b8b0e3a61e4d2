"""The OpenAPI pages work offline: every asset they load is served by the app itself."""

from __future__ import annotations

import re

import pytest

ASSET_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
}


def _asset_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


@pytest.mark.parametrize(("page", "n_assets"), [("/docs", 3), ("/redoc", 2)])
def test_docs_pages_load_only_local_assets(client, page, n_assets):
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "cdn" not in html.lower() and "http://" not in html and "https://" not in html
    assert "fonts.googleapis" not in html
    urls = _asset_urls(html)
    assert len(urls) == n_assets, urls
    for url in urls:
        assert url.startswith("/static-docs/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        ctype = asset.headers["content-type"].split(";")[0]
        assert ctype in ASSET_TYPES[url[url.rindex(".") :]], (url, ctype)
        assert len(asset.content) > 1000
    assert "'/openapi.json'" in html or 'spec-url="/openapi.json"' in html
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "img-src 'self' data:" in csp


def test_swagger_page_uses_the_bundle_and_no_validator(client):
    html = client.get("/docs").text
    js = client.get("/static-docs/swagger-ui-bundle.js").text
    assert "SwaggerUIBundle" in html and "SwaggerUIBundle" in js
    assert '"validatorUrl": null' in html
    assert "Redoc" in client.get("/static-docs/redoc.standalone.js").text


def test_docs_stay_open_when_reads_are_protected(make_client):
    c = make_client(protect_reads=True)
    assert c.get("/recommend", params={"user": "u0"}).status_code == 401
    for path in ("/docs", "/redoc", "/openapi.json", "/static-docs/swagger-ui.css"):
        assert c.get(path).status_code == 200, path


def test_root_path_prefixes_asset_urls(bundle, tmp_path):
    from fastapi.testclient import TestClient

    from lgrec.serve.app import ServeSettings, create_app

    app = create_app(ServeSettings(model=str(bundle), store=str(tmp_path / "s.sqlite")))
    c = TestClient(app, root_path="/api")
    try:
        urls = _asset_urls(c.get("/docs").text)
        assert urls and all(u.startswith("/api/static-docs/") for u in urls)
        assert "'/api/openapi.json'" in c.get("/docs").text
    finally:
        app.state.serve.close()
