"""`pgtally demo`: load a year of realistic usage into pgtally and show one user's card.

It shows the whole path a host application takes: install the schema, set
users' time zones, batch-load events (retries included, skipped by event_id),
merge the pending deltas, and read lifetime and billing-period totals back
through the client.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections import Counter
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import click
import psycopg
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from . import migrate, server
from .client import Client
from .models import UsageEvent, human_duration
from .workload import generate_events, user_time_zones

#: Unit of ``quantity`` per kind, for the per-kind table.
UNITS = {"tts": "chars", "ocr": "pages", "export": "files"}
#: How far back the demo's events go.
HISTORY = dt.timedelta(days=365)


@contextlib.contextmanager
def _database(dsn: str | None, console: Console) -> Iterator[str]:
    """The given DSN, or a throwaway server for the duration of the block.

    The throwaway server is a local cluster (or a container when
    PGTALLY_BACKEND=testcontainers), never $DATABASE_URL: the demo only writes
    into a database it was explicitly given with --dsn.
    """
    if dsn is not None:
        yield dsn
        return
    backend = "testcontainers" if os.environ.get("PGTALLY_BACKEND") == "testcontainers" else "local"
    console.print(f"Starting a throwaway PostgreSQL ({backend})…")
    try:
        with server.database(backend=backend, settings=server.FAST_UNSAFE) as url:
            yield url
    except server.ServerError as exc:
        raise click.ClickException(str(exc)) from exc


def _prepare(client: Client, users: int, seed: int, start: dt.datetime) -> None:
    """Create the monthly partitions the history needs and set every user's time zone (one transaction)."""
    with client.connection() as conn:
        conn.execute("select tally.ensure_partitions(%s)", (start.date().replace(day=1),))
        with conn.transaction():
            for user_id, time_zone in user_time_zones(users, seed).items():
                client.set_user_settings(user_id, time_zone=time_zone)


def _load(client: Client, users: int, events: int, seed: int, start: dt.datetime, end: dt.datetime,
          console: Console) -> tuple[int, Counter[str]]:
    """Send the generated events with a progress bar; returns how many were new and the events sent per user."""
    sent: Counter[str] = Counter()

    def counted() -> Iterator[UsageEvent]:
        for event in generate_events(users, events, seed, start, end):
            sent[event.user_id] += 1
            yield event

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("Loading events", total=events)
        added = client.record_many(counted(), progress=lambda n: progress.advance(task, n))
    return added, sent


def _merge_all(client: Client) -> int:
    """Merge pending deltas until none are left (or another merger holds the lock); returns how many merged."""
    merged = 0
    while n := client.merge_pending():
        merged += n
    return merged


def _local_day(moment: dt.datetime | None, zone: ZoneInfo) -> str:
    """The user's local date of a moment, or a dash."""
    return moment.astimezone(zone).strftime("%Y-%m-%d") if moment else "-"


def _table(title: str, *columns: str) -> Table:
    """A compact table (fits 80 columns); a trailing ``>`` in a column name right-aligns it."""
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", show_edge=False, pad_edge=False)
    for col in columns:
        table.add_column(col.rstrip(">"), justify="right" if col.endswith(">") else "left", no_wrap=True)
    return table


def _voice_card(client: Client, user_id: str, zone: ZoneInfo) -> Table:
    """The user's lifetime listening per voice, e.g. ``14 h 12 min of af_alloy``."""
    rows = client.lifetime_totals(user_id, "voice")
    card = _table(f"{user_id}: lifetime listening", "listened", "blocks>", "characters>", "cost>", "first", "last")
    for r in rows:
        card.add_row(f"{r.duration_text} of {r.value}", f"{r.events:,}", f"{r.quantity:,}", f"{r.cost:.4f}",
                     _local_day(r.first_at, zone), _local_day(r.last_at, zone))
    card.caption = f"{human_duration(sum(r.duration_ms for r in rows))} of audio in all; days in {zone.key}"
    return card


def _kind_table(client: Client, user_id: str) -> Table:
    """The user's lifetime totals per kind, quantities with their unit (product events have none)."""
    table = _table(f"{user_id}: lifetime by kind", "kind", "events>", "quantity>", "duration>", "cost>", "failed>")
    for r in client.lifetime_totals(user_id, "kind"):
        unit = UNITS.get(r.value)
        table.add_row(r.value, f"{r.events:,}", f"{r.quantity:,} {unit}" if unit else "-",
                      r.duration_text if r.duration_ms else "-", f"{r.cost:.4f}", f"{r.failures:,}")
    return table


def _period_table(client: Client, user_id: str) -> Table:
    """The user's billable usage in the current billing period."""
    table = _table(f"{user_id}: current billing period", "kind", "from", "to", "events>", "quantity>", "cost>")
    for p in client.period_totals(user_id):
        table.add_row(p.kind, str(p.period_start), str(p.period_end), f"{p.events:,}", f"{p.quantity:,}",
                      f"{p.cost:.4f}")
    return table


def run_demo(users: int, events: int, seed: int, dsn: str | None, console: Console) -> None:
    """Install pgtally (in a throwaway server unless ``dsn`` is given), load a year of usage, print a card.

    The load is deterministic per ``seed`` (and hour): running it again within
    the hour into the same database records nothing new, every event being
    skipped as a duplicate.
    """
    if users < 1 or events < 1:
        raise click.UsageError("--users and --events must be at least 1")
    began = time.perf_counter()
    with _database(dsn, console) as url:
        try:
            client = Client.connect(url)
        except psycopg.OperationalError as exc:
            raise click.ClickException(f"cannot connect to the database ({exc})") from exc
        with client:
            migrate.upgrade(url)
            # Whole hours, so that a rerun within the hour generates the very same events.
            end = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
            start = end - HISTORY
            _prepare(client, users, seed, start)
            load_began = time.perf_counter()
            added, sent = _load(client, users, events, seed, start, end, console)
            load_seconds = time.perf_counter() - load_began
            merge_began = time.perf_counter()
            with console.status("Merging pending deltas…"):
                merged = _merge_all(client)
            merge_seconds = time.perf_counter() - merge_began
            heaviest, heaviest_sent = sent.most_common(1)[0]
            console.print(f"The heaviest user, [bold]{heaviest}[/bold], sent {heaviest_sent:,} events.")
            zone = ZoneInfo(user_time_zones(users, seed)[heaviest])
            console.print(_voice_card(client, heaviest, zone))
            console.print(_kind_table(client, heaviest))
            console.print(_period_table(client, heaviest))
    console.print(
        f"[bold]{events:,}[/bold] events sent for {users:,} users: [bold]{added:,}[/bold] recorded, "
        f"{events - added:,} duplicates skipped, {merged:,} deltas merged; "
        f"load {load_seconds:.1f} s ({events / max(load_seconds, 1e-9):,.0f} events/s), merge {merge_seconds:.1f} s, "
        f"total {time.perf_counter() - began:.1f} s."
    )
