"""Hardening: header and rate limits, strict text/time/key rules, an honest OpenAPI schema,
OPTIONS, offline ReDoc, no leftover metrics directories, secrets off the command line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from serve_fixtures import API_KEY, AUTH

from lgrec.serve.limits import TokenBuckets


def _error_fields(r) -> list[str]:
    return [str(e["loc"][-1]) for e in r.json()["detail"]]


def test_oversized_request_headers_are_431(make_client):
    c = make_client(max_header=4096)
    r = c.get("/health", headers={"X-Pad": "x" * 10_000})
    assert r.status_code == 431 and "4096" in r.json()["detail"]
    assert c.get("/health", headers={"X-Pad": "x" * 1000}).status_code == 200


def test_expensive_reads_are_rate_limited_per_client(make_client):
    c = make_client(rate_limit=0.001, rate_burst=2)  # a token per 1000 s: no refill here
    q = {"user": "u0", "query": "space"}
    assert [c.get("/recommend", params=q).status_code for _ in range(2)] == [200, 200]
    r = c.get("/recommend", params=q)
    assert r.status_code == 429 and r.json()["error"] == "too_many_requests"
    assert int(r.headers["retry-after"]) >= 1
    assert c.get("/recommend", params={"user": "u0"}).status_code == 200  # cheap: not limited
    other = {"X-API-Key": "another-client"}  # another client has its own bucket
    assert c.get("/recommend", params=q, headers=other).status_code == 200


def test_token_bucket_refills_at_its_rate():
    b = TokenBuckets(rate=2.0, burst=3, max_clients=2)
    assert [b.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take("a", now=0.0) == pytest.approx(0.5)  # one token in 1/rate seconds
    assert b.take("a", now=0.5) == 0.0 and b.take("a", now=0.5) == pytest.approx(0.5)
    b.take("b", now=0.0), b.take("c", now=0.0)  # "a" is dropped: bounded memory
    assert "a" not in b._buckets and len(b._buckets) == 2


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/users", {"user_id": "w1", "text": "   \n\t"}, "text"),
        ("/items", {"item_id": "w2", "title": "   "}, "title"),
        ("/items", {"item_id": "w3", "title": "Ok", "description": " "}, "description"),
        ("/items", {"item_id": "w4", "title": "Ok", "categories": [" "]}, "0"),
        ("/feedback", {"user": "u0", "item": "sci-1", "event": "click", "timestamp": 1e308},
         "timestamp"),
        ("/feedback", {"user": "u0", "item": "sci-1", "event": "click",
                       "timestamp": 1.7e12}, "timestamp"),  # milliseconds
        ("/feedback", {"user": "u0", "item": "sci-1", "event": "click",
                       "idempotency_key": "a\nb"}, "idempotency_key"),
        ("/feedback", {"user": "u0", "item": "sci-1", "event": "click",
                       "idempotency_key": "tab\there"}, "idempotency_key"),
        ("/users", {"user_id": "line\nbreak", "text": "hi"}, "user_id"),
    ],
)  # fmt: skip
def test_blank_text_absurd_times_and_control_keys_are_422_naming_the_field(
    client, path, body, field
):
    r = client.post(path, json=body, headers=AUTH)
    assert r.status_code == 422, r.text
    assert field in _error_fields(r)
    assert client.app.state.serve.store.count() == 0
    r = client.get("/recommend", params={"user": "u0", "query": "   "})
    assert r.status_code == 422 and "query" in _error_fields(r)


def test_openapi_declares_the_key_only_where_it_is_needed(make_client):
    for protect in (False, True):
        spec = make_client(protect_reads=protect).get("/openapi.json").json()
        for path, ops in spec["paths"].items():
            for method, op in ops.items():
                secured = bool(op.get("security"))
                write = method in ("post", "delete")  # DELETE /users/{id}: erasure
                want = write or (protect and path != "/health")  # /health: open
                assert secured == want, (protect, method, path)


def test_schema_and_server_agree_on_cross_field_rules(client):
    spec = client.get("/openapi.json").json()["components"]["schemas"]
    fb, user = spec["FeedbackIn"], spec["UserIn"]
    assert fb["if"]["properties"]["event"] == {"const": "rating"}
    assert fb["then"]["required"] == ["value"]
    assert fb["then"]["properties"]["value"]["type"] == "number"
    assert {tuple(a["required"]) for a in user["anyOf"]} == {("text",), ("liked_items",)}
    # bodies the schema rejects are rejected; the ones it allows are accepted
    rating_null = {"user": "u0", "item": "sci-1", "event": "rating", "value": None}
    assert client.post("/feedback", json=rating_null, headers=AUTH).status_code == 422
    click_null = {"user": "u0", "item": "sci-1", "event": "click", "value": None}
    assert client.post("/feedback", json=click_null, headers=AUTH).status_code == 201
    assert client.post("/users", json={"user_id": "n1"}, headers=AUTH).status_code == 422
    empty = {"user_id": "n2", "liked_items": []}
    assert client.post("/users", json=empty, headers=AUTH).status_code == 422
    assert (
        client.post("/users", json={"user_id": "n3", "text": "space"}, headers=AUTH).status_code
        == 201
    )


def test_options_answers_with_allow(client):
    r = client.options("/users")
    assert r.status_code == 204 and r.headers["allow"] == "GET, OPTIONS, POST"
    r = client.options("/users/u0")
    assert r.status_code == 204 and r.headers["allow"] == "DELETE, GET, OPTIONS"
    assert client.head("/users/u0").status_code == 405  # so Allow does not claim HEAD
    assert client.options("/feedback").headers["allow"] == "OPTIONS, POST"
    assert client.options("/nope").status_code == 404
    r = client.delete("/feedback")
    assert r.status_code == 405 and r.headers["allow"] == "POST"


def test_redoc_bundle_loads_nothing_from_a_cdn(client):
    js = client.get("/static-docs/redoc.standalone.js")
    assert js.status_code == 200 and "Redoc" in js.text
    assert "cdn.redoc.ly" not in js.text
    assert 'src:"https://' not in js.text and "src:'https://" not in js.text


def test_stale_metrics_dirs_of_killed_servers_are_removed(tmp_path, monkeypatch):
    import tempfile

    from lgrec.serve.metrics import remove_stale_metrics_dirs, shared_metrics_dir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code = "from lgrec.serve.metrics import shared_metrics_dir as d; import os, signal; " \
           "p = d(); open(p + '/worker-1.json', 'w').write('{}'); print(p, flush=True); " \
           "os.kill(os.getpid(), signal.SIGKILL)"  # fmt: skip
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    stale = tmp_path / os.path.basename(out.stdout.strip())
    assert out.returncode == -9 and stale.is_dir()  # kill -9 left it behind
    foreign = tmp_path / "lgrec-metrics-999999999-x"  # not only worker files: not ours
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    mine = shared_metrics_dir()  # a new server run cleans up first
    assert not stale.exists() and foreign.is_dir() and os.path.isdir(mine)
    assert os.path.basename(mine).startswith(f"lgrec-metrics-{os.getpid()}-")
    assert remove_stale_metrics_dirs(tmp_path) == []  # the live run's directory stays


def test_secrets_are_refused_on_the_command_line(tmp_path, capsys):
    from lgrec.cli import build_parser, main
    from lgrec.credentials import read_secret

    with pytest.raises(SystemExit) as err:
        main(["serve", "--model", str(tmp_path), "--api-key", API_KEY])
    assert err.value.code == 2
    msg = capsys.readouterr().err
    assert "LGREC_API_KEY" in msg and "--api-key-file" in msg and API_KEY not in msg
    f = tmp_path / "key"
    f.write_text(API_KEY + "\n")
    args = build_parser().parse_args(["serve", "--model", "m", "--api-key-file", str(f)])
    assert read_secret(args.api_key_file, "LGREC_API_KEY") == API_KEY
