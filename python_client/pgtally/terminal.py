"""Rich terminal renderings shared by the command line and the demo: tables, the admin dashboard, number formats.

``pgtally admin`` and ``pgtally demo`` print the dashboard with :func:`print_dashboard`;
every command prints its tables with :func:`table` or :func:`fitted_table`, which
never cut a cell short: cells that do not fit wrap, and on a narrow terminal (or
a pipe, 80 columns) :func:`fitted_table` leaves out the least important columns
and says which (``--json`` has them all). Needs ``pgtally[cli]`` (rich).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Literal

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

from .admin_models import Dashboard
from .models import human_duration

_SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | int | Decimal]) -> str:
    """A one-line chart of a series: ``▁▃▇█▅``."""
    nums = [float(v) for v in values]
    if not nums:
        return ""
    lo, hi = min(nums), max(nums)
    if hi == lo:
        return (_SPARKS[0] if hi == 0 else _SPARKS[3]) * len(nums)
    return "".join(_SPARKS[round((v - lo) / (hi - lo) * (len(_SPARKS) - 1))] for v in nums)


def number(v: object, places: int = 0) -> str:
    if v is None:
        return "-"
    if isinstance(v, Decimal) and places:
        return f"{v:,.{places}f}"
    if isinstance(v, (int, Decimal)):
        return f"{v:,}"
    return str(v)


def percent(v: Decimal | None, signed: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:+.1f}%" if signed else f"{v:.1f}%"


def _ago(t: dt.datetime | None) -> str:
    if t is None:
        return "never refreshed: run `pgtally refresh`"
    seconds = int((dt.datetime.now(dt.timezone.utc) - t).total_seconds())
    return f"{t:%Y-%m-%d %H:%M:%S %Z} ({human_duration(max(seconds, 0) * 1000)} ago)"


def table(title: str, *columns: str) -> Table:
    """A table with the first column left-aligned and the others right-aligned; a cell too wide wraps, never cut."""
    table = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right", overflow="fold")
    return table


@dataclasses.dataclass(frozen=True)
class Col:
    """A column of :func:`fitted_table`: ``drop`` 0 is always shown; higher values are left out first when narrow."""

    name: str
    justify: Literal["left", "right", "center"] = "right"
    drop: int = 0


def fitted_table(console: Console, title: str, columns: Sequence[Col | str], rows: Sequence[Sequence[str]]) -> Table:
    """A table that fits ``console``'s width: optional columns go, the last line says which; what stays wraps.

    A plain string column is a left-aligned column that is always shown.
    """
    cols = [Col(c, "left") if isinstance(c, str) else c for c in columns]
    widths = [
        max([cell_len(c.name), *(max(map(cell_len, str(r[i]).split("\n")), default=0) for r in rows)])
        for i, c in enumerate(cols)
    ]
    keep = list(range(len(cols)))

    def width() -> int:
        return sum(widths[i] + 3 for i in keep) + 1

    for level in sorted({c.drop for c in cols if c.drop > 0}, reverse=True):
        if width() <= console.width:
            break
        for i in reversed(range(len(cols))):
            if cols[i].drop == level and width() > console.width:
                keep.remove(i)
    hidden = [cols[i].name for i in range(len(cols)) if i not in keep]
    out = Table(
        title=title,
        title_justify="left",
        caption=f"not shown at this width: {', '.join(hidden)} (widen the terminal or use --json)" if hidden else None,
        caption_justify="left",
    )
    for i in keep:
        out.add_column(cols[i].name, justify=cols[i].justify, overflow="fold")
    for r in rows:
        out.add_row(*(str(r[i]) for i in keep))
    return out


def print_dashboard(board: Dashboard, console: Console) -> None:
    """The admin dashboard as rich tables, printed on ``console`` (narrow consoles get the main columns)."""

    def show(title: str, columns: Sequence[Col | str], rows: Sequence[Sequence[str]]) -> None:
        console.print(fitted_table(console, title, columns, rows))

    fresh = [f.refreshed_at for f in board.freshness]
    oldest = None if not fresh or any(f is None for f in fresh) else min(f for f in fresh if f is not None)
    console.rule("[bold]pgtally admin dashboard")
    hidden = (
        f"; groups of fewer than {board.min_group_size} users are hidden"
        if board.min_group_size > 1
        else "; every group is shown (minimum group size 1)"
    )
    console.print(f"data as of {_ago(oldest)}; timeframe {board.timeframe}{hidden}")
    # The short label of the windowed panels: the named window or the range of UTC days.
    tf = board.timeframe.split(":")[0] if board.time_window is None else board.time_window
    if board.plan is not None:
        tf = f"{tf}, plan {board.plan or '(none)'}"

    o = board.overview
    if o is not None:
        show(
            f"Platform ({tf})",
            [
                Col("users"),
                Col("events"),
                Col("success"),
                Col("audio/processing", drop=1),
                Col("cost"),
                Col("billable", drop=2),
                Col("paying users"),
                Col("events/user", drop=3),
                Col("cost/user", drop=3),
            ],
            [
                [
                    number(o.users),
                    number(o.events),
                    percent(o.success_rate),
                    human_duration(o.duration_ms),
                    number(o.cost, 4),
                    number(o.billable_cost, 4),
                    number(o.paying_users),
                    number(o.avg_events_per_user),
                    number(o.avg_cost_per_user, 4),
                ]
            ],
        )

    show(
        f"Totals by kind ({tf})",
        [
            "kind",
            Col("events"),
            Col("failures", drop=2),
            Col("quantity"),
            Col("duration", drop=1),
            Col("cost"),
            Col("cost %", drop=3),
            Col("users"),
            Col("qty/event", drop=4),
            Col("events/user", drop=4),
        ],
        [
            [
                t.value,
                number(t.events),
                number(t.failures),
                f"{number(t.quantity)} {t.unit}" if t.unit else number(t.quantity),
                human_duration(t.duration_ms),
                number(t.cost, 4),
                percent(t.cost_share_pct),
                number(t.users),
                number(t.avg_quantity_per_event),
                number(t.avg_events_per_user),
            ]
            for t in board.totals_by_kind
        ],
    )

    for dimension, entries in board.leaderboards.items():
        show(
            f"Top {dimension} ({tf})",
            [Col("#"), Col(dimension, "left"), Col("events"), Col("duration"), Col("cost", drop=1), Col("users")],
            [
                [
                    str(e.rank),
                    e.value,
                    number(e.events),
                    human_duration(e.duration_ms),
                    number(e.cost, 4),
                    number(e.users),
                ]
                for e in entries
            ],
        )

    series: dict[str, list[int]] = defaultdict(list)
    for p in board.trend:
        series[p.value].append(p.events)
    days = len(board.active_users)
    plan_note = f", plan {board.plan or '(none)'}" if board.plan is not None else ""
    trend_rows = [
        [f"{value} events", sparkline(points), number(points[-1]), number(sum(points))]
        for value, points in sorted(series.items(), key=lambda kv: -sum(kv[1]))
    ]
    for label, attr in (("DAU", "dau"), ("WAU", "wau"), ("MAU", "mau"), ("paying (30d)", "paying_users_30d")):
        points = [getattr(a, attr) for a in board.active_users]
        if points:
            trend_rows.append([label, sparkline(points), number(points[-1]), ""])
    show(
        f"Trends ({days} UTC days{' to ' + str(board.active_users[-1].day) if board.active_users else ''}{plan_note})",
        ["series", Col("sparkline", "left"), Col("last day"), Col("total", drop=1)],
        trend_rows,
    )

    if board.week_over_week:
        c0 = board.week_over_week[0]
        arrows = {"up": "↑ up", "down": "↓ down", "stable": "→ stable"}
        this, last = ("this week", "last week") if board.weeks == 1 else (f"{board.weeks} weeks", "weeks before")
        show(
            f"{'Week' if board.weeks == 1 else f'{board.weeks} weeks'} over {'week' if board.weeks == 1 else 'the ones before'}"
            f" ({c0.week_start} – {c0.week_end} against {c0.previous_start} – {c0.previous_end}{plan_note})",
            ["metric", Col(this), Col(last), Col("delta", drop=1), Col("delta %"), Col("trend", drop=2)],
            [
                [
                    c.metric if c.value == "*" else f"{c.metric} {c.value}",
                    number(c.this_week),
                    number(c.last_week),
                    number(c.delta),
                    percent(c.delta_pct, signed=True),
                    arrows.get(c.trend or "", "-"),
                ]
                for c in board.week_over_week
            ],
        )

    show(
        f"Funnel ({tf})",
        ["step", Col("users"), Col("conversion"), Col("from previous", drop=1), Col("drop-off")],
        [
            [
                f"{s.step}. {s.kind}",
                number(s.users),
                percent(s.conversion_pct),
                percent(s.step_conversion_pct),
                f"{s.drop_off:,} ({percent(s.drop_off_pct)})",
            ]
            for s in board.funnel
        ],
    )

    rel_rows = []
    for r in board.reliability:
        if r.format == "*" or len([x for x in board.reliability if x.kind == r.kind]) > 2:
            label = r.kind if r.format == "*" else f"  {r.format or '(none)'}"
            rel_rows.append(
                [
                    label,
                    number(r.succeeded),
                    number(r.failed),
                    percent(r.success_rate),
                    *(
                        f"{v / 1000:.1f} s" if v is not None else "-"
                        for v in (r.avg_duration_ms, r.p50_duration_ms, r.p95_duration_ms, r.p99_duration_ms)
                    ),
                ]
            )
    show(
        f"Reliability ({tf})",
        [
            "kind / format",
            Col("succeeded"),
            Col("failed"),
            Col("success"),
            Col("avg", drop=2),
            Col("p50", drop=1),
            Col("p95"),
            Col("p99", drop=1),
        ],
        rel_rows,
    )

    show(
        f"Top error codes ({tf}, retained raw log)",
        ["kind", Col("error code", "left"), Col("failures"), Col("users"), Col("last", drop=1)],
        [
            [
                code.kind,
                code.error_code or "(none)",
                number(code.failures),
                number(code.users),
                f"{code.last_at:%Y-%m-%d %H:%M}" if code.last_at else "-",
            ]
            for code in board.error_codes
        ],
    )

    if board.cohorts:
        width = max(cell.month_offset for cell in board.cohorts) + 1
        by_cohort: dict[dt.date, dict[int, Decimal | None]] = defaultdict(dict)
        sizes: dict[dt.date, int] = {}
        for cell in board.cohorts:
            by_cohort[cell.cohort_month][cell.month_offset] = cell.retention_pct
            sizes[cell.cohort_month] = cell.cohort_users
        today = dt.datetime.now(dt.timezone.utc).date()
        cohort_rows = []
        for month, cells in sorted(by_cohort.items()):
            elapsed = (today.year - month.year) * 12 + today.month - month.month
            cohort_rows.append(
                [
                    f"{month:%Y-%m}",
                    number(sizes[month]),
                    *(percent(cells[i]) if i in cells else ("0.0%" if i <= elapsed else "") for i in range(1, width)),
                ]
            )
        # The latest months after the offset are dropped first on a narrow console (the first ones matter most).
        show(
            f"Cohort retention (users active n months after their first UTC month{plan_note})",
            ["cohort", Col("users"), *(Col(f"+{i}", drop=i) for i in range(1, width))],
            cohort_rows,
        )
    else:
        smallest = f" of at least {board.min_group_size} users" if board.min_group_size > 1 else ""
        console.print(f"Cohort retention: no cohort{smallest} in the last 12 months")
