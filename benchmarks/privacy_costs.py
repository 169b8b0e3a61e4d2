"""What the privacy controls cost (docs/privacy.md): pseudonymisation, encryption, erasure.

    python benchmarks/privacy_costs.py --runs 3 --out docs/privacy_costs.json

* pseudonymisation: HMAC-SHA256 per id; ``prepare`` of ML-100K with and without it; the
  latency of ``GET /recommend`` (in-process client) on a pseudonymised bundle and a plain one;
* encryption: ``FeedbackStore.add_event`` latency (each durable: fsync'ed) and throughput,
  batched ``add_events``, reading events back, and opening a store (key derivation), plain
  vs SQLCipher, each in a fresh temporary folder;
* erasure: ``delete_user`` of a user with 2,000 events (secure delete + WAL truncation).

Every figure is the median over ``--runs`` repetitions; the load average is recorded, since
the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

KEY = "benchmark passphrase, not a secret"


def _median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def pseudonym_costs(runs: int, data_dir: str | None) -> dict[str, Any]:
    from lgrec.config import load_config
    from lgrec.pipeline import prepare
    from lgrec.privacy.pseudonym import Pseudonymizer

    pz = Pseudonymizer(b"k" * 32)
    ids = [str(k) for k in range(100_000)]
    per_id = []
    for _ in range(runs):
        t0 = time.perf_counter()
        pz.many(ids)
        per_id.append((time.perf_counter() - t0) / len(ids) * 1e6)
    os.environ["LGREC_PSEUDONYM_KEY"] = "k" * 32
    prep = {False: [], True: []}
    for _ in range(runs):
        for flag in (False, True):
            cfg = load_config(dataset="ml-100k", data_dir=data_dir, pseudonymize=flag)
            t0 = time.perf_counter()
            prepare(cfg)
            prep[flag].append(time.perf_counter() - t0)
    return {
        "hmac_us_per_id": round(_median(per_id), 3),
        "prepare_ml100k_s_plain": round(_median(prep[False]), 3),
        "prepare_ml100k_s_pseudonymized": round(_median(prep[True]), 3),
    }


def serve_latency(runs: int, data_dir: str | None, n: int = 300) -> dict[str, Any]:
    """Median latency of GET /recommend on a BPR-MF bundle of ML-100K, plain vs pseudonymised."""
    from fastapi.testclient import TestClient

    from lgrec.config import load_config
    from lgrec.pipeline import build_model, prepare, save_bundle
    from lgrec.serve.app import ServeSettings, create_app

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for flag in (False, True):
            cfg = load_config(dataset="ml-100k", data_dir=data_dir, pseudonymize=flag)
            prep = prepare(cfg)
            model = build_model("bprmf", cfg, epochs=2).fit(prep.split.train)
            bundle = save_bundle(model, prep.data, Path(tmp) / f"b{flag}")
            settings = ServeSettings(model=str(bundle), text="off", pseudonymize=flag)
            lat = []
            with TestClient(create_app(settings)) as c:
                for _ in range(runs):
                    t = []
                    for k in range(n):
                        t0 = time.perf_counter()
                        c.get("/recommend", params={"user": str(1 + k % 900), "k": 10})
                        t.append(time.perf_counter() - t0)
                    lat.append(_median(t) * 1e3)
            out[f"recommend_ms_{'pseudonymized' if flag else 'plain'}"] = round(_median(lat), 3)
    return out


def store_costs(runs: int, n: int = 300) -> dict[str, Any]:
    from lgrec.store import FeedbackStore

    res: dict[str, Any] = {}
    for mode in ("plain", "encrypted"):
        key = KEY if mode == "encrypted" else None
        single, batch, read, opened, erase = [], [], [], [], []
        for _ in range(runs):
            with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
                path = Path(tmp) / "f.sqlite"
                from lgrec.privacy import encryption

                encryption._DERIVED.clear()  # count the key derivation of a fresh process
                t0 = time.perf_counter()
                s = FeedbackStore(path, key=key)
                opened.append(time.perf_counter() - t0)
                lat = []
                for k in range(n):
                    t0 = time.perf_counter()
                    s.add_event(f"u{k % 50}", f"i{k}", "click")
                    lat.append(time.perf_counter() - t0)
                single.append(lat)
                events = [{"user_id": "b", "item_id": f"i{k}", "event": "view"} for k in range(200)]
                t0 = time.perf_counter()
                for _ in range(10):
                    s.add_events(events)
                batch.append(2000 / (time.perf_counter() - t0))
                t0 = time.perf_counter()
                rows = s.event_rows(limit=None)
                read.append(len(rows) / (time.perf_counter() - t0))
                t0 = time.perf_counter()
                s.delete_user("b")
                erase.append(time.perf_counter() - t0)
                s.close()
        med = [_median(r) for r in single]
        p99 = [sorted(r)[int(0.99 * len(r))] for r in single]
        res[mode] = {
            "add_event_ms_median": round(_median(med) * 1e3, 3),
            "add_event_ms_p99": round(_median(p99) * 1e3, 3),
            "add_event_per_s": round(1 / _median(med), 1),
            "add_events_batched_per_s": round(_median(batch), 1),
            "read_rows_per_s": round(_median(read), 1),
            "open_s": round(_median(opened), 4),
            "delete_user_2000_events_s": round(_median(erase), 4),
        }
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--data-dir")
    p.add_argument("--out", type=Path, default=Path("docs/privacy_costs.json"))
    p.add_argument("--skip", default="", help="comma list of parts to skip: pseudonym,serve,store")
    args = p.parse_args()
    import torch

    from lgrec.utils import atomic_write_text

    torch.set_num_threads(1)
    skip = set(args.skip.split(","))
    out: dict[str, Any] = {"load_before": os.getloadavg()}
    if "pseudonym" not in skip:
        out["pseudonym"] = pseudonym_costs(args.runs, args.data_dir)
    if "serve" not in skip:
        out["serve"] = serve_latency(args.runs, args.data_dir)
    if "store" not in skip:
        out["store"] = store_costs(args.runs)
    out["load_after"] = os.getloadavg()
    atomic_write_text(args.out, json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
