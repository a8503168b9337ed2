"""User-facing analytics reads (summary card, history, comparisons, patterns, limits, insights, export).

Mixed into :class:`pgtally.Client`; each method calls one SQL function (see
docs/user-analytics.md for what every function computes).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any, TypeVar

from ._query import Call, api_method, copy_out, dict_rows, first_row, rows, scalar
from .user_models import (
    CalendarDay,
    Comparison,
    DayAnomaly,
    EngagementProfile,
    HistoryBucket,
    HourOfWeek,
    Insight,
    MonthlySummary,
    Peak,
    PeerPercentile,
    QuotaForecast,
    RecommendedPlan,
    SubscriptionSummary,
    SummaryCard,
    WeekdayUsage,
)

if TYPE_CHECKING:
    pass

T = TypeVar("T")

_NOW = "coalesce(%s::timestamptz, now())"


class UserReadsMixin:
    """Methods of the user-facing read API (see docs/user-analytics.md)."""

    # ------------------------------------------------------ plans

    @api_method
    def upsert_plan(
        self,
        plan: str,
        *,
        tier: int,
        monthly_price: Decimal | int | str,
        limits: Mapping[str, int | None] | None = None,
        is_default: bool = False,
        description: str | None = None,
    ) -> Call[None]:
        """Create or replace a plan with its tier, monthly price and per-kind limits per billing period.

        ``limits`` maps a kind to the most quantity a user of the plan may use
        in one billing period (None or absent: unlimited); the given limits
        replace the plan's old ones. ``is_default`` makes it the plan of users
        without a subscription. Example::

            tally.upsert_plan("free", tier=0, monthly_price=0, limits={"tts": 20_000}, is_default=True)
        """
        (
            yield from scalar(
                "select tally.upsert_plan(%s, %s, %s::numeric, %s::jsonb, %s, %s)",
                (plan, tier, str(monthly_price), json.dumps(dict(limits or {})), is_default, description),
            )
        )

    @api_method
    def start_subscription(self, user_id: str, plan: str, started_at: dt.datetime | None = None) -> Call[None]:
        """Start a subscription at ``started_at`` (default now); a running one ends there (plan change).

        The subscription keeps the plan's current monthly price. Example::

            tally.start_subscription("user-42", "pro")
        """
        (yield from scalar(f"select tally.start_subscription(%s, %s, {_NOW})", (user_id, plan, started_at)))

    @api_method
    def end_subscription(self, user_id: str, ended_at: dt.datetime | None = None) -> Call[bool]:
        """End the running subscription at ``ended_at`` (default now); False when none runs.

        The user falls back to the default plan. Example: ``tally.end_subscription("user-42")``
        """
        return bool((yield from scalar(f"select tally.end_subscription(%s, {_NOW})", (user_id, ended_at))))

    @api_method
    def plan_at(self, user_id: str, at: dt.datetime | None = None) -> Call[str | None]:
        """The plan in force at ``at`` (default now): the running subscription, else the default plan.

        Example: ``tally.plan_at("user-42", datetime(2026, 3, 1, tzinfo=timezone.utc))``
        """
        plan = yield from scalar(f"select tally.plan_at(%s, {_NOW})", (user_id, at))
        return None if plan is None else str(plan)

    @api_method
    def subscription_summary(self, user_id: str, at: dt.datetime | None = None) -> Call[SubscriptionSummary]:
        """Current plan, months subscribed, highest tier reached and revenue to date.

        Example: ``tally.subscription_summary("user-42").revenue``
        """
        return (
            yield from rows(f"select * from tally.subscription_summary(%s, {_NOW})", (user_id, at), SubscriptionSummary)
        )[0]

    # ------------------------------------------------ engagement

    @api_method
    def engagement_profile(self, user_id: str, at: dt.datetime | None = None) -> Call[EngagementProfile]:
        """First/last active, days active, current and longest streak (local days) and sessions.

        Exact at commit. Example::

            p = tally.engagement_profile("user-42")
            print(f"{p.current_streak}-day streak, {p.sessions} sessions")
        """
        return (
            yield from rows(f"select * from tally.engagement_profile(%s, {_NOW})", (user_id, at), EngagementProfile)
        )[0]

    # --------------------------------------------------- summary

    @api_method
    def summary_card(self, user_id: str, *, top_n: int = 5, at: dt.datetime | None = None) -> Call[SummaryCard]:
        """Lifetime totals, per kind, top voices and models by duration, and the period against limits.

        Example::

            card = tally.summary_card("user-42")
            print(card.voices[0].value, card.voices[0].duration_text)   # af_alloy 14 h 12 min
        """
        return SummaryCard.from_rows(
            (yield from dict_rows(f"select * from tally.summary_card(%s, %s, {_NOW})", (user_id, top_n, at)))
        )

    # ---------------------------------------- history, comparisons

    @api_method
    def usage_history(
        self,
        user_id: str,
        range: str = "30d",
        bucket: str = "day",
        *,
        dimension: str | None = None,
        from_day: dt.date | None = None,
        to_day: dt.date | None = None,
        at: dt.datetime | None = None,
    ) -> Call[list[HistoryBucket]]:
        """Usage per day, week (Monday first) or month over a range, every bucket present with zeros.

        ``range`` is 7d, 30d, 3m, 12m (any N followed by d, w, m, y) ending
        today in the user's time zone, or pass ``from_day`` and ``to_day``.
        With ``dimension`` every bucket is split (stacked) by its values.
        Example::

            for b in tally.usage_history("user-42", "12m", "month", dimension="voice"):
                print(b.bucket_start, b.value, b.quantity)
        """
        return (
            yield from rows(
                f"select * from tally.usage_history(%s, %s, %s, %s, %s, %s, {_NOW})",
                (user_id, range, bucket, dimension, from_day, to_day, at),
                HistoryBucket,
            )
        )

    @api_method
    def compare_usage(
        self,
        user_id: str,
        period: str | None = None,
        *,
        metric: str = "quantity",
        kind: str | None = None,
        complete: bool = False,
        threshold: Decimal | float = 5,
        at: dt.datetime | None = None,
    ) -> Call[list[Comparison]]:
        """Week/month/year-over-year comparisons with deltas and a trend flag (up, down, stable).

        To date by default (this month so far against the same dates last
        month); ``complete=True`` compares the last finished periods. Trend is
        stable when |delta %| < ``threshold``. Example::

            mom = tally.compare_usage("user-42", "month", kind="tts")[0]
            print(mom.delta_pct, mom.trend)
        """
        return (
            yield from rows(
                f"select * from tally.usage_comparison(%s, %s, %s, %s, %s, %s::numeric, {_NOW})",
                (user_id, period, metric, kind, complete, str(threshold), at),
                Comparison,
            )
        )

    @api_method
    def usage_peak(
        self,
        user_id: str,
        range: str = "12m",
        bucket: str = "month",
        *,
        metric: str = "quantity",
        kind: str | None = None,
        from_day: dt.date | None = None,
        to_day: dt.date | None = None,
        at: dt.datetime | None = None,
    ) -> Call[Peak | None]:
        """The bucket of a range with the most usage (earliest on ties); None without usage.

        Example: ``tally.usage_peak("user-42", "12m", "month").bucket_start``
        """
        return (
            yield from first_row(
                f"select * from tally.usage_peak(%s, %s, %s, %s, %s, %s, %s, {_NOW})",
                (user_id, range, bucket, metric, kind, from_day, to_day, at),
                Peak,
            )
        )

    # ------------------------------------------------- patterns

    @api_method
    def weekday_distribution(
        self,
        user_id: str,
        from_day: dt.date | None = None,
        to_day: dt.date | None = None,
        *,
        at: dt.datetime | None = None,
    ) -> Call[list[WeekdayUsage]]:
        """Usage per local weekday, Monday first, all seven present (default: all history).

        Example: ``max(tally.weekday_distribution("user-42"), key=lambda w: w.events).day_name``
        """
        return (
            yield from rows(
                f"select * from tally.weekday_distribution(%s, %s, %s, {_NOW})",
                (user_id, from_day, to_day, at),
                WeekdayUsage,
            )
        )

    @api_method
    def hour_of_week_heatmap(self, user_id: str) -> Call[list[HourOfWeek]]:
        """Lifetime activity per local hour of the week: 168 cells, Monday 00:00 first.

        Example: ``grid = [[c.events for c in cells[d * 24:(d + 1) * 24]] for d in range(7)]``
        """
        return (yield from rows("select * from tally.hour_of_week_heatmap(%s)", (user_id,), HourOfWeek))

    @api_method
    def calendar_heatmap(
        self, user_id: str, year: int | None = None, *, at: dt.datetime | None = None
    ) -> Call[list[CalendarDay]]:
        """Every local day of a year (default: this one) with its usage and a level 0-4.

        Example: ``[d.level for d in tally.calendar_heatmap("user-42", 2026)]``
        """
        return (
            yield from rows(f"select * from tally.calendar_heatmap(%s, %s, {_NOW})", (user_id, year, at), CalendarDay)
        )

    @api_method
    def monthly_summaries(
        self, user_id: str, months: int = 12, *, at: dt.datetime | None = None
    ) -> Call[list[MonthlySummary]]:
        """The last ``months`` local calendar months (current included), oldest first, all present.

        Example: ``[(m.month_start, m.active_days, m.top_kind) for m in tally.monthly_summaries("user-42")]``
        """
        return (
            yield from rows(
                f"select * from tally.monthly_summaries(%s, %s, {_NOW})", (user_id, months, at), MonthlySummary
            )
        )

    # ------------------------------------------- limits, forecast

    @api_method
    def quota_forecast(
        self, user_id: str, *, lookback_days: int = 7, at: dt.datetime | None = None
    ) -> Call[list[QuotaForecast]]:
        """Per kind this billing period: used, quota, utilization, run rate, projection, limit date.

        Example::

            for f in tally.quota_forecast("user-42"):
                print(f.kind, f.utilization_pct, f.projected, f.reaches_limit_on, f.status)
        """
        return (
            yield from rows(
                f"select * from tally.quota_forecast(%s, %s, {_NOW})",
                (user_id, lookback_days, at),
                QuotaForecast,
            )
        )

    @api_method
    def recommended_plan(
        self, user_id: str, *, lookback_days: int = 7, at: dt.datetime | None = None
    ) -> Call[RecommendedPlan | None]:
        """The cheapest plan whose limits cover this period's projected usage; None when none does.

        Example: ``rec = tally.recommended_plan("user-42"); rec and not rec.is_current and offer(rec.plan)``
        """
        return (
            yield from first_row(
                f"select * from tally.recommended_plan(%s, %s, {_NOW})",
                (user_id, lookback_days, at),
                RecommendedPlan,
            )
        )

    @api_method
    def check_quota(self, user_id: str, kind: str, amount: int = 1) -> Call[int | None]:
        """Hard quota check inside the caller's transaction; raises :class:`QuotaExceeded` (PT012).

        Locks (user, kind) until the transaction ends, so call it in the same
        transaction that records the usage: concurrent callers then never
        together exceed the limit. Returns the quota left after ``amount``
        (None when the kind is unlimited). Needs READ COMMITTED (default) or
        SERIALIZABLE. Example::

            with conn.transaction():
                tally.check_quota("user-42", "tts", len(text))
                audio = synthesize(text)
                tally.record(job_id, "user-42", "tts", len(text))
        """
        left = yield from scalar("select tally.check_quota(%s, %s, %s)", (user_id, kind, amount))
        return None if left is None else int(left)

    # ------------------------------------------------- insights

    @api_method
    def usage_anomalies(
        self,
        user_id: str,
        from_day: dt.date | None = None,
        to_day: dt.date | None = None,
        *,
        metric: str = "quantity",
        kind: str | None = None,
        threshold: Decimal | float = 3.5,
        at: dt.datetime | None = None,
    ) -> Call[list[DayAnomaly]]:
        """Per local day (default: the last 30): robust z-score against the 28 days before, anomaly flag.

        Example: ``[a.day for a in tally.usage_anomalies("user-42") if a.is_anomaly]``
        """
        return (
            yield from rows(
                f"select * from tally.usage_anomalies(%s, %s, %s, %s, %s, %s::numeric, {_NOW})",
                (user_id, from_day, to_day, metric, kind, str(threshold), at),
                DayAnomaly,
            )
        )

    @api_method
    def peer_percentile(
        self, user_id: str, kind: str = "tts", *, at: dt.datetime | None = None
    ) -> Call[PeerPercentile | None]:
        """At least what share (%) of users of ``kind`` used less of it than the user this billing period.

        Read from the anonymized distribution (as of the last analytics refresh). ``None`` when the user has no
        usage of the kind this period, or is not the caller's own user (row-level security). Example:
        ``p = tally.peer_percentile("user-42", "tts"); print(p.percentile if p else "no usage yet")``
        """
        return (
            yield from first_row(
                f"select * from tally.peer_percentile(%s, %s, {_NOW})", (user_id, kind, at), PeerPercentile
            )
        )

    @api_method
    def usage_insights(self, user_id: str, *, at: dt.datetime | None = None) -> Call[list[Insight]]:
        """Short plain-language insights with numbers ("tts usage is up 40% this month so far ...").

        Example: ``for i in tally.usage_insights("user-42"): print(i.message)``
        """
        return (yield from rows(f"select * from tally.usage_insights(%s, {_NOW})", (user_id, at), Insight))

    # --------------------------------------------------- export

    @api_method
    def export_events_csv(
        self, user_id: str, from_at: dt.datetime, to_at: dt.datetime, out: IO[Any], *, raw: bool = False
    ) -> Call[int]:
        """Stream the user's raw events with occurred_at in [from_at, to_at) as CSV into ``out``.

        Uses COPY ... TO STDOUT, so memory stays constant for millions of
        rows; ``out`` may be a binary or a text file. Returns the number of
        rows. Text cells starting with ``=``, ``+``, ``-``, ``@``, a tab or a
        carriage return get a leading ``'`` so that a spreadsheet shows them
        instead of running them as formulas; ``raw=True`` writes every cell
        verbatim (unsafe to open in a spreadsheet). Example::

            with open("usage.csv", "wb") as f:
                tally.export_events_csv("user-42", datetime(2026, 1, 1, tzinfo=utc), datetime(2027, 1, 1, tzinfo=utc), f)
        """
        return (
            yield from copy_out(
                f"copy (select {_csv_columns(_EVENT_COLUMNS, raw)} "
                "from tally.export_events(%s, %s::timestamptz, %s::timestamptz)) "
                "to stdout with (format csv, header)",
                (user_id, from_at, to_at),
                out,
            )
        )

    @api_method
    def export_rollups_csv(
        self,
        user_id: str,
        from_day: dt.date,
        to_day: dt.date,
        out: IO[Any],
        *,
        dimension: str | None = None,
        raw: bool = False,
    ) -> Call[int]:
        """Stream the user's daily rollups (every dimension, or one) for local days from_day..to_day as CSV.

        Returns the number of rows. Dimension values (attribute values chosen
        by producers) are neutralized like :meth:`export_events_csv`'s text
        cells unless ``raw=True``. Example::

            tally.export_rollups_csv("user-42", date(2026, 1, 1), date(2026, 12, 31), sys.stdout, dimension="voice")
        """
        return (
            yield from copy_out(
                f"copy (select {_csv_columns(_ROLLUP_COLUMNS, raw)} "
                "from tally.export_rollups(%s, %s::date, %s::date, %s)) "
                "to stdout with (format csv, header)",
                (user_id, from_day, to_day, dimension),
                out,
            )
        )


#: Columns of tally.export_events and tally.export_rollups in order, True for text
#: cells (attributes as JSON text) that the CSV exports neutralize against formulas.
_EVENT_COLUMNS = (
    ("event_id", True),
    ("kind", True),
    ("occurred_at", False),
    ("recorded_at", False),
    ("quantity", False),
    ("duration_ms", False),
    ("cost", False),
    ("status", True),
    ("error_code", True),
    ("billable", False),
    ("attributes", True),
    ("corrects_event_id", True),
)
_ROLLUP_COLUMNS = (
    ("day", False),
    ("dimension", True),
    ("value", True),
    ("events", False),
    ("failures", False),
    ("quantity", False),
    ("duration_ms", False),
    ("cost", False),
)


def _csv_columns(columns: Sequence[tuple[str, bool]], raw: bool) -> str:
    """The COPY select list: every column, text ones through tally._csv_safe (nothing changed when ``raw``)."""
    if raw:
        return "*"
    return ", ".join(f"tally._csv_safe({name}::text) as {name}" if text else name for name, text in columns)
