"""Commands for the schema and the data's upkeep: migrate, sql, merge, verify, rebuild, retention, forget."""

from __future__ import annotations

import datetime as dt
import sys

import click
import psycopg

from .. import distribute, schema
from .. import migrate as migrations
from ..client import Client
from ..terminal import Col, fitted_table
from ._common import connect, console, dsn_option, emit_json, err_console, json_option, require_dsn


@click.command()
@dsn_option
@json_option
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.option("--downgrade", is_flag=True, help="Downgrade to --revision (e.g. base) instead of upgrading.")
@click.option(
    "--drop-data",
    is_flag=True,
    help="With --downgrade: go ahead even if it drops tables holding rows (base drops the whole usage log).",
)
def migrate(dsn: str | None, as_json: bool, revision: str, downgrade: bool, drop_data: bool) -> None:
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
        undistributed = [] if downgrade else distribute.undistributed_tables(dsn)
    except migrations.DataLossRefused as exc:
        raise click.ClickException(str(exc)) from exc
    except psycopg.OperationalError as exc:
        raise click.ClickException(f"cannot connect to the database ({exc})") from exc
    if undistributed:
        click.echo(
            f"distributed install: run pgtally distribute for the new tables ({', '.join(undistributed)})", err=True
        )
    if as_json:
        emit_json({"revision": now})
        return
    console.print(f"pgtally schema at revision [bold]{now or 'base (not installed)'}[/bold]")


@click.command()
@click.option("--alembic", "via_alembic", is_flag=True, help="Print the migration chain's SQL (alembic offline mode).")
def sql(via_alembic: bool) -> None:
    """Print the install SQL without connecting (declarative schema by default)."""
    click.echo(migrations.offline_sql() if via_alembic else schema.install_sql())


@click.command()
@dsn_option
@json_option
@click.option("--max-rows", default=100_000, show_default=True, help="Deltas per merge transaction.")
@click.option("--all", "drain", is_flag=True, help="Repeat until nothing is pending.")
def merge(dsn: str | None, as_json: bool, max_rows: int, drain: bool) -> None:
    """Fold pending deltas into the rollups (schedule every minute)."""
    with connect(dsn) as conn:
        client, total = Client(conn), 0
        while True:
            n = client.merge_pending(max_rows)
            total += n
            if not drain or n == 0:
                break
    if as_json:
        emit_json({"merged": total})
        return
    console.print(f"merged {total} pending deltas")


#: Run as a superuser after a full rebuild, this deletes the log rows no exactly-once key names (written past the
#: insert trigger under an event id already recorded; no total counts them), keeping one of rows that repeat a
#: keyed (event_id, user_id, occurred_at). docs/operations.md shows the same statement.
REMOVE_REPEATED_ROWS_SQL = (
    "begin; set local session_replication_role = replica; "
    "delete from tally.usage_events e "
    "where not exists (select from tally.event_keys k "
    "where k.event_id = e.event_id and k.user_id = e.user_id and k.occurred_at = e.occurred_at) "
    "or exists (select from tally.usage_events d "
    "where d.user_id = e.user_id and d.occurred_at = e.occurred_at and d.event_id = e.event_id "
    "and d.tableoid = e.tableoid and d.ctid < e.ctid); "
    "commit;"
)


def repair_steps(drifted_checks: list[str]) -> list[str]:
    """What repairs the drift of these checks of tally.verify, in order: commands, or SQL to run in psql."""
    if not drifted_checks:
        return []
    if "duplicate log rows" in drifted_checks:
        # Rebuilding first keys every row that has no key and drops the keys whose row is gone, so that the
        # statement removes only true repeats; rebuilding again recounts from what is left.
        return ["pgtally rebuild", f"psql, as a superuser: {REMOVE_REPEATED_ROWS_SQL}", "pgtally rebuild"]
    # Every other check (the derived tables and the keys) is repaired by a full rebuild.
    return ["pgtally rebuild"]


@click.command()
@dsn_option
@json_option
@click.option("--sample", default=5, show_default=True, help="Drifted keys to show per check.")
def verify(dsn: str | None, as_json: bool, sample: int) -> None:
    """Recompute every table derived from the log and check the log's keys; on drift, print how to repair it and exit 1."""
    with connect(dsn) as conn:
        rows = conn.execute("select check_name, checked, drifted, sample from tally.verify(%s)", (sample,)).fetchall()
    drift = sum(r[2] for r in rows)
    steps = repair_steps([r[0] for r in rows if r[2]])
    if as_json:
        emit_json(
            {
                "drifted": drift,
                "checks": [
                    dict(
                        check=r[0], checked=r[1], drifted=r[2], sample=r[3], repair=repair_steps([r[0]]) if r[2] else []
                    )
                    for r in rows
                ],
                "repair": steps,
            }
        )
    else:
        console.print(
            fitted_table(
                console,
                "pgtally verify",
                ["check", Col("checked"), Col("drifted"), Col("sample", "left")],
                [
                    [name, f"{checked:,}", f"[red]{drifted:,}" if drifted else "0", ", ".join(keys or [])]
                    for name, checked, drifted, keys in rows
                ],
            )
        )
        if drift:
            console.print("[red]drift found[/red]; to repair it:")
            for n, step in enumerate(steps, 1):
                console.print(f"  {n}. {step}", markup=False, highlight=False, soft_wrap=True)
        else:
            console.print("[green]no drift[/green]")
    if drift:
        sys.exit(1)


@click.command()
@dsn_option
@json_option
@click.option("--user", "user_id", help="Rebuild one user (default: every user, one transaction each).")
@click.option("--dimension", help="Rebuild (backfill) one declared dimension only.")
def rebuild(dsn: str | None, as_json: bool, user_id: str | None, dimension: str | None) -> None:
    """Rebuild every table derived from the retained log (after a bug or a hand edit, or to backfill a new dimension)."""
    from rich.progress import Progress

    with connect(dsn) as conn:
        keys = 0
        if not user_id and not dimension:
            # Keys first, for all users at once (a key whose row is gone is found only by reading every key):
            # which log rows count, and so which users have something to rebuild, depends on them.
            try:
                keys = conn.execute("select tally.rebuild_keys()").fetchone()[0]  # type: ignore[index]
            except psycopg.Error as exc:
                raise click.ClickException(str(exc).splitlines()[0]) from exc
        users = (
            [user_id]
            if user_id
            else [r[0] for r in conn.execute("select u.user_id from tally.rebuild_users() u order by 1")]
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
    if as_json:
        emit_json({"users": len(users), "rows": rows, "keys": keys, "dimension": dimension})
        return
    console.print(
        f"rebuilt {len(users):,} user(s) from {rows:,} log rows"
        + (f" (dimension {dimension})" if dimension else "")
        + (f"; {keys:,} exactly-once key(s) reconciled with the log" if keys else "")
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
        console.print(f"dropped {name} ({start} – {end - dt.timedelta(days=1)}, {n:,} rows)")
    console.print(f"{len(rows)} partition(s) dropped")


@click.command()
@dsn_option
@json_option
@click.argument("user_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def forget(dsn: str | None, as_json: bool, user_id: str, yes: bool) -> None:
    """Erase a user: replace their id by a pseudonym everywhere (totals stay correct)."""
    if not yes:
        click.confirm(f"Pseudonymize {user_id!r} everywhere? This cannot be undone", abort=True)
    with connect(dsn) as conn:
        pseudonym = conn.execute("select tally.forget_user(%s)", (user_id,)).fetchone()[0]  # type: ignore[index]
    if as_json:
        emit_json({"user_id": user_id, "pseudonym": pseudonym})
        return
    console.print(f"{user_id} is now {pseudonym}" if pseudonym else f"{user_id} is unknown (or already forgotten)")


COMMANDS = (migrate, sql, merge, verify, rebuild, retention, forget)
