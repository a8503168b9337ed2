"""A throwaway PostgreSQL for the demo, the tests and the benchmarks.

``database(...)`` yields a DSN: ``DATABASE_URL`` when set, otherwise a private
cluster started from the local PostgreSQL binaries (initdb + pg_ctl in a
temporary directory, unix socket only, a free port), run as an unprivileged
user when the caller is root, and stopped afterwards. With
``backend="testcontainers"`` a Docker container is used instead (only when a
Docker engine is reachable).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Settings that make a disposable cluster fast; never used for DATABASE_URL.
FAST_UNSAFE = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class ServerError(RuntimeError):
    """The throwaway PostgreSQL could not be started."""


def find_bindir() -> Path:
    """Directory holding initdb/pg_ctl: $PG_BINDIR, pg_config, or Debian's versioned dirs."""
    candidates: list[str] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(os.environ["PG_BINDIR"])
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            candidates.append(
                subprocess.run([pg_config, "--bindir"], check=True, capture_output=True, text=True).stdout.strip()
            )
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).parent))
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    raise ServerError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found. Install them "
        "(Debian: apt-get install postgresql-15 postgresql-15-pgtap), set PG_BINDIR, "
        "or point DATABASE_URL at an existing server."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unprivileged_user() -> pwd.struct_passwd | None:
    """The account to run PostgreSQL as when we are root (it refuses to run as root)."""
    if os.geteuid() != 0:
        return None
    for name in (os.environ.get("PGTALLY_SERVER_USER"), "postgres", "nobody"):
        if name:
            with contextlib.suppress(KeyError):
                return pwd.getpwnam(name)
    raise ServerError("running as root and no unprivileged user (postgres) exists to run PostgreSQL; create one")


@dataclass
class LocalCluster:
    """A private PostgreSQL cluster in a directory of its own."""

    directory: Path
    settings: dict[str, str] = field(default_factory=dict)
    port: int = 0
    bindir: Path = field(default_factory=find_bindir)
    superuser: str = "postgres"

    @property
    def datadir(self) -> Path:
        return self.directory / "data"

    @property
    def socket_dir(self) -> Path:
        return self.directory / "sock"

    @property
    def logfile(self) -> Path:
        return self.directory / "server.log"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.superuser}@/{dbname}?host={self.socket_dir}&port={self.port}"

    def _run(
        self, args: list[str], extra_env: dict[str, str] | None = None, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        user = _unprivileged_user()

        def demote() -> None:
            if user is not None:
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)

        env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", **(extra_env or {})}
        if user is not None:
            env["HOME"] = str(self.directory)
        return subprocess.run(args, preexec_fn=demote, env=env, text=True, capture_output=True, **kw)

    def initialized(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def init(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        user = _unprivileged_user()
        if user is not None:
            for p in (self.directory, self.socket_dir):
                os.chown(p, user.pw_uid, user.pw_gid)
            # The unprivileged user must be able to reach the directory.
            parent = self.directory.parent
            while parent != parent.parent and not os.access(parent, os.X_OK):
                parent = parent.parent
        res = self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                self.superuser,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C.UTF-8",
            ]
        )
        if res.returncode != 0:
            raise ServerError(f"initdb failed:\n{res.stdout}\n{res.stderr}")

    def start(self, env: dict[str, str] | None = None) -> None:
        """Start the server; ``env`` adds variables to its environment (the tests' fixed clocks: LD_PRELOAD, FAKETIME)."""
        if not self.initialized():
            self.init()
        if not self.port:
            self.port = _free_port()
        opts = {
            "listen_addresses": "",
            "unix_socket_directories": str(self.socket_dir),
            "port": str(self.port),
            "max_connections": "100",
            "shared_buffers": "256MB",
            "max_locks_per_transaction": "256",
            **self.settings,
        }
        optstr = " ".join(f"-c {k}={v}" for k, v in opts.items())
        res = self._run(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(self.logfile),
                "-o",
                optstr,
                "-w",
                "-t",
                "60",
                "start",
            ],
            extra_env=env,
        )
        if res.returncode != 0:
            log = self.logfile.read_text()[-3000:] if self.logfile.exists() else ""
            raise ServerError(f"pg_ctl start failed:\n{res.stdout}\n{res.stderr}\n{log}")

    def stop(self, mode: str = "fast") -> None:
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"])

    def kill(self) -> None:
        """SIGKILL the postmaster (crash tests)."""
        pidfile = self.datadir / "postmaster.pid"
        if pidfile.exists():
            pid = int(pidfile.read_text().splitlines()[0])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)


def wait_ready(dsn: str, timeout: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(dsn, connect_timeout=3):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextlib.contextmanager
def database(
    backend: str | None = None,
    settings: dict[str, str] | None = None,
    keep_dir: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """Yield a superuser DSN of a PostgreSQL server for the duration of the block.

    ``backend``: ``None``/"auto" (DATABASE_URL, else a local cluster), "local",
    "url" or "testcontainers". ``keep_dir`` keeps the local cluster's files in
    that directory (reused by the next call) instead of a temporary one.
    ``env`` adds variables to a local server's environment.
    """
    backend = backend or os.environ.get("PGTALLY_BACKEND", "auto")
    url = os.environ.get("DATABASE_URL")
    if backend in ("auto", "url") and url:
        yield url
        return
    if backend == "url":
        raise ServerError("backend 'url' needs DATABASE_URL")
    if backend == "testcontainers":
        try:
            from testcontainers.postgres import PostgresContainer
        except ImportError as exc:
            raise ServerError(
                "backend 'testcontainers' needs `pip install pgtally[containers]` and a Docker engine"
            ) from exc
        with PostgresContainer("postgres:15") as pg:
            yield pg.get_connection_url(driver=None)
        return
    if keep_dir is not None:
        cluster = LocalCluster(Path(keep_dir).resolve(), settings=dict(settings or {}))
        cluster.start(env)
        try:
            wait_ready(cluster.dsn())
            yield cluster.dsn()
        finally:
            cluster.stop()
        return
    tmp = Path(tempfile.mkdtemp(prefix="pgtally-"))
    os.chmod(tmp, 0o755)
    cluster = LocalCluster(tmp, settings=dict(settings or {}))
    try:
        cluster.start(env)
        wait_ready(cluster.dsn())
        yield cluster.dsn()
    finally:
        cluster.stop("immediate")
        shutil.rmtree(tmp, ignore_errors=True)
