"""Load test of `lgrec serve` on an ML-1M-sized model: latency and throughput.

1. Trains (once; reused afterwards) LightGCN on colakg-ml-1m (6,040 users × 3,260 items, 801k
   training interactions) for a few epochs and saves the bundle under ``runs/bench-serve/``;
   the item texts are encoded once into the embedding cache so the server starts fast.
2. Starts ``lgrec serve --workers 2`` on a free loopback port.
3. Drives it with Debian's ``wrk`` (closed loop, Lua scripts drawing random users/items):
   ``GET /recommend?k=10`` and ``POST /feedback`` (unique idempotency keys), then with a Python
   asyncio open-loop generator at fixed rates: ``/recommend`` at ``--rate`` req/s (default
   200) plus, for each of ``--feedback-rates`` (default 0 and 50), that many ``POST
   /feedback`` per second mixed in at random; one connection per request, latency measured
   from the scheduled send time, so queueing counts.
4. Prints a table and writes ``runs/bench-serve/serve_load.json``.

``--model lmgcn`` (default) serves the fused model the README leads with, ``--model lightgcn``
the LightGCN bundle of earlier runs. Total load time ≤ 60 s by default. The machine may be
shared: the load average is recorded before and after.

    .venv/bin/python benchmarks/serve_load.py [--model lmgcn] [--rate 200] [--feedback-rates 0,50]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

log = logging.getLogger("serve_load")
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "runs" / "bench-serve"
API_KEY = "bench-" + os.urandom(8).hex()


def build_bundle(path: Path, epochs: int, model_name: str = "lightgcn") -> Path:
    """Train ``model_name`` on colakg-ml-1m (its fixed split) and save the bundle.

    LightGCN: ``epochs`` epochs on the training part. LMGCN (the fused model): its defaults
    (the graph-filter blend chosen on a validation split carved from training, then refit
    on all of training) without the rating and category heads, which ``/recommend`` and
    ``/feedback`` never use and which take most of the fitting time."""
    from lgrec.config import load_config
    from lgrec.pipeline import build_model, fit_model, prepare, save_bundle, setup

    if (path / "config.json").is_file():
        log.info("reusing %s", path)
        return path
    t0 = time.perf_counter()
    if model_name == "lmgcn":
        cfg = load_config(dataset="colakg-ml-1m", split="fixed", valid_ratio=0.1)
        setup(cfg)
        prep = prepare(cfg)
        log.info("training LMGCN on %s", prep.data.summary())
        model = build_model("lmgcn", cfg, rating_head=False, category_head=False)
        model, _ = fit_model(model, prep, cfg)
    else:
        from lgrec.models.lightgcn import LightGCN

        cfg = load_config(dataset="colakg-ml-1m", split="fixed", valid_ratio=0.0)
        setup(cfg)
        prep = prepare(cfg)
        log.info("training LightGCN on %s for %d epochs", prep.data.summary(), epochs)
        model = LightGCN(dim=64, n_layers=3, epochs=epochs, batch_size=8192, lr=0.005)
        model.fit(prep.split.full_train)
    log.info("trained in %.0fs", time.perf_counter() - t0)
    return save_bundle(model, prep.data, path)


def warm_text_cache(bundle: Path) -> None:
    """Encode the item texts once (the server then reads them from the cache)."""
    from lgrec.serve.state import ServeState
    from lgrec.store.feedback import FeedbackStore

    with tempfile.TemporaryDirectory() as tmp:
        st = ServeState(bundle, FeedbackStore(Path(tmp) / "warm.sqlite"), score_cache_mb=0)
        st.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    bundle: Path, store: Path | str, port: int, workers: int, extra: list[str], log_file: Path
) -> subprocess.Popen:
    """``lgrec serve`` in its own process group (so the group can be stopped as a whole)."""
    cmd = [
        sys.executable, "-m", "lgrec.cli", "serve", "--model", str(bundle), "--store", str(store),
        "--port", str(port), "--workers", str(workers), *extra,
    ]  # fmt: skip
    env = {**os.environ, "LGREC_API_KEY": API_KEY}
    with open(log_file, "ab") as fh:
        return subprocess.Popen(
            cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_up(proc: subprocess.Popen, url: str, timeout: float = 300) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            time.sleep(0.25)
    raise TimeoutError(f"server not up after {timeout}s")


def stop_server(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# ---- wrk ----------------------------------------------------------------------------------------
def _lua_list(values: list[str]) -> str:
    return "{" + ",".join(json.dumps(v) for v in values) + "}"


def wrk_scripts(tmp: Path, users: list[str], items: list[str]) -> tuple[Path, Path]:
    enc = [urllib.parse.quote(u, safe="") for u in users]
    rec = tmp / "recommend.lua"
    rec.write_text(
        f"local users = {_lua_list(enc)}\n"
        "local n = 0\n"
        "function setup(thread) n = n + 1; thread:set('seed', n) end\n"
        "function init(args) math.randomseed(seed * 7919) end\n"
        "request = function()\n"
        "  return wrk.format('GET', '/recommend?k=10&user=' .. users[math.random(#users)])\n"
        "end\n"
    )
    fb = tmp / "feedback.lua"
    fb.write_text(
        f"local users = {_lua_list(users)}\nlocal items = {_lua_list(items)}\n"
        "local n = 0\nlocal count = 0\n"
        "function setup(thread) n = n + 1; thread:set('tid', n) end\n"
        "function init(args) math.randomseed(tid * 104729) end\n"
        f"local headers = {{['Content-Type'] = 'application/json', ['X-API-Key'] = '{API_KEY}'}}\n"
        "request = function()\n"
        "  count = count + 1\n"
        '  local body = string.format(\'{"user": %q, "item": %q, "event": "click", '
        '"idempotency_key": "wrk-%d-%d"}\', users[math.random(#users)], '
        "items[math.random(#items)], tid, count)\n"
        "  return wrk.format('POST', '/feedback', headers, body)\n"
        "end\n"
    )
    return rec, fb


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def run_wrk(url: str, script: Path, seconds: int, conns: int, threads: int = 2) -> dict:
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", str(script)]
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "tool": "wrk",
        "connections": conns,
        "seconds": seconds,
        "requests": total,
        "throughput_rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": _ms(pct["50"]),
        "p90_ms": _ms(pct["90"]),
        "p99_ms": _ms(pct["99"]),
        "errors": (int(non2xx.group(1)) if non2xx else 0)
        + (sum(map(int, sock.groups())) if sock else 0),
    }


# ---- fixed-rate open-loop generator -------------------------------------------------------------
async def http_request(
    host: str, port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None
) -> int:
    """One HTTP/1.1 request on a fresh connection (``Connection: close``); the status code.

    A connection per request keeps the generator open-loop: nothing queues in a client pool
    (httpx's pool degrades quadratically with thousands of queued requests)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
        lines += [f"Content-Length: {len(body)}"] + [
            f"{k}: {v}" for k, v in (headers or {}).items()
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        await reader.read()  # the rest, until the server closes
        return status
    finally:
        writer.close()


async def fixed_rate(
    url: str,
    users: list[str],
    items: list[str],
    rate: float,
    seconds: float,
    share_fb: float,
    warmup: float = 3.0,
) -> dict:
    """Open loop: request k is sent at t0 + k/rate whatever happened before; latency counts
    from that scheduled time, so time spent queueing behind a slow server is included.

    The first ``warmup`` seconds run at the same rate but are not recorded (each worker's
    thread pool, SQLite connections and caches fill up then). Tasks are spawned on schedule
    by one loop, not created all at once, so the generator itself has no start-up burst."""
    host, port = urllib.parse.urlsplit(url).hostname, urllib.parse.urlsplit(url).port
    rng = np.random.default_rng(0)
    n_warm, n = int(rate * warmup), int(rate * (warmup + seconds))
    kinds = rng.random(n) < share_fb
    pick_u, pick_i = rng.integers(len(users), size=n), rng.integers(len(items), size=n)
    lat: dict[str, list[float]] = {"recommend": [], "feedback": []}
    lag: list[float] = []  # the generator's own lateness: task start − scheduled send time
    errors = {"recommend": 0, "feedback": 0}
    json_hdr = {"Content-Type": "application/json", "X-API-Key": API_KEY}
    key_prefix = f"fixed-{os.getpid()}-{time.time_ns()}"

    async def one(k: int, due: float) -> None:
        kind = "feedback" if kinds[k] else "recommend"
        if k >= n_warm:
            lag.append((time.perf_counter() - due) * 1000)
        try:
            if kinds[k]:
                body = {"user": users[pick_u[k]], "item": items[pick_i[k]], "event": "click",
                        "idempotency_key": f"{key_prefix}-{k}"}  # fmt: skip
                status = await http_request(
                    host, port, "POST", "/feedback", json.dumps(body).encode(), json_hdr
                )
            else:
                user = urllib.parse.quote(users[pick_u[k]], safe="")
                status = await http_request(host, port, "GET", f"/recommend?k=10&user={user}")
            ok = status < 300
        except OSError:
            ok = False
        if k >= n_warm:
            lat[kind].append((time.perf_counter() - due) * 1000)
            errors[kind] += not ok

    # This process holds ~0.5 M long-lived objects (pandas, torch and the model modules
    # that warm_text_cache imported): a full garbage collection walking them paused the
    # generator for 210-350 ms, once or twice a phase, and every request due meanwhile was
    # sent late (counted as latency: ~1-2 % of a phase, the whole p99). Freeze them and keep
    # only the tasks in flight, so that a collection only walks the requests' own garbage.
    gc.collect()
    gc.freeze()
    pending: set[asyncio.Task] = set()
    t0 = time.perf_counter()
    for k in range(n):
        due = t0 + k / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(k, due))
        pending.add(task)
        task.add_done_callback(pending.discard)
    while pending:
        await asyncio.gather(*pending)
    gc.unfreeze()
    wall = time.perf_counter() - t0 - warmup
    out = {"tool": "asyncio sockets, open loop", "rate_rps": rate, "seconds": seconds,
           "warmup_seconds": warmup}  # fmt: skip
    if lag:  # a late generator would count its own delay as the server's latency
        out["generator_lag_ms"] = {
            "p50": float(np.percentile(lag, 50)), "p99": float(np.percentile(lag, 99)),
            "max": float(np.max(lag)),
        }  # fmt: skip
    for kind, v in lat.items():
        a = np.asarray(v)
        out[kind] = {
            "requests": len(a),
            "throughput_rps": len(a) / wall,
            "p50_ms": float(np.percentile(a, 50)) if len(a) else None,
            "p99_ms": float(np.percentile(a, 99)) if len(a) else None,
            "max_ms": float(a.max()) if len(a) else None,
            "errors": errors[kind],
        }
    return out


# ---- the server's own view: its latency histogram (lgrec.serve.metrics) ------------------------
HIST = re.compile(
    r'^lgrec_http_request_duration_seconds_bucket\{endpoint="([^"]+)",le="([^"]+)"\} (\d+)$'
)


def server_histogram(url: str, wait: float = 2.5) -> dict[str, list[tuple[float, int]]]:
    """Cumulative ``(le seconds, count)`` buckets per endpoint, summed over the workers; waits
    ``wait`` s first so that every worker has published its counts (every 2 s)."""
    time.sleep(wait)
    req = urllib.request.Request(url + "/metrics", headers={"X-API-Key": API_KEY})
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read().decode()
    out: dict[str, list[tuple[float, int]]] = {}
    for m in filter(None, map(HIST.match, text.splitlines())):
        ep, le, n = m.groups()
        out.setdefault(ep, []).append((float(le), int(n)))
    return out


def server_quantile(before: dict, after: dict, endpoint: str, q: float = 0.99) -> dict:
    """The bucket bound (ms) under which a fraction ``q`` of the requests between two
    scrapes were answered, as the server measured them (from the ASGI call to the last byte:
    no client, no kernel queue), and the share under 10 and 25 ms (bucket bounds)."""
    a = dict(after.get(endpoint, []))
    b = dict(before.get(endpoint, []))
    cum = [(le, a[le] - b.get(le, 0)) for le in sorted(a)]
    n = cum[-1][1] if cum else 0
    if not n:
        return {"requests": 0}
    bound = next(le for le, c in cum if c >= q * n)
    share = {f"share_under_{int(ms)}ms": dict(cum).get(ms / 1000, 0) / n for ms in (10, 25)}
    return {"requests": n, f"p{round(q * 100)}_bucket_ms": bound * 1000, **share}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=("lightgcn", "lmgcn"), default="lmgcn")
    p.add_argument("--bundle", type=Path, help="default: runs/bench-serve/MODEL-colakg-ml-1m")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--rec-seconds", type=int, default=10)
    p.add_argument("--fb-seconds", type=int, default=8)
    p.add_argument("--fixed-seconds", type=float, default=20)
    p.add_argument("--warmup-seconds", type=float, default=3)
    p.add_argument("--rate", type=float, default=200, help="open loop: /recommend per second")
    p.add_argument(
        "--feedback-rates", default="0,50",
        help="open loop: /feedback per second mixed in, one phase per value (comma-separated)",
    )  # fmt: skip
    p.add_argument("--no-wrk", action="store_true", help="skip the closed-loop wrk phases")
    p.add_argument("--no-text", action="store_true", help="serve without the text encoder")
    p.add_argument("--threads", type=int, help="torch threads per server worker (server default)")
    p.add_argument(
        "--score-cache-mb", type=float, help="server's --score-cache-mb (0: scores per request)"
    )
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if not args.no_wrk and not shutil.which("wrk"):
        log.error("wrk not found: apt-get install -y wrk")
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    bundle = build_bundle(
        args.bundle or OUT / f"{args.model}-colakg-ml-1m", args.epochs, args.model
    )
    if not args.no_text:
        warm_text_cache(bundle)
    import pandas as pd

    users = pd.read_parquet(bundle / "users.parquet")["user_id"].astype(str).tolist()
    items = pd.read_parquet(bundle / "items.parquet")["item_id"].astype(str).tolist()
    result: dict = {"bundle": str(bundle), "n_users": len(users), "n_items": len(items)}
    result["cpus"], result["load_before"] = os.cpu_count(), os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        port, url = free_port(), None
        url = f"http://127.0.0.1:{port}"
        extra = ["--no-text"] if args.no_text else []
        extra += ["--threads", str(args.threads)] if args.threads else []
        if args.score_cache_mb is not None:
            extra += ["--score-cache-mb", str(args.score_cache_mb)]
            result["score_cache_mb"] = args.score_cache_mb
        proc = start_server(
            bundle, tmp / "load.sqlite", port, args.workers, extra, OUT / "serve_load.log"
        )
        try:
            result["startup_s"] = wait_up(proc, url)
            log.info("server up in %.1fs (%d workers)", result["startup_s"], args.workers)
            for _ in range(20):  # warm-up: both workers, first-request costs
                urllib.request.urlopen(f"{url}/recommend?user={users[0]}&k=10").read()
            result["open_loop"] = []
            for fb_rate in (float(r) for r in args.feedback_rates.split(",")):
                total = args.rate + fb_rate
                hist0 = server_histogram(url)
                res = asyncio.run(
                    fixed_rate(
                        url, users, items, total, args.fixed_seconds, fb_rate / total,
                        args.warmup_seconds,
                    )
                )  # fmt: skip
                res["recommend_rate"], res["feedback_rate"] = args.rate, fb_rate
                hist1 = server_histogram(url)  # warm-up seconds included
                res["server_side"] = {
                    ep: server_quantile(hist0, hist1, ep) for ep in ("/recommend", "/feedback")
                }
                result["open_loop"].append(res)
                log.info("open loop: %s", res)
            if not args.no_wrk:
                rec_lua, fb_lua = wrk_scripts(tmp, users, items)
                w = run_wrk(url, rec_lua, args.rec_seconds, args.connections)
                result["wrk_recommend"] = w
                log.info("wrk /recommend: %s", w)
                result["wrk_feedback"] = run_wrk(url, fb_lua, args.fb_seconds, args.connections)
                log.info("wrk /feedback: %s", result["wrk_feedback"])
            with urllib.request.urlopen(url + "/health") as r:
                result["health_after"] = json.loads(r.read())
        finally:
            stop_server(proc)
    result["load_after"] = os.getloadavg()
    (OUT / "serve_load.json").write_text(json.dumps(result, indent=2))
    rows = []
    for fr in result["open_loop"]:
        mix = f"{fr['recommend_rate']:.0f} rec/s + {fr['feedback_rate']:.0f} fb/s"
        rows.append((f"GET /recommend (open loop, {mix})", fr["recommend"]))
        if fr["feedback"]["requests"]:
            rows.append((f"POST /feedback (open loop, {mix})", fr["feedback"]))
    if not args.no_wrk:
        rows.append((f"GET /recommend (wrk, {args.connections} conns)", result["wrk_recommend"]))
        rows.append((f"POST /feedback (wrk, {args.connections} conns)", result["wrk_feedback"]))
    print(f"\nlgrec serve {args.model}, {args.workers} workers, {len(users)} users × "
          f"{len(items)} items; "
          f"load avg before/after {result['load_before'][0]:.1f}/{result['load_after'][0]:.1f} "
          f"on {result['cpus']} CPUs (shared machine)")  # fmt: skip
    print(f"| {'endpoint':<52} | req/s | p50 ms | p99 ms | errors |")
    print(f"|{'-' * 54}|------:|-------:|-------:|-------:|")
    for name, r in rows:
        print(f"| {name:<52} | {r['throughput_rps']:5.0f} | {r['p50_ms']:6.1f} | "
              f"{r['p99_ms']:6.1f} | {r['errors']:6d} |")  # fmt: skip
    for fr in result["open_loop"]:
        if "generator_lag_ms" in fr:
            g = fr["generator_lag_ms"]
            print(f"generator lateness at {fr['feedback_rate']:.0f} fb/s (request task start − "
                  f"its scheduled time): p50 {g['p50']:.2f}, p99 {g['p99']:.2f}, "
                  f"max {g['max']:.1f} ms")  # fmt: skip
    print("\nserver side (its own latency histogram, warm-up included): p99 bucket, share < 10 ms")
    for fr in result["open_loop"]:
        mix = f"{fr['recommend_rate']:.0f} rec/s + {fr['feedback_rate']:.0f} fb/s"
        for ep, q in fr["server_side"].items():
            if q["requests"]:
                print(f"  {mix}: {ep} p99 ≤ {q['p99_bucket_ms']:g} ms, "
                      f"{100 * q['share_under_10ms']:.1f} % < 10 ms, "
                      f"{100 * q['share_under_25ms']:.1f} % < 25 ms "
                      f"({q['requests']} requests)")  # fmt: skip
    print(f"\nwrote {OUT / 'serve_load.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
