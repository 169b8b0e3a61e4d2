"""Pseudonymised user ids: the keyed hash, key handling, and no raw id in any file written."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import httpx
import pytest
from privacy_fixtures import API_KEY, PSEUDONYM_KEY, raw_user, run_server, write_interactions

from lgrec.cli import main
from lgrec.errors import ConfigError
from lgrec.privacy.pseudonym import Pseudonymizer, for_bundle, load_key
from lgrec.privacy.serving import redact


def test_pseudonym_is_a_keyed_hash():
    a, b = Pseudonymizer(b"k" * 16), Pseudonymizer(b"j" * 16)
    assert a("42") == a(42) and len(a("42")) == 64 and int(a("42"), 16) >= 0
    assert a("42") != a("43") and a("42") != b("42") and a.key_id != b.key_id
    assert "kkkk" not in repr(a) and a.key_id in repr(a)
    with pytest.raises(ConfigError, match="too short"):
        Pseudonymizer(b"short")


def test_key_from_environment_or_file_never_guessed(monkeypatch, tmp_path):
    monkeypatch.delenv("LGREC_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("LGREC_PSEUDONYM_KEY_FILE", raising=False)
    with pytest.raises(ConfigError, match="LGREC_PSEUDONYM_KEY"):
        load_key()
    monkeypatch.setenv("LGREC_PSEUDONYM_KEY", PSEUDONYM_KEY)
    assert load_key().key == PSEUDONYM_KEY.encode()
    f = tmp_path / "key"
    f.write_bytes(b"0123456789abcdef-from-file\n")
    f.chmod(0o600)
    assert load_key(f).key == b"0123456789abcdef-from-file"  # the file wins, newline dropped
    with pytest.raises(ConfigError, match="cannot read"):
        load_key(tmp_path / "missing")


def test_bundle_flags_and_key_are_checked(tmp_path, monkeypatch):
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "dataset.json").write_text(json.dumps({"dataset": "x"}))
    (tmp_path / "pseudo").mkdir()
    record = Pseudonymizer(PSEUDONYM_KEY.encode()).record()
    (tmp_path / "pseudo" / "dataset.json").write_text(json.dumps({"pseudonym": record}))
    monkeypatch.setenv("LGREC_PSEUDONYM_KEY", PSEUDONYM_KEY)
    assert for_bundle(tmp_path / "plain", False) is None
    assert for_bundle(tmp_path / "pseudo", True).key_id == record["key_id"]
    with pytest.raises(ConfigError, match="raw user ids"):
        for_bundle(tmp_path / "plain", True)
    with pytest.raises(ConfigError, match="pass --pseudonymize"):
        for_bundle(tmp_path / "pseudo", False)
    monkeypatch.setenv("LGREC_PSEUDONYM_KEY", "another-key-of-enough-length")
    with pytest.raises(ConfigError, match="use the key it was trained with"):
        for_bundle(tmp_path / "pseudo", True)


def test_access_log_lines_are_redacted():
    pz = Pseudonymizer(PSEUDONYM_KEY.encode())
    line = "GET /recommend?k=5&user=rawuser%2D1&query=x HTTP/1.1"
    assert redact(line, pz) == f"GET /recommend?k=5&user={pz('rawuser-1')}&query=x HTTP/1.1"
    assert redact("/users/rawuser-1?limit=3", pz) == f"/users/{pz('rawuser-1')}?limit=3"


def files_holding(root: Path, needles: list[str]) -> dict[str, list[str]]:
    """{file: [needles found in its bytes]} for every file under ``root``."""
    found: dict[str, list[str]] = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            data = (Path(dirpath) / name).read_bytes()
            hits = [n for n in needles if n.encode() in data]
            if hits:
                found[str(Path(dirpath) / name)] = hits
    return found


def test_no_raw_user_id_in_any_file_the_pipeline_writes(tmp_path, pseudonym_env, caplog, capsys):
    """prepare → train → evaluate → graph export → serve (feedback, new user, reads; its log)
    → retrain → recommend, all with --pseudonymize: no raw user id in any file or log line."""
    caplog.set_level(logging.DEBUG)
    data = write_interactions(tmp_path / "events.csv")
    work = tmp_path / "work"
    raw = [raw_user(u) for u in range(40)] + ["rawuser-new-qzx"]
    common = ["--dataset", str(data), "--split", "random", "--pseudonymize", "-v"]
    fast = ["--param", "bprmf.epochs=3"]
    assert main(["prepare", *common, "--out", str(work / "prepared")]) == 0
    model = work / "model"
    assert main(["train", *common, *fast, "--model", "bprmf", "--out", str(model)]) == 0
    rep = ["--models", "popularity,bprmf", "--out", str(work / "report")]
    assert main(["evaluate", *common, *fast, *rep]) == 0
    graph = ["graph", "export", "--dataset", str(data), "--similar-k", "0", "--pseudonymize"]
    assert main([*graph, "--path", str(work / "graph")]) == 0
    store = work / "feedback.sqlite"
    with run_server(model, store, work / "server.log", "--pseudonymize", "-v") as url:
        h = {"X-API-Key": API_KEY}
        for u in range(5):
            event = {"user": raw_user(u), "item": "item7", "event": "like"}
            r = httpx.post(f"{url}/feedback", headers=h, json=event)
            assert r.status_code == 201, r.text
            assert r.json()["user"] == raw_user(u)  # the client sees its own id
        new = {"user_id": "rawuser-new-qzx", "liked_items": ["item1", "item4"]}
        r = httpx.post(f"{url}/users", headers=h, json=new)
        assert r.status_code == 201, r.text
        for u in (raw_user(0), "rawuser-new-qzx"):
            assert httpx.get(f"{url}/recommend", params={"user": u, "k": 3}).status_code == 200
            assert httpx.get(f"{url}/users/{u}").json()["n_history"] >= 2
        assert httpx.get(f"{url}/recommend", params={"user": "nobody"}).status_code == 404
        assert httpx.delete(f"{url}/users/{raw_user(4)}", headers=h).json()["events_deleted"] == 1
        assert httpx.get(f"{url}/users/{raw_user(4)}").status_code == 404
    retrained = work / "model2"
    assert main(["retrain", "--model", str(model), "--store", str(store),
                 "--out", str(retrained), "--pseudonymize", "--seen-only"]) == 0  # fmt: skip
    rec = ["recommend", "--model", str(retrained), "--user", raw_user(3), "--pseudonymize"]
    assert main(rec) == 0
    out = capsys.readouterr()
    (work / "console.txt").write_text(out.out + out.err)
    ours = [r.getMessage() for r in caplog.records if r.name.split(".")[0] in ("lgrec", "uvicorn")]
    (work / "log-records.txt").write_text("\n".join(ours))  # not httpx's: the client's own
    server_log = (work / "server.log").read_text()
    assert "GET /recommend?user=" in server_log  # the access log was on, and redacted
    assert len(list(work.rglob("*"))) > 30
    assert files_holding(work, raw) == {}
    assert files_holding(tmp_path / "cache", raw) == {}
    # the control: the same step without --pseudonymize writes the raw ids
    assert main(["prepare", *common[:-2], "--out", str(tmp_path / "plain")]) == 0
    assert files_holding(tmp_path / "plain", raw[:40])
