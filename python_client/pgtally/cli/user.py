"""Commands for one user's usage: record, stats, history, card, export."""

from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal, InvalidOperation

import click

from ..client import Client
from ..errors import PgTallyError
from ..models import human_duration
from ..terminal import Col, fitted_table
from ._common import connect, console, dsn_option, emit_json, json_option

_BARS = "▏▎▍▌▋▊▉█"


def _bar(value: float, top: float, width: int = 24) -> str:
    """A horizontal bar of ``width`` cells for value / top."""
    if top <= 0 or value <= 0:
        return ""
    cells = value / top * width
    full = int(cells)
    rest = int((cells - full) * len(_BARS))
    return "█" * full + (_BARS[rest - 1] if rest else "")


def _days(start: dt.date, end: dt.date) -> str:
    """A span of days for people: the first and the last day, both included (``end`` is the exclusive end the SQL returns)."""
    return f"{start} – {end - dt.timedelta(days=1)}"


def _metric_text(metric: str, value: int | Decimal) -> str:
    if metric == "duration_ms":
        return human_duration(int(value))
    if metric == "cost":
        return f"{value:,.4f}"
    return f"{value:,}"


def print_lifetime(client: Client, user_id: str, dimension: str, title: str | None = None) -> None:
    rows = client.lifetime_totals(user_id, dimension)
    console.print(
        fitted_table(
            console,
            title or f"{user_id}: lifetime by {dimension}",
            [
                "value",
                Col("events"),
                Col("quantity"),
                Col("duration"),
                Col("cost", drop=1),
                Col("first", "left", drop=2),
                Col("last", "left", drop=2),
            ],
            [
                [
                    r.value,
                    f"{r.events:,}",
                    f"{r.quantity:,}",
                    r.duration_text,
                    f"{r.cost:.4f}",
                    r.first_at.strftime("%Y-%m-%d") if r.first_at else "-",
                    r.last_at.strftime("%Y-%m-%d") if r.last_at else "-",
                ]
                for r in rows
            ],
        )
    )


def _decimal(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A CLI value that must be an exact decimal number: one line and exit code 2 otherwise."""
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"{value!r} is not a decimal number (e.g. 0.0015)") from None
    if not number.is_finite():
        raise click.BadParameter(f"{value!r} is not a finite decimal number")
    return value


def _no_such_user(user_id: str) -> None:
    """Says on stderr that nothing is recorded for a user, and exits 1 (instead of printing empty tables)."""
    click.echo(f"pgtally: no usage recorded for user {user_id!r} (or it is not visible to this role)", err=True)
    raise SystemExit(1)


@click.command()
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
            lifetime = {d: client.lifetime_totals(user_id, d) for d in dims}  # an unknown dimension fails here
            if not client.lifetime_totals(user_id, "kind"):
                _no_such_user(user_id)
            if as_json:
                emit_json(
                    {
                        "user_id": user_id,
                        "lifetime": lifetime,
                        "period": client.period_totals(user_id),
                    }
                )
                return
            for d in dims:
                print_lifetime(client, user_id, d)
            console.print(
                fitted_table(
                    console,
                    f"{user_id}: current billing period",
                    [
                        "kind",
                        Col("first day", "left"),
                        Col("last day", "left"),
                        Col("events"),
                        Col("quantity"),
                        Col("cost", drop=1),
                    ],
                    [
                        [
                            p.kind,
                            str(p.period_start),
                            str(p.period_end - dt.timedelta(days=1)),
                            f"{p.events:,}",
                            f"{p.quantity:,}",
                            f"{p.cost:.4f}",
                        ]
                        for p in client.period_totals(user_id)
                    ],
                )
            )
        except PgTallyError as exc:
            raise click.ClickException(str(exc)) from exc


@click.command()
@dsn_option
@json_option
@click.argument("user_id")
@click.option("--range", "range_", default="30d", show_default=True, help="7d, 30d, 3m, 12m (any N[dwmy]).")
@click.option("--bucket", type=click.Choice(["day", "week", "month"]), default="day", show_default=True)
@click.option(
    "--metric",
    type=click.Choice(["events", "quantity", "duration_ms", "cost"]),
    default="events",
    show_default=True,
    help="Metric to chart (quantity only for a user whose kinds count in one unit, or stacked by kind).",
)
@click.option("--dimension", "-d", default=None, help="Stack by this dimension (e.g. voice).")
@click.option(
    "--from", "from_day", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Custom range start (local day)."
)
@click.option("--to", "to_day", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Custom range end (local day).")
def history(
    dsn: str | None,
    as_json: bool,
    user_id: str,
    range_: str,
    bucket: str,
    metric: str,
    dimension: str | None,
    from_day: dt.datetime | None,
    to_day: dt.datetime | None,
) -> None:
    """A user's usage history per day, week or month, with a bar chart and period comparisons."""
    if (from_day is None) != (to_day is None):
        raise click.UsageError("--from and --to go together: give both for a custom range, or neither")
    with connect(dsn) as conn:
        client = Client(conn)
        try:
            rows = client.usage_history(
                user_id,
                range_,
                bucket,
                dimension=dimension,
                from_day=from_day.date() if from_day else None,
                to_day=to_day.date() if to_day else None,
            )
            comparisons = client.compare_usage(user_id, metric=metric)
        except PgTallyError as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json:
        emit_json({"user_id": user_id, "history": rows, "comparisons": comparisons})
        return
    values = [getattr(r, metric) for r in rows]
    top = float(max(values, default=0) or 0)
    columns: list[Col | str] = [
        "from",
        *([Col(dimension, "left")] if dimension else []),
        Col(metric),
        Col("", "left", drop=1),
    ]
    console.print(
        fitted_table(
            console,
            f"{user_id}: {metric} per {bucket}",
            columns,
            [
                [
                    str(r.bucket_start),
                    *([r.value or "-"] if dimension else []),
                    _metric_text(metric, v),
                    _bar(float(v), top),
                ]
                for r, v in zip(rows, values)
            ],
        )
    )
    console.print(
        fitted_table(
            console,
            "comparisons (to date)",
            ["period", Col("current"), Col("previous"), Col("change"), Col("trend", "left")],
            [
                [
                    c.comparison,
                    _metric_text(metric, c.current_value),
                    _metric_text(metric, c.previous_value),
                    "-" if c.delta_pct is None else f"{c.delta_pct:+.1f}%",
                    c.trend,
                ]
                for c in comparisons
            ],
        )
    )


@click.command()
@dsn_option
@json_option
@click.argument("user_id")
def card(dsn: str | None, as_json: bool, user_id: str) -> None:
    """A user's summary card: lifetime totals, top voices and models, the period against limits, insights."""
    with connect(dsn) as conn:
        client = Client(conn)
        try:
            if not client.lifetime_totals(user_id, "kind"):
                _no_such_user(user_id)
            summary = client.summary_card(user_id)
            profile = client.engagement_profile(user_id)
            insights = client.usage_insights(user_id)
        except PgTallyError as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json:
        emit_json({"summary": summary, "engagement": profile, "insights": insights})
        return
    console.print(
        fitted_table(
            console,
            f"{user_id}: lifetime",
            ["", Col("events"), Col("quantity"), Col("duration"), Col("cost", drop=1)],
            [
                [
                    f"{label} {line.value}",
                    f"{line.events:,}",
                    "-" if line.quantity is None else f"{line.quantity:,} {line.unit or ''}".rstrip(),
                    "-" if line.duration_ms is None else line.duration_text,  # None: no event had a duration
                    f"{line.cost:,.4f}",
                ]
                for label, lines in (("kind", summary.kinds), *summary.featured)
                for line in lines
            ],
        )
    )
    console.print(
        fitted_table(
            console,
            f"period {_days(summary.period_start, summary.period_end)} (plan {summary.plan or '-'})",
            ["kind", Col("used"), Col("quota"), Col("used %")],
            [
                [
                    p.kind,
                    f"{p.quantity:,}",
                    "unlimited" if p.quota is None else f"{p.quota:,}",
                    "-" if p.utilization_pct is None else f"{p.utilization_pct}%",
                ]
                for p in summary.period
            ],
        )
    )
    sessions = (
        f"{profile.sessions} sessions of {profile.avg_session_text} on average"
        if profile.sessions and profile.avg_session_ms is not None
        else "no sessions yet"
    )
    console.print(
        f"active days {profile.days_active}, streak {profile.current_streak} (longest {profile.longest_streak}), "
        f"{sessions}"
    )
    for i in insights:
        console.print(f"• {i.message}")


@click.command()
@dsn_option
@click.argument("user_id")
@click.option(
    "--from", "from_day", type=click.DateTime(["%Y-%m-%d"]), required=True, help="First day (UTC for raw events)."
)
@click.option("--to", "to_day", type=click.DateTime(["%Y-%m-%d"]), required=True, help="Last day, included.")
@click.option("--rollups", is_flag=True, help="Export daily rollups (local days) instead of raw events.")
@click.option("--dimension", "-d", default=None, help="With --rollups: only this dimension.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="CSV file to write (default: standard output).",
)
@click.option(
    "--raw",
    is_flag=True,
    help="Write text cells verbatim, without the leading ' that stops a spreadsheet from running a cell "
    "starting with = + - @ as a formula: unsafe to open in a spreadsheet.",
)
def export(
    dsn: str | None,
    user_id: str,
    from_day: dt.datetime,
    to_day: dt.datetime,
    rollups: bool,
    dimension: str | None,
    output: str | None,
    raw: bool,
) -> None:
    """Stream a user's raw events (or daily rollups) as CSV, in constant memory.

    Text cells starting with = + - @, a tab or a carriage return get a leading '
    so that a spreadsheet shows them instead of running them (--raw: verbatim).
    """
    first, last = from_day.date(), to_day.date()
    with connect(dsn) as conn:
        client = Client(conn)
        out = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115 - closed below
        try:
            if rollups:
                rows = client.export_rollups_csv(user_id, first, last, out, dimension=dimension, raw=raw)
            else:
                utc = dt.timezone.utc
                rows = client.export_events_csv(
                    user_id,
                    dt.datetime.combine(first, dt.time(), utc),
                    dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), utc),
                    out,
                    raw=raw,
                )
        except PgTallyError as exc:
            raise click.ClickException(str(exc)) from exc
        finally:
            if output:
                out.close()
            else:
                out.flush()
    if output:
        console.print(f"wrote {rows:,} rows to {output}")


@click.command()
@dsn_option
@json_option
@click.argument("event_id")
@click.argument("user_id")
@click.argument("kind")
@click.argument("quantity", type=int, default=0)
@click.option("--duration-ms", type=int, help="Duration in milliseconds (omit when unknown).")
@click.option("--cost", default="0", show_default=True, callback=_decimal, help="Exact cost (a decimal number).")
@click.option("--status", default="succeeded", show_default=True, help="succeeded, failed or cancelled.")
@click.option("--error-code", help="Error code of a failed event.")
@click.option(
    "--occurred-at",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]),
    help="When it happened (default: now; naive times are UTC).",
)
@click.option(
    "--attr", "attrs", multiple=True, metavar="KEY=VALUE", help="An attribute (repeatable): --attr voice=af_alloy"
)
@click.option("--not-billable", is_flag=True, help="Record as not billable.")
def record(
    dsn: str | None,
    as_json: bool,
    event_id: str,
    user_id: str,
    kind: str,
    quantity: int,
    duration_ms: int | None,
    cost: str,
    status: str,
    error_code: str | None,
    occurred_at: dt.datetime | None,
    attrs: tuple[str, ...],
    not_billable: bool,
) -> None:
    """Record one usage event (exactly-once by EVENT_ID); says whether it was new."""
    attributes: dict[str, str] = {}
    for item in attrs:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--attr")
        attributes[key] = value
    if occurred_at is not None and occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=dt.timezone.utc)
    with connect(dsn) as conn:
        try:
            new = Client(conn).record(
                event_id,
                user_id,
                kind,
                quantity,
                occurred_at=occurred_at,
                duration_ms=duration_ms,
                cost=cost,
                status=status,
                error_code=error_code,
                billable=not not_billable,
                attributes=attributes,
            )
        except PgTallyError as exc:
            raise click.ClickException(f"{exc} (SQLSTATE {exc.sqlstate}, field {exc.field})") from exc
    if as_json:
        emit_json({"event_id": event_id, "new": new})
    else:
        console.print(f"recorded {event_id}" if new else f"{event_id} was already recorded (counted once)")


COMMANDS = (record, stats, history, card, export)
