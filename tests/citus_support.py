"""A Citus cluster for the scale-out tests: started lazily once per session, pgtally installed and distributed.

Each test gets its own user ids (a random prefix) instead of a fresh database:
databases would have to be created on every node, and the merge, the quota
checks and the reads are all per user.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from pgtally import distribute, migrate, schema
from pgtally.server.citus import CitusCluster, citus_cluster, citus_missing


class _CitusHarness:
    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._cluster: CitusCluster | None = None

    def cluster(self) -> CitusCluster:
        if self._cluster is None:
            cluster = self._stack.enter_context(citus_cluster())
            dsn = cluster.dsn()
            if os.environ.get("PGTALLY_TEST_INSTALL") == "declarative":
                with psycopg.connect(dsn) as conn:
                    schema.install(conn)
                from alembic import command

                migrate._run(dsn, command.stamp, "head")
            else:
                migrate.upgrade(dsn)
            distribute.distribute(dsn)
            self._cluster = cluster
        return self._cluster

    def close(self) -> None:
        self._stack.close()
        self._cluster = None


CITUS = _CitusHarness()


@pytest.fixture(scope="session")
def citus() -> Iterator[CitusCluster]:
    """The session's Citus cluster (coordinator + 2 workers) with pgtally distributed; skips without Citus."""
    if problem := citus_missing():
        pytest.skip(problem)
    yield CITUS.cluster()
    CITUS.close()


@pytest.fixture
def citus_dsn(citus: CitusCluster) -> str:
    return citus.dsn()


def distributed_database(cluster: CitusCluster, dbname: str, revision: str = "head") -> str:
    """A new database on every node of ``cluster`` with pgtally installed (at ``revision``) and distributed; its
    coordinator DSN.

    For tests that compare platform-wide answers (admin reads) with one server: they need a
    distributed install holding exactly their own data, not the session database's.
    """
    for node in cluster.nodes:
        with psycopg.connect(node.dsn(), autocommit=True) as conn:
            conn.execute(f'create database "{dbname}"')
        with psycopg.connect(node.dsn(dbname), autocommit=True) as conn:
            conn.execute("create extension citus")
    dsn = cluster.dsn(dbname)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select citus_set_coordinator_host('127.0.0.1', %s)", [cluster.coordinator.port])
        for node in cluster.worker_nodes:
            conn.execute("select citus_add_node('127.0.0.1', %s)", [node.port])
    if os.environ.get("PGTALLY_TEST_INSTALL") == "declarative" and revision == "head":
        with psycopg.connect(dsn) as conn:
            schema.install(conn)
        from alembic import command

        migrate._run(dsn, command.stamp, "head")
    else:
        migrate.upgrade(dsn, revision)
    distribute.distribute(dsn)
    return dsn


@pytest.fixture
def prefix() -> str:
    """A prefix for this test's user ids and event ids."""
    return f"t{uuid.uuid4().hex[:8]}-"
