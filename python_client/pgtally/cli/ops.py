"""Commands for the schema and the data's upkeep: migrate, sql, merge, verify, rebuild, retention, forget."""

from __future__ import annotations

import sys

import click
import psycopg
from rich.table import Table

from .. import migrate as migrations
from .. import schema
from ..client import Client
from ._common import connect, console, dsn_option, emit_json, err_console, json_option, require_dsn


@click.command()
@dsn_option
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.option("--downgrade", is_flag=True, help="Downgrade to --revision (e.g. base) instead of upgrading.")
@click.option(
    "--drop-data",
    is_flag=True,
    help="With --downgrade: go ahead even if it drops tables holding rows (base drops the whole usage log).",
)
def migrate(dsn: str | None, revision: str, downgrade: bool, drop_data: bool) -> None:
    """Apply pgtally's Alembic migrations to the database.

    A downgrade that would drop tables holding rows (the usage log, rollups,
    plans, ...) is refused, changing nothing, unless --drop-data is given.
    """
    dsn = require_dsn(dsn)
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


@click.command()
@click.option("--alembic", "via_alembic", is_flag=True, help="Print the migration chain's SQL (alembic offline mode).")
def sql(via_alembic: bool) -> None:
    """Print the install SQL without connecting (declarative schema by default)."""
    click.echo(migrations.offline_sql() if via_alembic else schema.install_sql())


@click.command()
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


@click.command()
@dsn_option
@json_option
@click.option("--sample", default=5, show_default=True, help="Drifted keys to show per check.")
def verify(dsn: str | None, as_json: bool, sample: int) -> None:
    """Recompute every aggregate from the retained log; exit 1 on drift."""
    with connect(dsn) as conn:
        rows = conn.execute("select check_name, checked, drifted, sample from tally.verify(%s)", (sample,)).fetchall()
    drift = sum(r[2] for r in rows)
    if as_json:
        emit_json(
            {"drifted": drift, "checks": [dict(check=r[0], checked=r[1], drifted=r[2], sample=r[3]) for r in rows]}
        )
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


@click.command()
@dsn_option
@click.option("--user", "user_id", help="Rebuild one user (default: every user, one transaction each).")
@click.option("--dimension", help="Rebuild (backfill) one declared dimension only.")
def rebuild(dsn: str | None, user_id: str | None, dimension: str | None) -> None:
    """Rebuild the rollups from the retained log (after a bug, or to backfill a new dimension)."""
    from rich.progress import Progress

    with connect(dsn) as conn:
        users = (
            [user_id]
            if user_id
            else [
                r[0]
                for r in conn.execute(
                    "select user_id from tally.event_keys union select user_id from tally.user_totals order by 1"
                )
            ]
        )
        rows = 0
        with Progress(console=err_console, transient=True) as progress:
            task = progress.add_task("rebuilding", total=len(users))
            for u in users:
                try:
                    rows += conn.execute("select tally.rebuild(%s, %s)", (u, dimension)).fetchone()[0]  # type: ignore[index]
                except psycopg.Error as exc:
                    raise click.ClickException(str(exc).splitlines()[0]) from exc
                progress.advance(task)
    console.print(
        f"rebuilt {len(users):,} user(s) from {rows:,} log rows" + (f" (dimension {dimension})" if dimension else "")
    )


@click.command()
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


@click.command()
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


COMMANDS = (migrate, sql, merge, verify, rebuild, retention, forget)
