"""Client memory benchmark: ``Client.record_many`` of N events and a CSV export of N rows in flat memory.

Each measured side is a client process of its own (:mod:`pgtally.bench.memory_child`, which imports only
pgtally and psycopg), so the benchmark's own memory (rich, this bookkeeping) does not count:

* bare client: a process that imports pgtally and connects, nothing more: the floor the others are read against;
* record_many: ``Client.record_many(events, chunk_size=...)`` of N events of ONE user from a lazy generator,
  timestamps spread over a fixed past year (2025), so no list of events ever exists;
* CSV export: ``Client.export_events_csv`` of that user's N rows (``COPY ... TO STDOUT``) into a sink that counts
  bytes and CSV lines and keeps nothing; the row count must equal N.

Every event is on one user so that the export covers all N rows (record_many is set-wise per chunk: one
user costs it no more than many). Each process samples its resident set size (VmRSS) after 1, 10, 25, 50, 75
and 100 % of its work and reports its peak (VmHWM: ``ru_maxrss`` would include the parent's size, which Linux
carries across fork and exec). The growth is the RSS at the end over
the RSS after 10 %: flat memory is about 1.0x, whatever N is.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import migrate, server
from .memory_child import DSN_ENV, USER, WINDOW, WINDOW_START

#: The growth (RSS at the end / RSS after 10 % of the work) under which memory counts as flat.
FLAT_GROWTH = 1.1
#: The client processes, in the order they run, and their names in the table.
PARTS = {"baseline": "bare client", "record_many": "record_many", "export": "CSV export"}


class MemoryBenchError(RuntimeError):
    """A client process failed or got a wrong result (one line: what and why)."""


@contextlib.contextmanager
def _fresh_database() -> Iterator[str]:
    """A new pgtally database on a throwaway server with fsync off (the client's memory is measured, not the disk)."""
    with server.database(backend="local", settings=dict(server.FAST_UNSAFE)) as base:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute("create database pgtally_bench_memory")
        target = psycopg.conninfo.make_conninfo(base, dbname="pgtally_bench_memory")
        migrate.upgrade(target)
        yield target


def _server_version(dsn: str) -> str:
    """The server's version; refuses a database that already holds events of the benchmark's user."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        taken = conn.execute("select exists (select from tally.usage_events where user_id = %s)", [USER]).fetchone()
        if taken and taken[0]:
            raise MemoryBenchError(f"the database already holds events of {USER}: use a fresh pgtally database")
        return str(conn.execute("show server_version").fetchone()[0])  # type: ignore[index]


def _child_env(dsn: str) -> dict[str, str]:
    """The child's environment: the DSN (not in its arguments, where ``ps`` shows it) and this copy of pgtally."""
    package_root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    return {**os.environ, DSN_ENV: dsn, "PYTHONPATH": path}


def _child(kind: str, dsn: str, events: int, chunk_size: int, progress: Progress) -> dict[str, Any]:
    """Run one client process and return its result line; its progress lines move a bar."""
    cmd = [sys.executable, "-m", "pgtally.bench.memory_child", kind, str(events), str(chunk_size)]
    total = events if kind != "baseline" else 1
    task = progress.add_task(PARTS[kind], total=total, rss="")
    result: dict[str, Any] | None = None
    with tempfile.TemporaryFile() as err:
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=_child_env(dsn)) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                word, _, rest = line.partition(" ")
                if word == "progress":
                    done, rss = rest.split()
                    progress.update(task, completed=int(done), rss=f"RSS {int(rss) / 1024:,.1f} MiB")
                elif word == "result":
                    result = json.loads(rest)
        if proc.returncode or result is None:
            err.seek(0)
            said = err.read().decode(errors="replace").strip().splitlines() or ["no output"]
            raise MemoryBenchError(f"the {PARTS[kind]} process failed (exit {proc.returncode}): {said[-1]}")
    progress.update(task, completed=total)
    return result


def _above(part: dict[str, Any], floor: dict[str, Any]) -> dict[str, Any]:
    """``part`` with its peak above the bare client's and whether its memory stayed flat."""
    growth = part.get("growth")
    return {
        **part,
        "peak_above_baseline_kib": part["peak_rss_kib"] - floor["peak_rss_kib"],
        "flat": growth is not None and growth <= FLAT_GROWTH,
    }


def _mib(kib: float | None) -> str:
    return "-" if kib is None else f"{kib / 1024:,.1f} MiB"


def _work(part: dict[str, Any]) -> str:
    if "rows" in part:
        return f"{part['rows']:,} rows"
    return f"{part['events']:,} events" if "events" in part else "import + connect"


def _rate(part: dict[str, Any]) -> str:
    n, unit = (part["rows"], "rows") if "rows" in part else (part.get("events"), "events")
    return f"{n / part['seconds']:,.0f} {unit}/s" if n and part["seconds"] else "-"


def _growth(part: dict[str, Any]) -> str:
    growth = part.get("growth")
    return "-" if growth is None else f"{'[green]' if part['flat'] else '[red]'}{growth:.2f}x[/]"


#: The lines of the table: a label and the cell of each process.
LINES: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("work", _work),
    ("time", lambda p: f"{p['seconds']:,.1f} s" if "growth" in p else "-"),
    ("rate", _rate),
    ("CSV written", lambda p: _mib(p["bytes"] / 1024) if "bytes" in p else "-"),
    ("peak RSS", lambda p: _mib(p["peak_rss_kib"])),
    ("above bare client", lambda p: _mib(p.get("peak_above_baseline_kib"))),
    ("RSS after 10 %", lambda p: _mib(p.get("rss_at_10pct_kib"))),
    ("RSS at the end", lambda p: _mib(p.get("rss_at_end_kib"))),
    ("growth (end / 10 %)", _growth),
)


def print_report(result: dict[str, Any], console: Console) -> None:
    """A column per process (bare client, record_many, CSV export): work, time, rate, peak RSS, RSS growth."""
    table = Table(title=f"pgtally client memory: {result['parameters']['events']:,} events of one user")
    table.add_column("", no_wrap=True)
    for name in PARTS.values():
        table.add_column(name, justify="right")
    for label, cell in LINES:
        table.add_row(label, *(cell(result[key]) for key in PARTS))
    console.print(table)
    console.print(
        f"[dim]chunks of {result['parameters']['chunk_size']:,} events; one process each; peak = VmHWM; "
        f"flat: growth <= {FLAT_GROWTH:g}x[/dim]"
    )


def run_memory_bench(
    *,
    events: int = 10_000_000,
    chunk_size: int = 10_000,
    dsn: str | None = None,
    output: str | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Measure a bare client, record_many of ``events`` events and their CSV export; print, write and return."""
    console = console or Console()
    started = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rss]}"))
    with contextlib.ExitStack() as stack:
        if dsn is None:
            dsn = stack.enter_context(_fresh_database())
        version = _server_version(dsn)
        with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as progress:
            runs = {kind: _child(kind, dsn, events, chunk_size, progress) for kind in PARTS}
    floor = runs["baseline"]
    result = {
        "benchmark": "memory",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "server": version,
        },
        "parameters": {
            "events": events,
            "chunk_size": chunk_size,
            "user": USER,
            "window": [WINDOW_START.isoformat(), (WINDOW_START + WINDOW).isoformat()],
            "flat_growth": FLAT_GROWTH,
        },
        "baseline": floor,
        "record_many": _above(runs["record_many"], floor),
        "export": _above(runs["export"], floor),
        "elapsed_s": time.perf_counter() - started,
    }
    print_report(result, console)
    if output:
        Path(output).write_text(json.dumps(result, indent=2))
    return result
