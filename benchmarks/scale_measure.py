"""Process-tree measurement for benchmarks/scale.py: wall time, CPU seconds, peak memory, load.

:func:`run` starts one command from the repository root in its own process group and samples
the whole tree below it from /proc (:func:`tree_usage`): every 0.2 s, then every 1 s after
10 s, so Spark's JVM and uvicorn's workers count. Peak memory is the largest sum of resident
memory over the tree; CPU seconds (user + system) are a lower bound (see :func:`run`).
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# OpenMP threads that wait for a core sleep instead of spinning: on a loaded machine spinning
# counts as CPU time that does no work (the result is unchanged; set the variable to override)
SPIN = {"OMP_WAIT_POLICY": "PASSIVE"}


def tree_usage(pid: int) -> dict[int, tuple[int, float]]:
    """{pid: (resident bytes, CPU seconds user+sys)} of ``pid`` and its descendants (/proc)."""
    children: dict[int, list[int]] = {}
    use: dict[int, tuple[int, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(stat[1]), []).append(int(d.name))
            cpu = (int(stat[11]) + int(stat[12])) / tick
            use[int(d.name)] = (int(stat[21]) * os.sysconf("SC_PAGE_SIZE"), cpu)
        except (OSError, IndexError, ValueError):
            continue
    out, todo = {}, [pid]
    while todo:
        p = todo.pop()
        if p in use:
            out[p] = use[p]
        todo.extend(children.get(p, []))
    return out


def run(cmd: list[str], log: Path, timeout: float, env: dict | None = None) -> dict:
    """Run ``cmd`` (output to ``log``); wall seconds, peak tree RSS (MB), exit code, load.

    CPU seconds: the larger of the sampled tree's total (sees processes the child leaves
    running, e.g. a JVM) and the user + system time of the reaped descendants (``getrusage``:
    sees short-lived processes the 0.2 s sampling misses); each is a lower bound."""
    load0 = os.getloadavg()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    peak, cpu = [0], {}  # CPU: the last reading of every process of the tree
    with open(log, "w") as f:
        proc = subprocess.Popen(
            cmd,
            stdout=f,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**SPIN, **os.environ, **(env or {})},
            start_new_session=True,  # its own process group: a timeout stops Spark's JVM too
        )
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                use = tree_usage(proc.pid)
                peak[0] = max(peak[0], sum(r for r, _ in use.values()))
                cpu.update({p: c for p, (_, c) in use.items()})
                # 0.2 s at first, then 1 s (each scan of /proc costs CPU on a shared machine)
                stop.wait(0.2 if time.perf_counter() - t0 < 10 else 1.0)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = "timeout"
        stop.set()
        th.join()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = sum(getattr(ru1, f) - getattr(ru0, f) for f in ("ru_utime", "ru_stime"))
    return {
        "code": code,
        "wall_s": round(time.perf_counter() - t0, 2),
        "peak_mb": round(peak[0] / 2**20),
        "cpu_s": round(max(sum(cpu.values()), reaped), 1),
        "load": [round(x, 2) for x in (*load0, *os.getloadavg())],
        "cmd": " ".join(str(c) for c in cmd),
    }
