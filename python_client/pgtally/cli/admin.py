"""Commands for admins and analysts: the dashboard (`pgtally admin`) and refreshing its views."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import click
import psycopg

from ..admin import DEFAULT_FUNNEL, WEEKS, WINDOWS, RefreshNotScheduled
from ..client import Client
from ..errors import PgTallyError
from ..terminal import number, print_dashboard, table
from ._common import InputError, connect, console, dsn_option, emit_json, input_error, json_option


@click.command()
@dsn_option
@json_option
@click.option(
    "--window",
    "-w",
    type=click.Choice(WINDOWS),
    default=None,
    help="Timeframe of the overview, totals, leaderboards, funnel, reliability and error codes: the 24 hours, "
    "7 or 30 days ending at the last refresh, or all time (default 7d).",
)
@click.option(
    "--from",
    "from_day",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Instead of --window: the first UTC day of the timeframe (with --to).",
)
@click.option(
    "--to",
    "to_day",
    type=click.DateTime(["%Y-%m-%d"]),
    help="With --from: the UTC day after the last one (the timeframe is [from, to)).",
)
@click.option("--plan", help="Only events recorded under this plan (default: every plan).")
@click.option(
    "--weeks",
    type=click.Choice([str(w) for w in WEEKS]),
    default="1",
    show_default=True,
    help="Week over week: compare this many complete weeks with as many before.",
)
@click.option("--dimension", "-d", multiple=True, help="Leaderboard dimension(s) (default: voice, model).")
@click.option(
    "--funnel",
    "funnel_steps",
    default=",".join(DEFAULT_FUNNEL),
    show_default=True,
    help="Funnel steps: kinds separated by commas, in order.",
)
@click.option("--days", default=14, show_default=True, help="Days of the trend sparklines.")
def admin(
    dsn: str | None,
    as_json: bool,
    window: str | None,
    from_day: dt.datetime | None,
    to_day: dt.datetime | None,
    plan: str | None,
    weeks: str,
    dimension: tuple[str, ...],
    funnel_steps: str,
    days: int,
) -> None:
    """The admin dashboard: platform totals, leaderboards, trends, week-over-week, funnel, reliability, cohorts."""
    if (from_day is None) != (to_day is None):
        raise InputError("--from and --to go together (the timeframe is the UTC days [from, to))")
    if from_day is not None and window is not None:
        raise InputError("give either --window or --from/--to, not both")
    steps = [s.strip() for s in funnel_steps.split(",") if s.strip()]
    with connect(dsn) as conn:
        try:
            board = Client(conn).admin.dashboard(
                window or "7d",
                dimension or ("voice", "model"),
                steps,
                days,
                from_day=from_day.date() if from_day else None,
                to_day=to_day.date() if to_day else None,
                plan=plan,
                weeks=int(weeks),
            )
        except psycopg.errors.InsufficientPrivilege as exc:
            raise click.ClickException(
                f"{exc.diag.message_primary}: admin analytics need the tally_analyst role"
            ) from exc
        except PgTallyError as exc:
            raise input_error(exc) from exc
    if as_json:
        emit_json(board)
    else:
        print_dashboard(board, console)


@click.command()
@dsn_option
@json_option
@click.option("--merge/--no-merge", default=True, show_default=True, help="Merge pending deltas first.")
@click.option(
    "--schedule",
    metavar="INTERVAL",
    help="Instead of refreshing, schedule the refresh with pg_cron every INTERVAL (e.g. '5 minutes').",
)
def refresh(dsn: str | None, as_json: bool, merge: bool, schedule: str | None) -> None:
    """Refresh the admin analytics views (readers are never blocked); run it from cron or pg_cron."""
    with connect(dsn) as conn:
        client = Client(conn)
        try:
            if schedule:
                console.print(client.admin.schedule_refresh(schedule))
                return
            results = client.admin.refresh(merge_first=merge)
        except RefreshNotScheduled as exc:
            raise click.ClickException(str(exc)) from exc
        except psycopg.errors.InsufficientPrivilege as exc:
            raise click.ClickException(
                f"{exc.diag.message_primary}: refreshing needs tally_analyst or tally_owner"
            ) from exc
        except PgTallyError as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json:
        emit_json(results)
        return
    if results and results[0].skipped:
        console.print("another refresh of the analytics is running; skipped")
        return
    views = table("Refreshed analytics views", "view", "rows", "duration")
    for r in results:
        views.add_row(r.view_name or "-", number(r.row_count), f"{r.duration_ms:,.1f} ms")
    total = sum((r.duration_ms for r in results), Decimal(0))
    views.add_row("[bold]total", "", f"[bold]{total:,.1f} ms")
    console.print(views)


COMMANDS = (admin, refresh)
