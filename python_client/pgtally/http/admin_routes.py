"""Platform analytics for analysts: ``/api/admin/usage/...`` (tally_analyst, through the admin functions).

Reads of the materialized views carry an ``ETag`` computed, before the read, from the views' last refresh,
the minimum group size, the UTC date (defaults like "the 30 days ending today" move with it) and the request's
query: a client that sends it back in ``If-None-Match`` gets ``304 Not Modified`` without the read running.
Reads with live parts (paying users, funnels, the whole analytics) carry an ``ETag`` of their body instead.
Both say ``Cache-Control: private, no-cache`` (revalidate every time; answers are per analyst).
"""

import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from ..admin import DEFAULT_FUNNEL, AsyncAdminClient
from ..admin_models import (
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
    ViewFreshness,
    WeekOverWeekCard,
)
from ..aio import AsyncClient
from .auth import Identity, Role
from .encode import dump, respond
from .problems import bad_argument, problem_responses
from .schemas import TrendSeries

if TYPE_CHECKING:
    from .app import PgTallyAPI

ERRORS = problem_responses(400, 401, 403, 422, 500, 503)
CACHE_CONTROL = "private, no-cache"
#: What changes every view-backed answer: a refresh, the minimum group size, the UTC date.
VERSION_SQL = """
select coalesce(max(f.refreshed_at)::text, 'never'), (select s.min_group_size from tally.analytics_settings s)::text,
       ((now() at time zone 'UTC')::date)::text
  from tally.analytics_freshness() f
"""
Window = Literal["24h", "7d", "30d", "all"]
WindowParam = Annotated[
    Window | None,
    Query(description="24h, 7d, 30d (ending at the last refresh) or all; or give from and to instead."),
]
FromDay = Annotated[dt.date | None, Query(alias="from", description="First UTC day of a range [from, to).")]
ToDay = Annotated[dt.date | None, Query(alias="to", description="The UTC day after the range [from, to).")]
Plan = Annotated[str | None, Query(max_length=200, description="Only events recorded under this plan.")]
Weeks = Annotated[Literal[1, 2, 4], Query(description="Weeks compared: 1, 2 or 4.")]
MAX_DAYS = 3661


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of If-None-Match with our ETag."""
    if not if_none_match:
        return False
    bare = etag.removeprefix("W/")
    return any(t.strip() == "*" or t.strip().removeprefix("W/") == bare for t in if_none_match.split(","))


def _split(text: str | None, field: str, limit: int = 50) -> list[str] | None:
    if text is None:
        return None
    items = [v.strip() for v in text.split(",") if v.strip()]
    if not items or len(items) > limit or any(len(v) > 200 for v in items):
        raise bad_argument(field, f"{field} must be 1 to {limit} comma-separated values of at most 200 characters")
    return items


def _days(from_day: dt.date | None, to_day: dt.date | None) -> None:
    if from_day and to_day and not 0 <= (to_day - from_day).days < MAX_DAYS:
        raise bad_argument("from_day", f"from {from_day} to {to_day} is not a range of 1 to {MAX_DAYS} days")


def build(api: "PgTallyAPI") -> APIRouter:
    router = APIRouter(prefix="/api/admin/usage", tags=["admin"], route_class=api.route)
    Analyst = Annotated[Identity, Depends(api.requires(Role.analyst))]

    async def answer(
        request: Request,
        identity: Identity,
        model: Any,
        read: Callable[[AsyncAdminClient], Awaitable[Any]],
        *,
        live: bool = False,
    ) -> Response:
        """Run ``read`` as tally_analyst and answer JSON with an ETag (304 when If-None-Match has it)."""
        if_none_match = request.headers.get("if-none-match")
        async with api.db.session(identity, Role.analyst) as conn:
            etag = None
            if not live:
                cur = await conn.execute(VERSION_SQL)
                version = await cur.fetchone()
                key = f"{request.url.path}?{sorted(request.query_params.multi_items())}|{version}"
                etag = 'W/"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'
                if _matches(if_none_match, etag):
                    return Response(status_code=304, headers={"ETag": etag, "Cache-Control": CACHE_CONTROL})
            value = await read(AsyncClient(conn, retries=0).admin)
        body = dump(model, value)
        if etag is None:
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            if _matches(if_none_match, etag):
                return Response(status_code=304, headers={"ETag": etag, "Cache-Control": CACHE_CONTROL})
        return Response(body, media_type="application/json", headers={"ETag": etag, "Cache-Control": CACHE_CONTROL})

    cached = {**ERRORS, 304: {"description": "Not modified (If-None-Match matched the ETag)"}}

    @router.get("/analytics", response_model=Dashboard, responses=cached, summary="The whole admin analytics")
    async def analytics(
        request: Request,
        identity: Analyst,
        window: WindowParam = "7d",
        dimensions: Annotated[
            str, Query(max_length=500, description="Leaderboards of these dimensions, comma-separated.")
        ] = "voice,model",
        steps: Annotated[
            str | None, Query(max_length=2000, description="Funnel steps (kinds), comma-separated.")
        ] = None,
        days: Annotated[int, Query(ge=1, le=366, description="Days of the trend and active users.")] = 14,
        weeks: Weeks = 1,
        from_day: FromDay = None,
        to_day: ToDay = None,
        plan: Plan = None,
    ) -> Response:
        """Everything the admin dashboard shows, in one call (what `pgtally admin` prints): overview, totals by
        kind, leaderboards, trend, DAU/WAU/MAU, week-over-week, funnel, reliability, error codes, cohorts,
        freshness; over a named window or the UTC days [from, to), optionally of one plan."""
        dims = _split(dimensions, "dimensions", 10) or []
        funnel = _split(steps, "steps", 20) or list(DEFAULT_FUNNEL)
        _days(from_day, to_day)
        return await answer(
            request,
            identity,
            Dashboard,
            lambda a: a.dashboard(window, dims, funnel, days, from_day=from_day, to_day=to_day, plan=plan, weeks=weeks),
            live=True,
        )

    @router.get("/overview", response_model=Overview | None, responses=cached, summary="Headline figures")
    async def overview(
        request: Request,
        identity: Analyst,
        window: WindowParam = None,
        from_day: FromDay = None,
        to_day: ToDay = None,
        plan: Plan = None,
    ) -> Response:
        """Users, events, success rate, cost, paying users now (live), averages per user and per event, over a
        window (default all time) or the UTC days [from, to). Null for a plan fewer users than the minimum
        group size used."""
        _days(from_day, to_day)
        return await answer(
            request,
            identity,
            Overview | None,
            lambda a: a.overview(window, from_day=from_day, to_day=to_day, plan=plan),
            live=True,
        )

    @router.get("/totals", response_model=list[PlatformTotal], responses=cached, summary="Totals per value")
    async def totals(
        request: Request,
        identity: Analyst,
        dimension: Annotated[str, Query(max_length=64)] = "kind",
        order: Annotated[Literal["events", "cost"], Query(description="events: most events first.")] = "events",
        window: WindowParam = None,
        from_day: FromDay = None,
        to_day: ToDay = None,
        plan: Plan = None,
    ) -> Response:
        """Totals, averages and cost shares per value of a declared dimension (kind, plan, provider, model), over a
        window (default all time) or the UTC days [from, to)."""
        _days(from_day, to_day)
        read = AsyncAdminClient.cost_breakdown if order == "cost" else AsyncAdminClient.totals
        return await answer(
            request,
            identity,
            list[PlatformTotal],
            lambda a: read(a, dimension, window, from_day=from_day, to_day=to_day, plan=plan),
            live=from_day is not None,
        )

    @router.get(
        "/leaderboards/{dimension}",
        response_model=list[LeaderboardEntry],
        responses=cached,
        summary="Top values of a dimension",
    )
    async def leaderboard(
        request: Request,
        identity: Analyst,
        dimension: Annotated[str, Path(max_length=64, description="voice, model, template, ...")],
        window: WindowParam = None,
        metric: Annotated[Literal["events", "quantity", "duration_ms", "cost", "users"], Query()] = "events",
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
        from_day: FromDay = None,
        to_day: ToDay = None,
        plan: Plan = None,
    ) -> Response:
        """Top values (voices, models, templates) in a timeframe (24h, 7d (default), 30d, all, or the UTC days
        [from, to)), ties sharing a rank."""
        _days(from_day, to_day)
        return await answer(
            request,
            identity,
            list[LeaderboardEntry],
            lambda a: a.leaderboard(dimension, window, metric, limit, from_day=from_day, to_day=to_day, plan=plan),
            live=from_day is not None,
        )

    @router.get("/trends", response_model=TrendSeries, responses=cached, summary="Trend sparklines")
    async def trends(
        request: Request,
        identity: Analyst,
        dimension: Annotated[str, Query(max_length=64)] = "kind",
        values: Annotated[str | None, Query(max_length=2000, description="Only these values, comma-separated.")] = None,
        metric: Annotated[
            Literal["events", "failures", "quantity", "duration_ms", "cost", "users"], Query()
        ] = "events",
        from_day: Annotated[dt.date | None, Query(alias="from", description="First UTC day.")] = None,
        to_day: Annotated[dt.date | None, Query(alias="to", description="Last UTC day, included.")] = None,
        plan: Plan = None,
    ) -> Response:
        """Zero-filled daily series per value (default: every active value, the 30 days ending today, UTC)."""
        only = _split(values, "values")
        _days(from_day, to_day)

        async def read(a: AsyncAdminClient) -> TrendSeries:
            points = await a.trend(dimension, only, from_day, to_day, plan=plan)
            days = sorted({p.day for p in points})
            series: dict[str, list[Decimal | None]] = {}
            index = {d: i for i, d in enumerate(days)}
            for p in points:
                row = series.setdefault(p.value, [Decimal(0)] * len(days))
                found = getattr(p, metric)
                row[index[p.day]] = None if found is None else Decimal(found)
            return TrendSeries(dimension=dimension, metric=metric, days=days, series=series, points=points)

        return await answer(request, identity, TrendSeries, read)

    @router.get("/active-users", response_model=list[ActiveUsers], responses=cached, summary="DAU, WAU, MAU")
    async def active_users(
        request: Request,
        identity: Analyst,
        from_day: Annotated[dt.date | None, Query(alias="from", description="First UTC day.")] = None,
        to_day: Annotated[dt.date | None, Query(alias="to", description="Last UTC day, included.")] = None,
        plan: Plan = None,
    ) -> Response:
        """Per day: DAU, WAU, MAU, new users, paying users (live) and attempts (default: the 30 days ending today)."""
        _days(from_day, to_day)
        return await answer(
            request, identity, list[ActiveUsers], lambda a: a.active_users(from_day, to_day, plan=plan), live=True
        )

    @router.get(
        "/week-over-week", response_model=list[WeekOverWeekCard], responses=cached, summary="Week-over-week cards"
    )
    async def week_over_week(
        request: Request,
        identity: Analyst,
        as_of: Annotated[
            dt.date | None, Query(description="Last day compared (default: the last complete UTC day).")
        ] = None,
        dimension: Annotated[str, Query(max_length=64)] = "kind",
        weeks: Weeks = 1,
        plan: Plan = None,
    ) -> Response:
        """The ``weeks`` complete weeks ending `as_of` against those before: platform metrics, then metrics per value
        of a dimension, with absolute and % deltas and a trend."""
        return await answer(
            request,
            identity,
            list[WeekOverWeekCard],
            lambda a: a.week_over_week(as_of, dimension, weeks=weeks, plan=plan),
            live=True,
        )

    @router.get("/funnel", response_model=list[FunnelStep], responses=cached, summary="Funnel")
    async def funnel(
        request: Request,
        identity: Analyst,
        steps: Annotated[
            str | None, Query(max_length=2000, description="Kinds in order (default: the paywall).")
        ] = None,
        from_at: Annotated[dt.datetime | None, Query(alias="from")] = None,
        to_at: Annotated[dt.datetime | None, Query(alias="to")] = None,
        plan: Plan = None,
        window: WindowParam = None,
    ) -> Response:
        """Users who did the steps in order inside [from, to) (live), or inside a named window as of the refresh (as
        the dashboard shows it; not with from/to): counts, conversion and drop-off per step."""
        chosen = _split(steps, "steps", 20) or list(DEFAULT_FUNNEL)
        if window is not None and (from_at is not None or to_at is not None):
            raise bad_argument("window", "give either window or from and to, not both")
        return await answer(
            request,
            identity,
            list[FunnelStep],
            lambda a: a.funnel(chosen, from_at, to_at, plan=plan, window=window),
            live=True,
        )

    @router.get("/reliability", response_model=list[Reliability], responses=cached, summary="Reliability")
    async def reliability(
        request: Request,
        identity: Analyst,
        window: WindowParam = None,
        kind: Annotated[str | None, Query(max_length=64)] = None,
        from_day: FromDay = None,
        to_day: ToDay = None,
        plan: Plan = None,
    ) -> Response:
        """Success rate and average, p50, p95, p99 duration by kind and format (default: the last 7 days)."""
        _days(from_day, to_day)
        return await answer(
            request,
            identity,
            list[Reliability],
            lambda a: a.reliability(window, kind, from_day=from_day, to_day=to_day, plan=plan),
            live=from_day is not None,
        )

    @router.get("/error-codes", response_model=list[ErrorCodeCount], responses=cached, summary="Top error codes")
    async def error_codes(
        request: Request,
        identity: Analyst,
        window: WindowParam = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
        by_format: Annotated[bool, Query()] = False,
        from_day: FromDay = None,
        to_day: ToDay = None,
        plan: Plan = None,
    ) -> Response:
        """The most frequent error codes of failed events per kind (or kind and format)."""
        _days(from_day, to_day)
        return await answer(
            request,
            identity,
            list[ErrorCodeCount],
            lambda a: a.error_codes(window, limit, by_format, from_day=from_day, to_day=to_day, plan=plan),
            live=from_day is not None,
        )

    @router.get("/cohorts", response_model=list[CohortCell], responses=cached, summary="Cohort retention")
    async def cohorts(
        request: Request,
        identity: Analyst,
        from_month: Annotated[dt.date | None, Query(alias="from", description="First cohort month.")] = None,
        to_month: Annotated[dt.date | None, Query(alias="to", description="Last cohort month.")] = None,
        plan: Plan = None,
    ) -> Response:
        """Users by first-active month, active in later months (default: the last 12 cohorts)."""
        _days(from_month, to_month)
        return await answer(request, identity, list[CohortCell], lambda a: a.cohorts(from_month, to_month, plan=plan))

    @router.get("/freshness", response_model=list[ViewFreshness], responses=ERRORS, summary="Freshness")
    async def freshness(identity: Analyst) -> Response:
        """When each analytics view was last refreshed, how long it took, and its age now (seconds)."""
        async with api.db.session(identity, Role.analyst) as conn:
            found = await AsyncClient(conn, retries=0).admin.freshness()
        return respond(list[ViewFreshness], found)

    @router.post("/refresh", response_model=list[RefreshResult], responses=ERRORS, summary="Refresh the views")
    async def refresh(identity: Analyst) -> Response:
        """Refresh every analytics view now, without blocking readers (one row per view; ``skipped`` when another
        refresh runs). Merging pending deltas first is the owner's job (the schedule, or a maintenance DSN)."""
        async with api.db.session(identity, Role.analyst, timeout=False) as conn:
            done = await AsyncClient(conn, retries=0).admin.refresh(merge_first=False)
        return respond(list[RefreshResult], done)

    return router
