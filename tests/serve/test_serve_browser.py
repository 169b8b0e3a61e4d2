"""End to end in a real headless Chromium: `lgrec serve` in a subprocess, the /ui page driven
with Selenium — pick a user, see recommendations, click "like", watch the list change."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from serve_fixtures import API_KEY, topic_of

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def server(bundle, tmp_path):
    port = _free_port()
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 (closed in teardown)
    env = {**os.environ, "LGREC_API_KEY": API_KEY}
    cmd = [sys.executable, "-m", "lgrec.cli", "serve", "--model", str(bundle), "--port", str(port),
           "--store", str(tmp_path / "ui.sqlite")]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    yield proc, f"http://127.0.0.1:{port}", tmp_path / "server.log"
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _wait_up(proc, url: str, log: Path, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"lgrec serve exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"lgrec serve not up after {timeout}s:\n{log.read_text()[-3000:]}")


def test_ui_like_changes_recommendations(server, tmp_path):
    pytest.importorskip("selenium", reason="selenium is a test dependency (pip install selenium)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser, driver_path = _chromium()
    proc, url, log = server
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chrome-profile'}"]:
        opts.add_argument(flag)
    drv = webdriver.Chrome(service=Service(driver_path), options=opts)  # while the server starts
    try:
        _wait_up(proc, url, log)
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
