"""Prometheus metrics of the API and of the ledger behind it (``GET /metrics``, text format).

Counted in the process: request latency per route (histogram), events recorded, duplicates skipped and
rejections by SQLSTATE through the ingest endpoint, and the merges this server runs (duration, rows).
Read from the database at each scrape: the age, refresh duration and rows of every analytics view
(``tally.analytics_freshness()``, as tally_analyst) and, with a maintenance DSN, the pending deltas and how
old the oldest is. Each API instance has its own registry, so several apps in one process do not clash.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger("pgtally.http")

#: Request latency buckets (seconds): fine below 25 ms, where the user reads are.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

BACKLOG_SQL = """
select count(*), extract(epoch from clock_timestamp() - min(p.occurred_at))::float8
  from tally.pending_deltas p
"""


class Metrics:
    """The registry and every metric of one API instance."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Histogram(
            "pgtally_http_request_duration_seconds",
            "Time from the request reaching its route to the response headers, per route and status.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ingested = Counter(
            "pgtally_ingest_events",
            "Events sent to POST /api/usage/events, by result: recorded, duplicate, rejected.",
            ["result"],
            registry=r,
        )
        self.rejections = Counter(
            "pgtally_ingest_rejections",
            "Events the ingest endpoint rejected, by the SQLSTATE the database raised.",
            ["sqlstate"],
            registry=r,
        )
        self.merge_duration = Histogram(
            "pgtally_merge_duration_seconds",
            "Duration of each tally.merge_pending() call this server ran.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
            registry=r,
        )
        self.merge_rows = Counter("pgtally_merge_rows", "Pending deltas merged by this server.", registry=r)
        self.merge_errors = Counter("pgtally_merge_errors", "Merges this server tried that failed.", registry=r)
        self.merge_last = Gauge(
            "pgtally_merge_last_success_timestamp_seconds",
            "Unix time of the last merge run by this server that succeeded.",
            registry=r,
        )
        self.pending = Gauge(
            "pgtally_pending_deltas",
            "Pending deltas not merged into the rollups yet (needs a maintenance DSN).",
            registry=r,
        )
        self.pending_age = Gauge(
            "pgtally_pending_deltas_oldest_age_seconds",
            "Age of the oldest pending delta by its event's occurred_at (0 when none are pending; needs a maintenance DSN).",
            registry=r,
        )
        self.view_age = Gauge(
            "pgtally_analytics_view_age_seconds",
            "Seconds since the data of each analytics view were taken (its last refresh); absent before the first.",
            ["view"],
            registry=r,
        )
        self.view_refresh = Gauge(
            "pgtally_analytics_view_refresh_duration_seconds",
            "Duration of each analytics view's last refresh.",
            ["view"],
            registry=r,
        )
        self.view_rows = Gauge(
            "pgtally_analytics_view_rows", "Rows of each analytics view at its last refresh.", ["view"], registry=r
        )
        self.scrape_errors = Counter(
            "pgtally_metrics_scrape_errors",
            "Database reads of /metrics that failed, by part (freshness, backlog).",
            ["part"],
            registry=r,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).observe(seconds)

    def count_ingest(self, recorded: int, duplicates: int, rejected_states: list[str]) -> None:
        self.ingested.labels("recorded").inc(recorded)
        self.ingested.labels("duplicate").inc(duplicates)
        self.ingested.labels("rejected").inc(len(rejected_states))
        for state in rejected_states:
            self.rejections.labels(state).inc()

    def observe_merge(self, rows: int, seconds: float) -> None:
        self.merge_duration.observe(seconds)
        self.merge_rows.inc(rows)
        self.merge_last.set(time.time())

    def set_freshness(self, rows: list[tuple[Any, ...]]) -> None:
        """From ``view_name, age_seconds, duration_ms, row_count`` rows (views never refreshed have no age)."""
        for gauge in (self.view_age, self.view_refresh, self.view_rows):
            gauge.clear()
        for view, age, duration_ms, row_count in rows:
            if age is None:
                continue
            self.view_age.labels(view).set(float(age))
            self.view_refresh.labels(view).set(float(duration_ms or 0) / 1000)
            self.view_rows.labels(view).set(float(row_count or 0))

    def set_backlog(self, count: int, oldest_age: float | None) -> None:
        self.pending.set(count)
        self.pending_age.set(oldest_age or 0.0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


async def read_backlog(conn: psycopg.AsyncConnection[Any]) -> tuple[int, float | None]:
    """Pending deltas and the age of the oldest (by occurred_at), read with the maintenance role."""
    cur = await conn.execute(BACKLOG_SQL)
    row = await cur.fetchone()
    return (int(row[0]), row[1]) if row else (0, None)
