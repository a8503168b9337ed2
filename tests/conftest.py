"""Test harness: one throwaway PostgreSQL per session, a migrated template
database, and a fresh database cloned from it for every test.

Set DATABASE_URL to use an existing server instead (its role needs CREATEDB).
pgTAP files (tests/pgtap/**/*.test.sql) are collected as pytest items and run
with psql inside their own cloned database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from fixed_clock import clock_problem, fixed_moment, server_env
from pgtally import migrate, server

TEMPLATE = "pgtally_template"


def _with_db(dsn: str, dbname: str) -> str:
    """The same server DSN pointing at another database."""
    return psycopg.conninfo.make_conninfo(dsn, dbname=dbname)


class _Harness:
    """Starts the server and the template lazily, once per session, for fixtures and pgTAP items alike."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._dsn: str | None = None

    @property
    def server_dsn(self) -> str:
        if self._dsn is None:
            # Under a fixed clock the server gets this process's libfaketime settings: both clocks move together.
            dsn = self._stack.enter_context(server.database(settings=server.FAST_UNSAFE, env=server_env()))
            if fixed_moment() is not None:
                with psycopg.connect(dsn) as conn:
                    seen = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
                if problem := clock_problem("the server's now()", seen):
                    raise RuntimeError(problem)
            _build_template(dsn)
            self._dsn = dsn
        return self._dsn

    def close(self) -> None:
        self._stack.close()
        self._dsn = None


def _build_template(server_dsn: str) -> None:
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f"drop database if exists {TEMPLATE} with (force)")
        conn.execute(f"create database {TEMPLATE}")
    dsn = _with_db(server_dsn, TEMPLATE)
    if os.environ.get("PGTALLY_TEST_INSTALL") == "declarative":
        # While a schema change has no revision yet: install db/ + functions/ directly.
        from pgtally import schema

        with psycopg.connect(dsn) as conn:
            schema.install(conn)
        from alembic import command

        migrate._run(dsn, command.stamp, "head")
    else:
        migrate.upgrade(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create extension if not exists pgtap")
        conn.execute((Path(__file__).parent / "pgtap" / "fixtures.sql").read_text())


HARNESS = _Harness()


def pytest_configure(config: pytest.Config) -> None:
    # A fixed clock (docs/development.md, "Fixed clocks") must be this process's clock too, and the server's.
    if fixed_moment() is not None:
        if os.environ.get("DATABASE_URL"):
            raise pytest.UsageError("PGTALLY_FAKETIME needs the throwaway server: unset DATABASE_URL")
        if problem := clock_problem("this process's clock", dt.datetime.now(dt.timezone.utc)):
            raise pytest.UsageError(problem)


def pytest_report_header(config: pytest.Config) -> str | None:
    moment = fixed_moment()
    return f"fixed clock (libfaketime): {moment:%Y-%m-%d %H:%M:%S} UTC and running" if moment else None


def pytest_unconfigure(config: pytest.Config) -> None:
    HARNESS.close()


@pytest.fixture(scope="session")
def server_dsn() -> str:
    return HARNESS.server_dsn


class Databases:
    """Creates and drops databases cloned from the template."""

    def __init__(self, server_dsn: str) -> None:
        self.server_dsn = server_dsn
        self.created: list[str] = []

    def create(self, template: str = TEMPLATE) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.server_dsn, autocommit=True) as conn:
            conn.execute(f"create database {name} template {template}")
        self.created.append(name)
        return _with_db(self.server_dsn, name)

    def drop_all(self) -> None:
        with psycopg.connect(self.server_dsn, autocommit=True) as conn:
            for name in self.created:
                conn.execute(f"drop database if exists {name} with (force)")
        self.created.clear()


@pytest.fixture
def databases(server_dsn: str) -> Iterator[Databases]:
    dbs = Databases(server_dsn)
    yield dbs
    dbs.drop_all()


@pytest.fixture
def dsn(databases: Databases) -> str:
    """DSN of a fresh database with pgtally installed (superuser)."""
    return databases.create()


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(dsn, autocommit=True) as c:
        yield c


@pytest.fixture
def login_role(server_dsn: str) -> Iterator[Callable[[str | None], str]]:
    """Creates cluster-wide login roles (member of a pgtally role, or of none) for one test, dropped afterwards."""
    created: list[str] = []

    def make(member_of: str | None = None) -> str:
        name = f"t_{member_of or 'nobody'}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(server_dsn, autocommit=True) as c:
            c.execute(f"create role {name} login" + (f" in role {member_of}" if member_of else ""))
        created.append(name)
        return name

    yield make
    with psycopg.connect(server_dsn, autocommit=True) as c:
        for name in created:
            # A closed session's backend drops its temporary objects as it exits, just after the client returns.
            for attempt in range(50):
                try:
                    c.execute(f"drop role if exists {name}")
                    break
                except psycopg.errors.DependentObjectsStillExist:
                    if attempt == 49:
                        raise
                    time.sleep(0.1)


# --------------------------------------------------------------------------
# pgTAP files as pytest items
# --------------------------------------------------------------------------

_TAP_LINE = re.compile(r"^\s*(not ok|ok)\s+(\d+)(.*)$")
_TAP_PLAN = re.compile(r"^\s*1\.\.(\d+)")


def _psql() -> str:
    found = shutil.which("psql")
    if found:
        return found
    return str(server.find_bindir() / "psql")


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.name.endswith(".test.sql"):
        return PgTapFile.from_parent(parent, path=file_path)
    return None


#: pgTAP files whose answers depend on the day they run (windows relative to now()), and the area about dates:
#: the fixed-clock matrix runs them (marker date_sensitive).
_DATE_SENSITIVE_PGTAP = (
    "dates/",
    "admin/cohorts.",
    "admin/leaderboards.",
    "admin/reliability.",
    "admin/week_over_week.",
)


class PgTapFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        item = PgTapItem.from_parent(self, name=self.path.name.removesuffix(".test.sql"))
        if f"{self.path.parent.name}/{self.path.name}".startswith(_DATE_SENSITIVE_PGTAP):
            item.add_marker(pytest.mark.date_sensitive)
        yield item


class PgTapFailure(Exception):
    pass


class PgTapItem(pytest.Item):
    def runtest(self) -> None:
        dbs = Databases(HARNESS.server_dsn)
        dsn = dbs.create()
        try:
            res = subprocess.run(
                [_psql(), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", str(self.path)],
                capture_output=True,
                text=True,
                timeout=300,
            )
        finally:
            dbs.drop_all()
        planned, results = None, []
        for line in res.stdout.splitlines():
            if (m := _TAP_PLAN.match(line)) and planned is None:
                planned = int(m.group(1))
            elif m := _TAP_LINE.match(line):
                results.append((m.group(1) == "ok", int(m.group(2)), m.group(3).strip()))
        failed = [r for r in results if not r[0]]
        problems = []
        if res.returncode != 0:
            problems.append(f"psql exited {res.returncode}")
        if planned is None:
            problems.append("no TAP plan printed")
        elif planned != len(results):
            problems.append(f"planned {planned} tests, ran {len(results)}")
        if failed:
            problems.append(f"{len(failed)} failed: " + "; ".join(f"#{n} {d}" for _, n, d in failed))
        if problems:
            raise PgTapFailure("\n".join(problems) + "\n--- output ---\n" + res.stdout[-6000:] + res.stderr[-4000:])

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: object = None) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, PgTapFailure):
            return f"pgTAP {self.path.name}:\n{excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"pgtap: {self.name}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A run that collected nothing must fail (pytest's own code 5 is easy to mask).
    if session.testscollected == 0 and exitstatus == 0:
        session.exitstatus = 5


os.environ.setdefault("PGTALLY_TESTING", "1")
