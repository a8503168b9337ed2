"""``GET /metrics``: Prometheus text format, with the database's figures read at each scrape."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import psycopg
import psycopg_pool
from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from .auth import Role

if TYPE_CHECKING:
    from .app import PgTallyAPI

log = logging.getLogger("pgtally.http")

FRESHNESS_SQL = """
select f.view_name, extract(epoch from f.age)::float8, f.duration_ms, f.row_count
  from tally.analytics_freshness() f
"""


def metrics_routes(api: PgTallyAPI) -> APIRouter:
    router = APIRouter(tags=["operations"], route_class=api.route)
    if not api.settings.metrics:
        return router

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"description": "Prometheus text format", "content": {CONTENT_TYPE_LATEST: {}}}},
        summary="Prometheus metrics",
    )
    async def metrics() -> Response:
        """Request latency per route, ingest results, merges, analytics freshness and (with a maintenance DSN) the backlog.

        Not authenticated: serve it on a network only Prometheus reaches, or turn it off (``PGTALLY_METRICS=0``).
        """
        try:
            async with api.db.session(None, Role.analyst) as conn:
                cur = await conn.execute(FRESHNESS_SQL)
                api.metrics.set_freshness(list(await cur.fetchall()))
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            api.metrics.scrape_errors.labels("freshness").inc()
            log.warning("metrics: cannot read the analytics freshness: %s", exc)
        if api.maintenance is not None:
            try:
                api.metrics.set_backlog(*await api.maintenance.backlog())
            except psycopg.Error as exc:
                api.metrics.scrape_errors.labels("backlog").inc()
                log.warning("metrics: cannot read the backlog: %s", exc)
        return Response(api.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return router
