"""/metrics sums the requests of every worker: apps sharing a metrics directory in one process,
a worker that has exited, and `lgrec serve --workers 2` for real."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from serve_fixtures import run_server, wait_up

from lgrec.errors import ConfigError
from lgrec.serve.metrics import Metrics

REC_OK = 'lgrec_http_requests_total{endpoint="/recommend",method="GET",status="200"}'
REC_404 = 'lgrec_http_requests_total{endpoint="/recommend",method="GET",status="404"}'
REC_INF = 'lgrec_http_request_duration_seconds_bucket{endpoint="/recommend",le="+Inf"}'
REC_COUNT = 'lgrec_http_request_duration_seconds_count{endpoint="/recommend"}'


def _series(text: str) -> dict[str, float]:
    """``{"name{labels}": value}`` of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def _worker_of(series: dict[str, float]) -> str:
    """The worker that answered (label of its own gauges)."""
    key = next(k for k in series if k.startswith("lgrec_items{"))
    return key.split('worker="')[1].rstrip('"}')


@pytest.fixture()
def shared_clients(make_client, tmp_path):
    """Two apps (as two workers would be) sharing one store and one metrics directory."""
    kw = {"store": str(tmp_path / "shared.sqlite"), "metrics_dir": str(tmp_path / "metrics")}
    return make_client(**kw), make_client(**kw)


def test_metrics_sum_over_apps_sharing_a_directory(shared_clients, tmp_path):
    a, b = shared_clients
    for _ in range(3):
        assert a.get("/recommend", params={"user": "u0"}).status_code == 200
    a.get("/recommend", params={"user": "ghost"})
    first = _series(a.get("/metrics").text)  # writes a's counts for b to read
    assert first[REC_OK] == 3 and first[REC_404] == 1
    for _ in range(5):
        assert b.get("/recommend", params={"user": "u1"}).status_code == 200
    seen_by_b = _series(b.get("/metrics").text)
    seen_by_a = _series(a.get("/metrics").text)
    for s in (seen_by_b, seen_by_a):
        assert s[REC_OK] == 8 and s[REC_404] == 1
        assert s[REC_INF] == 9 and s[REC_COUNT] == 9
        assert s["lgrec_workers"] == 2
        workers = {k: v for k, v in s.items() if k.startswith("lgrec_worker_requests_total")}
        assert len(workers) == 2
    assert _worker_of(seen_by_a) != _worker_of(seen_by_b)
    # a: 4 /recommend + its first /metrics; b: 5 /recommend (its /metrics counts after it wrote)
    got = {k.split('"')[1]: v for k, v in seen_by_a.items() if "worker_requests" in k}
    assert got == {_worker_of(seen_by_a): 5, _worker_of(seen_by_b): 5}
    files = sorted(p.name for p in (tmp_path / "metrics").iterdir())
    assert len(files) == 2 and all(f.startswith("worker-") and f.endswith(".json") for f in files)


def test_background_writer_publishes_without_a_metrics_request(make_client, bundle, tmp_path):
    from fastapi.testclient import TestClient

    from lgrec.serve.app import ServeSettings, create_app

    mdir = str(tmp_path / "metrics")
    a = make_client(store=str(tmp_path / "s.sqlite"), metrics_dir=mdir)
    settings = ServeSettings(
        model=str(bundle), store=str(tmp_path / "s.sqlite"), metrics_dir=mdir, metrics_interval=0.1
    )
    with TestClient(create_app(settings)) as b:  # lifespan: b's writer thread runs
        for _ in range(4):
            b.get("/recommend", params={"user": "u2"})
        deadline = time.monotonic() + 30
        while _series(a.get("/metrics").text).get(REC_OK) != 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _series(a.get("/metrics").text)[REC_OK] == 4
        b.get("/recommend", params={"user": "u2"})
    # shutdown wrote b's last request even if the thread had not yet
    assert _series(a.get("/metrics").text)[REC_OK] == 5


EXITED_WORKER = """
import sys
from lgrec.serve.metrics import Metrics
m = Metrics(sys.argv[1])
for _ in range(7):
    m.observe("/recommend", "GET", 200, 0.003)
m.flush()
"""


def test_an_exited_worker_still_counts_but_is_not_live(tmp_path):
    mdir = tmp_path / "metrics"
    subprocess.run([sys.executable, "-c", EXITED_WORKER, str(mdir)], check=True)
    m = Metrics(mdir)
    m.observe("/recommend", "GET", 200, 0.2)
    s = _series(m.render({}))
    assert s[REC_OK] == 8 and s["lgrec_workers"] == 1
    assert s['lgrec_http_request_duration_seconds_bucket{endpoint="/recommend",le="0.005"}'] == 7
    assert s['lgrec_http_request_duration_seconds_sum{endpoint="/recommend"}'] == pytest.approx(
        7 * 0.003 + 0.2, abs=1e-5
    )
    (mdir / "worker-junk.json").write_text("{not json")  # a broken file is skipped
    assert _series(m.render({}))[REC_OK] == 8


def test_metrics_without_a_directory_and_bad_options(tmp_path):
    m = Metrics()
    m.observe("/x", "GET", 200, 0.01)
    assert m.flush() is False and _series(m.render({}))["lgrec_workers"] == 1
    with pytest.raises(ConfigError, match="interval"):
        Metrics(tmp_path, interval=0)
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="cannot create"):
        Metrics(tmp_path / "file" / "sub")


def test_settings_give_workers_a_shared_metrics_dir(bundle, monkeypatch):
    from lgrec.serve.app import ServeSettings

    settings = ServeSettings(model=str(bundle))
    env = settings.to_env()
    mdir = env["LGREC_SERVE_METRICS_DIR"]
    assert os.path.isdir(mdir) and settings.to_env()["LGREC_SERVE_METRICS_DIR"] == mdir
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    back = ServeSettings.from_env()
    assert back.metrics_dir == mdir and back.metrics_interval == settings.metrics_interval


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_two_real_workers_report_the_same_totals(bundle, tmp_path):
    """`lgrec serve --workers 2`: whichever worker answers /metrics, the totals are every
    request sent (after at most one write interval)."""
    with run_server(bundle, tmp_path, "--workers", "2", "-v") as (proc, url, log):
        wait_up(proc, url, log)
        n_ok, n_missing = 40, 6
        for k in range(n_ok):
            assert _get(f"{url}/recommend?user=u{k % 10}&k=3")[0] == 200
        for _ in range(n_missing):
            assert _get(f"{url}/recommend?user=ghost")[0] == 404
        answers: dict[str, dict[str, float]] = {}  # worker that answered -> what it said
        deadline = time.monotonic() + 90
        while len(answers) < 2 and time.monotonic() < deadline:
            status, text = _get(url + "/metrics")
            assert status == 200
            s = _series(text)
            # both workers up and written (a worker restarted by uvicorn's health check
            # writes its file once started; the exited one's counts stay in the totals)
            if s.get(REC_OK) == n_ok and s.get(REC_404) == n_missing and s["lgrec_workers"] == 2:
                answers[_worker_of(s)] = s
            time.sleep(0.2)
        assert len(answers) == 2, f"saw {list(answers)}; server log:\n{log.read_text()[-3000:]}"
        for w, s in answers.items():
            assert s[REC_INF] == s[REC_COUNT] == n_ok + n_missing
            per_worker = {k: v for k, v in s.items() if k.startswith("lgrec_worker_requests")}
            assert len(per_worker) >= 2 and sum(per_worker.values()) >= n_ok + n_missing
            assert s[f'lgrec_items{{worker="{w}"}}'] == 36
