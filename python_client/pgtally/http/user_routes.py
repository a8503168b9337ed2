"""The user's own usage: ``/api/usage/summary``, ``history``, ``analytics``, ``insights``, ``export``.

Every route runs as tally_reader with ``tally.user_id`` set to the token's user, so row-level security decides
what is visible: the routes take no user id at all (a ``user_id`` in the query string is ignored), and even a
query naming another user would find nothing. Each calls the library's API methods (the SQL is defined once,
in :mod:`pgtally.user_reads`).
"""

import contextlib
import datetime as dt
import io
import json
import sys
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
import psycopg
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response, StreamingResponse

from .. import reports
from .._query import CopyOut
from ..aio import AsyncClient
from ..user_models import HistoryBucket
from ..user_reads import UserReadsMixin
from .auth import Identity, Role
from .db import sync_session
from .encode import respond
from .problems import Problem, bad_argument, problem_responses
from .schemas import (
    METRICS,
    Patterns,
    Predictions,
    Trends,
    UsageAnalytics,
    UsageHistory,
    UsageInsights,
    UsageSummary,
)

if TYPE_CHECKING:
    from .app import PgTallyAPI

#: History and export ranges: 7d, 30d, 3m, 12m, any N followed by d, w, m or y, or custom (with from and to).
PERIOD_PATTERN = r"^(custom|[1-9][0-9]{0,3}[dwmy])$"
EXPORT_PERIOD_PATTERN = r"^(custom|this_month|last_month|[1-9][0-9]{0,3}[dwmy])$"
AT = Query(description="The moment the question is asked (default now), as the SQL functions' `at`.")
ERRORS = problem_responses(400, 401, 403, 422, 500, 503)
EXPORT_MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "pdf": "application/pdf",
    "html": "text/html; charset=utf-8",
}
#: Rows fetched per round trip when a JSON export streams from a server-side cursor.
JSON_EXPORT_BATCH = 2000


class _HistoryOut(UsageHistory):
    """What /history serializes: the library's buckets as they are (UsageHistory documents them)."""

    buckets: list[HistoryBucket]  # type: ignore[assignment]


def client(conn: psycopg.AsyncConnection[Any]) -> AsyncClient:
    """The library's async client on the request's connection (inside its transaction, so never retried)."""
    return AsyncClient(conn, retries=0)


def build(api: "PgTallyAPI") -> APIRouter:
    router = APIRouter(tags=["usage"], route_class=api.route)
    Reader = Annotated[Identity, Depends(api.requires(Role.reader))]
    At = Annotated[dt.datetime | None, AT]

    @router.get("/api/usage/summary", response_model=UsageSummary, responses=ERRORS, summary="Summary card")
    async def summary(
        identity: Reader,
        top: Annotated[int, Query(ge=1, le=50, description="How many top voices and models.")] = 5,
        at: At = None,
    ) -> Response:
        """The user's summary card (lifetime totals, per kind, top voices and models, this billing period against
        the plan's limits), engagement (streaks, days active, sessions) and subscription."""
        async with api.db.session(identity, Role.reader) as conn:
            c = client(conn)
            card = await c.summary_card(identity.user_id, top_n=top, at=at)
            engagement = await c.engagement_profile(identity.user_id, at)
            subscription = await c.subscription_summary(identity.user_id, at)
        summary = UsageSummary(user_id=identity.user_id, card=card, engagement=engagement, subscription=subscription)
        return respond(UsageSummary, summary)

    @router.get(
        "/api/usage/history",
        response_model=UsageHistory,
        responses=ERRORS,
        summary="Usage history",
    )
    async def history(
        identity: Reader,
        period: Annotated[str, Query(pattern=PERIOD_PATTERN, description="7d, 30d, 3m, 12m, ... or custom.")] = "30d",
        from_day: Annotated[dt.date | None, Query(alias="from", description="First local day (custom).")] = None,
        to_day: Annotated[dt.date | None, Query(alias="to", description="Last local day, included (custom).")] = None,
        metrics: Annotated[
            str | None, Query(max_length=100, description=f"Comma-separated, among {', '.join(METRICS)} (default all).")
        ] = None,
        group_by: Annotated[Literal["day", "week", "month"], Query(alias="groupBy")] = "day",
        dimension: Annotated[str | None, Query(max_length=64, description="Stack by a dimension (voice, ...).")] = None,
        at: At = None,
    ) -> Response:
        """Usage per day, week (Monday first) or month over a range, every bucket present with zeros, optionally
        stacked by a dimension. A range of N days ends today (the user's time zone); weeks, months and years are
        calendar ones ending with the current one."""
        wanted = _metrics(metrics)
        async with api.db.session(identity, Role.reader) as conn:
            buckets = await client(conn).usage_history(
                identity.user_id, period, group_by, dimension=dimension, from_day=from_day, to_day=to_day, at=at
            )
        out = _HistoryOut(
            user_id=identity.user_id,
            period=period,
            group_by=group_by,
            dimension=dimension,
            metrics=list(wanted),
            buckets=buckets,
        )
        # Every field of the library's buckets but the metrics not asked for.
        return respond(_HistoryOut, out, exclude={"buckets": {"__all__": set(METRICS) - set(wanted)}})

    @router.get("/api/usage/analytics", response_model=UsageAnalytics, responses=ERRORS, summary="Personal analytics")
    async def analytics(
        identity: Reader,
        type: Annotated[
            Literal["trends", "patterns", "predictions"] | None, Query(description="One part (default all three).")
        ] = None,
        kind: Annotated[str | None, Query(max_length=64, description="Trends of one kind (default all).")] = None,
        metric: Annotated[
            Literal["events", "quantity", "duration_ms", "cost"],
            Query(description="Of comparisons and peak. quantity adds one kind's unit only: give a kind with it."),
        ] = "events",
        year: Annotated[int | None, Query(ge=2000, le=2200, description="Calendar year (default this one).")] = None,
        months: Annotated[int, Query(ge=1, le=120, description="Monthly summaries: how many months.")] = 12,
        at: At = None,
    ) -> Response:
        """Trends (week/month/year-over-year comparisons, peak month, monthly summaries), patterns (weekdays,
        hours of the week, calendar heatmap, engagement) and predictions (quota forecast, recommended plan)."""
        user = identity.user_id
        result = UsageAnalytics(user_id=user)
        async with api.db.session(identity, Role.reader) as conn:
            c = client(conn)
            if type in (None, "trends"):
                result.trends = Trends(
                    comparisons=await c.compare_usage(user, metric=metric, kind=kind, at=at),
                    peak=await c.usage_peak(user, "12m", "month", metric=metric, kind=kind, at=at),
                    monthly=await c.monthly_summaries(user, months, at=at),
                )
            if type in (None, "patterns"):
                result.patterns = Patterns(
                    weekdays=await c.weekday_distribution(user, at=at),
                    hours_of_week=await c.hour_of_week_heatmap(user),
                    calendar=await c.calendar_heatmap(user, year, at=at),
                    engagement=await c.engagement_profile(user, at),
                )
            if type in (None, "predictions"):
                result.predictions = Predictions(
                    forecast=await c.quota_forecast(user, at=at),
                    recommended_plan=await c.recommended_plan(user, at=at),
                )
        return respond(UsageAnalytics, result)

    @router.get("/api/usage/insights", response_model=UsageInsights, responses=ERRORS, summary="Insights")
    async def insights(identity: Reader, at: At = None) -> Response:
        """Short plain-language insights with their numbers ("tts usage is up 40% this month so far ..."), the
        days of the last 30 far outside the user's usual, and the plan that would cover this period's usage."""
        user = identity.user_id
        async with api.db.session(identity, Role.reader) as conn:
            c = client(conn)
            found = await c.usage_insights(user, at=at)
            # By events: a quantity over all kinds would add different units.
            anomalies = [a for a in await c.usage_anomalies(user, metric="events", at=at) if a.is_anomaly]
            plan = await c.recommended_plan(user, at=at)
        return respond(
            UsageInsights, UsageInsights(user_id=user, insights=found, anomalies=anomalies, recommended_plan=plan)
        )

    @router.get(
        "/api/usage/export",
        response_class=Response,
        responses={
            200: {
                "description": "The export: CSV and JSON stream from the database; PDF and HTML are the usage report.",
                "content": {media: {} for media in EXPORT_MEDIA.values()},
            },
            **problem_responses(400, 401, 403, 404, 422, 500, 501, 503),
        },
        summary="Export",
    )
    async def export(
        request: Request,
        identity: Reader,
        format: Annotated[
            Literal["csv", "json", "pdf", "html"] | None,
            Query(description="Default: from the Accept header (text/csv, application/pdf, text/html), else json."),
        ] = None,
        period: Annotated[
            str,
            Query(pattern=EXPORT_PERIOD_PATTERN, description="7d, 30d, 3m, 12m, this_month, last_month or custom."),
        ] = "30d",
        from_day: Annotated[dt.date | None, Query(alias="from")] = None,
        to_day: Annotated[dt.date | None, Query(alias="to")] = None,
        data: Annotated[
            Literal["events", "rollups"], Query(description="Raw events, or daily rollups per dimension.")
        ] = "events",
        dimension: Annotated[str | None, Query(max_length=64, description="Rollups of one dimension.")] = None,
        raw: Annotated[bool, Query(description="CSV cells verbatim (unsafe to open in a spreadsheet).")] = False,
        at: At = None,
    ) -> Response:
        """The user's events (or daily rollups) of a period as CSV or JSON, streamed from the database in
        constant memory; or the printable usage report (PDF, HTML) of the period's last month."""
        chosen = format or _negotiate(request.headers.get("accept", ""))
        if chosen in ("pdf", "html"):
            return await _report(api, identity, chosen, period, from_day, to_day, at)
        stack = contextlib.AsyncExitStack()
        conn = await stack.enter_async_context(api.db.session(identity, Role.reader, timeout=False))
        try:
            first, last, from_at, to_at = await _export_range(conn, identity.user_id, period, from_day, to_day, at)
            if chosen == "csv":
                # The library's export methods define the COPY (text cells made safe for spreadsheets unless
                # raw); it is run here, chunk by chunk into the response, instead of into a file.
                sink = io.BytesIO()
                if data == "events":
                    call = UserReadsMixin.export_events_csv.call(None, identity.user_id, from_at, to_at, sink, raw=raw)
                else:
                    call = UserReadsMixin.export_rollups_csv.call(
                        None, identity.user_id, first, last, sink, dimension=dimension, raw=raw
                    )
                query = next(call)
                call.close()
                assert isinstance(query, CopyOut)
                body = _copy_chunks(conn, query.sql, query.params, stack)
            else:
                if data == "events":
                    sql = "select to_jsonb(e)::text from tally.export_events(%s, %s, %s) e"
                    params: tuple[Any, ...] = (identity.user_id, from_at, to_at)
                else:
                    sql = "select to_jsonb(r)::text from tally.export_rollups(%s, %s, %s, %s) r"
                    params = (identity.user_id, first, last, dimension)
                head = {"user_id": identity.user_id, "data": data, "from": str(first), "to": str(last)}
                body = _json_chunks(conn, sql, params, head, data, stack)
            # The start is read here, so that an error of the query (an unknown dimension, a bad range) is still a
            # problem document: the JSON head with the first rows, or the CSV header and the first row.
            first_chunk = await anext(body)
            if chosen == "csv":
                first_chunk += await anext(body, b"")
        except BaseException:
            await _close(stack, *sys.exc_info())
            raise
        name = f"usage-{identity.user_id}-{first}-{last}-{data}.{chosen}"
        return StreamingResponse(
            _prepend(first_chunk, body),
            media_type=EXPORT_MEDIA[chosen],
            headers={"Content-Disposition": _attachment(name), "Cache-Control": "private, no-store"},
        )

    return router


def _metrics(text: str | None) -> tuple[str, ...]:
    if not text:
        return METRICS
    wanted = tuple(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    unknown = [m for m in wanted if m not in METRICS]
    if unknown or not wanted:
        raise bad_argument("metrics", f"metrics {', '.join(unknown)!s} not known: use {', '.join(METRICS)}")
    return wanted


def _negotiate(accept: str) -> str:
    for media, name in (("text/csv", "csv"), ("application/pdf", "pdf"), ("text/html", "html")):
        if media in accept.lower():
            return name
    return "json"


def _attachment(name: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    return f'attachment; filename="{safe}"'


async def _export_range(
    conn: psycopg.AsyncConnection[Any],
    user_id: str,
    period: str,
    from_day: dt.date | None,
    to_day: dt.date | None,
    at: dt.datetime | None,
) -> tuple[dt.date, dt.date, dt.datetime, dt.datetime]:
    """First and last local day of the period, and the moments they start and end, in the user's time zone."""
    named = period if period in ("this_month", "last_month") else None
    cur = await conn.execute(
        """
        with z as (select tally._user_time_zone(%(u)s) as tz),
        t as (select z.tz, (coalesce(%(at)s::timestamptz, now()) at time zone z.tz)::date as today from z),
        d as (
          select t.tz, r.first_day, r.last_day
            from t, tally._range_days(
                      case when %(named)s::text is null then %(period)s else 'custom' end,
                      case %(named)s::text
                        when 'this_month' then date_trunc('month', t.today)::date
                        when 'last_month' then (date_trunc('month', t.today) - interval '1 month')::date
                        else %(from)s::date end,
                      case %(named)s::text
                        when 'this_month' then t.today
                        when 'last_month' then (date_trunc('month', t.today) - interval '1 day')::date
                        else %(to)s::date end,
                      t.today) r
        )
        select d.first_day, d.last_day, d.first_day::timestamp at time zone d.tz,
               (d.last_day + 1)::timestamp at time zone d.tz
          from d
        """,
        {"u": user_id, "at": at, "named": named, "period": period, "from": from_day, "to": to_day},
    )
    row = await cur.fetchone()
    assert row is not None
    return row[0], row[1], row[2], row[3]


async def _copy_chunks(
    conn: psycopg.AsyncConnection[Any], sql: str, params: Any, stack: contextlib.AsyncExitStack
) -> AsyncGenerator[bytes, None]:
    """The chunks of ``COPY ... TO STDOUT`` as they arrive; the request's session ends with the stream."""
    try:
        async with conn.cursor() as cur, cur.copy(sql, params) as copy:
            async for chunk in copy:
                yield bytes(chunk)
    except BaseException:
        await _close(stack, *sys.exc_info())
        raise
    await _close(stack, None, None, None)


async def _json_chunks(
    conn: psycopg.AsyncConnection[Any],
    sql: str,
    params: Any,
    head: dict[str, Any],
    key: str,
    stack: contextlib.AsyncExitStack,
) -> AsyncGenerator[bytes, None]:
    """A JSON document ``{..head, key: [rows]}`` whose rows come from a server-side cursor, batch by batch."""
    try:
        async with conn.cursor(name="pgtally_http_export") as cur:
            await cur.execute(sql, params)
            rows = await cur.fetchmany(JSON_EXPORT_BATCH)  # an error of the query shows here, before any byte
            yield (json.dumps(head)[:-1] + f', "{key}": [').encode()
            first = True
            while rows:
                text = ",".join(r[0] for r in rows)
                yield (text if first else "," + text).encode()
                first = False
                rows = await cur.fetchmany(JSON_EXPORT_BATCH)
            yield b"]}"
    except BaseException:
        await _close(stack, *sys.exc_info())
        raise
    await _close(stack, None, None, None)


async def _prepend(first: bytes, rest: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    try:
        yield first
        async for chunk in rest:
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            await rest.aclose()


async def _close(stack: contextlib.AsyncExitStack, *exc: Any) -> None:
    """End the request's session, even when the stream is being cancelled (a client that went away)."""
    with anyio.CancelScope(shield=True):
        await stack.__aexit__(*exc)


async def _report(
    api: "PgTallyAPI",
    identity: Identity,
    fmt: str,
    period: str,
    from_day: dt.date | None,
    to_day: dt.date | None,
    at: dt.datetime | None,
) -> Response:
    """The usage report of the period's last month (PDF or HTML), rendered in a thread over a sync connection."""
    render = reports.render_pdf if fmt == "pdf" else reports.render_html
    async with api.db.session(identity, Role.reader) as conn:
        _, last, _, _ = await _export_range(conn, identity.user_id, period, from_day, to_day, at)
    dsn = api.settings.dsn
    assert dsn is not None

    def work() -> Any:
        with sync_session(dsn, identity, Role.reader, api.settings) as sync_conn:
            return render(sync_conn, identity.user_id, end=last)

    try:
        content = await anyio.to_thread.run_sync(work)
    except reports.UnknownUser as exc:
        raise Problem(404, "no-usage", "No usage", str(exc)) from exc
    except reports.ChromiumMissing as exc:
        raise Problem(501, "not-implemented", "PDF not available", str(exc)) from exc
    except reports.PdfFailed as exc:
        raise Problem(503, "pdf-failed", "PDF not rendered", str(exc)) from exc
    body = content.encode() if isinstance(content, str) else bytes(content)
    name = f"usage-report-{identity.user_id}-{last}.{fmt}"
    disposition = _attachment(name) if fmt == "pdf" else "inline"
    return Response(
        body, media_type=EXPORT_MEDIA[fmt], headers={"Content-Disposition": disposition, "Cache-Control": "private"}
    )
