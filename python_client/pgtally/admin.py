"""Admin analytics reads (platform totals, leaderboards, trends, funnels, cohorts, refresh).

Reached as ``client.admin``; each method calls one SQL function. The database
role needs ``tally_analyst`` (a plain ``tally_reader`` gets
``psycopg.errors.InsufficientPrivilege``). Answers come from materialized
views refreshed by :meth:`AdminClient.refresh` (or a schedule) and carry
``refreshed_at``. Breakdown rows describing fewer distinct users than the
minimum group size (default 5, see :meth:`AdminClient.set_min_group_size`)
are left out, so an analyst cannot single out a user.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import psycopg

from ._query import AsyncRunner, Call, Query, Runner, api_method, first_row, rows, scalar
from .admin_models import (
    ActiveUsers,
    CohortCell,
    Dashboard,
    ErrorCodeCount,
    FunnelStep,
    LeaderboardEntry,
    Overview,
    PlatformTotal,
    RefreshResult,
    Reliability,
    TrendPoint,
    ViewFreshness,
    WeekOverWeekCard,
)
from .errors import PgTallyError

#: The paywall funnel the demo workload produces and the dashboard shows by default.
DEFAULT_FUNNEL: tuple[str, ...] = ("paywall.viewed", "paywall.clicked", "checkout.started", "checkout.completed")
#: Timeframes of leaderboards, reliability and error codes.
WINDOWS: tuple[str, ...] = ("24h", "7d", "30d", "all")
_WINDOW_LENGTHS = {"24h": dt.timedelta(hours=24), "7d": dt.timedelta(days=7), "30d": dt.timedelta(days=30)}


class RefreshNotScheduled(PgTallyError):
    """pg_cron is not installed: run ``pgtally refresh`` from cron instead (the message gives the crontab line)."""

    sqlstate = "55000"


class AdminApi:
    """Admin and analyst reads over the materialized views, written once for both clients."""

    # ----------------------------------------------------------------- refresh

    @api_method
    def refresh(self, *, merge_first: bool = True) -> Call[list[RefreshResult]]:
        """Refresh every analytics view without blocking readers; one row per view.

        With ``merge_first`` pending deltas are merged first (the views read the
        merged rollups). When another refresh is running the answer is one row
        with ``skipped`` true, at once. Example::

            for r in tally.admin.refresh():
                print(r.view_name, r.duration_ms)
        """
        if merge_first:
            while (yield from scalar("select tally.merge_pending(%s)", (100_000,))):
                pass
        return (yield from rows("select * from tally.refresh_analytics()", (), RefreshResult))

    @api_method
    def freshness(self) -> Call[list[ViewFreshness]]:
        """When each view was last refreshed and how old it is. Example: ``max(f.age for f in tally.admin.freshness())``"""
        return (yield from rows("select * from tally.analytics_freshness()", (), ViewFreshness))

    @api_method
    def schedule_refresh(self, every: dt.timedelta | str = "5 minutes") -> Call[str]:
        """Schedule the refresh with pg_cron; raises :class:`RefreshNotScheduled` (with the crontab line) without it.

        Example: ``tally.admin.schedule_refresh(timedelta(minutes=10))``
        """
        try:
            return str((yield from scalar("select tally.schedule_refresh(%s::interval)", (every,))))
        except psycopg.errors.ObjectNotInPrerequisiteState as exc:
            raise RefreshNotScheduled(f"{exc.diag.message_primary}. {exc.diag.message_hint}") from exc

    # ------------------------------------------------------- minimum group size

    @api_method
    def min_group_size(self) -> Call[int]:
        """The fewest distinct users a breakdown row must describe to be shown (1 = every group).

        Example: ``tally.admin.min_group_size()  # 5 unless the owner changed it``
        """
        value = yield from scalar("select min_group_size from tally.analytics_settings", ())
        return int(value) if value is not None else 5

    @api_method
    def set_min_group_size(self, min_users: int) -> Call[int]:
        """Set the minimum group size (owner only; analysts get InsufficientPrivilege); returns the previous value.

        1 shows every group (the explicit opt-out). The admin reads apply it at once, the users' peer
        distributions at the next refresh. Example: ``tally.admin.set_min_group_size(10)``
        """
        return int((yield from scalar("select tally.set_min_group_size(%s)", (min_users,))))

    # ------------------------------------------------------------------- reads

    @api_method
    def overview(self) -> Call[Overview | None]:
        """Platform headline figures. Example: ``tally.admin.overview().paying_users``"""
        return (yield from first_row("select * from tally.admin_overview()", (), Overview))

    @api_method
    def totals(self, dimension: str = "kind") -> Call[list[PlatformTotal]]:
        """Lifetime totals, averages and cost shares per value of a declared dimension, most events first.

        Example: ``{t.value: t.users for t in tally.admin.totals("model")}``
        """
        return (yield from rows("select * from tally.admin_totals(%s)", (dimension,), PlatformTotal))

    @api_method
    def cost_breakdown(self, dimension: str = "kind") -> Call[list[PlatformTotal]]:
        """The same totals, largest cost first. Example: ``tally.admin.cost_breakdown("provider")[0].cost_share_pct``"""
        totals = yield from AdminApi.totals.call(self, dimension)
        return sorted(totals, key=lambda t: (-t.cost, t.value))

    @api_method
    def leaderboard(
        self, dimension: str, window: str = "7d", metric: str = "events", limit: int = 10
    ) -> Call[list[LeaderboardEntry]]:
        """Top values of a dimension in a timeframe (24h, 7d, 30d, all) by events, quantity, duration_ms, cost or users.

        Example: ``tally.admin.leaderboard("voice", "30d", metric="duration_ms", limit=5)``
        """
        return (
            yield from rows(
                "select * from tally.admin_leaderboard(%s, %s, %s, %s)",
                (dimension, window, metric, limit),
                LeaderboardEntry,
            )
        )

    @api_method
    def trend(
        self,
        dimension: str = "kind",
        values: Sequence[str] | None = None,
        from_day: dt.date | None = None,
        to_day: dt.date | None = None,
    ) -> Call[list[TrendPoint]]:
        """Daily series per value, zero-filled (default: every active value, the 30 days ending today).

        Example: ``tally.admin.trend("kind", ["tts", "ocr"], date(2026, 11, 1), date(2026, 11, 21))``
        """
        return (
            yield from rows(
                "select * from tally.admin_trend(%s, %s, %s, %s)",
                (dimension, list(values) if values is not None else None, from_day, to_day),
                TrendPoint,
            )
        )

    @api_method
    def active_users(self, from_day: dt.date | None = None, to_day: dt.date | None = None) -> Call[list[ActiveUsers]]:
        """DAU, WAU, MAU, new and paying users per day (default: the 30 days ending today).

        Example: ``tally.admin.active_users()[-1].mau``
        """
        return (
            yield from rows(
                "select * from tally.admin_active_users(%s, %s)",
                (from_day, to_day),
                ActiveUsers,
            )
        )

    @api_method
    def week_over_week(self, as_of: dt.date | None = None, dimension: str = "kind") -> Call[list[WeekOverWeekCard]]:
        """Week-over-week cards for the 7 days ending ``as_of`` (default yesterday) against the 7 before.

        Example: ``[c for c in tally.admin.week_over_week() if c.metric == "paying_users"]``
        """
        return (
            yield from rows(
                "select * from tally.admin_week_over_week(%s, %s)",
                (as_of, dimension),
                WeekOverWeekCard,
            )
        )

    @api_method
    def funnel(
        self,
        steps: Sequence[str] = DEFAULT_FUNNEL,
        from_at: dt.datetime | None = None,
        to_at: dt.datetime | None = None,
    ) -> Call[list[FunnelStep]]:
        """Users who did ordered steps (kinds) in order inside [from_at, to_at), per step.

        Example: ``tally.admin.funnel(["paywall.viewed", "checkout.completed"], from_at=now - timedelta(days=30))``
        """
        return (
            yield from rows(
                "select * from tally.admin_funnel(%s, %s, %s)",
                (list(steps), from_at, to_at),
                FunnelStep,
            )
        )

    @api_method
    def reliability(self, window: str = "7d", kind: str | None = None) -> Call[list[Reliability]]:
        """Success rate and average/p50/p95/p99 duration by kind and format. Example: ``tally.admin.reliability("30d", "export")``"""
        return (
            yield from rows(
                "select * from tally.admin_reliability(%s, %s)",
                (window, kind),
                Reliability,
            )
        )

    @api_method
    def error_codes(self, window: str = "7d", limit: int = 10, by_format: bool = False) -> Call[list[ErrorCodeCount]]:
        """Most frequent error codes of failed events (from the retained raw log). Example: ``tally.admin.error_codes("24h")``"""
        return (
            yield from rows(
                "select * from tally.admin_error_codes(%s, %s, %s)",
                (window, limit, by_format),
                ErrorCodeCount,
            )
        )

    @api_method
    def cohorts(self, from_month: dt.date | None = None, to_month: dt.date | None = None) -> Call[list[CohortCell]]:
        """Cohort retention by first-active month (default: the last 12 cohorts). Example: ``tally.admin.cohorts(date(2025, 1, 1))``"""
        return (
            yield from rows(
                "select * from tally.admin_cohorts(%s, %s)",
                (from_month, to_month),
                CohortCell,
            )
        )

    @api_method
    def dashboard(
        self,
        window: str = "7d",
        dimensions: Sequence[str] = ("voice", "model"),
        funnel_steps: Sequence[str] = DEFAULT_FUNNEL,
        days: int = 14,
    ) -> Call[Dashboard]:
        """Every panel of the admin dashboard in one object (what `pgtally admin` prints).

        Example: ``board = tally.admin.dashboard("30d"); board.overview.users``
        """
        now = dt.datetime.now(dt.timezone.utc)
        today = now.date()
        funnel_from = now - _WINDOW_LENGTHS[window] if window in _WINDOW_LENGTHS else None
        overview = yield from AdminApi.overview.call(self)
        totals_by_kind = yield from AdminApi.totals.call(self, "kind")
        leaderboards = {}
        for d in dimensions:
            leaderboards[d] = yield from AdminApi.leaderboard.call(self, d, window)
        first_day = today - dt.timedelta(days=days - 1)
        trend = yield from AdminApi.trend.call(self, "kind", None, first_day, today)
        active_users = yield from AdminApi.active_users.call(self, first_day, today)
        week_over_week = yield from AdminApi.week_over_week.call(self)
        funnel = yield from AdminApi.funnel.call(self, funnel_steps, funnel_from)
        reliability = yield from AdminApi.reliability.call(self, window)
        error_codes = yield from AdminApi.error_codes.call(self, window)
        cohorts = yield from AdminApi.cohorts.call(self)
        freshness = yield from AdminApi.freshness.call(self)
        min_group_size = yield from AdminApi.min_group_size.call(self)
        return Dashboard(
            overview=overview,
            totals_by_kind=totals_by_kind,
            leaderboards=leaderboards,
            trend=trend,
            active_users=active_users,
            week_over_week=[c for c in week_over_week if c.value == "*"],
            funnel=funnel,
            reliability=reliability,
            error_codes=error_codes,
            cohorts=cohorts,
            freshness=freshness,
            time_window=window,
            min_group_size=min_group_size,
        )


class AdminClient(AdminApi, Runner):
    """``client.admin`` of the sync :class:`pgtally.Client` (its queries run on the client's connection)."""

    def __init__(self, client: Runner) -> None:
        self._client = client

    def _execute(self, query: Query) -> Any:
        return self._client._execute(query)


class AsyncAdminClient(AdminApi, AsyncRunner):
    """``client.admin`` of :class:`pgtally.AsyncClient` (the same methods, awaited)."""

    def __init__(self, client: AsyncRunner) -> None:
        self._client = client

    async def _execute(self, query: Query) -> Any:
        return await self._client._execute(query)
