"""A throwaway Citus cluster for the scale-out tests: a coordinator and workers on loopback.

Each node is a :class:`~pgtally.server.cluster.LocalCluster` started with
``shared_preload_libraries = 'citus'`` and listening on 127.0.0.1 (Citus opens
connections between nodes by host and port). One database is created on every
node with the ``citus`` extension; the coordinator registers itself and adds the
workers. Needs Citus installed into the local PostgreSQL (``citus.so`` in
``pg_config --pkglibdir``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .cluster import FAST_UNSAFE, LocalCluster, ServerError, find_bindir, wait_ready

#: Settings of every node: Citus first in shared_preload_libraries, loopback TCP between nodes.
CITUS_SETTINGS = {
    "shared_preload_libraries": "citus",
    "listen_addresses": "127.0.0.1",
    "max_connections": "200",
    "shared_buffers": "128MB",
    "max_prepared_transactions": "100",
    "citus.max_cached_conns_per_worker": "2",
}


def citus_missing() -> str | None:
    """Why Citus cannot run here (one line), or None when it is installed."""
    try:
        bindir = find_bindir()
    except ServerError as exc:
        return str(exc)
    libdirs: list[Path] = [bindir.parent / "lib"]
    pg_config = bindir / "pg_config"
    if not pg_config.exists() and shutil.which("pg_config"):
        pg_config = Path(str(shutil.which("pg_config")))
    if pg_config.exists():
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            out = subprocess.run([str(pg_config), "--pkglibdir"], check=True, capture_output=True, text=True)
            libdirs.insert(0, Path(out.stdout.strip()))
    if any((d / "citus.so").exists() for d in libdirs):
        return None
    return "Citus is not installed in the local PostgreSQL (no citus.so; see docs/scale-out.md)"


@dataclass
class CitusCluster:
    """A coordinator and ``workers`` worker nodes, each a private PostgreSQL cluster."""

    directory: Path
    workers: int = 2
    dbname: str = "pgtally"
    settings: dict[str, str] = field(default_factory=dict)
    coordinator: LocalCluster = field(init=False)
    worker_nodes: list[LocalCluster] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        opts = {**FAST_UNSAFE, **CITUS_SETTINGS, **self.settings}
        self.coordinator = LocalCluster(self.directory / "coordinator", settings=dict(opts))
        self.worker_nodes = [
            LocalCluster(self.directory / f"worker{i}", settings=dict(opts)) for i in range(self.workers)
        ]

    @property
    def nodes(self) -> list[LocalCluster]:
        return [self.coordinator, *self.worker_nodes]

    def dsn(self, dbname: str | None = None) -> str:
        """Superuser DSN of the coordinator (over its Unix socket)."""
        return self.coordinator.dsn(dbname or self.dbname)

    def start(self) -> None:
        import psycopg

        for node in self.nodes:
            node.start()
        for node in self.nodes:
            wait_ready(node.dsn())
            with psycopg.connect(node.dsn(), autocommit=True) as conn:
                if not conn.execute("select 1 from pg_database where datname = %s", [self.dbname]).fetchone():
                    conn.execute(f'create database "{self.dbname}"')
            with psycopg.connect(node.dsn(self.dbname), autocommit=True) as conn:
                conn.execute("create extension if not exists citus")
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute("select citus_set_coordinator_host('127.0.0.1', %s)", [self.coordinator.port])
            for node in self.worker_nodes:
                conn.execute("select citus_add_node('127.0.0.1', %s)", [node.port])

    def stop(self, mode: str = "immediate") -> None:
        for node in reversed(self.nodes):
            node.stop(mode)


@contextlib.contextmanager
def citus_cluster(workers: int = 2, settings: dict[str, str] | None = None) -> Iterator[CitusCluster]:
    """A started Citus cluster in a temporary directory, stopped and removed afterwards."""
    if problem := citus_missing():
        raise ServerError(problem)
    tmp = Path(tempfile.mkdtemp(prefix="pgtally-citus-"))
    os.chmod(tmp, 0o755)
    cluster = CitusCluster(tmp, workers=workers, settings=dict(settings or {}))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)
