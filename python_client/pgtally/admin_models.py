"""Typed results of the admin analytics API (one frozen dataclass per SQL function's row).

Every row carries ``refreshed_at``: when the data of the materialized view it
comes from were taken (``None`` before the first refresh). Funnels and answers
for a range of days are computed at call time, so their ``refreshed_at`` is the
time of the query. Answers over a timeframe say which one they computed in
``window_start`` / ``window_end`` (UTC instants; ``window_start`` ``None`` =
from the beginning).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Overview:
    """Platform headline figures over a timeframe (``tally.admin_overview``)."""

    users: int
    events: int
    succeeded: int
    failures: int
    success_rate: Decimal | None
    duration_ms: int
    cost: Decimal
    billable_cost: Decimal
    paying_users: int
    avg_events_per_user: Decimal | None
    avg_cost_per_user: Decimal | None
    avg_cost_per_event: Decimal | None
    first_at: dt.datetime | None
    last_at: dt.datetime | None
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    refreshed_at: dt.datetime | None


@dataclass(frozen=True)
class PlatformTotal:
    """Platform totals of one dimension value over a timeframe (``tally.admin_totals``).

    ``quantity`` counts in ``unit`` (the kinds' unit); both are ``None`` when the value's quantities count in
    different units (a plan or a provider used by text to speech and OCR): they are never added.
    """

    value: str
    events: int
    failures: int
    quantity: int | None
    unit: str | None
    duration_ms: int
    cost: Decimal
    users: int
    avg_quantity_per_event: Decimal | None
    avg_duration_ms: Decimal | None
    avg_cost_per_event: Decimal | None
    avg_events_per_user: Decimal | None
    avg_quantity_per_user: Decimal | None
    avg_cost_per_user: Decimal | None
    cost_share_pct: Decimal | None
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    refreshed_at: dt.datetime | None


@dataclass(frozen=True)
class LeaderboardEntry:
    """One ranked value of a leaderboard (``tally.admin_leaderboard``); quantity in ``unit`` (None when mixed)."""

    rank: int
    value: str
    events: int
    quantity: int | None
    unit: str | None
    duration_ms: int
    cost: Decimal
    users: int
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    refreshed_at: dt.datetime | None


@dataclass(frozen=True)
class TrendPoint:
    """One UTC day of one value's series (``tally.admin_trend``); quantity in ``unit`` (None when mixed)."""

    day: dt.date
    value: str
    events: int
    failures: int
    quantity: int | None
    unit: str | None
    duration_ms: int
    cost: Decimal
    users: int
    refreshed_at: dt.datetime | None


@dataclass(frozen=True)
class ActiveUsers:
    """Activity of one day: DAU, WAU, MAU, new and paying users (``tally.admin_active_users``)."""

    day: dt.date
    dau: int
    wau: int
    mau: int
    new_users: int
    paying_users: int
    paying_users_7d: int
    paying_users_30d: int
    succeeded: int
    failed: int
    success_rate: Decimal | None
    billable_cost: Decimal
    refreshed_at: dt.datetime | None


@dataclass(frozen=True)
class WeekOverWeekCard:
    """One week-over-week card (``tally.admin_week_over_week``); ``value`` is ``*`` for platform metrics.

    ``this_week`` covers the UTC days ``week_start``..``week_end`` (1, 2 or 4 weeks), ``last_week`` as many days
    before (``previous_start``..``previous_end``).
    """

    metric: str
    value: str
    this_week: Decimal | None
    last_week: Decimal | None
    delta: Decimal | None
    delta_pct: Decimal | None
    trend: str | None
    week_start: dt.date
    week_end: dt.date
    previous_start: dt.date
    previous_end: dt.date
    refreshed_at: dt.datetime | None


@dataclass(frozen=True)
class FunnelStep:
    """One step of a funnel (``tally.admin_funnel``)."""

    step: int
    kind: str
    users: int
    conversion_pct: Decimal | None
    step_conversion_pct: Decimal | None
    drop_off: int
    drop_off_pct: Decimal | None
    refreshed_at: dt.datetime | None


@dataclass(frozen=True)
class Reliability:
    """Success rate and durations of one kind and format (``tally.admin_reliability``); format ``*`` = all."""

    kind: str
    format: str
    succeeded: int
    failed: int
    success_rate: Decimal | None
    timed_events: int
    avg_duration_ms: int | None
    p50_duration_ms: int | None
    p95_duration_ms: int | None
    p99_duration_ms: int | None
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    refreshed_at: dt.datetime | None


@dataclass(frozen=True)
class ErrorCodeCount:
    """Failures of one error code (``tally.admin_error_codes``)."""

    kind: str
    format: str
    error_code: str
    failures: int
    users: int
    last_at: dt.datetime | None
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    refreshed_at: dt.datetime | None


@dataclass(frozen=True)
class CohortCell:
    """Users of one first-active month active in a later month (``tally.admin_cohorts``)."""

    cohort_month: dt.date
    active_month: dt.date
    month_offset: int
    users: int
    cohort_users: int
    retention_pct: Decimal | None
    refreshed_at: dt.datetime | None


@dataclass(frozen=True)
class ViewFreshness:
    """Last refresh of one materialized view (``tally.analytics_freshness``)."""

    view_name: str
    refreshed_at: dt.datetime | None
    finished_at: dt.datetime | None
    duration_ms: Decimal | None
    row_count: int | None
    age: dt.timedelta | None


@dataclass(frozen=True)
class RefreshResult:
    """One row of ``tally.refresh_analytics``: a refreshed view, or ``status='skipped'`` (another refresh runs)."""

    view_name: str | None
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime
    duration_ms: Decimal
    row_count: int | None

    @property
    def skipped(self) -> bool:
        """True when another refresh was running and this call did nothing."""
        return self.status == "skipped"


@dataclass(frozen=True)
class Dashboard:
    """Everything `pgtally admin` shows, read in one call of ``AdminClient.dashboard``."""

    overview: Overview | None
    totals_by_kind: list[PlatformTotal]
    leaderboards: dict[str, list[LeaderboardEntry]]
    trend: list[TrendPoint]
    active_users: list[ActiveUsers]
    week_over_week: list[WeekOverWeekCard]
    funnel: list[FunnelStep]
    reliability: list[Reliability]
    error_codes: list[ErrorCodeCount]
    cohorts: list[CohortCell]
    freshness: list[ViewFreshness]
    #: The named timeframe (24h, 7d, 30d, all) of the windowed panels, or None for a range of UTC days.
    time_window: str | None
    #: Breakdown rows of fewer distinct users than this are left out of every panel (1 = none is).
    min_group_size: int = 5
    #: The plan filter of every panel (only events recorded under it), None for every plan.
    plan: str | None = None
    #: The timeframe the windowed panels computed (UTC instants; start None = from the beginning).
    window_start: dt.datetime | None = None
    window_end: dt.datetime | None = None
    #: Weeks of each side of the week-over-week panel (1, 2 or 4).
    weeks: int = 1

    @property
    def timeframe(self) -> str:
        """What the windowed panels computed, in words, e.g. ``last 24h: 2026-11-29 18:00 .. 2026-11-30 18:00 UTC``."""

        def at(t: dt.datetime | None) -> str:
            return "the beginning" if t is None else t.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")

        span = f"{at(self.window_start)} .. {at(self.window_end)} UTC" if self.window_end else "never refreshed"
        what = f"last {self.time_window}" if self.time_window not in (None, "all") else self.time_window or "UTC days"
        if self.time_window is None and self.window_start and self.window_end:
            utc = dt.timezone.utc
            first, last = self.window_start.astimezone(utc).date(), (self.window_end.astimezone(utc) - _DAY).date()
            what = f"UTC days {first} to {last}"
        return f"{what}: {span}; plan: {self.plan if self.plan is not None else 'all plans'}"
