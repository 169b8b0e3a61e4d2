"""``lgrec serve`` reports its start-up steps when its output goes to a log file."""

from __future__ import annotations

from serve_fixtures import run_server, wait_up


def test_serve_startup_prints_progress_lines_to_a_log(bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("LGREC_PROGRESS_INTERVAL", "0.01")
    monkeypatch.delenv("LGREC_PROGRESS", raising=False)
    with run_server(bundle, tmp_path) as (proc, url, log):
        wait_up(proc, url, log)
        text = log.read_text()
    # loading MiniLM takes far longer than the 10 ms interval; the tiny bundle may not
    steps = [ln for ln in text.splitlines() if ln.startswith("lgrec: serve: ")]
    assert any("loading the text model and item texts" in ln and "elapsed" in ln for ln in steps)
    assert "lgrec: serve: loading the text model and item texts: done in " in text, text
