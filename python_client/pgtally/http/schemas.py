"""Request and response bodies of the HTTP API that the library's dataclasses do not already describe.

Responses reuse the library's frozen dataclasses (``pgtally.user_models``, ``pgtally.admin_models``) as they
are, so the OpenAPI document and the Python client describe the same fields. Exact numbers (``cost``,
percentages, deltas: ``Decimal`` in Python) are JSON strings, so no digit is lost; counts and amounts
annotated ``int`` are JSON integers.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..admin_models import TrendPoint, ViewFreshness
from ..user_models import (
    CalendarDay,
    Comparison,
    DayAnomaly,
    EngagementProfile,
    HourOfWeek,
    Insight,
    MonthlySummary,
    Peak,
    QuotaForecast,
    RecommendedPlan,
    SubscriptionSummary,
    SummaryCard,
    WeekdayUsage,
)

# ``ViewFreshness.age`` (a timedelta) goes out as seconds, a JSON number: pydantic's default, an ISO 8601
# duration with fractional seconds ("PT13.95S"), is not a valid RFC 3339 duration and is awkward in a browser.
ViewFreshness.__pydantic_config__ = ConfigDict(ser_json_timedelta="float")  # type: ignore[attr-defined]

METRICS = ("events", "quantity", "duration_ms", "cost", "failures")
#: The range of the log's bigint columns (the database's own bounds, narrower, reject single events).
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1


class UsageSummary(BaseModel):
    """The user's summary card and lifetime profile (``GET /api/usage/summary``)."""

    user_id: str
    card: SummaryCard = Field(description="Lifetime totals, per kind, top voices and models, the period vs limits.")
    engagement: EngagementProfile = Field(description="First/last active, days active, streaks, sessions.")
    subscription: SubscriptionSummary = Field(description="Current plan, months subscribed, highest tier, revenue.")


class HistoryPoint(BaseModel):
    """One bucket; only the metrics asked for are present. ``value`` is the stacked dimension value (or null)."""

    bucket_start: dt.date
    bucket_end: dt.date = Field(description="Exclusive.")
    value: str | None = None
    unit: str | None = Field(
        default=None, description="The unit of quantity (null when kinds of several units add up)."
    )
    events: int | None = None
    quantity: int | None = None
    duration_ms: int | None = None
    cost: Decimal | None = None
    failures: int | None = None


class UsageHistory(BaseModel):
    """Usage per bucket, every bucket present with zeros (``GET /api/usage/history``)."""

    user_id: str
    period: str
    group_by: Literal["day", "week", "month"]
    dimension: str | None
    metrics: list[str]
    buckets: list[HistoryPoint]


class Trends(BaseModel):
    comparisons: list[Comparison] = Field(description="Week, month and year over year, to date.")
    peak: Peak | None = Field(description="The month of the last 12 with the most usage.")
    monthly: list[MonthlySummary] = Field(description="The last months, oldest first.")


class Patterns(BaseModel):
    weekdays: list[WeekdayUsage]
    hours_of_week: list[HourOfWeek] = Field(description="168 cells, Monday 00:00 first, local time.")
    calendar: list[CalendarDay] = Field(description="Every local day of the year with a level 0-4.")
    engagement: EngagementProfile


class Predictions(BaseModel):
    forecast: list[QuotaForecast] = Field(description="Per kind this billing period: used, quota, projection.")
    recommended_plan: RecommendedPlan | None


class UsageAnalytics(BaseModel):
    """The user's trends, patterns and predictions (``GET /api/usage/analytics``); the parts not asked for are null."""

    user_id: str
    trends: Trends | None = None
    patterns: Patterns | None = None
    predictions: Predictions | None = None


class UsageInsights(BaseModel):
    """Plain-language insights, flagged days and a plan recommendation (``GET /api/usage/insights``)."""

    user_id: str
    insights: list[Insight]
    anomalies: list[DayAnomaly] = Field(description="Days of the last 30 whose events are far outside the usual.")
    recommended_plan: RecommendedPlan | None


class TrendSeries(BaseModel):
    """Daily sparklines per value of a dimension (``GET /api/admin/usage/trends``)."""

    dimension: str
    metric: str
    days: list[dt.date]
    series: dict[str, list[Decimal | None]] = Field(
        description="Per value, the metric per day (aligned with days); null where quantities of several units meet."
    )
    points: list[TrendPoint]


class IngestEvent(BaseModel):
    """One usage event (the contract of docs/producers.md); the database checks the values (PT errors)."""

    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(description="Your idempotency key (a job id); at most 200 characters.")
    user_id: str = Field(description="Your opaque user id; at most 200 characters.")
    kind: str = Field(description="tts, ocr, transcription, export, llm, session, paywall.viewed, ...")
    quantity: int = Field(default=0, ge=BIGINT_MIN, le=BIGINT_MAX, description="Metered amount in the kind's unit.")
    occurred_at: dt.datetime | None = Field(default=None, description="Default: now. Without an offset: UTC.")
    duration_ms: int | None = Field(
        default=None, ge=BIGINT_MIN, le=BIGINT_MAX, description="Null means unknown, not zero."
    )
    cost: Decimal = Field(default=Decimal(0), description="Exact money, a number or a decimal string.")
    status: str = Field(default="succeeded", description="succeeded, failed, cancelled; reversed on a correction.")
    error_code: str | None = None
    billable: bool = True
    attributes: dict[str, Any] = Field(default_factory=dict, description="Dimension values and context.")
    corrects_event_id: str | None = Field(default=None, description="On a correction: the event it amends.")


class EventResult(BaseModel):
    """What became of one event of the batch, at its index."""

    index: int
    event_id: str
    status: Literal["recorded", "duplicate", "rejected"]
    sqlstate: str | None = Field(default=None, description="The database's SQLSTATE when rejected (PTnnn).")
    field: str | None = Field(default=None, description="The event field the database named.")
    message: str | None = None


class IngestResponse(BaseModel):
    recorded: int
    duplicates: int
    rejected: int
    results: list[EventResult]


class SubscribeRequest(BaseModel):
    email: str = Field(min_length=3, max_length=320, description="Where the monthly usage report goes.")


class Subscription(BaseModel):
    """The user's report subscription (``tally.subscribe_reports``)."""

    user_id: str
    email_address: str
    unsubscribe_token: str = Field(description="The token of the unsubscribe link (GET /api/usage/unsubscribe?token=).")
    subscribed_at: dt.datetime


class UnsubscribeRequest(BaseModel):
    token: str = Field(min_length=1, max_length=512, description="The token of the unsubscribe link.")


class UnsubscribeResult(BaseModel):
    unsubscribed: bool = Field(description="True when the token named a subscription that is now ended.")
