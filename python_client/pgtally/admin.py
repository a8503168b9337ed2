"""Admin analytics reads (platform totals, leaderboards, trends, funnels, cohorts, refresh).

Reached as ``client.admin``; each method calls one SQL function. The database
role needs ``tally_analyst`` (a plain ``tally_reader`` gets
``psycopg.errors.InsufficientPrivilege``). Named windows (24h, 7d, 30d, all)
come from materialized views refreshed by :meth:`AdminClient.refresh` (or a
schedule) and end at that refresh; a range of UTC days ``[from_day, to_day)``
is computed at call time. Every answer carries ``refreshed_at`` and, over a
timeframe, ``window_start``/``window_end``; ``plan=`` counts only the events
recorded under that plan. Every figure is in UTC. Breakdown rows describing
fewer distinct users than the minimum group size (default 5, see
:meth:`AdminClient.set_min_group_size`) are left out, and so is a plan's
figures when fewer users used it, so an analyst cannot single out a user.
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
#: The named timeframes of the windowed reads: the 24 hours, 7 and 30 days ending at the last refresh, and all time.
WINDOWS: tuple[str, ...] = ("24h", "7d", "30d", "all")
#: Weeks the week-over-week cards can compare.
WEEKS: tuple[int, ...] = (1, 2, 4)
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
    #
    # Windowed reads take a named window (24h, 7d, 30d: the 24 hours, 7 and 30 days
    # ending at the last refresh; all) or the UTC days [from_day, to_day) (computed
    # at call time), and a plan (only events recorded under that plan; None = all).

    @api_method
    def overview(
        self,
        window: str | None = None,
        *,
        from_day: dt.date | None = None,
        to_day: dt.date | None = None,
        plan: str | None = None,
    ) -> Call[Overview | None]:
        """Platform headline figures over a window (default all) or UTC days [from_day, to_day), optionally of one plan.

        ``None`` for a plan fewer users than the minimum group size used. Example:
        ``tally.admin.overview("30d", plan="pro").paying_users``
        """
        return (
            yield from first_row(
                "select * from tally.admin_overview(%s, %s, %s, %s)", (window, from_day, to_day, plan), Overview
            )
        )

    @api_method
    def totals(
        self,
        dimension: str = "kind",
        window: str | None = None,
        *,
        from_day: dt.date | None = None,
        to_day: dt.date | None = None,
        plan: str | None = None,
    ) -> Call[list[PlatformTotal]]:
        """Totals, averages and cost shares per value of a declared dimension, most events first (default: all time).

        Example: ``{t.value: t.users for t in tally.admin.totals("model", "7d")}``
        """
        return (
            yield from rows(
                "select * from tally.admin_totals(%s, %s, %s, %s, %s)",
                (dimension, window, from_day, to_day, plan),
                PlatformTotal,
            )
        )

    @api_method
    def cost_breakdown(
        self,
        dimension: str = "kind",
        window: str | None = None,
        *,
        from_day: dt.date | None = None,
        to_day: dt.date | None = None,
        plan: str | None = None,
    ) -> Call[list[PlatformTotal]]:
        """The same totals, largest cost first. Example: ``tally.admin.cost_breakdown("provider")[0].cost_share_pct``"""
        totals = yield from AdminApi.totals.call(self, dimension, window, from_day=from_day, to_day=to_day, plan=plan)
        return sorted(totals, key=lambda t: (-t.cost, t.value))

    @api_method
    def leaderboard(
        self,
        dimension: str,
        window: str | None = None,
        metric: str = "events",
        limit: int = 10,
        *,
        from_day: dt.date | None = None,
        to_day: dt.date | None = None,
        plan: str | None = None,
    ) -> Call[list[LeaderboardEntry]]:
        """Top values of a dimension in a window (24h, 7d (default), 30d, all) or UTC days, by events, quantity, ...

        Metrics: events, quantity, duration_ms, cost, users. Example:
        ``tally.admin.leaderboard("voice", "24h", metric="duration_ms", limit=5)``
        """
        return (
            yield from rows(
                "select * from tally.admin_leaderboard(%s, %s, %s, %s, %s, %s, %s)",
                (dimension, window, metric, limit, from_day, to_day, plan),
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
        *,
        plan: str | None = None,
    ) -> Call[list[TrendPoint]]:
        """Daily series per value per UTC day, from_day through to_day, zero-filled (default: the 30 days ending today).

        Example: ``tally.admin.trend("kind", ["tts", "ocr"], date(2026, 11, 1), date(2026, 11, 21))``
        """
        return (
            yield from rows(
                "select * from tally.admin_trend(%s, %s, %s, %s, %s)",
                (dimension, list(values) if values is not None else None, from_day, to_day, plan),
                TrendPoint,
            )
        )

    @api_method
    def active_users(
        self, from_day: dt.date | None = None, to_day: dt.date | None = None, *, plan: str | None = None
    ) -> Call[list[ActiveUsers]]:
        """DAU, WAU, MAU, new and paying users per UTC day, from_day through to_day (default: the 30 days ending today).

        Example: ``tally.admin.active_users()[-1].mau``
        """
        return (
            yield from rows(
                "select * from tally.admin_active_users(%s, %s, %s)",
                (from_day, to_day, plan),
                ActiveUsers,
            )
        )

    @api_method
    def week_over_week(
        self, as_of: dt.date | None = None, dimension: str = "kind", *, weeks: int = 1, plan: str | None = None
    ) -> Call[list[WeekOverWeekCard]]:
        """Cards for the 1, 2 or 4 complete weeks ending ``as_of`` (default: the last complete day) against those before.

        Example: ``[c for c in tally.admin.week_over_week(weeks=4) if c.metric == "success_rate"]``
        """
        return (
            yield from rows(
                "select * from tally.admin_week_over_week(%s, %s, %s, %s)",
                (as_of, dimension, weeks, plan),
                WeekOverWeekCard,
            )
        )

    @api_method
    def funnel(
        self,
        steps: Sequence[str] = DEFAULT_FUNNEL,
        from_at: dt.datetime | None = None,
        to_at: dt.datetime | None = None,
        *,
        plan: str | None = None,
        window: str | None = None,
    ) -> Call[list[FunnelStep]]:
        """Users who did ordered steps (kinds) in order inside [from_at, to_at), per step (exact at call time).

        With ``window`` (24h, 7d, 30d, all; not with from_at/to_at) the funnel of that timeframe as of the last
        refresh, as the dashboard shows it: read from the refresh for a declared funnel (``tally.declare_funnel``),
        computed over the same instants otherwise.
        Example: ``tally.admin.funnel(["paywall.viewed", "checkout.completed"], from_at=now - timedelta(days=30))``
        """
        if window is not None:
            if from_at is not None or to_at is not None:
                raise ValueError("give either window or from_at/to_at, not both")
            return (
                yield from rows(
                    "select * from tally.admin_funnel_window(%s, %s, %s)", (list(steps), window, plan), FunnelStep
                )
            )
        return (
            yield from rows(
                "select * from tally.admin_funnel(%s, %s, %s, %s)",
                (list(steps), from_at, to_at, plan),
                FunnelStep,
            )
        )

    @api_method
    def reliability(
        self,
        window: str | None = None,
        kind: str | None = None,
        *,
        from_day: dt.date | None = None,
        to_day: dt.date | None = None,
        plan: str | None = None,
    ) -> Call[list[Reliability]]:
        """Success rate and average/p50/p95/p99 duration by kind and format. Example: ``tally.admin.reliability("30d", "export")``"""
        return (
            yield from rows(
                "select * from tally.admin_reliability(%s, %s, %s, %s, %s)",
                (window, kind, from_day, to_day, plan),
                Reliability,
            )
        )

    @api_method
    def error_codes(
        self,
        window: str | None = None,
        limit: int = 10,
        by_format: bool = False,
        *,
        from_day: dt.date | None = None,
        to_day: dt.date | None = None,
        plan: str | None = None,
    ) -> Call[list[ErrorCodeCount]]:
        """Most frequent error codes of failed events (from the retained raw log). Example: ``tally.admin.error_codes("24h")``"""
        return (
            yield from rows(
                "select * from tally.admin_error_codes(%s, %s, %s, %s, %s, %s)",
                (window, limit, by_format, from_day, to_day, plan),
                ErrorCodeCount,
            )
        )

    @api_method
    def cohorts(
        self, from_month: dt.date | None = None, to_month: dt.date | None = None, *, plan: str | None = None
    ) -> Call[list[CohortCell]]:
        """Cohort retention by first-active UTC month (default: the last 12 cohorts). Example: ``tally.admin.cohorts(date(2025, 1, 1))``"""
        return (
            yield from rows(
                "select * from tally.admin_cohorts(%s, %s, %s)",
                (from_month, to_month, plan),
                CohortCell,
            )
        )

    @api_method
    def dashboard(
        self,
        window: str | None = "7d",
        dimensions: Sequence[str] = ("voice", "model"),
        funnel_steps: Sequence[str] = DEFAULT_FUNNEL,
        days: int = 14,
        *,
        from_day: dt.date | None = None,
        to_day: dt.date | None = None,
        plan: str | None = None,
        weeks: int = 1,
    ) -> Call[Dashboard]:
        """Every panel of the admin dashboard in one object (what `pgtally admin` prints).

        The overview, totals, leaderboards, funnel, reliability and error codes cover ``window`` (24h, 7d, 30d, all:
        ending at the last refresh) or, given ``from_day`` and ``to_day``, the UTC days [from_day, to_day); the
        sparklines cover ``days`` UTC days (ending today, or the range's last day); week over week compares ``weeks``
        complete weeks (ending the day before the refresh, or the range's last day). With ``plan`` every panel counts only events recorded under that plan. Example:
        ``board = tally.admin.dashboard("30d", plan="pro"); board.overview.users``
        """
        ranged = from_day is not None or to_day is not None
        named = None if ranged else window
        overview = yield from AdminApi.overview.call(self, named, from_day=from_day, to_day=to_day, plan=plan)
        if ranged:
            assert from_day is not None and to_day is not None  # else the overview raised
            window_start: dt.datetime | None = dt.datetime.combine(from_day, dt.time(), dt.timezone.utc)
            window_end: dt.datetime | None = dt.datetime.combine(to_day, dt.time(), dt.timezone.utc)
            last_day = to_day - dt.timedelta(days=1)
        else:
            window_start = overview.window_start if overview is not None else None
            window_end = overview.window_end if overview is not None else None
            if overview is None and window in _WINDOW_LENGTHS:  # a plan too small to show: the same window anyway
                window_end = dt.datetime.now(dt.timezone.utc)
                window_start = window_end - _WINDOW_LENGTHS[window]
            last_day = dt.datetime.now(dt.timezone.utc).date()
        totals_by_kind = yield from AdminApi.totals.call(
            self, "kind", named, from_day=from_day, to_day=to_day, plan=plan
        )
        leaderboards = {}
        for d in dimensions:
            leaderboards[d] = yield from AdminApi.leaderboard.call(
                self, d, named, from_day=from_day, to_day=to_day, plan=plan
            )
        first_day = last_day - dt.timedelta(days=days - 1)
        trend = yield from AdminApi.trend.call(self, "kind", None, first_day, last_day, plan=plan)
        active_users = yield from AdminApi.active_users.call(self, first_day, last_day, plan=plan)
        # Week over week ends on the range's last day, or on the last day complete at the refresh.
        as_of = last_day if ranged else None
        week_over_week = yield from AdminApi.week_over_week.call(self, as_of, "kind", weeks=weeks, plan=plan)
        # The funnel covers the same instants as the other windowed panels: a named window's as of the refresh
        # (precomputed for a declared funnel), a range of days at call time.
        if ranged:
            funnel = yield from AdminApi.funnel.call(self, funnel_steps, window_start, window_end, plan=plan)
        else:
            funnel = yield from AdminApi.funnel.call(self, funnel_steps, plan=plan, window=named or "all")
        reliability = yield from AdminApi.reliability.call(
            self, named, None, from_day=from_day, to_day=to_day, plan=plan
        )
        error_codes = yield from AdminApi.error_codes.call(self, named, from_day=from_day, to_day=to_day, plan=plan)
        cohorts = yield from AdminApi.cohorts.call(self, plan=plan)
        freshness = yield from AdminApi.freshness.call(self)
        min_group_size = yield from AdminApi.min_group_size.call(self)
        return Dashboard(
            overview=overview,
            totals_by_kind=totals_by_kind,
            leaderboards=leaderboards,
            trend=trend,
            active_users=active_users,
            week_over_week=[c for c in week_over_week if c.value == "*" or c.metric == "success_rate"],
            funnel=funnel,
            reliability=reliability,
            error_codes=error_codes,
            cohorts=cohorts,
            freshness=freshness,
            time_window=named,
            min_group_size=min_group_size,
            plan=plan,
            window_start=window_start,
            window_end=window_end,
            weeks=weeks,
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
