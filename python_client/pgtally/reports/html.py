"""The printable, self-contained HTML usage report of one user (and, for the demo, of the platform).

``render_html(conn, user_id, end=...)`` is the report a person receives: one
page of the user's usage, for any user of any pgtally database (a user with a
single event gets the same page with "no data yet" in the empty charts).
``render_report(client, user_id)`` adds the platform's admin page (the demo
writes it). Both return one HTML document: inline CSS, charts drawn here as
inline SVG (tooltips are SVG ``<title>`` elements, so there is no script at
all), no fonts, images or scripts fetched from anywhere, and a print stylesheet
so that "print to PDF" (and :func:`pgtally.reports.render_pdf`) gives a clean
A4 page per section. Every text that comes from the database is escaped.

The SVG helpers below take plain numbers and labels, so each chart is one small
function and the page functions only pick the data.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from ..admin import DEFAULT_FUNNEL
from ..client import Client
from ..models import human_duration

#: Series colours (colour-blind friendly, distinct in grey print too).
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f")
#: Calendar levels 0 (no activity) to 4, light to dark.
LEVELS = ("#ebedf0", "#c6dbef", "#6baed6", "#2171b5", "#08306b")
#: The summary card is asked for this many voices (its maximum), so that "listened" sums them all; the chart shows 8.
ALL_VOICES = 100
#: Stacked monthly bars show this many kinds, the rest summed as "other".
MAX_STACKED_KINDS = 5
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_STATUS_COLOURS = {"ok": "#59a14f", "warning": "#f28e2b", "exceeded": "#e15759", "projected_to_exceed": "#f28e2b"}

Number = int | float | Decimal


# ----------------------------------------------------------------- formatting


def _e(value: object) -> str:
    """Escaped text of any value (None as a dash)."""
    return escape("-" if value is None else str(value))


def _n(value: Number | None, places: int = 0) -> str:
    """A number with thousands separators, or a dash."""
    return "-" if value is None else f"{value:,.{places}f}"


def _compact(value: float) -> str:
    """An axis label: 950, 1.2k, 3.4M."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def _pct(value: Number | None, signed: bool = False) -> str:
    """A percentage with one decimal (signed for deltas), or a dash."""
    if value is None:
        return "-"
    return f"{value:+.1f}%" if signed else f"{value:.1f}%"


def _nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value`` (the top of an axis)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value)


def _shade(fraction: float) -> str:
    """A blue for a heatmap cell, white-ish at 0 to dark at 1 (square root scale, so small counts still show)."""
    if fraction <= 0:
        return LEVELS[0]
    f = math.sqrt(min(fraction, 1.0))
    low, high = (222, 235, 247), (8, 48, 107)
    return "#" + "".join(f"{round(lo + (hi - lo) * f):02x}" for lo, hi in zip(low, high))


# ------------------------------------------------------------------ SVG helpers


def _svg(width: int, height: int, body: str, label: str) -> str:
    """An inline SVG that scales down with its container and has an accessible name."""
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{_e(label)}">{body}</svg>'
    )


def _text(x: float, y: float, content: str, anchor: str = "start", cls: str = "") -> str:
    """An SVG text (escaped) anchored at start, middle or end, with an optional CSS class."""
    css = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{css}>{_e(content)}</text>'


def _rect(x: float, y: float, width: float, height: float, fill: str, tip: str | None = None) -> str:
    """An SVG rectangle; ``tip`` becomes its tooltip (an SVG title, shown on hover without any script)."""
    title = f"<title>{_e(tip)}</title>" if tip else ""
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 0):.1f}" height="{max(height, 0):.1f}" '
        f'fill="{fill}">{title}</rect>'
    )


def _empty(width: int, height: int, label: str) -> str:
    """The placeholder of a chart without data, so that the layout stays the same."""
    return _svg(width, height, _text(width / 2, height / 2, "no data yet", "middle", "muted"), label)


def _legend(names: Sequence[str], x: float, y: float) -> str:
    """A one-line legend of coloured squares."""
    parts, offset = [], 0.0
    for i, name in enumerate(names):
        parts.append(_rect(x + offset, y - 9, 10, 10, PALETTE[i % len(PALETTE)]))
        parts.append(_text(x + offset + 14, y, name, cls="small"))
        offset += 24 + 6.5 * len(name)
    return "".join(parts)


def hbar_chart(rows: Sequence[tuple[str, float, str]], label: str, width: int = 520) -> str:
    """Horizontal bars, one per (label, value, value text), longest scaled to the available width."""
    if not rows:
        return _empty(width, 60, label)
    row_h, label_w, value_w = 28, 120, 130
    top = max(v for _, v, _ in rows) or 1.0
    parts = []
    for i, (name, value, shown) in enumerate(rows):
        y = i * row_h
        bar = (width - label_w - value_w) * value / top
        parts.append(_text(label_w - 8, y + 18, name, "end"))
        parts.append(_rect(label_w, y + 5, bar, row_h - 10, PALETTE[i % len(PALETTE)], f"{name}: {shown}"))
        parts.append(_text(label_w + bar + 6, y + 18, shown, cls="small"))
    return _svg(width, row_h * len(rows), "".join(parts), label)


def _axes(width: int, height: int, top: float, labels: Sequence[str], pad: tuple[int, int, int, int]) -> str:
    """Horizontal grid lines with y labels (0 to ``top`` in four steps) and x labels under the plot."""
    left, right, upper, lower = pad
    plot_h = height - upper - lower
    parts = []
    for step in range(5):
        y = upper + plot_h * (1 - step / 4)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(_text(left - 6, y + 4, _compact(top * step / 4), "end", "small"))
    slot = (width - left - right) / max(len(labels), 1)
    for i, name in enumerate(labels):
        parts.append(_text(left + slot * (i + 0.5), height - lower + 16, name, "middle", "small"))
    return "".join(parts)


def line_chart(
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    label: str,
    unit: str = "",
    width: int = 560,
    height: int = 240,
) -> str:
    """One polyline per series over the labelled buckets, with dots carrying tooltips."""
    values = [v for points in series.values() for v in points]
    if not labels or not values:
        return _empty(width, height, label)
    pad = (48, 12, 28 if len(series) > 1 else 12, 24)
    left, right, upper, lower = pad
    top = _nice_max(max(values))
    slot = (width - left - right) / len(labels)
    plot_h = height - upper - lower
    parts = [_axes(width, height, top, labels, pad)]
    for i, (name, points) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        xy = [(left + slot * (j + 0.5), upper + plot_h * (1 - v / top)) for j, v in enumerate(points)]
        parts.append(
            f'<polyline points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in xy)}" fill="none" '
            f'stroke="{colour}" stroke-width="2.5" stroke-linejoin="round"/>'
        )
        for (x, y), v, bucket in zip(xy, points, labels):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}">'
                f"<title>{_e(f'{name} {bucket}: {_n(v, 1 if v < 10 else 0)} {unit}'.strip())}</title></circle>"
            )
    if len(series) > 1:
        parts.append(_legend(list(series), left, 14))
    return _svg(width, height, "".join(parts), label)


def stacked_bars(
    labels: Sequence[str], series: Mapping[str, Sequence[float]], label: str, width: int = 560, height: int = 240
) -> str:
    """Stacked vertical bars: one bar per label, one coloured segment per series, legend on top."""
    totals = [sum(points[j] for points in series.values()) for j in range(len(labels))]
    if not labels or not any(totals):
        return _empty(width, height, label)
    pad = (48, 12, 28, 24)
    left, right, upper, lower = pad
    top = _nice_max(max(totals))
    slot = (width - left - right) / len(labels)
    plot_h = height - upper - lower
    parts = [_axes(width, height, top, labels, pad)]
    for j, bucket in enumerate(labels):
        base: float = upper + plot_h
        for i, (name, points) in enumerate(series.items()):
            h = plot_h * points[j] / top
            base -= h
            parts.append(
                _rect(
                    left + slot * j + slot * 0.15,
                    base,
                    slot * 0.7,
                    h,
                    PALETTE[i % len(PALETTE)],
                    f"{bucket} {name}: {_n(points[j])}",
                )
            )
    parts.append(_legend(list(series), left, 14))
    return _svg(width, height, "".join(parts), label)


def grid_heatmap(
    rows: Sequence[str],
    columns: Sequence[str],
    values: Sequence[Sequence[float]],
    label: str,
    tip: str = "{row} {column}: {value}",
    cell: int = 20,
    every: int = 1,
) -> str:
    """A rows x columns grid of shaded cells (labels left and on top, every ``every``-th column labelled)."""
    left, upper, gap = 40, 18, 2
    top = max((v for row in values for v in row), default=0) or 1
    parts = []
    for c, name in enumerate(columns):
        if c % every == 0:
            parts.append(_text(left + c * cell + cell / 2, upper - 5, name, "middle", "small"))
    for r, name in enumerate(rows):
        y = upper + r * cell
        parts.append(_text(left - 6, y + cell / 2 + 4, name, "end", "small"))
        for c, value in enumerate(values[r]):
            parts.append(
                _rect(
                    left + c * cell,
                    y,
                    cell - gap,
                    cell - gap,
                    _shade(value / top),
                    tip.format(row=name, column=columns[c], value=_n(value)),
                )
            )
    return _svg(left + len(columns) * cell, upper + len(rows) * cell, "".join(parts), label)


def calendar_heatmap(days: Sequence[tuple[dt.date, float]], label: str, cell: int = 15) -> str:
    """GitHub-style year: a column per week (Monday on top), a cell per day, five levels by quartile of active days."""
    if not days:
        return _empty(600, 120, label)
    active = sorted(v for _, v in days if v > 0)
    cuts = [active[min(len(active) - 1, len(active) * q // 4)] for q in (1, 2, 3)] if active else []
    first_monday = days[0][0] - dt.timedelta(days=days[0][0].weekday())
    left, upper, gap = 32, 18, 3
    parts = [_text(left - 6, upper + (d + 1) * cell - 4, _WEEKDAYS[d], "end", "small") for d in (0, 2, 4)]
    last_month = None
    for day, value in days:
        week = (day - first_monday).days // 7
        x, y = left + week * cell, upper + day.weekday() * cell
        if day.month != last_month and day.day <= 7:
            parts.append(_text(x, upper - 6, f"{day:%b}", cls="small"))
            last_month = day.month
        level = 0 if value <= 0 else 1 + sum(value > c for c in cuts)
        parts.append(_rect(x, y, cell - gap, cell - gap, LEVELS[level], f"{day:%a %Y-%m-%d}: {_n(value)} events"))
    weeks = (days[-1][0] - first_monday).days // 7 + 1
    legend_y = upper + 7 * cell + 14
    parts.append(_text(left, legend_y + 9, "less", cls="small"))
    parts += [_rect(left + 34 + i * cell, legend_y, cell - gap, cell - gap, colour) for i, colour in enumerate(LEVELS)]
    parts.append(_text(left + 40 + len(LEVELS) * cell, legend_y + 9, "more", cls="small"))
    return _svg(left + weeks * cell, legend_y + cell, "".join(parts), label)


def gauge(used: float, quota: float, projected: float, colour: str, label: str, width: int = 220) -> str:
    """A half-circle gauge: the projection to the period's end as a light arc, the usage so far as a solid one."""
    cx, cy, r = width / 2, width / 2 - 8, width / 2 - 22

    def arc(fraction: float) -> str:
        end = math.pi * (1 - min(max(fraction, 0.0), 1.0))
        return (
            f"M {cx - r:.1f} {cy:.1f} A {r:.1f} {r:.1f} 0 0 1 {cx + r * math.cos(end):.1f} {cy - r * math.sin(end):.1f}"
        )

    used_f, projected_f = used / quota, projected / quota
    parts = [f'<path d="{arc(1)}" class="track"/>']
    if projected_f > used_f:
        parts.append(
            f'<path d="{arc(projected_f)}" stroke="{colour}" class="arc projected">'
            f"<title>projected {_n(projected)} of {_n(quota)}</title></path>"
        )
    if used_f > 0:
        parts.append(
            f'<path d="{arc(used_f)}" stroke="{colour}" class="arc"><title>used {_n(used)} of {_n(quota)}'
            "</title></path>"
        )
    parts.append(_text(cx, cy - 8, f"{used_f * 100:.0f}%", "middle", "big"))
    parts.append(_text(cx - r, cy + 18, "0", "middle", "small"))
    parts.append(_text(cx + r, cy + 18, _compact(quota), "middle", "small"))
    return _svg(width, int(cy + 24), "".join(parts), label)


def sparkline(values: Sequence[float], label: str, colour: str = PALETTE[0], width: int = 220, height: int = 44) -> str:
    """A small area line of a daily series with a dot on the last value."""
    if not values:
        return _empty(width, height, label)
    top = max(values) or 1.0
    step = (width - 8) / max(len(values) - 1, 1)
    xy = [(4 + i * step, height - 4 - (height - 10) * v / top) for i, v in enumerate(values)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    area = f"4,{height - 4} {line} {xy[-1][0]:.1f},{height - 4}"
    return _svg(
        width,
        height,
        (
            f'<polygon points="{area}" fill="{colour}" opacity="0.15"/>'
            f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"><title>{_e(label)}</title></polyline>'
            f'<circle cx="{xy[-1][0]:.1f}" cy="{xy[-1][1]:.1f}" r="3" fill="{colour}"/>'
        ),
        label,
    )


def funnel_chart(steps: Sequence[tuple[str, int, str]], label: str, width: int = 560) -> str:
    """Funnel bars, one per (step, users, conversion text), scaled to step 1, the figures after each bar."""
    if not steps or not steps[0][1]:
        return _empty(width, 60, label)
    row_h, label_w, text_w = 40, 140, 150
    top = steps[0][1]
    span = width - label_w - text_w
    parts = []
    for i, (name, users, conversion) in enumerate(steps):
        y, bar = i * row_h, max(span * users / top, 2)
        parts.append(_text(label_w - 8, y + 24, name, "end"))
        parts.append(
            _rect(label_w, y + 6, bar, row_h - 12, PALETTE[i % len(PALETTE)], f"{name}: {users:,} users, {conversion}")
        )
        parts.append(
            _text(label_w + bar + 6, y + 24, f"{users:,} user{'' if users == 1 else 's'} · {conversion}", cls="small")
        )
    return _svg(width, row_h * len(steps), "".join(parts), label)


def meter(fraction: float, width: int = 120) -> str:
    """A thin inline bar for table cells (leaderboards)."""
    return _svg(
        width,
        10,
        _rect(0, 1, width, 8, LEVELS[0]) + _rect(0, 1, width * min(fraction, 1.0), 8, PALETTE[0]),
        f"{fraction * 100:.0f}%",
    )


# ------------------------------------------------------------------- HTML bits


def _card(title: str, body: str, wide: bool = False, note: str = "") -> str:
    """A titled panel of the grid; ``body`` and ``note`` are HTML (the caller escapes), ``wide`` spans the row."""
    note_html = f'<p class="note">{note}</p>' if note else ""
    return f'<section class="card{" wide" if wide else ""}"><h3>{_e(title)}</h3>{body}{note_html}</section>'


def _stats(items: Iterable[tuple[str, str]]) -> str:
    """Headline figures: big value, small caption."""
    return (
        '<div class="stats">' + "".join(f"<div><b>{_e(v)}</b><span>{_e(k)}</span></div>" for k, v in items) + "</div>"
    )


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric_from: int = 1, cls: str = "") -> str:
    """An HTML table; cells are trusted HTML (escape before), columns from ``numeric_from`` right-aligned."""
    head = "".join(f"<th{' class=num' if i >= numeric_from else ''}>{_e(h)}</th>" for i, h in enumerate(header))
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if i >= numeric_from else ''}>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    css = f' class="{cls}"' if cls else ""
    return f"<table{css}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _metric(metric: str, value: Number | None) -> str:
    """A week-over-week value: rates as percentages, money with cents, counts whole."""
    if "rate" in metric:
        return _pct(value)
    return _n(value, 2 if "cost" in metric else 0)


def _trend_arrow(delta_pct: Number | None, trend: str | None) -> str:
    """A coloured arrow with the signed change of a week-over-week card."""
    arrow = {"up": "▲", "down": "▼"}.get(trend or "", "■")
    return f'<span class="trend {escape(trend or "stable")}">{arrow} {_pct(delta_pct, signed=True)}</span>'


# -------------------------------------------------------------------- user page


def _user_page(
    client: Client, user_id: str, at: dt.datetime | None, now: dt.datetime, through: dt.date | None = None
) -> str:
    """The user's page: lifetime card, kinds, voices, 12 months, hour-of-week, limits, calendar, insights."""
    card = client.summary_card(user_id, top_n=ALL_VOICES, at=at)
    profile = client.engagement_profile(user_id, at=at)
    subscription = client.subscription_summary(user_id, at=at)
    zone = profile.time_zone
    today = now.astimezone(ZoneInfo(zone)).date()

    total = card.total
    top_voices = "".join(f"<li><b>{_e(v.duration_text)}</b> of {_e(v.value)}</li>" for v in card.voices[:3])
    lifetime = _stats(
        [
            ("events", _n(total.events)),
            ("listened", human_duration(total.duration_ms)),  # audio kinds only
            ("cost", _n(total.cost, 2)),
            ("days active", _n(profile.days_active)),
            ("longest streak", f"{profile.longest_streak} day{'' if profile.longest_streak == 1 else 's'}"),
            ("sessions", _n(profile.sessions)),
            ("average session", profile.avg_session_text),
        ]
    ) + (f'<ul class="voices">{top_voices}</ul>' if top_voices else "")
    first = f"{profile.first_active_at:%Y-%m-%d}" if profile.first_active_at else "-"
    lifetime_note = f"Active since {_e(first)}; plan <b>{_e(subscription.current_plan)}</b>"
    if subscription.subscriptions:
        since = f"{subscription.subscribed_since:%Y-%m-%d}" if subscription.subscribed_since else "-"
        lifetime_note += (
            f", subscribed since {_e(since)}; highest plan {_e(subscription.highest_plan)}, "
            f"{subscription.months_subscribed} month(s) paid, revenue {_n(subscription.revenue, 2)}."
        )
    else:
        lifetime_note += ", never subscribed."

    units = kind_units(client)
    kinds = (
        _table(
            ["kind", "events", "quantity", "duration", "cost"],
            (
                [
                    _e(units.get(k.value or "", (k.value, ""))[0] if k.value else "-"),
                    _n(k.events),
                    _e(f"{k.quantity:,} {units.get(k.value or '', ('', ''))[1]}".strip()),
                    _e(human_duration(k.duration_ms)),
                    _n(k.cost, 2),
                ]
                for k in card.kinds
            ),
            cls="kinds",
        )
        if card.kinds
        else '<p class="muted">No usage yet.</p>'
    )

    voices = hbar_chart(
        [(v.value or "-", (v.duration_ms or 0) / 3_600_000, v.duration_text) for v in card.voices[:8]],
        "Listening time per voice",
    )

    # Listening is the duration of the events that have a voice, as in the lifetime card.
    listening: dict[dt.date, float] = defaultdict(float)
    for b in client.usage_history(user_id, "12m", "month", dimension="voice", at=at):
        listening[b.bucket_start] += b.duration_ms / 3_600_000 if b.value is not None else 0
    history = client.usage_history(user_id, "12m", "month", dimension="kind", at=at)
    months = sorted({b.bucket_start for b in history} | set(listening))
    month_labels = [f"{m:%b}" for m in months]
    by_kind: dict[str, dict[dt.date, int]] = defaultdict(dict)
    for b in history:
        if b.value is not None:
            by_kind[b.value][b.bucket_start] = b.events
    line = line_chart(
        month_labels, {"listening hours": [listening[m] for m in months]}, "Listening hours per month", "h"
    )
    ranked = sorted(by_kind, key=lambda k: -sum(by_kind[k].values()))
    stacked = {k: [float(by_kind[k].get(m, 0)) for m in months] for k in ranked[:MAX_STACKED_KINDS]}
    if len(ranked) > MAX_STACKED_KINDS:
        stacked["other"] = [float(sum(by_kind[k].get(m, 0) for k in ranked[MAX_STACKED_KINDS:])) for m in months]
    bars = stacked_bars(month_labels, stacked, "Events per month by kind")

    cells = client.hour_of_week_heatmap(user_id)
    grid = [[0.0] * 24 for _ in range(7)]
    for c in cells:
        grid[c.weekday - 1][c.hour] = float(c.events)
    hours = grid_heatmap(
        _WEEKDAYS,
        [f"{h:02d}" for h in range(24)],
        grid,
        "Activity per hour of the week",
        "{row} {column}:00: {value} events",
        every=3,
    )

    calendar = calendar_heatmap(_last_year(client, user_id, today, at), "Active days over the last year", cell=20)

    gauges = _limits(client, user_id, at)
    insights = "".join(f"<li>{_e(i.message)}</li>" for i in client.usage_insights(user_id, at=at))

    as_of = f"through {through:%Y-%m-%d}" if through else f"as of {now:%Y-%m-%d %H:%M %Z}"
    return f"""
<section class="page" id="user">
  <header><h1>{_e(user_id)}</h1><p>Usage report · days in {_e(zone)} · {_e(as_of)}</p></header>
  <div class="grid">
    {_card("Lifetime", lifetime, note=lifetime_note)}
    {_card("Usage by kind, lifetime", kinds)}
    {_card("Listening per voice", voices)}
    {_card("Listening hours per month", line)}
    {_card("Events per month by kind", bars)}
    {_card("When you listen (hour of the week, local time)", hours)}
    {_card("Limits this billing period", gauges)}
    {_card("Active days over the last year", calendar, wide=True)}
    {
        _card(
            "Insights",
            f'<ul class="insights">{insights}</ul>' if insights else '<p class="muted">Nothing notable.</p>',
            wide=True,
        )
    }
  </div>
</section>"""


def _last_year(client: Client, user_id: str, today: dt.date, at: dt.datetime | None) -> list[tuple[dt.date, float]]:
    """Events per local day for the 53 weeks ending today (two calendar years' heatmaps, cut to the window)."""
    start = today - dt.timedelta(days=7 * 52 + today.weekday())
    days = {
        d.day: float(d.events)
        for year in sorted({start.year, today.year})
        for d in client.calendar_heatmap(user_id, year, at=at)
    }
    return [
        (start + dt.timedelta(days=i), days.get(start + dt.timedelta(days=i), 0.0))
        for i in range((today - start).days + 1)
    ]


def _limits(client: Client, user_id: str, at: dt.datetime | None) -> str:
    """A gauge per limited kind (used, projected, the day the limit is reached) and the recommended plan."""
    forecast = client.quota_forecast(user_id, at=at)
    limited = [f for f in forecast if f.quota]
    parts = []
    for f in limited:
        quota = float(f.quota or 1)
        colour = _STATUS_COLOURS.get(f.status, PALETTE[0])
        reached = f"limit reached on <b>{_e(f.reaches_limit_on)}</b>" if f.reaches_limit_on else "within the limit"
        parts.append(
            f'<figure class="gauge">{gauge(float(f.used), quota, float(f.projected), colour, f"{f.kind} quota")}'
            f"<figcaption><b>{_e(f.kind)}</b> {_n(f.used)} of {_n(f.quota)}<br>"
            f"projected {_n(f.projected)} ({_pct(100 * f.projected / quota)})<br>{reached}</figcaption></figure>"
        )
    if not parts:
        return '<p class="muted">No limits apply to this plan.</p>'
    recommended = client.recommended_plan(user_id, at=at)
    first = limited[0]
    last_day = first.period_end - dt.timedelta(days=1)
    note = f"Plan {_e(first.plan)}, period {_e(first.period_start)} – {_e(last_day)} (last day included)."
    if recommended and not recommended.is_current:
        note += f" Recommended plan: <b>{_e(recommended.plan)}</b> ({_n(recommended.monthly_price, 2)} a month)."
    return f'<div class="gauges">{"".join(parts)}</div><p class="note">{note}</p>'


# ------------------------------------------------------------------- admin page


def _admin_page(client: Client, now: dt.datetime) -> str:
    """The platform page: totals, daily sparklines, week over week, leaderboards, funnel, cohorts, freshness."""
    admin = client.admin
    today = now.date()
    try:
        overview = admin.overview()
    except psycopg.errors.InsufficientPrivilege:
        return (
            '<section class="page" id="admin"><header><h1>Platform</h1></header>'
            '<p class="muted">Platform analytics need the tally_analyst role.</p></section>'
        )
    freshness = [f.refreshed_at for f in admin.freshness()]
    as_of = None if not freshness or None in freshness else min(f for f in freshness if f is not None)
    fresh_text = f"{as_of:%Y-%m-%d %H:%M %Z}" if as_of else "never refreshed (run `pgtally refresh`)"

    headline = (
        _stats(
            [
                ("users", _n(overview.users)),
                ("events", _n(overview.events)),
                ("success rate", _pct(overview.success_rate)),
                ("audio and processing", human_duration(overview.duration_ms)),
                ("cost", _n(overview.cost, 2)),
                ("paying users", _n(overview.paying_users)),
            ]
        )
        if overview
        else '<p class="muted">No data yet.</p>'
    )

    first_day = today - dt.timedelta(days=29)
    series: dict[str, list[float]] = defaultdict(list)
    for p in admin.trend("kind", None, first_day, today):
        series[p.value].append(float(p.events))
    active = admin.active_users(first_day, today)
    rows = [
        ("DAU", [float(a.dau) for a in active]),
        *sorted(((f"{k} events", v) for k, v in series.items()), key=lambda kv: -sum(kv[1])),
    ]
    sparks = "".join(
        f'<div class="spark"><span>{_e(name)}</span>{sparkline(values, f"{name}, last 30 days", PALETTE[i % 8])}'
        f"<b>{_n(values[-1] if values else 0)}</b></div>"
        for i, (name, values) in enumerate(rows)
    )
    sparks_note = f"Per day, {first_day} to {today}; the number is the last day's."

    boards = "".join(_leaderboard(client, dimension) for dimension in ("voice", "model"))

    wow_cards = [c for c in admin.week_over_week(today - dt.timedelta(days=1)) if c.value == "*"]
    wow = (
        '<div class="wow">'
        + "".join(
            f"<div><span>{_e(c.metric.replace('_', ' '))}</span><b>{_metric(c.metric, c.this_week)}</b>"
            f"{_trend_arrow(c.delta_pct, c.trend)}<small>last week {_metric(c.metric, c.last_week)}</small></div>"
            for c in wow_cards
        )
        + "</div>"
    )
    wow_title = (
        f"Week over week ({wow_cards[0].week_start} to {wow_cards[0].week_end})" if wow_cards else "Week over week"
    )

    steps = admin.funnel(DEFAULT_FUNNEL, None, now)
    funnel = funnel_chart(
        [(s.kind, s.users, _pct(s.conversion_pct) if s.step > 1 else "start") for s in steps], "Paywall funnel"
    )
    funnel_note = " · ".join(
        f"{s.kind}: {_pct(s.step_conversion_pct)} of the previous step, {s.drop_off:,} dropped" for s in steps[1:]
    )

    return f"""
<section class="page" id="admin">
  <header><h1>Platform</h1><p>Admin analytics · data as of <b>{_e(fresh_text)}</b></p></header>
  <div class="grid">
    {_card("Platform totals", headline, wide=True)}
    {_card("Daily trends, last 30 days", f'<div class="sparks">{sparks}</div>', note=_e(sparks_note))}
    {_card(wow_title, wow)}
    {_card("Top voices and models, last 30 days", boards)}
    {_card("Paywall funnel, all time: users reaching each step in order", funnel, note=_e(funnel_note))}
    {_card("Cohort retention: share of each month's new users active n months later", _cohorts(client), wide=True)}
  </div>
</section>"""


def _leaderboard(client: Client, dimension: str) -> str:
    """The top five values of a dimension by listened duration over the last 30 days, with meters."""
    entries = client.admin.leaderboard(dimension, "30d", metric="duration_ms", limit=5)
    if not entries:
        return f'<p class="muted">No {_e(dimension)} used in the last 30 days.</p>'
    top = max(e.duration_ms for e in entries) or 1
    return _table(
        ["#", dimension, "listened", "", "events", "users"],
        (
            [
                str(e.rank),
                _e(e.value),
                _e(human_duration(e.duration_ms)),
                meter(e.duration_ms / top),
                _n(e.events),
                _n(e.users),
            ]
            for e in entries
        ),
        numeric_from=2,
    )


def _cohorts(client: Client) -> str:
    """The retention table: a row per first-active month, a shaded cell per later month."""
    cells = client.admin.cohorts()
    if not cells:
        return '<p class="muted">No cohorts yet.</p>'
    width = max(c.month_offset for c in cells) + 1
    table: dict[dt.date, dict[int, Decimal | None]] = defaultdict(dict)
    sizes: dict[dt.date, int] = {}
    for c in cells:
        table[c.cohort_month][c.month_offset] = c.retention_pct
        sizes[c.cohort_month] = c.cohort_users

    def cell(pct: Decimal | None) -> str:
        if pct is None:
            return ""
        shade = _shade(float(pct) / 100)
        ink = "#fff" if pct > 45 else "#1b1f24"
        return f'<span class="heat" style="background:{shade};color:{ink}">{pct:.0f}%</span>'

    rows = (
        [f"{month:%Y-%m}", _n(sizes[month]), *(cell(cells_.get(i)) for i in range(1, width))]
        for month, cells_ in sorted(table.items())
    )
    return _table(["cohort", "users", *(f"+{i}" for i in range(1, width))], rows)


# ------------------------------------------------------------------------ page


_CSS = """
:root { --ink: #1b1f24; --muted: #6a737d; --line: #e1e4e8; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
nav { position: sticky; top: 0; background: #24292f; color: #fff; padding: 8px 24px; z-index: 1; }
nav a { color: #fff; margin-right: 18px; text-decoration: none; font-weight: 600; }
.page { max-width: 1240px; margin: 0 auto; padding: 20px 24px 32px; }
header h1 { margin: 0; font-size: 26px; }
header p { margin: 2px 0 16px; color: var(--muted); }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 16px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; min-width: 0; }
.card.wide { grid-column: 1 / -1; }
.card h3 { margin: 0 0 10px; font-size: 15px; }
.note, .muted { color: var(--muted); font-size: 12.5px; margin: 8px 0 0; }
svg.chart { max-width: 100%; height: auto; display: block; overflow: visible; }
svg text { font-size: 12px; fill: var(--ink); }
svg text.small { font-size: 10.5px; fill: var(--muted); }
svg text.muted { fill: var(--muted); }
svg text.big { font-size: 26px; font-weight: 700; }
svg text.onbar { font-size: 12px; font-weight: 600; fill: #fff; paint-order: stroke; stroke: rgba(0,0,0,.35); stroke-width: 2px; }
svg line.grid { stroke: var(--line); }
svg path.track { fill: none; stroke: var(--line); stroke-width: 16; }
svg path.arc { fill: none; stroke-width: 16; }
svg path.arc.projected { opacity: .35; }
.stats { display: grid; grid-template-columns: repeat(auto-fit, minmax(130px, 1fr)); gap: 10px; }
.stats div { background: var(--bg); border-radius: 6px; padding: 8px 10px; }
.stats b { display: block; font-size: 18px; white-space: nowrap; }
.stats span { color: var(--muted); font-size: 12px; }
ul.voices { margin: 12px 0 0; padding-left: 18px; }
ul.insights { margin: 0; padding-left: 18px; }
.gauges { display: flex; flex-wrap: wrap; gap: 8px 20px; }
figure.gauge { margin: 0; width: 220px; text-align: center; font-size: 12.5px; }
.sparks { display: grid; gap: 4px; }
.spark { display: grid; grid-template-columns: 180px 1fr 60px; align-items: center; gap: 8px; }
.spark span { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; font-size: 13px; }
.spark b { text-align: right; }
.wow { display: grid; grid-template-columns: repeat(auto-fill, minmax(130px, 1fr)); gap: 10px; }
.wow div { background: var(--bg); border-radius: 6px; padding: 8px 10px; }
.wow span, .wow small { display: block; color: var(--muted); font-size: 12px; }
.wow b { display: block; font-size: 18px; }
.trend { font-size: 12px; font-weight: 600; }
.trend.up { color: #1a7f37; } .trend.down { color: #cf222e; } .trend.stable { color: var(--muted); }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin-bottom: 12px; }
th { text-align: left; color: var(--muted); font-weight: 600; border-bottom: 1px solid var(--line); padding: 4px 6px; }
td { border-bottom: 1px solid var(--line); padding: 4px 6px; white-space: nowrap; }
.num { text-align: right; }
table.kinds td { white-space: normal; }
.heat { display: inline-block; min-width: 42px; padding: 1px 4px; border-radius: 3px; text-align: center; }
@media print {
  @page { size: A4; margin: 10mm; }
  body { background: #fff; font-size: 11px; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  nav { display: none; }
  .page { max-width: none; padding: 0; }
  .page + .page { break-before: page; }
  .grid { grid-template-columns: 1fr 1fr; gap: 8px; }
  .card { break-inside: avoid; border-color: #ccc; padding: 8px 10px; }
  .stats { grid-template-columns: repeat(auto-fit, minmax(100px, 1fr)); gap: 6px; }
  .stats b { font-size: 15px; }
  table { font-size: 10px; }
  .heat { min-width: 30px; }
  .gauges { flex-wrap: nowrap; gap: 8px; }
  figure.gauge { width: auto; flex: 1 1 0; min-width: 0; }
}
"""


def _document(title: str, nav: Sequence[tuple[str, str]], body: str) -> str:
    """The HTML document around the pages: head, inline stylesheet, a navigation bar (hidden in print)."""
    links = "".join(f'<a href="#{_e(anchor)}">{_e(name)}</a>' for anchor, name in nav)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<nav>{links}</nav>
{body}
</body>
</html>
"""


def render_report(client: Client, user_id: str, *, at: dt.datetime | None = None) -> str:
    """One self-contained HTML document: ``user_id``'s usage page and the platform's admin page (the demo's report).

    ``at`` asks the user reads "as of" a moment (default now); the admin page
    shows the analytics views as last refreshed (its "data as of" line says
    when), their 30-day windows ending on ``at``'s date. A role without
    ``tally_analyst`` gets the user page and a note instead of the admin page.
    Example::

        Path("report.html").write_text(render_report(client, "user-42"), encoding="utf-8")
    """
    now = at or dt.datetime.now(dt.timezone.utc)
    return _document(
        f"pgtally report: {user_id}",
        [("user", f"User: {user_id}"), ("admin", "Platform")],
        _user_page(client, user_id, at, now) + _admin_page(client, now),
    )


class UnknownUser(LookupError):
    """Nothing is recorded for the user (no usage, no subscription), or the session may not see it."""

    def __init__(self, user_id: str) -> None:
        super().__init__(f"no usage recorded for user {user_id!r} (or it is not visible to this role)")
        self.user_id = user_id


def kind_units(client: Client) -> dict[str, tuple[str, str]]:
    """Display name and unit of every declared kind (tally.kinds), empty where the registry is missing or hidden."""
    with client.connection() as conn:
        present = conn.execute("select to_regclass('tally.kinds') is not null").fetchone()
        if not present or not present[0]:
            return {}
        readable = conn.execute("select has_table_privilege('tally.kinds', 'select')").fetchone()
        if not readable or not readable[0]:
            return {}
        rows = conn.execute("select kind, display_name, unit from tally.kinds").fetchall()
    return {str(kind): (str(name), str(unit)) for kind, name, unit in rows}


def ensure_known(client: Client, user_id: str) -> None:
    """Raises :class:`UnknownUser` unless the user has recorded usage (merged or pending) or a subscription."""
    if not client.lifetime_totals(user_id, "kind") and not client.subscription_summary(user_id).subscriptions:
        raise UnknownUser(user_id)


def end_moment(client: Client, user_id: str, end: dt.date | None) -> dt.datetime | None:
    """The last moment of local day ``end`` in the user's time zone (None: now)."""
    if end is None:
        return None
    zone = ZoneInfo(client.engagement_profile(user_id).time_zone)
    return dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone) - dt.timedelta(microseconds=1)


def render_html(conn: psycopg.Connection[Any], user_id: str, *, end: dt.date | None = None) -> str:
    """The usage report of one user as a self-contained HTML document (the page a person receives).

    ``end`` is the report's last local day (default: now). Works on an owner
    connection and on a tally_reader connection scoped to the user (row-level
    security: another user is unknown). Raises :class:`UnknownUser` when
    nothing is recorded for the user. Example::

        with psycopg.connect(dsn, autocommit=True) as conn:
            Path("report.html").write_text(render_html(conn, "user-42"), encoding="utf-8")
    """
    client = Client(conn)
    ensure_known(client, user_id)
    at = end_moment(client, user_id, end)
    now = at or dt.datetime.now(dt.timezone.utc)
    return _document(
        f"Usage report: {user_id}", [("user", f"Usage of {user_id}")], _user_page(client, user_id, at, now, end)
    )
