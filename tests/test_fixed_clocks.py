"""The date-sensitive tests at fixed clocks: no figure and no test may depend on the day it runs.

For each moment of the matrix below, a test run of its own (``pytest -m date_sensitive``) starts with the
clocks of the test process and of its throwaway PostgreSQL both moved there by libfaketime (see
tests/fixed_clock.py and docs/development.md, "Fixed clocks"); the clocks run on from there. Inside each
run, ``test_the_server_and_the_client_read_the_fixed_clock`` proves that both clocks were moved.
The runs go two at a time; ``-k`` picks clocks (``-k leap_day``).
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from fixed_clock import EARLIEST, LATEST, fixed_moment, libfaketime, run_env

ROOT = Path(__file__).resolve().parents[1]
UTC = dt.timezone.utc

#: The moments (UTC) of the matrix, with what each one is about. The clocks run on from there during a run
#: (a minute or two), so each moment leaves room before the next boundary that matters.
CLOCKS = {
    # Sunday Oct 31, 2027: the last day of a 31-day month; the day Berlin falls back (13:00 CET there).
    "oct31_last_day_berlin_fall_back": "2027-10-31 12:00:00",
    # Tuesday Feb 29, 2028 at 23:30: the leap day, late (already Mar 1 in Berlin).
    "leap_day": "2028-02-29 23:30:00",
    # Sunday Mar 14, 2027: Los Angeles springs forward at 02:00 PST; 03:30 PDT there.
    "los_angeles_spring_forward": "2027-03-14 10:30:00",
    # Sunday Nov 7, 2027: Los Angeles falls back at 02:00 PDT; 01:30 PST there (the hour seen twice).
    "los_angeles_fall_back": "2027-11-07 09:30:00",
    # Sunday Mar 28, 2027: Berlin springs forward at 02:00 CET; 03:30 CEST there.
    "berlin_spring_forward": "2027-03-28 01:30:00",
    # Monday Nov 29, 2027, two minutes after the Sunday-Monday boundary (UTC).
    "monday_after_sunday": "2027-11-29 00:02:00",
    # Friday Dec 31, 2027 at 23:30: the year's last day (already 2028 in Berlin).
    "new_years_eve": "2027-12-31 23:30:00",
}

#: Runs at once (the machine has two cores; each run has its own server).
JOBS = 2
#: A run of its own may take this long at most (seconds; less than pytest-timeout's 600 for the test waiting on
#: it); a test inside it, INNER_TIMEOUT.
RUN_TIMEOUT, INNER_TIMEOUT = 540, 300


@dataclass
class Run:
    moment: str
    returncode: int
    output: str
    passed: set[str]
    skipped: set[str]
    failed: set[str]


def _paths() -> list[str]:
    """Where the date-sensitive tests are: the test modules that use the marker, and the pgTAP files (the harness
    marks those of tests/pgtap/dates and the admin ones relative to now()); -m date_sensitive picks them out.
    Collecting only these spares each run the imports of every other test module."""
    tests = ROOT / "tests"
    modules = [p for p in sorted(tests.glob("test_*.py")) if "mark.date_sensitive" in p.read_text(encoding="utf-8")]
    return [*map(str, modules), str(tests / "pgtap")]


def _run_at(moment: str, library: Path, workdir: Path) -> Run:
    junit = workdir / f"{moment.replace(' ', '_').replace(':', '')}.xml"
    env = run_env(dt.datetime.fromisoformat(moment).replace(tzinfo=UTC), library)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "date_sensitive",
        "-p",
        "no:cacheprovider",
        "-q",
        "-o",
        f"timeout={INNER_TIMEOUT}",
        f"--junitxml={junit}",
        *_paths(),
    ]
    with subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        try:
            output, _ = proc.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            # Interrupted, pytest still stops the run's server on its way out; killed, it could not.
            proc.send_signal(signal.SIGINT)
            try:
                output, _ = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                output, _ = proc.communicate()
            return Run(moment, -1, f"timed out after {RUN_TIMEOUT} s\n{output[-20000:]}", set(), set(), set())
    passed, skipped, failed = set(), set(), set()
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            name = f"{case.get('classname')}::{case.get('name')}"
            if case.find("skipped") is not None:
                skipped.add(name)
            elif case.find("failure") is not None or case.find("error") is not None:
                failed.add(name)
            else:
                passed.add(name)
    return Run(moment, proc.returncode, output[-20000:], passed, skipped, failed)


class Matrix:
    """Starts the selected clocks' runs, JOBS at a time, when the first of them is needed."""

    def __init__(self, selected: list[str], library: Path, workdir: Path) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=JOBS)
        self._runs = {m: self._pool.submit(_run_at, m, library, workdir) for m in selected}

    def result(self, moment: str) -> Run:
        return self._runs[moment].result()

    def close(self) -> None:
        for f in self._runs.values():
            f.cancel()
        self._pool.shutdown(wait=True)


@pytest.fixture(scope="module")
def matrix(request: pytest.FixtureRequest) -> Iterator[Matrix]:
    if fixed_moment() is not None:
        pytest.skip("already inside a fixed-clock run")
    if os.environ.get("DATABASE_URL"):
        pytest.skip("the fixed-clock runs need their own throwaway servers (DATABASE_URL is set)")
    library = libfaketime()
    if library is None:
        pytest.skip("libfaketime is not installed (Debian: apt-get install faketime; scripts/setup.sh does)")
    selected = [
        item.callspec.params["moment"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_date_sensitive_tests_pass_at_a_fixed_clock"
    ]
    with tempfile.TemporaryDirectory(prefix="pgtally-clocks-") as workdir:
        m = Matrix(selected, library, Path(workdir))
        try:
            yield m
        finally:
            m.close()


@pytest.mark.parametrize("moment", list(CLOCKS.values()), ids=list(CLOCKS))
def test_date_sensitive_tests_pass_at_a_fixed_clock(moment: str, matrix: Matrix) -> None:
    run = matrix.result(moment)
    assert run.returncode == 0, f"the date-sensitive tests fail at {moment} UTC:\n{run.output}"
    # The run really was at the fixed clock: its own check passed (it is skipped on the real clock) ...
    clock_check = "tests.test_fixed_clocks::test_the_server_and_the_client_read_the_fixed_clock"
    assert clock_check in run.passed, f"{clock_check} did not pass at {moment}:\n{run.output}"
    # ... and it ran the date-sensitive tests of every area: pgTAP, the refresh, the dates' figures, the demo.
    for area in ("tests.pgtap.dates", "tests.pgtap.admin", "tests.test_refresh", "tests.test_date_figures"):
        assert any(name.startswith(area) for name in run.passed), f"no test of {area} passed at {moment}"
    assert not run.failed


@pytest.mark.date_sensitive
@pytest.mark.skipif(fixed_moment() is None, reason="runs inside the fixed-clock runs (PGTALLY_FAKETIME is not set)")
def test_the_server_and_the_client_read_the_fixed_clock(conn: psycopg.Connection) -> None:
    """Inside a fixed-clock run: the client's and the server's clocks both read the fixed moment, together."""
    moment = fixed_moment()
    assert moment is not None
    client_now = dt.datetime.now(UTC)
    server_now, server_today = conn.execute("select now(), (now() at time zone 'UTC')::date").fetchone()  # type: ignore[misc]
    assert moment + EARLIEST <= client_now <= moment + LATEST, f"the client's clock reads {client_now}, not {moment}"
    assert moment + EARLIEST <= server_now <= moment + LATEST, f"the server's clock reads {server_now}, not {moment}"
    assert abs(server_now - client_now) < dt.timedelta(seconds=30), "the two clocks do not move together"
    assert server_today == client_now.date()
