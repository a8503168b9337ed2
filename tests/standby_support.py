"""A primary and a hot standby for the tests of reads on replicas (one pair per test session).

``standby_pair`` starts a throwaway primary and a standby streaming from it
(:mod:`pgtally.server.replica`), installs the pgtally schema on the primary the
way the test harness builds its template (``PGTALLY_TEST_INSTALL`` honoured),
waits for the standby to replay it, and yields both DSNs of that database.
The tests share the pair, so each one works with user ids of its own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg

from conftest import TEMPLATE, _build_template, _with_db
from fixed_clock import server_env
from pgtally.server import replica

DB = "pgtally_standby"


@dataclass(frozen=True)
class StandbyPair:
    """DSNs (superuser) of the same pgtally database on the primary and on its hot standby."""

    primary: str
    standby: str

    def catch_up(self, timeout: float = 30.0) -> None:
        """Wait until the standby has replayed everything committed on the primary so far."""
        # The standby's maintenance database: the pgtally one appears there only once it is replayed.
        replica.catch_up(self.primary, _with_db(self.standby, "postgres"), timeout)

    def replay_paused(self) -> contextlib.AbstractContextManager[None]:
        """Pause the standby's replay for the block (it keeps receiving WAL but applies none of it)."""
        return _paused(self.standby)


@contextlib.contextmanager
def _paused(standby: str) -> Iterator[None]:
    with psycopg.connect(standby, autocommit=True) as conn:
        conn.execute("select pg_catalog.pg_wal_replay_pause()")
        try:
            yield
        finally:
            conn.execute("select pg_catalog.pg_wal_replay_resume()")


@contextlib.contextmanager
def standby_pair() -> Iterator[StandbyPair]:
    """Start the pair, install pgtally on the primary, and yield the DSNs once the standby has it too."""
    if os.environ.get("DATABASE_URL"):
        raise RuntimeError("the standby tests start their own primary and standby: unset DATABASE_URL")
    with replica.primary_and_standby(settings=replica.FAST_REPLICATED, env=server_env()) as pair:
        server = pair.primary_dsn()
        _build_template(server)
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"create database {DB} template {TEMPLATE}")
        found = StandbyPair(_with_db(server, DB), _with_db(pair.standby_dsn(), DB))
        found.catch_up()
        yield found
