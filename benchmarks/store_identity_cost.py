"""Cost of the replaced-file check on the feedback write path, next to the commit it guards.

    python benchmarks/store_identity_cost.py [--dir DIR] [--runs 3]

Each write transaction of the SQLite feedback store ends with one ``os.stat`` of the store's
path (:class:`lgrec.store.file_identity.FileIdentity`): this times that check (100 000 calls
per run) and a one-event commit through :meth:`FeedbackStore.add_events` (``synchronous=FULL``:
its fsync; 200 per run) on the same file system, and prints the median over runs of each, in
µs. Run it under the suite lock on the shared machine and record ``uptime`` beside it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from lgrec.store import FeedbackStore


def _per_call(fn, n: int) -> float:
    """Mean wall time of one ``fn()`` over ``n`` calls, in µs."""
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def main(argv: list[str] | None = None) -> None:
    """Print the median cost of the check and of a one-event group commit."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", help="folder for the store (default: a temp folder)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    event = [{"user_id": "u", "item_id": "i", "event": "view"}]
    with (
        tempfile.TemporaryDirectory(dir=args.dir) as tmp,
        FeedbackStore(Path(tmp) / "feedback.sqlite") as store,
    ):
        checks = [_per_call(store._identity.check, 100_000) for _ in range(args.runs)]
        commits = [_per_call(lambda: store.add_events(event), 200) for _ in range(args.runs)]
    check, commit = statistics.median(checks), statistics.median(commits)
    runs = ", ".join(f"{c:.2f}" for c in checks)
    print(f"replaced-file check (os.stat): {check:.2f} µs per commit (runs: {runs})")
    runs = ", ".join(f"{c:.0f}" for c in commits)
    share = check / commit
    print(f"one-event group commit (fsync): {commit:.0f} µs (runs: {runs}); check: {share:.2%}")


if __name__ == "__main__":
    main()
