"""Typed results of the user-facing analytics reads, as frozen dataclasses.

Each class mirrors the columns of one SQL function's result (tests/test_models_match_sql.py
holds them together); :func:`pgtally.models.build` builds it from a ``dict_row``.
See docs/user-analytics.md for the semantics.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .models import build as _build
from .models import human_duration

# ---------------------------------------------------------------- plans


@dataclass(frozen=True)
class SubscriptionSummary:
    """A user's subscriptions, derived (``tally.subscription_summary``)."""

    current_plan: str | None
    subscribed_since: dt.datetime | None
    subscriptions: int
    months_subscribed: int
    highest_tier: int | None
    highest_plan: str | None
    revenue: Decimal


@dataclass(frozen=True)
class RecommendedPlan:
    """The cheapest plan covering the projected usage (``tally.recommended_plan``)."""

    plan: str
    tier: int
    monthly_price: Decimal
    current_plan: str | None
    is_current: bool


# ----------------------------------------------------------- engagement


@dataclass(frozen=True)
class EngagementProfile:
    """Engagement of a user (``tally.engagement_profile``); streak days are local days."""

    time_zone: str
    first_active_at: dt.datetime | None
    last_active_at: dt.datetime | None
    days_active: int
    current_streak: int
    current_streak_from: dt.date | None
    longest_streak: int
    longest_streak_from: dt.date | None
    longest_streak_to: dt.date | None
    sessions: int
    total_session_ms: int | None
    avg_session_ms: int | None
    longest_session_ms: int | None

    @property
    def avg_session_text(self) -> str:
        """Average session length for people, e.g. ``3 min 05 s``."""
        return human_duration(self.avg_session_ms)


# ------------------------------------------------------------ summary


@dataclass(frozen=True)
class SummaryLine:
    """Lifetime totals of one kind, voice or model (or of everything) on the summary card.

    ``quantity`` is in ``unit``; it is None where kinds of different units would add up
    (the total of a user of several kinds). ``duration_ms`` is None when unknown (no event
    behind it had a duration); on the total line it is the audio duration only.
    """

    value: str | None
    events: int
    quantity: int | None
    duration_ms: int | None
    cost: Decimal
    first_at: dt.datetime | None
    last_at: dt.datetime | None
    unit: str | None = None
    display_name: str | None = None

    @property
    def duration_text(self) -> str:
        """Duration for people: ``14 h 12 min``."""
        return human_duration(self.duration_ms)


@dataclass(frozen=True)
class PeriodUsage:
    """Usage of one kind in the current billing period against the plan's quota (None = unlimited)."""

    kind: str
    events: int
    quantity: int
    duration_ms: int
    cost: Decimal
    quota: int | None
    utilization_pct: Decimal | None
    unit: str | None = None
    display_name: str | None = None


@dataclass(frozen=True)
class SummaryCard:
    """The summary card (``tally.summary_card``): totals, per kind, the top values of each kind's
    featured dimension (voices, models), period vs. limits (``period_end`` exclusive)."""

    total: SummaryLine
    kinds: tuple[SummaryLine, ...]
    featured: tuple[tuple[str, tuple[SummaryLine, ...]], ...]
    period: tuple[PeriodUsage, ...]
    plan: str | None
    period_start: dt.date
    period_end: dt.date

    def top(self, dimension: str) -> tuple[SummaryLine, ...]:
        """The top values of a featured dimension (empty when no kind used features it)."""
        return dict(self.featured).get(dimension, ())

    @property
    def voices(self) -> tuple[SummaryLine, ...]:
        """Top voices by listened duration (the dimension text to speech features)."""
        return self.top("voice")

    @property
    def models(self) -> tuple[SummaryLine, ...]:
        """Top models by duration (the dimension OCR, transcription and LLM calls feature)."""
        return self.top("model")

    @property
    def period_last_day(self) -> dt.date:
        """The last day included in the billing period (``period_end`` is the first day after it)."""
        return self.period_end - dt.timedelta(days=1)

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> SummaryCard:
        rows = list(rows)
        lines: dict[str, list[SummaryLine]] = {"total": [], "kind": []}
        period: list[PeriodUsage] = []
        for r in rows:
            if r["section"] == "period":
                period.append(_build(PeriodUsage, {**r, "kind": r["value"]}))
            else:
                lines.setdefault(r["section"], []).append(_build(SummaryLine, r))
        first = rows[0]
        return cls(
            lines["total"][0],
            tuple(lines["kind"]),
            tuple((name, tuple(v)) for name, v in lines.items() if name not in ("total", "kind")),
            tuple(period),
            first["plan"],
            first["period_start"],
            first["period_end"],
        )


# ---------------------------------------------------- history, comparisons


@dataclass(frozen=True)
class HistoryBucket:
    """One bucket of ``tally.usage_history`` (bucket_end exclusive; value None when not stacked)."""

    bucket_start: dt.date
    bucket_end: dt.date
    value: str | None
    events: int
    quantity: int | None
    duration_ms: int
    cost: Decimal
    failures: int
    unit: str | None = None


@dataclass(frozen=True)
class Comparison:
    """Period-over-period comparison (``tally.usage_comparison``); ends exclusive, delta_pct None when previous is 0."""

    comparison: str
    current_start: dt.date
    current_end: dt.date
    previous_start: dt.date
    previous_end: dt.date
    current_value: Decimal
    previous_value: Decimal
    delta: Decimal
    delta_pct: Decimal | None
    trend: str


@dataclass(frozen=True)
class Peak:
    """The peak bucket of a range (``tally.usage_peak``)."""

    bucket_start: dt.date
    bucket_end: dt.date
    value: Decimal


# ------------------------------------------------------------ patterns


@dataclass(frozen=True)
class WeekdayUsage:
    """Usage on one local weekday (1 = Monday) (``tally.weekday_distribution``)."""

    weekday: int
    day_name: str
    active_days: int
    events: int
    quantity: int | None  # None when the user's kinds count in several units
    duration_ms: int
    cost: Decimal
    share_pct: Decimal


@dataclass(frozen=True)
class HourOfWeek:
    """Lifetime activity in one local hour of the week (``tally.hour_of_week_heatmap``)."""

    how: int
    weekday: int
    hour: int
    events: int
    failures: int
    quantity: int | None  # None when the user's kinds count in several units
    duration_ms: int
    cost: Decimal


@dataclass(frozen=True)
class CalendarDay:
    """One local day of the calendar heatmap, level 0 (none) to 4 (``tally.calendar_heatmap``)."""

    day: dt.date
    weekday: int
    events: int
    quantity: int | None  # None when the user's kinds count in several units
    duration_ms: int
    cost: Decimal
    level: int


@dataclass(frozen=True)
class MonthlySummary:
    """One local calendar month (``tally.monthly_summaries``); month_end exclusive."""

    month_start: dt.date
    month_end: dt.date
    events: int
    quantity: int | None  # None when the user's kinds count in several units
    duration_ms: int
    cost: Decimal
    failures: int
    active_days: int
    top_kind: str | None


# ------------------------------------------------------ limits, forecast


@dataclass(frozen=True)
class QuotaForecast:
    """Current billing period of one kind with forecast (``tally.quota_forecast``)."""

    kind: str
    plan: str | None
    period_start: dt.date
    period_end: dt.date
    used: int
    quota: int | None
    remaining: int | None
    utilization_pct: Decimal | None
    run_rate: Decimal
    projected: int
    reaches_limit_on: dt.date | None
    status: str


# ------------------------------------------------------------ insights


@dataclass(frozen=True)
class DayAnomaly:
    """One local day with its robust z-score against the 28 days before (``tally.usage_anomalies``)."""

    day: dt.date
    value: Decimal
    baseline_median: Decimal
    baseline_mad: Decimal
    active_days: int
    robust_z: Decimal | None
    is_anomaly: bool


@dataclass(frozen=True)
class PeerPercentile:
    """This period's usage of a kind among all users of it (``tally.peer_percentile``), from anonymized cut points.

    ``percentile`` is a lower bound of the share (%) of peers who used less (0 below the lowest published cut
    point); ``peers`` and ``percentile`` are ``None`` when the month publishes no distribution (too few users, or
    not refreshed yet). ``refreshed_at`` is when the distribution was computed; ``quantity`` is exact.
    """

    period_start: dt.date
    quantity: int
    peers: int | None
    percentile: Decimal | None
    refreshed_at: dt.datetime | None


@dataclass(frozen=True)
class Insight:
    """One plain-language insight with its number (``tally.usage_insights``)."""

    code: str
    subject: str | None
    message: str
    value: Decimal | None
