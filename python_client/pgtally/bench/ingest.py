"""Ingest benchmark: pgtally's write path vs the same writes into a bare table.

Every figure is a ratio against a baseline measured in the same run, on the
same server, alternating the two sides so drift in a noisy machine hits both:

* many users: single-row INSERTs from N clients (pgbench, prepared), many users;
* hot user: the same with every client writing one user (the hot-row case);
* batch: a batch of realistic events: bare COPY vs ``Client.record_many``;
* csv: one CSV file loaded with psql's ``\\copy``: into the bare table vs into the
  session's staging table then ``tally.record_usage_staged()`` (the producers' COPY
  path), and vs straight into ``tally.usage_events`` (every row through the row trigger).

The bare table has the same columns, partitions and index as
``tally.usage_events`` and no triggers; a second baseline adds a unique key on
(user_id, event_id) (the cheapest way to get idempotent inserts without pgtally) for
context.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from .. import migrate, server
from ..client import Client
from ..core import STAGING_COLUMNS, staging_row
from ..models import UsageEvent

TARGET = 0.6

BARE_SQL = """
drop schema if exists bench cascade;
create schema bench;
create table bench.bare_log (like tally.usage_events including defaults) partition by range (occurred_at);
alter table bench.bare_log alter column recorded_at set default now();
create table bench.bare_log_default partition of bench.bare_log default;
create index on bench.bare_log (user_id, occurred_at);
create table bench.bare_keyed (like tally.usage_events including defaults);
alter table bench.bare_keyed alter column recorded_at set default now();
alter table bench.bare_keyed add primary key (user_id, event_id);
create index on bench.bare_keyed (user_id, occurred_at);
"""

PGBENCH_SCRIPT = """\\set u random(1, {users})
\\set v random(1, 4)
\\set k random(1, 1000000000000000)
insert into {table} (event_id, user_id, kind, occurred_at, quantity, duration_ms, cost, attributes)
values ('e' || :k || '-' || :client_id, 'u' || :u, 'tts', now(), 180, 12857, 0.00036,
        jsonb_build_object('voice', 'voice-' || :v, 'model', 'kokoro', 'document_id', 'd' || :k)){conflict};
"""


@dataclass
class Figure:
    """One benchmark line: the same work on a baseline and on pgtally."""

    name: str
    unit: str
    baseline: float
    pgtally: float
    keyed_baseline: float | None = None
    notes: str = ""
    samples: dict[str, list[float]] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.pgtally / self.baseline if self.baseline else 0.0

    @property
    def keyed_ratio(self) -> float | None:
        return self.pgtally / self.keyed_baseline if self.keyed_baseline else None


def _partition_bare_like_tally(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        """select c.relname, pg_get_expr(c.relpartbound, c.oid)
             from pg_inherits i join pg_class c on c.oid = i.inhrelid
            where i.inhparent = 'tally.usage_events'::regclass and c.relname <> 'usage_events_default'"""
    ).fetchall()
    for name, bound in rows:
        conn.execute(
            f"create table bench.{name.replace('usage_events', 'bare_log')} partition of bench.bare_log {bound}"
        )


def _pgbench(dsn: str, table: str, users: int, clients: int, seconds: float, conflict: str = "") -> float:
    """Transactions per second of single-row inserts into ``table``."""
    script = PGBENCH_SCRIPT.format(users=users, table=table, conflict=conflict)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        res = subprocess.run(
            [
                str(server.find_bindir() / "pgbench"),
                "-n",
                "-M",
                "prepared",
                "-c",
                str(clients),
                "-j",
                str(min(clients, os.cpu_count() or 2)),
                "-T",
                str(int(max(1, seconds))),
                "-f",
                path,
                dsn,
            ],
            capture_output=True,
            text=True,
        )
    finally:
        os.unlink(path)
    if res.returncode != 0:
        raise RuntimeError(f"pgbench failed:\n{res.stdout}\n{res.stderr}")
    for line in res.stdout.splitlines():
        if line.startswith("tps = "):
            return float(line.split()[2])
    raise RuntimeError(f"pgbench printed no tps:\n{res.stdout}")


@contextlib.contextmanager
def _background_merges(dsn: str, every: float = 1.0) -> Iterator[None]:
    """Run tally.merge_pending every ``every`` seconds, as a production schedule would."""
    stop = threading.Event()

    def loop() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.wait(every):
                conn.execute("select tally.merge_pending(200000)")

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()


def _drain(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        while conn.execute("select tally.merge_pending(500000)").fetchone()[0]:  # type: ignore[index]
            pass
        conn.execute("vacuum analyze tally.pending_deltas")


def _single_row(dsn: str, name: str, users: int, clients: int, seconds: float, rounds: int) -> Figure:
    bare, keyed, tally = [], [], []
    for _ in range(rounds):
        bare.append(_pgbench(dsn, "bench.bare_log", users, clients, seconds))
        keyed.append(_pgbench(dsn, "bench.bare_keyed", users, clients, seconds, conflict=" on conflict do nothing"))
        with _background_merges(dsn):
            tally.append(_pgbench(dsn, "tally.usage_events", users, clients, seconds))
        _drain(dsn)
    return Figure(
        name,
        "rows/s",
        statistics.median(bare),
        statistics.median(tally),
        statistics.median(keyed),
        notes=f"{clients} clients, {users} user(s), pgbench -M prepared, merges every 1 s during the run",
        samples={"bare": bare, "bare_keyed": keyed, "pgtally": tally},
    )


def _batch_events(n: int, tag: str) -> list[UsageEvent]:
    """Realistic TTS/OCR/export events for the batch comparison (deterministic)."""
    try:
        from ..demo.workload import generate_events

        end = dt.datetime.now(dt.timezone.utc)
        events = list(
            generate_events(users=max(50, n // 40), events=n, seed=11, start=end - dt.timedelta(days=30), end=end)
        )
        seen: set[str] = set()
        unique = []
        for e in events:  # the baseline has no deduplication: feed both sides unique ids
            if e.event_id not in seen:
                seen.add(e.event_id)
                unique.append(UsageEvent(**{**asdict(e), "event_id": f"{tag}-{e.event_id}"}))
        return unique
    except ImportError:  # pragma: no cover - workload module ships with pgtally
        now = dt.datetime.now(dt.timezone.utc)
        return [
            UsageEvent(
                f"{tag}-{i}",
                f"u{i % 5000}",
                "tts",
                40 + i % 285,
                occurred_at=now - dt.timedelta(seconds=i),
                duration_ms=(40 + i % 285) * 1000 // 14,
                cost=Decimal("0.00036"),
                attributes={"voice": f"voice-{i % 4}", "model": "kokoro"},
            )
            for i in range(n)
        ]


def _copy_bare(dsn: str, table: str, events: list[UsageEvent]) -> float:
    with psycopg.connect(dsn, autocommit=True) as conn:
        t0 = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"copy {table} ({', '.join(STAGING_COLUMNS)}) from stdin") as copy:
            for e in events:
                copy.write_row(staging_row(e))
        return len(events) / (time.perf_counter() - t0)


def _record_many(dsn: str, events: list[UsageEvent]) -> float:
    with psycopg.connect(dsn, autocommit=True) as conn:
        client = Client(conn)
        t0 = time.perf_counter()
        added = client.record_many(events, chunk_size=10_000)
        elapsed = time.perf_counter() - t0
    if added != len(events):
        raise RuntimeError(f"record_many recorded {added} of {len(events)} unique events")
    return len(events) / elapsed


def _batch(dsn: str, n: int, rounds: int) -> Figure:
    bare, keyed, tally = [], [], []
    for r in range(rounds):
        events = _batch_events(n, f"r{r}")
        bare.append(_copy_bare(dsn, "bench.bare_log", events))
        keyed.append(_copy_bare(dsn, "bench.bare_keyed", events))
        tally.append(_record_many(dsn, events))
        _drain(dsn)
    return Figure(
        "batch",
        "rows/s",
        statistics.median(bare),
        statistics.median(tally),
        statistics.median(keyed),
        notes=f"{n:,} realistic events from Python objects: COPY (write_row) vs Client.record_many",
        samples={"bare": bare, "bare_keyed": keyed, "pgtally": tally},
    )


CSV_COPY_OPTIONS = "with (format csv)"


def _write_csv(path: Path, events: list[UsageEvent]) -> None:
    """The events as a CSV file of STAGING_COLUMNS (an empty unquoted field is NULL)."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        for e in events:
            writer.writerow(
                (
                    e.event_id,
                    e.user_id,
                    e.kind,
                    e.quantity,
                    e.occurred_at.isoformat() if e.occurred_at else "",
                    "" if e.duration_ms is None else e.duration_ms,
                    e.cost,
                    e.status,
                    e.error_code or "",
                    "t" if e.billable else "f",
                    json.dumps(dict(e.attributes)),
                    e.corrects_event_id or "",
                )
            )


def _psql(dsn: str, script: str, rows: int) -> float:
    """Rows per second of a psql script (run with ON_ERROR_STOP, in one transaction)."""
    t0 = time.perf_counter()
    res = subprocess.run(
        [str(server.find_bindir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn],
        input=f"begin;\n{script}commit;\n",
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"psql failed:\n{res.stdout}\n{res.stderr}")
    return rows / elapsed


def _csv(dsn: str, n: int, rounds: int) -> list[Figure]:
    """psql ``\\copy`` of one CSV file: bare table vs the staging path vs the log's row trigger."""
    columns = ", ".join(STAGING_COLUMNS)
    bare, staged, direct = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            events = _batch_events(n, f"c{r}")
            path = Path(tmp) / f"round{r}.csv"
            _write_csv(path, events)
            bare.append(_psql(dsn, f"\\copy bench.bare_log ({columns}) from '{path}' {CSV_COPY_OPTIONS}\n", n))
            staged.append(
                _psql(
                    dsn,
                    "select tally.begin_staging();\n"
                    f"\\copy pg_temp.tally_staging ({columns}) from '{path}' {CSV_COPY_OPTIONS}\n"
                    "select tally.record_usage_staged();\n",
                    n,
                )
            )
            _drain(dsn)
            # The same file again under new event ids: straight into the log, row trigger per row.
            direct_events = [UsageEvent(**{**asdict(e), "event_id": f"d-{e.event_id}"}) for e in events]
            _write_csv(path, direct_events)
            direct.append(_psql(dsn, f"\\copy tally.usage_events ({columns}) from '{path}' {CSV_COPY_OPTIONS}\n", n))
            _drain(dsn)
    notes = f"{n:,} realistic events in one CSV file, psql \\copy in one transaction on every side"
    return [
        Figure(
            "csv via staging",
            "rows/s",
            statistics.median(bare),
            statistics.median(staged),
            notes=notes,
            samples={"bare": bare, "pgtally": staged},
        ),
        Figure(
            "csv into the log",
            "rows/s",
            statistics.median(bare),
            statistics.median(direct),
            notes=notes,
            samples={"bare": bare, "pgtally": direct},
        ),
    ]


def _check_exact(dsn: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            """select (select count(*) from tally.usage_events),
                      (select coalesce(sum(events + failures), 0) from tally.user_totals where dimension = 'kind')
                      + (select coalesce(sum(events + failures), 0) from tally.pending_deltas)"""
        ).fetchone()
    assert row is not None
    logged, counted = int(row[0]), int(row[1])
    return f"log rows {logged:,}, aggregated events {counted:,}: " + ("exact" if logged == counted else "MISMATCH")


def run_ingest_bench(
    *,
    seconds: float,
    clients: int,
    batch_events: int,
    users: int,
    dsn: str | None,
    output: str | None,
    console: Console,
    rounds: int = 2,
    durable: bool = True,
    only: set[str] | None = None,
) -> list[Figure]:
    """Run the many-users, hot-user and batch figures and print a table of figures and ratios (targets beside them)."""
    settings = {} if durable else dict(server.FAST_UNSAFE)
    with contextlib.ExitStack() as stack:
        if dsn is None:
            base = stack.enter_context(server.database(backend="local", settings=settings))
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute("drop database if exists pgtally_bench with (force)")
                conn.execute("create database pgtally_bench")
            dsn = psycopg.conninfo.make_conninfo(base, dbname="pgtally_bench")
            migrate.upgrade(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(BARE_SQL)
            _partition_bare_like_tally(conn)
        figures = []
        only = only or {"many-users", "hot-user", "batch", "csv"}
        for name, n_users in (("many users", users), ("hot user", 1)):
            if name.replace(" ", "-") not in only:
                continue
            console.print(f"[dim]running {name} ({rounds} rounds x 3 sides x {seconds:.0f} s)...[/dim]")
            figures.append(_single_row(dsn, name, n_users, clients, seconds, rounds))
        if "batch" in only:
            console.print(f"[dim]running batch ({rounds} rounds of {batch_events:,} events)...[/dim]")
            figures.append(_batch(dsn, batch_events, rounds))
        if "csv" in only:
            console.print(f"[dim]running csv ({rounds} rounds of {batch_events:,} events, psql \\copy)...[/dim]")
            figures.extend(_csv(dsn, batch_events, rounds))
        exact = _check_exact(dsn)

    table = Table(title="pgtally ingest benchmark (ratios measured in one run)", min_width=100)
    for col in ("test", "bare", "bare + unique key", "pgtally", "ratio vs bare", "ratio vs keyed", "target"):
        table.add_column(col, justify="left" if col == "test" else "right")
    for f in figures:
        ok = "[green]" if f.ratio >= TARGET else "[red]"
        table.add_row(
            f.name,
            f"{f.baseline:,.0f}",
            f"{f.keyed_baseline:,.0f}" if f.keyed_baseline else "-",
            f"{f.pgtally:,.0f}",
            f"{ok}{f.ratio:.2f}x",
            f"{f.keyed_ratio:.2f}x" if f.keyed_ratio else "-",
            f">= {TARGET}x",
        )
    console.print(table)
    for f in figures:
        console.print(f"[dim]{f.name}: {f.notes}[/dim]")
    console.print(f"exactness after the run: {exact}")
    if output:
        Path(output).write_text(
            json.dumps(
                {
                    "machine": {"cpus": os.cpu_count(), "durable": durable},
                    "figures": [
                        {**asdict(f), "ratio": f.ratio, "keyed_ratio": f.keyed_ratio, "target": TARGET} for f in figures
                    ],
                    "exactness": exact,
                },
                indent=2,
                default=str,
            )
        )
    return figures
