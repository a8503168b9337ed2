"""Fixed clocks for the date-sensitive tests (docs/development.md, "Fixed clocks").

``PGTALLY_FAKETIME="2028-02-29 23:30:00"`` (UTC) says that this test run's clocks
were moved to that moment by libfaketime: the test process runs under it, with a
``FAKETIME`` offset from the real clock, and the harness gives the throwaway
PostgreSQL the same ``LD_PRELOAD`` and ``FAKETIME``, so that ``now()`` on the
server and ``datetime.now()`` in the client read the same moved clock, which
runs on from there. ``tests/test_fixed_clocks.py`` starts such runs.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import time
from pathlib import Path

ENV = "PGTALLY_FAKETIME"
UTC = dt.timezone.utc
#: How far from the fixed moment a clock may read during a run: it starts there and runs on (a run of the
#: date-sensitive tests takes a minute or two, more on a loaded machine).
EARLIEST = dt.timedelta(minutes=-1)
LATEST = dt.timedelta(minutes=15)


def fixed_moment() -> dt.datetime | None:
    """The moment (UTC) this run's clocks were set to, or None on the real clock."""
    value = os.environ.get(ENV)
    if not value:
        return None
    return dt.datetime.fromisoformat(value).replace(tzinfo=UTC)


def libfaketime() -> Path | None:
    """The preload library of libfaketime (Debian package faketime), or None when it is not installed."""
    candidates = [os.environ.get("PGTALLY_LIBFAKETIME", "")]
    candidates += ["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"]
    candidates += [
        *sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1")),
        "/usr/local/lib/faketime/libfaketime.so.1",
    ]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    return None


def run_env(moment: dt.datetime, library: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a test process whose clock (and its children's) reads ``moment`` now and runs on.

    FAKETIME is an offset in seconds from the real clock ("+39411951"), the same for every process that
    inherits it, started now or later: the client, the server's postmaster and its backends, psql.
    An absolute "@..." start would restart the clock in every new process, and a bare date would freeze it.
    """
    env = dict(os.environ if base is None else base)
    offset = round(moment.timestamp() - time.time())
    preload = env.get("LD_PRELOAD", "")
    env["LD_PRELOAD"] = f"{library}:{preload}" if preload else str(library)
    env["FAKETIME"] = f"{offset:+d}"
    env[ENV] = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    env.pop("DATABASE_URL", None)
    return env


def server_env() -> dict[str, str]:
    """What the harness adds to the throwaway server's environment: this process's clock, when it is fixed."""
    if fixed_moment() is None:
        return {}
    return {k: os.environ[k] for k in ("LD_PRELOAD", "FAKETIME") if k in os.environ}


def clock_problem(what: str, seen: dt.datetime) -> str | None:
    """Why ``seen`` (a clock read during the run) is not the fixed clock, or None when it is."""
    moment = fixed_moment()
    if moment is None or moment + EARLIEST <= seen <= moment + LATEST:
        return None
    return (
        f"{ENV}={os.environ[ENV]!r} but {what} reads {seen:%Y-%m-%d %H:%M:%S %Z}: it does not run under libfaketime "
        "with that clock (run the fixed-clock tests through tests/test_fixed_clocks.py, see docs/development.md)"
    )
