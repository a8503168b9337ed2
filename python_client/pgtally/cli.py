"""The `pgtally` command line: a thin layer over the client and the SQL API."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import psycopg
from rich.console import Console
from rich.table import Table

from . import migrate as migrations
from . import schema
from .client import Client
from .errors import PgTallyError

console = Console()
err_console = Console(stderr=True)


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(_jsonable(obj), indent=2))


def _require_dsn(dsn: str | None) -> str:
    if not dsn:
        raise click.UsageError("no database given: pass --dsn or set DATABASE_URL")
    return dsn


@contextmanager
def connect(dsn: str | None) -> Iterator[psycopg.Connection]:
    """Connect with an error message that says what to do."""
    dsn = _require_dsn(dsn)
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise click.ClickException(f"cannot connect to the database ({exc}). Is the server running and the DSN right?") from exc
    with conn:
        installed = conn.execute("select to_regnamespace('tally') is not null").fetchone()
        if not installed or not installed[0]:
            raise click.ClickException("the pgtally schema is not installed in this database: run `pgtally migrate` first")
        yield conn


dsn_option = click.option("--dsn", envvar="DATABASE_URL", help="libpq DSN or URL (default: $DATABASE_URL).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pgtally")
def main() -> None:
    """pgtally: PostgreSQL-native usage ledger and engagement analytics."""


@main.command()
@dsn_option
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.option("--downgrade", is_flag=True, help="Downgrade to --revision (e.g. base) instead of upgrading.")
@click.option("--drop-data", is_flag=True,
              help="With --downgrade: go ahead even if it drops tables holding rows (base drops the whole usage log).")
def migrate(dsn: str | None, revision: str, downgrade: bool, drop_data: bool) -> None:
    """Apply pgtally's Alembic migrations to the database.

    A downgrade that would drop tables holding rows (the usage log, rollups,
    plans, ...) is refused, changing nothing, unless --drop-data is given.
    """
    dsn = _require_dsn(dsn)
    if drop_data and not downgrade:
        raise click.UsageError("--drop-data only applies with --downgrade")
    try:
        if downgrade:
            migrations.downgrade(dsn, revision, drop_data=drop_data)
        else:
            migrations.upgrade(dsn, revision)
        now = migrations.current_revision(dsn)
    except migrations.DataLossRefused as exc:
        raise click.ClickException(str(exc)) from exc
    except psycopg.OperationalError as exc:
        raise click.ClickException(f"cannot connect to the database ({exc})") from exc
    console.print(f"pgtally schema at revision [bold]{now or 'base (not installed)'}[/bold]")


@main.command()
@click.option("--alembic", "via_alembic", is_flag=True, help="Print the migration chain's SQL (alembic offline mode).")
def sql(via_alembic: bool) -> None:
    """Print the install SQL without connecting (declarative schema by default)."""
    click.echo(migrations.offline_sql() if via_alembic else schema.install_sql())


@main.command()
@dsn_option
@click.option("--max-rows", default=100_000, show_default=True, help="Deltas per merge transaction.")
@click.option("--all", "drain", is_flag=True, help="Repeat until nothing is pending.")
def merge(dsn: str | None, max_rows: int, drain: bool) -> None:
    """Fold pending deltas into the rollups (schedule every minute)."""
    with connect(dsn) as conn:
        client, total = Client(conn), 0
        while True:
            n = client.merge_pending(max_rows)
            total += n
            if not drain or n == 0:
                break
    console.print(f"merged {total} pending deltas")


def print_lifetime(client: Client, user_id: str, dimension: str, title: str | None = None) -> None:
    rows = client.lifetime_totals(user_id, dimension)
    table = Table(title=title or f"{user_id}: lifetime by {dimension}")
    for col, justify in (("value", "left"), ("events", "right"), ("quantity", "right"), ("duration", "right"),
                         ("cost", "right"), ("first", "left"), ("last", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(r.value, f"{r.events:,}", f"{r.quantity:,}", r.duration_text, f"{r.cost:.4f}",
                      r.first_at.strftime("%Y-%m-%d") if r.first_at else "-",
                      r.last_at.strftime("%Y-%m-%d") if r.last_at else "-")
    console.print(table)


@main.command()
@dsn_option
@json_option
@click.argument("user_id")
@click.option("--dimension", "-d", multiple=True, help="Dimension(s) to show (default: kind, voice, model).")
def stats(dsn: str | None, as_json: bool, user_id: str, dimension: tuple[str, ...]) -> None:
    """A user's lifetime totals per dimension and current billing period."""
    dims = dimension or ("kind", "voice", "model")
    with connect(dsn) as conn:
        client = Client(conn)
        try:
            if as_json:
                emit_json({"user_id": user_id,
                           "lifetime": {d: client.lifetime_totals(user_id, d) for d in dims},
                           "period": client.period_totals(user_id)})
                return
            for d in dims:
                print_lifetime(client, user_id, d)
            period = Table(title=f"{user_id}: current billing period")
            for col in ("kind", "from", "to", "events", "quantity", "cost"):
                period.add_column(col)
            for p in client.period_totals(user_id):
                period.add_row(p.kind, str(p.period_start), str(p.period_end), f"{p.events:,}", f"{p.quantity:,}",
                               f"{p.cost:.4f}")
            console.print(period)
        except PgTallyError as exc:
            raise click.ClickException(str(exc)) from exc


@main.command()
@click.option("--users", default=2000, show_default=True, help="Number of users.")
@click.option("--events", default=200_000, show_default=True, help="Number of events to load (a year of usage).")
@click.option("--seed", default=7, show_default=True, help="Random seed (the load is deterministic).")
@click.option("--dsn", envvar="PGTALLY_DEMO_DSN",
              help="Load into this database instead of the demo's own PostgreSQL (loads on every run).")
@click.option("--fresh", is_flag=True, help="Wipe the demo's own PostgreSQL and load again.")
@click.option("--report", "report", default="pgtally-report.html", show_default=True,
              type=click.Path(dir_okay=False, writable=True, path_type=Path), help="Where to write the HTML report.")
@click.option("--cluster-dir", default=".pgtally/demo-cluster", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Where the demo's own PostgreSQL keeps its files.")
@click.option("--end", "end", type=click.DateTime(["%Y-%m-%dT%H:%M", "%Y-%m-%d"]), default=None,
              help="End of the loaded year, UTC (default: the current hour); the same --end loads the same data.")
@click.option("--yes-write-fake-data", is_flag=True,
              help="Load into a --dsn database even though it holds data the demo did not write: adds fake events "
                   "to its immutable log and creates or overwrites the plans free, pro and team.")
def demo(users: int, events: int, seed: int, dsn: str | None, fresh: bool, report: Path, cluster_dir: Path,
         end: dt.datetime | None, yes_write_fake_data: bool) -> None:
    """Load a year of realistic usage, print a user's card and the admin dashboard, write an HTML report.

    Without --dsn it runs its own PostgreSQL kept under --cluster-dir; a second
    run with the same options reuses the loaded data and takes seconds. A --dsn
    database that holds data the demo did not write is refused unless
    --yes-write-fake-data is given.
    """
    from .demo import run_demo

    run_demo(users=users, events=events, seed=seed, dsn=dsn, console=console, fresh=fresh, report=report,
             cluster_dir=cluster_dir, end=end.replace(tzinfo=dt.timezone.utc) if end else None,
             yes_write_fake_data=yes_write_fake_data)


@main.group()
def bench() -> None:
    """Benchmarks that print ratios against baselines measured in the same run."""


@bench.command("ingest")
@click.option("--seconds", default=10.0, show_default=True, help="Duration of each timed single-row run.")
@click.option("--clients", default=8, show_default=True, help="Concurrent writer connections.")
@click.option("--batch-events", default=200_000, show_default=True, help="Events in the batch (COPY) comparison.")
@click.option("--users", default=10_000, show_default=True, help="Distinct users in the many-users runs.")
@click.option("--dsn", envvar="PGTALLY_BENCH_DSN", help="Benchmark this server instead of a throwaway one.")
@click.option("--output", type=click.Path(dir_okay=False), help="Also write the results as JSON here.")
@click.option("--rounds", default=2, show_default=True, help="Alternating rounds per figure (the median is reported).")
@click.option("--tests", "only", default="T1,T2,T3", show_default=True, help="Which figures to measure.")
@click.option("--fast/--durable", default=False, show_default=True,
              help="--fast turns fsync and synchronous_commit off on the throwaway server (CPU-bound ratios).")
def bench_ingest(seconds: float, clients: int, batch_events: int, users: int, dsn: str | None, output: str | None,
                 rounds: int, only: str, fast: bool) -> None:
    """T1-T3: ingest with pgtally's triggers vs the same inserts into a bare table."""
    from .bench import run_ingest_bench

    wanted = {t.strip().upper() for t in only.split(",") if t.strip()}
    if not wanted <= {"T1", "T2", "T3"}:
        raise click.BadParameter("choose among T1, T2, T3", param_hint="--tests")
    run_ingest_bench(seconds=seconds, clients=clients, batch_events=batch_events, users=users, dsn=dsn,
                     output=output, console=console, rounds=rounds, only=wanted, durable=not fast)


@main.command()
@dsn_option
@json_option
@click.option("--sample", default=5, show_default=True, help="Drifted keys to show per check.")
def verify(dsn: str | None, as_json: bool, sample: int) -> None:
    """Recompute every aggregate from the retained log; exit 1 on drift."""
    with connect(dsn) as conn:
        rows = conn.execute("select check_name, checked, drifted, sample from tally.verify(%s)", (sample,)).fetchall()
    drift = sum(r[2] for r in rows)
    if as_json:
        emit_json({"drifted": drift, "checks": [dict(check=r[0], checked=r[1], drifted=r[2], sample=r[3]) for r in rows]})
    else:
        table = Table(title="pgtally verify")
        for col in ("check", "checked", "drifted", "sample"):
            table.add_column(col)
        for name, checked, drifted, keys in rows:
            table.add_row(name, f"{checked:,}", f"[red]{drifted:,}" if drifted else "0", ", ".join(keys or []))
        console.print(table)
        console.print("[red]drift found: run `pgtally rebuild`[/red]" if drift else "[green]no drift[/green]")
    if drift:
        sys.exit(1)


@main.command()
@dsn_option
@click.option("--user", "user_id", help="Rebuild one user (default: every user, one transaction each).")
@click.option("--dimension", help="Rebuild (backfill) one declared dimension only.")
def rebuild(dsn: str | None, user_id: str | None, dimension: str | None) -> None:
    """Rebuild the rollups from the retained log (after a bug, or to backfill a new dimension)."""
    from rich.progress import Progress

    with connect(dsn) as conn:
        users = [user_id] if user_id else [r[0] for r in conn.execute(
            "select user_id from tally.event_keys union select user_id from tally.user_totals order by 1")]
        rows = 0
        with Progress(console=err_console, transient=True) as progress:
            task = progress.add_task("rebuilding", total=len(users))
            for u in users:
                try:
                    rows += conn.execute("select tally.rebuild(%s, %s)", (u, dimension)).fetchone()[0]  # type: ignore[index]
                except psycopg.Error as exc:
                    raise click.ClickException(str(exc).splitlines()[0]) from exc
                progress.advance(task)
    console.print(f"rebuilt {len(users):,} user(s) from {rows:,} log rows" + (f" (dimension {dimension})" if dimension else ""))


@main.command()
@dsn_option
@json_option
@click.option("--keep", required=True, help="How much raw log to keep, e.g. '31 days' or '13 months'.")
def retention(dsn: str | None, as_json: bool, keep: str) -> None:
    """Drop raw log partitions older than --keep (rollups and dedup keys stay)."""
    with connect(dsn) as conn:
        try:
            rows = conn.execute("select * from tally.apply_retention(%s::interval)", (keep,)).fetchall()
        except psycopg.Error as exc:
            raise click.ClickException(str(exc).splitlines()[0]) from exc
    if as_json:
        emit_json([dict(partition=r[0], range_start=r[1], range_end=r[2], rows_dropped=r[3]) for r in rows])
        return
    for name, start, end, n in rows:
        console.print(f"dropped {name} ({start} .. {end}, {n:,} rows)")
    console.print(f"{len(rows)} partition(s) dropped")


@main.command()
@dsn_option
@click.argument("user_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def forget(dsn: str | None, user_id: str, yes: bool) -> None:
    """Erase a user: replace their id by a pseudonym everywhere (totals stay correct)."""
    if not yes:
        click.confirm(f"Pseudonymize {user_id!r} everywhere? This cannot be undone", abort=True)
    with connect(dsn) as conn:
        pseudonym = conn.execute("select tally.forget_user(%s)", (user_id,)).fetchone()[0]  # type: ignore[index]
    console.print(f"{user_id} is now {pseudonym}" if pseudonym else f"{user_id} is unknown (or already forgotten)")


# Command groups that live in their own modules register themselves on `main`.
from . import cli_admin, cli_bench, cli_user  # noqa: E402,F401

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
