"""A throwaway primary and a hot standby streaming from it (tests and demos of reads on replicas).

``primary_and_standby()`` starts a private primary (``wal_level=replica``,
WAL senders, the unix socket only), clones it with ``pg_basebackup -R -X
stream`` into a second directory and starts that clone as a hot standby that
streams from the primary over the socket. Both run as the unprivileged user
when the caller is root, like :class:`pgtally.server.LocalCluster`.
``wait_for_replay`` waits until the standby has replayed a given WAL position.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .cluster import FAST_UNSAFE, LocalCluster, ServerError, _unprivileged_user, wait_ready

#: Settings of a primary that serves streaming standbys (its standbys get them too: they are command-line options).
PRIMARY_SETTINGS = {
    "wal_level": "replica",
    "max_wal_senders": "5",
    "wal_keep_size": "256MB",
    "hot_standby": "on",
    # Queries on the standby hold back vacuum on the primary instead of being cancelled by it.
    "hot_standby_feedback": "on",
}

#: FAST_UNSAFE without ``synchronous_commit=off``: a commit is then in the WAL the standby receives when the
#: client hears of it, which read-your-writes through a replica relies on to be quick.
FAST_REPLICATED = {k: v for k, v in FAST_UNSAFE.items() if k != "synchronous_commit"}


@dataclass
class ReplicaPair:
    """A running primary and a hot standby of it."""

    primary: LocalCluster
    standby: LocalCluster

    def primary_dsn(self, dbname: str = "postgres") -> str:
        return self.primary.dsn(dbname)

    def standby_dsn(self, dbname: str = "postgres") -> str:
        return self.standby.dsn(dbname)


def _prepare_directory(cluster: LocalCluster) -> None:
    """The cluster's directory and socket directory, owned by the account PostgreSQL runs as."""
    cluster.directory.mkdir(parents=True, exist_ok=True)
    cluster.socket_dir.mkdir(exist_ok=True)
    user = _unprivileged_user()
    if user is not None:
        for p in (cluster.directory, cluster.socket_dir):
            os.chown(p, user.pw_uid, user.pw_gid)


def start_standby(
    primary: LocalCluster,
    directory: Path,
    settings: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> LocalCluster:
    """Clone the running ``primary`` into ``directory`` with pg_basebackup and start the clone as a hot standby.

    ``pg_basebackup -R`` writes ``standby.signal`` and a ``primary_conninfo``
    pointing at the primary's socket, so the standby streams from it at once.
    The replication connection goes over the unix socket: ``initdb -A trust``
    writes ``local replication all trust`` into pg_hba.conf. ``env`` adds
    variables to the standby's environment.
    """
    standby = LocalCluster(directory, settings={**primary.settings, **(settings or {})}, bindir=primary.bindir)
    _prepare_directory(standby)
    res = standby._run(
        [
            str(primary.bindir / "pg_basebackup"),
            "-h",
            str(primary.socket_dir),
            "-p",
            str(primary.port),
            "-U",
            primary.superuser,
            "-D",
            str(standby.datadir),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
        ]
    )
    if res.returncode != 0:
        raise ServerError(f"pg_basebackup failed:\n{res.stdout}\n{res.stderr}")
    standby.start(env)
    wait_ready(standby.dsn())
    return standby


def current_lsn(primary_dsn: str) -> str:
    """The primary's WAL insert position now: every transaction committed before this call ends before it."""
    import psycopg

    with psycopg.connect(primary_dsn, autocommit=True) as conn:
        row = conn.execute("select pg_catalog.pg_current_wal_insert_lsn()::text").fetchone()
    assert row is not None
    return str(row[0])


def wait_for_replay(standby_dsn: str, lsn: str, timeout: float = 30.0) -> None:
    """Wait until the standby has replayed the WAL up to ``lsn`` (``pg_last_wal_replay_lsn() >= lsn``)."""
    import psycopg

    deadline = time.monotonic() + timeout
    delay = 0.005
    with psycopg.connect(standby_dsn, autocommit=True) as conn:
        while True:
            row = conn.execute("select pg_catalog.pg_last_wal_replay_lsn() >= %s::pg_catalog.pg_lsn", (lsn,)).fetchone()
            if row is not None and row[0]:
                return
            if time.monotonic() > deadline:
                raise ServerError(f"the standby did not replay the WAL up to {lsn} within {timeout} s")
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def catch_up(primary_dsn: str, standby_dsn: str, timeout: float = 30.0) -> None:
    """Wait until the standby has replayed everything committed on the primary so far."""
    wait_for_replay(standby_dsn, current_lsn(primary_dsn), timeout)


@contextlib.contextmanager
def primary_and_standby(
    settings: dict[str, str] | None = None,
    standby_settings: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[ReplicaPair]:
    """A primary and a hot standby streaming from it, in a temporary directory, for the duration of the block.

    ``settings`` are added to the primary's (and inherited by the standby);
    ``standby_settings`` only to the standby's. ``env`` adds variables to the
    servers' environment. Both are stopped and their files removed afterwards.
    """
    tmp = Path(tempfile.mkdtemp(prefix="pgtally-replica-"))
    os.chmod(tmp, 0o755)
    primary = LocalCluster(tmp / "primary", settings={**PRIMARY_SETTINGS, **(settings or {})})
    standby: LocalCluster | None = None
    try:
        primary.start(env)
        wait_ready(primary.dsn())
        standby = start_standby(primary, tmp / "standby", standby_settings, env)
        yield ReplicaPair(primary, standby)
    finally:
        if standby is not None:
            standby.stop("immediate")
        primary.stop("immediate")
        shutil.rmtree(tmp, ignore_errors=True)
