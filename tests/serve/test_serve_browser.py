"""End to end in a real headless Chromium: `lgrec serve` in a subprocess, the /ui page driven
with Selenium — pick a user, see recommendations, click "like", watch the list change — and the
OpenAPI pages (/docs, /redoc) rendering with nothing fetched from off the server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from serve_fixtures import API_KEY, run_server, topic_of, wait_up

CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,1000",
]  # fmt: skip


def _chromium() -> tuple[str, str]:
    """Paths of chromium and chromedriver; installs Debian's packages when missing."""

    def find() -> tuple[str | None, str | None]:
        return shutil.which("chromium"), shutil.which("chromedriver")

    browser, driver = find()
    if not (browser and driver) and shutil.which("apt-get"):
        cmd = ["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
            subprocess.run(cmd, env=env, capture_output=True)
        browser, driver = find()
    if not (browser and driver):
        pytest.skip(
            "chromium/chromedriver missing and `apt-get install chromium chromium-driver` failed"
        )
    return browser, driver


@pytest.fixture()
def server(bundle, tmp_path):
    with run_server(bundle, tmp_path) as srv:
        yield srv


def _driver(tmp_path: Path):
    """A headless Chromium driven by Selenium, logging its network requests."""
    pytest.importorskip("selenium", reason="selenium is a test dependency (pip install selenium)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = _chromium()
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chrome-profile'}"]:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=opts)


def _fetched_urls(drv) -> list[str]:
    """URLs the browser requested since the last call (Chrome's performance log), less the
    requests it blocked itself before sending them (Content-Security-Policy)."""
    urls, blocked = {}, set()
    for entry in drv.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        params = msg["params"]
        if msg["method"] == "Network.requestWillBeSent":
            urls[params["requestId"]] = params["request"]["url"]
        elif msg["method"] == "Network.loadingFailed" and params.get("blockedReason"):
            blocked.add(params["requestId"])
    return [u for r, u in urls.items() if r not in blocked]


def test_ui_like_changes_recommendations(server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    proc, url, log = server
    drv = _driver(tmp_path)  # while the server starts
    try:
        wait_up(proc, url, log)
        wait = WebDriverWait(drv, 30)
        drv.get(url + "/ui")
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
        assert "users" in drv.find_element(By.ID, "health").text

        def rec_ids() -> list[str]:  # read in one script: the list may re-render meanwhile
            js = "return [...document.querySelectorAll('#reclist > li')].map(e => e.dataset.itemId)"
            return drv.execute_script(js)

        drv.find_element(By.ID, "apikey").send_keys(API_KEY)
        drv.find_element(By.ID, "user").send_keys("u0")
        drv.find_element(By.ID, "load").click()
        wait.until(lambda d: len(rec_ids()) == 10)
        before = rec_ids()
        first = drv.find_element(By.CSS_SELECTOR, "#reclist > li")
        assert first.find_element(By.CLASS_NAME, "reason").text.startswith("Recommended because")
        liked = before[0]
        first.find_element(By.CSS_SELECTOR, "button.like").click()
        wait.until(lambda d: rec_ids() and liked not in rec_ids())
        after = rec_ids()
        assert after != before and after[0] != liked
        assert "liked" in drv.find_element(By.ID, "status").text
        top_hist = drv.find_element(By.CSS_SELECTOR, "#history > li .meta").text
        assert top_hist == liked
        assert "1 online events" in drv.find_element(By.ID, "profile-text").text

        query = drv.find_element(By.ID, "query")
        query.send_keys("romantic love story and a wedding")
        drv.find_element(By.ID, "recommend").click()
        wait.until(lambda d: rec_ids() != after)
        assert sum(topic_of(i) == "Romance" for i in rec_ids()[:5]) >= 3

        drv.find_element(By.CSS_SELECTOR, "#newuser summary").click()
        drv.find_element(By.ID, "new-id").send_keys("web-user")
        drv.find_element(By.ID, "new-text").send_keys("I love cooking shows and baking bread")
        query.clear()
        drv.find_element(By.ID, "create").click()
        wait.until(lambda d: "Created user web-user" in d.find_element(By.ID, "status").text)
        assert sum(topic_of(i) == "Cooking" for i in rec_ids()[:5]) >= 3
    finally:
        drv.quit()


def test_docs_render_offline(server, tmp_path):
    """Swagger UI and ReDoc render the API in a browser that requests nothing off the server."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    proc, url, log = server
    drv = _driver(tmp_path)
    try:
        wait_up(proc, url, log)
        wait = WebDriverWait(drv, 60)
        drv.get(url + "/docs")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock"))
        assert "lgrec" in drv.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text
        paths = {e.text for e in drv.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
        assert {"/recommend", "/feedback", "/similar"} <= {p.replace("\u200b", "") for p in paths}
        swagger_urls = _fetched_urls(drv)
        drv.get(url + "/redoc")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "h1"))
        wait.until(lambda d: "lgrec" in d.find_element(By.CSS_SELECTOR, "h1").text)
        assert "/recommend" in drv.find_element(By.TAG_NAME, "body").text
        redoc_urls = _fetched_urls(drv)
    finally:
        drv.quit()
    for urls in (swagger_urls, redoc_urls):
        assert any(u.endswith("/openapi.json") for u in urls), urls
        web = [u for u in urls if u.split(":", 1)[0] in ("http", "https", "ws", "wss")]
        assert [u for u in web if not u.startswith(url + "/")] == [], web
