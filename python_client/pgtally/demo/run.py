"""`pgtally demo`: a year of realistic usage in pgtally, a user's card, the admin dashboard and an HTML report.

It shows the whole path a host application takes: install the schema, set
plans and users' time zones, batch-load events (retries included, skipped by
event_id), record the subscriptions the paywall funnel sold (with upgrades and
cancellations), merge the pending deltas, refresh the admin analytics, and
read everything back through the client.

Without ``--dsn`` the demo runs its own PostgreSQL cluster kept under
``.pgtally/demo-cluster`` in the current directory. The loaded data are marked
(a comment on the demo database) with the load's parameters and a fingerprint
of the schema and generator, so a second run with the same options reuses them
and only prints and renders; ``--fresh`` wipes the cluster first.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import random
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import click
import psycopg
from psycopg import sql
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import migrate, schema, server
from ..client import Client
from ..models import UsageEvent, human_duration
from ..reports.html import render_report
from ..terminal import print_dashboard
from . import workload
from .workload import generate_events, user_time_zones

#: Unit of ``quantity`` per kind, for the per-kind table.
#: How far back the demo's events go.
HISTORY = dt.timedelta(days=365)
#: Where the demo keeps its PostgreSQL cluster (relative to the current directory).
CLUSTER_DIR = Path(".pgtally") / "demo-cluster"
#: The database of the kept cluster that holds the demo data.
DEMO_DATABASE = "pgtally_demo"
#: Kept data older than this are reloaded: the reads are about "now" (this month, last 7 days).
MAX_DATA_AGE = dt.timedelta(hours=24)
#: Plans with their per-kind limits per billing period (None = unlimited); free is the default plan.
PLANS: dict[str, dict[str, object]] = {
    "free": {
        "tier": 0,
        "monthly_price": "0",
        "is_default": True,
        "description": "Try it out",
        "limits": {"tts": 30_000, "ocr": 50, "export": 3},
    },
    "pro": {
        "tier": 1,
        "monthly_price": "9.99",
        "description": "For regular listeners",
        "limits": {"tts": 750_000, "ocr": 1_000, "export": 100},
    },
    "team": {
        "tier": 2,
        "monthly_price": "29.99",
        "description": "Heavy use, shared documents",
        "limits": {"tts": 3_000_000, "ocr": None, "export": None},
    },
}
#: Share of pro subscribers who later upgrade to team, and of subscribers who later cancel.
UPGRADE_RATE, CANCEL_RATE = 0.3, 0.12
#: The featured user is picked among this many heaviest users (the one with the most voices).
FEATURED_CANDIDATES = 5


@dataclass(frozen=True)
class LoadMark:
    """What a completed load put into the demo database (stored as the database's comment)."""

    users: int
    events: int
    seed: int
    fingerprint: str
    end: str  # ISO timestamp: the load's year ends there
    loaded_at: str  # ISO timestamp: when the load finished
    featured: str  # the user whose card and report the demo shows
    recorded: int
    subscriptions: int
    seconds: float

    def age(self, now: dt.datetime) -> dt.timedelta:
        """How old the loaded data are: the time since their year ended."""
        return now - dt.datetime.fromisoformat(self.end)


def _fingerprint() -> str:
    """Hash of what decides the loaded data: the schema, the generator and this module (plans, subscriptions)."""
    digest = hashlib.sha256(schema.install_sql().encode())
    for module in (workload.__file__, __file__):
        digest.update(Path(module).read_bytes())
    return digest.hexdigest()[:16]


def _read_mark(server_dsn: str) -> LoadMark | None:
    """The mark of the demo database of the kept cluster, None when it has none (or an unreadable one)."""
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        row = conn.execute(
            "select shobj_description(oid, 'pg_database') from pg_database where datname = %s", (DEMO_DATABASE,)
        ).fetchone()
    if not row or not row[0]:
        return None
    try:
        return LoadMark(**json.loads(row[0]))
    except (TypeError, ValueError):
        return None


def _write_mark(server_dsn: str, mark: LoadMark) -> None:
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("comment on database {} is {}").format(
                sql.Identifier(DEMO_DATABASE), sql.Literal(json.dumps(asdict(mark)))
            )
        )


def _recreate_database(server_dsn: str) -> None:
    """Drop the demo database (disconnecting anyone) and create it empty: faster than deleting rows."""
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(DEMO_DATABASE)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(DEMO_DATABASE)))


#: What the demo writes that an application's own data also live in: the log and its keys, plans and
#: their limits, subscriptions and users' settings. A --dsn database holding rows there that the demo did
#: not write is refused unless --yes-write-fake-data is given.
GUARDED_TABLES = ("usage_events", "event_keys", "plans", "plan_limits", "subscriptions", "user_settings")
#: Key of the mark a --dsn load leaves in the comment on its database (with a digest of what it wrote).
DSN_MARK = "pgtally_demo"


def _guarded(conn: psycopg.Connection) -> dict[str, str | None]:
    """Each guarded table that exists, with its column telling when a row was written (None if it has none)."""
    rows = conn.execute(
        """select c.relname, (select a.attname from pg_attribute a
                               where a.attrelid = c.oid and not a.attisdropped
                                 and a.attname in ('recorded_at', 'updated_at')
                               limit 1)
             from pg_class c
            where c.relnamespace = (select oid from pg_namespace where nspname = 'tally')
              and c.relname = any(%s)""",
        (list(GUARDED_TABLES),),
    ).fetchall()
    return {name: column for name, column in rows}


def _digest(conn: psycopg.Connection) -> dict[str, list[object]]:
    """Row count and latest write of every guarded table: equal to the mark's when nobody else wrote since."""
    digest: dict[str, list[object]] = {}
    for table, column in sorted(_guarded(conn).items()):
        # Epoch seconds: the same text whatever the session's time zone.
        latest = sql.SQL("extract(epoch from max({}))::text").format(sql.Identifier(column)) if column else sql.NULL
        query = sql.SQL("select count(*), {} from {}").format(latest, sql.Identifier("tally", table))
        row = conn.execute(query).fetchone()
        digest[table] = list(row) if row else []
    return digest


def _read_dsn_mark(conn: psycopg.Connection) -> dict[str, object] | None:
    """The demo's mark in the comment on the current database (None: no comment, or somebody else's)."""
    row = conn.execute(
        "select shobj_description(oid, 'pg_database') from pg_database where datname = current_database()"
    ).fetchone()
    try:
        mark = json.loads(row[0]) if row and row[0] else None
    except ValueError:
        return None
    return mark.get(DSN_MARK) if isinstance(mark, dict) and isinstance(mark.get(DSN_MARK), dict) else None


def _refuse_foreign_data(client: Client, yes_write_fake_data: bool, console: Console) -> bool:
    """Whether the --dsn database is empty or holds only the demo's own data; refuse (or warn) otherwise.

    The demo's own data are recognised by the mark its last load left on the
    database: the load's digest (row counts and latest writes of the guarded
    tables) must still be the database's, so anything written since, or before
    a load that was forced in, counts as somebody else's.
    """
    with client.connection() as conn:
        held: dict[str, int] = {}  # rows (counted up to 10,001) of each guarded table that has any
        for table in _guarded(conn):
            row = conn.execute(
                sql.SQL("select count(*) from (select from {} limit 10001) t").format(sql.Identifier("tally", table))
            ).fetchone()
            if row and row[0]:
                held[table] = row[0]
        if not held:
            return True
        mark = _read_dsn_mark(conn)
        if mark is not None and mark.get("digest") == _digest(conn):
            console.print("The database holds only a previous demo load: loading into it again.")
            return True
        database = conn.info.dbname
    labels = {
        "usage_events": "usage events",
        "event_keys": "event keys",
        "plan_limits": "plan limits",
        "user_settings": "user settings",
    }
    found = ", ".join(f"{'10,000+' if n > 10_000 else f'{n:,}'} {labels.get(t, t)}" for t, n in held.items())
    if not yes_write_fake_data:
        raise click.ClickException(
            f"refusing to load fake demo data into database {database!r}: it already holds data the demo did not "
            f"write ({found}); use an empty database, or pass --yes-write-fake-data to add fake events to its "
            "immutable log and create or overwrite the plans free, pro and team"
        )
    console.print(f"[bold red]--yes-write-fake-data: adding fake demo data to {database!r}, which holds {found}.[/]")
    return False


def _write_dsn_mark(client: Client, mark: LoadMark, console: Console) -> None:
    """Mark the --dsn database as holding only the demo's data (a comment on it), when it has no other comment."""
    with client.connection() as conn:
        row = conn.execute(
            "select shobj_description(oid, 'pg_database') from pg_database where datname = current_database()"
        ).fetchone()
        if row and row[0] and _read_dsn_mark(conn) is None:
            console.print(
                "(The database has a comment of its own, so it is not marked as the demo's: "
                "a rerun will ask for --yes-write-fake-data.)"
            )
            return
        text = json.dumps({DSN_MARK: {**asdict(mark), "digest": _digest(conn)}})
        try:
            with conn.transaction():
                conn.execute(
                    sql.SQL("comment on database {} is {}").format(sql.Identifier(conn.info.dbname), sql.Literal(text))
                )
        except psycopg.errors.InsufficientPrivilege:
            console.print(
                "(Only the database's owner may mark it as the demo's: a rerun will ask for --yes-write-fake-data.)"
            )


@contextlib.contextmanager
def _kept_cluster(directory: Path, fresh: bool, console: Console) -> Iterator[str]:
    """The superuser DSN of the demo's own cluster in ``directory`` (started, and stopped after the block)."""
    directory = directory.resolve()
    if fresh and directory.exists():
        console.print(f"--fresh: removing {directory}")
        shutil.rmtree(directory)
    if (directory / "data" / "postmaster.pid").exists():
        # A demo killed hard leaves its server running; stop it so that this run can start it again.
        server.LocalCluster(directory).stop()
    first = not (directory / "data" / "PG_VERSION").exists()
    console.print(f"{'Creating' if first else 'Starting'} the demo PostgreSQL in {directory}…")
    try:
        with server.database(backend="local", settings=server.FAST_UNSAFE, keep_dir=directory) as url:
            yield url
    except server.ServerError as exc:
        raise click.ClickException(f"{exc}\n(`pgtally demo --fresh` starts over with a new cluster)") from exc


def _prepare(client: Client, users: int, seed: int, start: dt.datetime) -> None:
    """Create the monthly partitions the history needs, the plans, and every user's time zone (one transaction)."""
    with client.connection() as conn:
        conn.execute("select tally.ensure_partitions(%s)", (start.date().replace(day=1),))
        with conn.transaction():
            for plan, spec in PLANS.items():
                client.upsert_plan(plan, **spec)  # type: ignore[arg-type]
            for user_id, time_zone in user_time_zones(users, seed).items():
                client.set_user_settings(user_id, time_zone=time_zone)


def _progress(console: Console) -> Progress:
    columns = (TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=console)


def _load(
    client: Client, users: int, events: int, seed: int, start: dt.datetime, end: dt.datetime, progress: Progress
) -> tuple[int, Counter[str], dict[str, dt.datetime]]:
    """Send the generated events; returns how many were new, the events sent per user and each user's checkout."""
    sent: Counter[str] = Counter()
    checkouts: dict[str, dt.datetime] = {}

    def watched() -> Iterator[UsageEvent]:
        for event in generate_events(users, events, seed, start, end):
            sent[event.user_id] += 1
            if event.kind == "checkout.completed" and event.occurred_at is not None:
                checkouts.setdefault(event.user_id, event.occurred_at)  # a retry keeps the first
            yield event

    task = progress.add_task("Loading events", total=events)
    added = client.record_many(watched(), progress=lambda n: progress.advance(task, n))
    return added, sent, checkouts


def _subscribe(
    client: Client, checkouts: dict[str, dt.datetime], seed: int, end: dt.datetime, progress: Progress
) -> int:
    """Subscribe every user who completed a checkout to pro; some upgrade to team later, some cancel.

    Deterministic per seed. Users who already have a subscription (a rerun
    into the same ``--dsn``) are left alone: subscription history is
    append-only. Returns the number of subscriptions started.
    """
    rng = random.Random(f"pgtally-demo-plans-{seed}")
    task = progress.add_task("Subscriptions", total=len(checkouts))
    started = 0
    for user_id, at in sorted(checkouts.items(), key=lambda kv: (kv[1], kv[0])):
        upgrade_at = at + dt.timedelta(days=rng.uniform(20, 150)) if rng.random() < UPGRADE_RATE else None
        cancel_at = (upgrade_at or at) + dt.timedelta(days=rng.uniform(30, 200)) if rng.random() < CANCEL_RATE else None
        progress.advance(task)
        if client.subscription_summary(user_id).subscriptions:
            continue
        client.start_subscription(user_id, "pro", at)
        started += 1
        if upgrade_at and upgrade_at < end:
            client.start_subscription(user_id, "team", upgrade_at)
            started += 1
        if cancel_at and cancel_at < end:
            client.end_subscription(user_id, cancel_at)
    return started


def _merge_all(client: Client, pending: int, progress: Progress) -> int:
    """Merge pending deltas until none are left (or another merger holds the lock); returns how many merged."""
    task = progress.add_task("Merging deltas", total=max(pending, 1))
    merged = 0
    while n := client.merge_pending(50_000):
        merged += n
        progress.update(task, completed=min(merged, pending))
    progress.update(task, total=max(merged, 1), completed=max(merged, 1))
    return merged


def _featured_user(client: Client, sent: Counter[str]) -> str:
    """Among the heaviest users, the one who listened with the most voices (a more telling card)."""
    candidates = [user for user, _ in sent.most_common(FEATURED_CANDIDATES)]
    return max(candidates, key=lambda u: (len(client.lifetime_totals(u, "voice")), sent[u]))


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
        card.add_row(
            f"{r.duration_text} of {r.value}",
            f"{r.events:,}",
            f"{r.quantity:,}",
            f"{r.cost:.4f}",
            _local_day(r.first_at, zone),
            _local_day(r.last_at, zone),
        )
    card.caption = f"{human_duration(sum(r.duration_ms or 0 for r in rows))} of audio in all; days in {zone.key}"
    return card


def _kind_table(client: Client, user_id: str) -> Table:
    """The user's lifetime totals per kind, quantities with their unit (product events have none)."""
    table = _table(f"{user_id}: lifetime by kind", "kind", "events>", "quantity>", "duration>", "cost>", "failed>")
    # Units come from the kinds registry (tally.kinds); product events count no quantity.
    units = {k.value: k.unit for k in client.summary_card(user_id).kinds}
    for r in client.lifetime_totals(user_id, "kind"):
        unit = units.get(r.value)
        table.add_row(
            r.value,
            f"{r.events:,}",
            f"{r.quantity:,} {unit}" if r.quantity else "-",
            r.duration_text if r.duration_ms is not None else "-",
            f"{r.cost:.4f}",
            f"{r.failures:,}",
        )
    return table


def _limits_table(client: Client, user_id: str) -> Table:
    """The user's plan, this billing period against its limits and the forecast to the period's end."""
    subscription = client.subscription_summary(user_id)
    forecast = client.quota_forecast(user_id)
    plan = subscription.current_plan or "-"
    since = f" since {subscription.subscribed_since:%Y-%m-%d}" if subscription.subscribed_since else ""
    table = _table(
        f"{user_id}: plan {plan}{since}, this billing period",
        "kind",
        "used>",
        "quota>",
        "used %>",
        "projected>",
        "limit on",
        "status",
    )
    for f in forecast:
        table.add_row(
            f.kind,
            f"{f.used:,}",
            f"{f.quota:,}" if f.quota is not None else "unlimited",
            f"{f.utilization_pct:.0f}%" if f.utilization_pct is not None else "-",
            f"{f.projected:,}",
            str(f.reaches_limit_on or "-"),
            f.status,
        )
    recommended = client.recommended_plan(user_id)
    table.caption = f"{subscription.months_subscribed} month(s) subscribed, revenue {subscription.revenue:.2f}" + (
        f"; recommended plan: {recommended.plan}" if recommended and not recommended.is_current else ""
    )
    return table


def _load_all(
    client: Client, url: str, users: int, events: int, seed: int, console: Console, end: dt.datetime | None = None
) -> LoadMark:
    """Install, load a year of usage ending at ``end`` (default: this hour), subscribe, merge and refresh."""
    began = time.perf_counter()
    migrate.upgrade(url)
    # Whole hours, so that a rerun into the same --dsn within the hour generates the very same events.
    end = end or dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    start = end - HISTORY
    _prepare(client, users, seed, start)
    with _progress(console) as progress:
        load_began = time.perf_counter()
        added, sent, checkouts = _load(client, users, events, seed, start, end, progress)
        load_seconds = time.perf_counter() - load_began
        subscriptions = _subscribe(client, checkouts, seed, end, progress)
        merged = _merge_all(client, added, progress)
    with console.status("Refreshing the admin analytics…"):
        refreshed = client.admin.refresh()
    seconds = time.perf_counter() - began
    console.print(
        f"[bold]{events:,}[/bold] events sent for {users:,} users: [bold]{added:,}[/bold] recorded, "
        f"{events - added:,} duplicates skipped, {merged:,} deltas merged, {subscriptions:,} subscriptions, "
        f"{len(refreshed)} analytics views refreshed; load {load_seconds:.1f} s "
        f"({events / max(load_seconds, 1e-9):,.0f} events/s), total {seconds:.1f} s."
    )
    console.print(
        f"{len(sent):,} of the {users:,} users were active (the others never used the product), "
        "so the dashboard counts those."
    )
    return LoadMark(
        users,
        events,
        seed,
        _fingerprint(),
        end.isoformat(),
        dt.datetime.now(dt.timezone.utc).isoformat(),
        _featured_user(client, sent),
        added,
        subscriptions,
        round(seconds, 1),
    )


def _show(client: Client, mark: LoadMark, users: int, seed: int, report: Path, console: Console) -> None:
    """Print the featured user's card and the admin dashboard; write the HTML report."""
    user_id = mark.featured
    console.print(f"The featured user, [bold]{user_id}[/bold], is among the heaviest listeners.")
    zone = ZoneInfo(user_time_zones(users, seed)[user_id])
    console.print(_voice_card(client, user_id, zone))
    console.print(_kind_table(client, user_id))
    console.print(_limits_table(client, user_id))
    print_dashboard(client.admin.dashboard("30d"), console)  # as `pgtally admin -w 30d` prints it
    with console.status("Writing the HTML report…"):
        report.write_text(render_report(client, user_id), encoding="utf-8")
    console.print(f"HTML report of {user_id} and the platform: [bold]{report.resolve()}[/bold]")


def run_demo(
    users: int,
    events: int,
    seed: int,
    dsn: str | None,
    console: Console,
    *,
    fresh: bool = False,
    report: Path = Path("pgtally-report.html"),
    cluster_dir: Path = CLUSTER_DIR,
    end: dt.datetime | None = None,
    yes_write_fake_data: bool = False,
) -> None:
    """Load a year of usage (or reuse the kept demo data), print a card and the dashboard, write the report.

    With ``dsn`` everything goes into that database (refused when it holds
    data the demo did not write, unless ``yes_write_fake_data``), every run loading again
    (deterministic per ``seed`` and hour: a rerun within the hour records
    nothing new, every event being skipped as a duplicate). Otherwise the
    demo's kept cluster in ``cluster_dir`` is used, and its data reused when
    they come from the same options, schema and generator, less than a day
    ago; ``fresh`` wipes the cluster first. ``end`` fixes the end of the
    loaded year (default: the current hour), so the load is the same whatever
    the day it runs.
    """
    if users < 1 or events < 1:
        raise click.UsageError("--users and --events must be at least 1")
    began = time.perf_counter()
    if dsn is not None:
        if fresh:
            raise click.UsageError("--fresh applies to the demo's own cluster, not to a --dsn database")
        with _connect(dsn) as client:
            # Refuse a database holding data the demo did not write, unless told (see _refuse_foreign_data).
            demo_only = _refuse_foreign_data(client, yes_write_fake_data, console)
            mark = _load_all(client, dsn, users, events, seed, console, end)
            if demo_only:
                _write_dsn_mark(client, mark, console)
            _show(client, mark, users, seed, report, console)
    else:
        with _kept_cluster(cluster_dir, fresh, console) as server_dsn:
            url = psycopg.conninfo.make_conninfo(server_dsn, dbname=DEMO_DATABASE)
            kept = _read_mark(server_dsn)
            now = dt.datetime.now(dt.timezone.utc)
            if (
                kept
                and (kept.users, kept.events, kept.seed, kept.fingerprint) == (users, events, seed, _fingerprint())
                and kept.age(now) < MAX_DATA_AGE
            ):
                ago = human_duration(int((now - dt.datetime.fromisoformat(kept.loaded_at)).total_seconds()) * 1000)
                console.print(
                    f"Reusing the demo data loaded {ago} ago in {kept.seconds:.0f} s ({kept.recorded:,} events, "
                    f"{kept.subscriptions:,} subscriptions); `--fresh` reloads."
                )
                with _connect(url) as client:
                    _show(client, kept, users, seed, report, console)
            else:
                if kept:
                    console.print("The kept demo data are stale or from other options: loading again.")
                _recreate_database(server_dsn)
                with _connect(url) as client:
                    mark = _load_all(client, url, users, events, seed, console, end)
                    _write_mark(server_dsn, mark)
                    _show(client, mark, users, seed, report, console)
    console.print(f"Demo done in {time.perf_counter() - began:.1f} s.")


@contextlib.contextmanager
def _connect(url: str) -> Iterator[Client]:
    """A client on ``url``, with a CLI error when the server cannot be reached."""
    try:
        client = Client.connect(url)
    except psycopg.OperationalError as exc:
        raise click.ClickException(f"cannot connect to the database ({exc})") from exc
    with client:
        yield client
