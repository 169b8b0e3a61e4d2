"""A throw-away PostgreSQL server on a loopback port in a temporary directory.

Used by the test fixtures (``postgres_server``, ``postgres_url`` in ``tests/conftest.py``) and
by ``benchmarks/serve_crash.py --store postgresql``. It runs Debian's ``postgresql`` binaries
(``/usr/lib/postgresql/<version>/bin``; when they are missing and this process is root, it
installs them with ``apt-get install -y postgresql``): ``initdb`` into a fresh temporary
directory, ``pg_ctl start`` listening on 127.0.0.1 only, password authentication
(scram-sha-256) for role ``lgrec``, and ``pg_ctl stop`` + removal of the directory at the end.
PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` system
user (made by the Debian package) or ``nobody``, via ``runuser``; the directory is theirs.

Run by hand: ``python tests/pg_server.py`` prints a URL and the password, stops on Ctrl-C.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)
ROLE = "lgrec"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_bin_dir() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``: on ``PATH``, else Debian's newest
    ``/usr/lib/postgresql/<version>/bin``; None when neither exists."""
    on_path = shutil.which("initdb") and shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    dirs = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    return Path(dirs[-1]).parent if dirs else None


def ensure_bin_dir() -> Path:
    """:func:`find_bin_dir`, installing Debian's ``postgresql`` first when it is missing and
    this process is root; RuntimeError (with the reason) when it cannot be had."""
    found = find_bin_dir()
    if found is not None:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(
            "PostgreSQL binaries not found (initdb/pg_ctl) and cannot install them (not root "
            "or no apt-get): install Debian's 'postgresql' package"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "postgresql"]
    log.info("installing PostgreSQL: %s", " ".join(cmd))
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"apt-get install postgresql failed:\n{done.stderr[-2000:]}")
    found = find_bin_dir()
    if found is None:
        raise RuntimeError("apt-get installed postgresql but initdb/pg_ctl are not to be found")
    return found


def _run_as() -> tuple[list[str], int | None]:
    """Command prefix and uid to run the server with: nothing as a normal user; as root the
    ``postgres`` system user, else ``nobody`` (PostgreSQL refuses to run as root)."""
    if os.geteuid() != 0:
        return [], None
    for name in ("postgres", "nobody"):
        try:
            uid = pwd.getpwnam(name).pw_uid
        except KeyError:
            continue
        return ["runuser", "-u", name, "--"], uid
    raise RuntimeError("running as root and neither user 'postgres' nor 'nobody' exists")


class PostgresServer:
    """``initdb`` + ``pg_ctl start`` on a free loopback port (context manager).

    :attr:`password` is the password of role ``lgrec`` (a superuser of this throw-away
    cluster); :meth:`url` gives a password-free URL of a database (pass the password through
    ``PGPASSWORD``). :meth:`create_schema` makes a fresh schema and gives its URL.
    """

    def __init__(self) -> None:
        self.bin = ensure_bin_dir()
        self.prefix, self.uid = _run_as()
        self.password = secrets.token_hex(16)
        self.port = 0
        self.dir: Path | None = None

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{dbname}"

    def _pg(self, tool: str, *args: str, timeout: float = 120) -> None:
        cmd = [*self.prefix, str(self.bin / tool), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            logtail = ""
            if self.dir is not None and (self.dir / "server.log").is_file():
                logtail = (self.dir / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(
                f"{tool} failed ({done.returncode}): {done.stderr[-2000:]}\n{logtail}"
            )

    def start(self) -> PostgresServer:
        self.dir = Path(tempfile.mkdtemp(prefix="lgrec-pg-"))
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.uid is not None:
            for p in (self.dir, pwfile):
                os.chown(p, self.uid, -1)
        data = self.dir / "data"
        self._pg(
            "initdb", "-D", str(data), "-U", ROLE, f"--pwfile={pwfile}", "--auth=scram-sha-256",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        pwfile.unlink()
        self.port = free_port()
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} "
            "-c shared_buffers=32MB -c max_connections=60"
        )
        log_file = str(self.dir / "server.log")
        self._pg("pg_ctl", "-D", str(data), "-l", log_file, "-w", "-t", "60", "-o", opts, "start")
        return self

    def stop(self) -> None:
        """Stop the server and remove its directory (immediate shutdown: no final checkpoint
        of a cluster about to be deleted)."""
        if self.dir is None:
            return
        try:
            self._pg("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def create_schema(self, name: str, dbname: str = "postgres") -> str:
        """Create schema ``name`` (instant, unlike a database); return a URL whose
        ``search_path`` is that schema, so a store opened on it starts empty."""
        import psycopg

        conn = psycopg.connect(self.url(dbname), password=self.password, autocommit=True)
        with conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return f"{self.url(dbname)}?options=-csearch_path%3D{name}"

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    import time

    logging.basicConfig(level=logging.INFO)
    with PostgresServer() as server:
        print(f"{server.url()}  (PGPASSWORD={server.password}); Ctrl-C stops it", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
