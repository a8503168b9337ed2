"""Rich terminal renderings shared by the command line and the demo: the admin dashboard and its number formats.

``pgtally admin`` and ``pgtally demo`` print the dashboard with :func:`print_dashboard`;
needs ``pgtally[cli]`` (rich).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal

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
    table = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    return table


def print_dashboard(board: Dashboard, console: Console) -> None:
    """The admin dashboard as rich tables, printed on ``console``."""
    fresh = [f.refreshed_at for f in board.freshness]
    oldest = None if not fresh or any(f is None for f in fresh) else min(f for f in fresh if f is not None)
    console.rule("[bold]pgtally admin dashboard")
    hidden = (
        f"; groups of fewer than {board.min_group_size} users are hidden"
        if board.min_group_size > 1
        else "; every group is shown (minimum group size 1)"
    )
    console.print(f"data as of {_ago(oldest)}; timeframe {board.time_window}{hidden}")

    o = board.overview
    if o is not None:
        card = table(
            "Platform",
            "users",
            "events",
            "success",
            "audio/processing",
            "cost",
            "billable",
            "paying users",
            "events/user",
            "cost/user",
        )
        card.add_row(
            number(o.users),
            number(o.events),
            percent(o.success_rate),
            human_duration(o.duration_ms),
            number(o.cost, 4),
            number(o.billable_cost, 4),
            number(o.paying_users),
            number(o.avg_events_per_user),
            number(o.avg_cost_per_user, 4),
        )
        console.print(card)

    totals = table(
        "Totals by kind (lifetime)",
        "kind",
        "events",
        "failures",
        "quantity",
        "duration",
        "cost",
        "cost %",
        "users",
        "qty/event",
        "events/user",
    )
    for t in board.totals_by_kind:
        totals.add_row(
            t.value,
            number(t.events),
            number(t.failures),
            number(t.quantity),
            human_duration(t.duration_ms),
            number(t.cost, 4),
            percent(t.cost_share_pct),
            number(t.users),
            number(t.avg_quantity_per_event),
            number(t.avg_events_per_user),
        )
    console.print(totals)

    for dimension, entries in board.leaderboards.items():
        lb = table(f"Top {dimension} ({board.time_window})", "#", dimension, "events", "duration", "cost", "users")
        for e in entries:
            lb.add_row(
                str(e.rank),
                e.value,
                number(e.events),
                human_duration(e.duration_ms),
                number(e.cost, 4),
                number(e.users),
            )
        console.print(lb)

    series: dict[str, list[int]] = defaultdict(list)
    for p in board.trend:
        series[p.value].append(p.events)
    days = len(board.active_users)
    trend = table(f"Trends (last {days} days)", "series", "sparkline", "last day", "total")
    for value, points in sorted(series.items(), key=lambda kv: -sum(kv[1])):
        trend.add_row(f"{value} events", sparkline(points), number(points[-1]), number(sum(points)))
    for label, attr in (("DAU", "dau"), ("WAU", "wau"), ("MAU", "mau"), ("paying (30d)", "paying_users_30d")):
        points = [getattr(a, attr) for a in board.active_users]
        if points:
            trend.add_row(label, sparkline(points), number(points[-1]), "")
    console.print(trend)

    if board.week_over_week:
        c0 = board.week_over_week[0]
        wow = table(
            f"Week over week ({c0.week_start} .. {c0.week_end})",
            "metric",
            "this week",
            "last week",
            "delta",
            "delta %",
            "trend",
        )
        arrows = {"up": "↑ up", "down": "↓ down", "stable": "→ stable"}
        for c in board.week_over_week:
            wow.add_row(
                c.metric,
                number(c.this_week),
                number(c.last_week),
                number(c.delta),
                percent(c.delta_pct, signed=True),
                arrows.get(c.trend or "", "-"),
            )
        console.print(wow)

    funnel = table(f"Funnel ({board.time_window})", "step", "users", "conversion", "from previous", "drop-off")
    for s in board.funnel:
        funnel.add_row(
            f"{s.step}. {s.kind}",
            number(s.users),
            percent(s.conversion_pct),
            percent(s.step_conversion_pct),
            f"{s.drop_off:,} ({percent(s.drop_off_pct)})",
        )
    console.print(funnel)

    rel = table(
        f"Reliability ({board.time_window})",
        "kind / format",
        "succeeded",
        "failed",
        "success",
        "avg",
        "p50",
        "p95",
        "p99",
    )
    for r in board.reliability:
        if r.format == "*" or len([x for x in board.reliability if x.kind == r.kind]) > 2:
            label = r.kind if r.format == "*" else f"  {r.format or '(none)'}"
            rel.add_row(
                label,
                number(r.succeeded),
                number(r.failed),
                percent(r.success_rate),
                *(
                    f"{v / 1000:.1f} s" if v is not None else "-"
                    for v in (r.avg_duration_ms, r.p50_duration_ms, r.p95_duration_ms, r.p99_duration_ms)
                ),
            )
    console.print(rel)

    errors = table(
        f"Top error codes ({board.time_window}, retained raw log)", "kind", "error code", "failures", "users", "last"
    )
    for code in board.error_codes:
        errors.add_row(
            code.kind,
            code.error_code or "(none)",
            number(code.failures),
            number(code.users),
            f"{code.last_at:%Y-%m-%d %H:%M}" if code.last_at else "-",
        )
    console.print(errors)

    if board.cohorts:
        width = max(cell.month_offset for cell in board.cohorts) + 1
        cohorts = table(
            "Cohort retention (users active n months after their first month)",
            "cohort",
            "users",
            *(f"+{i}" for i in range(1, width)),
        )
        by_cohort: dict[dt.date, dict[int, Decimal | None]] = defaultdict(dict)
        sizes: dict[dt.date, int] = {}
        for cell in board.cohorts:
            by_cohort[cell.cohort_month][cell.month_offset] = cell.retention_pct
            sizes[cell.cohort_month] = cell.cohort_users
        today = dt.datetime.now(dt.timezone.utc).date()
        for month, cells in sorted(by_cohort.items()):
            elapsed = (today.year - month.year) * 12 + today.month - month.month
            cohorts.add_row(
                f"{month:%Y-%m}",
                number(sizes[month]),
                *(percent(cells[i]) if i in cells else ("0.0%" if i <= elapsed else "") for i in range(1, width)),
            )
        console.print(cohorts)
    else:
        smallest = f" of at least {board.min_group_size} users" if board.min_group_size > 1 else ""
        console.print(f"Cohort retention: no cohort{smallest} in the last 12 months")
