"""Admin routes and /metrics against a real uvicorn server: the library's answers, ETags, Prometheus figures.

Events go in through POST /api/usage/events (as tally_writer); the owner merges and refreshes, then every
admin route is compared with the same read through the library (``client.admin``) by the owner.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import TypeAdapter

from http_support import SECRET, Api, api_login_role, serve
from pgtally import Client
from pgtally.admin_models import (
    ActiveUsers,
    CohortCell,
    ErrorCodeCount,
    FunnelStep,
    LeaderboardEntry,
    Overview,
    PlatformTotal,
    Reliability,
    WeekOverWeekCard,
)
from pgtally.http import Settings

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
FUNNEL = ["paywall.viewed", "paywall.clicked", "checkout.started", "checkout.completed"]


def jsonable(model: Any, value: Any) -> Any:
    return TypeAdapter(model).dump_python(value, mode="json")


def platform_events() -> list[dict]:
    """Six users over the last days: tts with voices, exports that fail with error codes, a paywall funnel."""
    events: list[dict] = []
    for u in range(6):
        user = f"user-{u}"
        for i in range(4 + u):
            events.append(
                {
                    "event_id": f"{user}-tts-{i}",
                    "user_id": user,
                    "kind": "tts",
                    "quantity": 100 * (i + 1),
                    "duration_ms": 2000 + 10 * i,
                    "cost": "0.002",
                    "occurred_at": (NOW - dt.timedelta(hours=3 + 7 * i)).isoformat(),
                    "attributes": {"voice": "af_alloy" if i % 3 else "bf_emma", "model": "kokoro"},
                }
            )
        events.append(
            {
                "event_id": f"{user}-export",
                "user_id": user,
                "kind": "export",
                "quantity": 1,
                "status": "failed" if u % 2 else "succeeded",
                "error_code": "timeout" if u % 2 else None,
                "duration_ms": 500 + u,
                "occurred_at": (NOW - dt.timedelta(hours=5)).isoformat(),
                "attributes": {"format": "pdf"},
            }
        )
        for step, kind in enumerate(FUNNEL[: 1 + u % 4]):
            events.append(
                {
                    "event_id": f"{user}-{kind}",
                    "user_id": user,
                    "kind": kind,
                    "billable": False,
                    "occurred_at": (NOW - dt.timedelta(hours=30 - step)).isoformat(),
                }
            )
    return events


@pytest.fixture
def owner(dsn: str) -> Iterator[Client]:
    with Client.connect(dsn) as client:
        yield client


@pytest.fixture
def api(dsn: str, login_role, server_dsn: str, owner: Client) -> Iterator[Api]:  # type: ignore[no-untyped-def]
    owner.admin.set_min_group_size(1)  # six users: show every group
    owner.upsert_plan("free", tier=0, monthly_price=0, is_default=True)  # every event is recorded under it
    name = api_login_role(login_role, server_dsn)
    settings = Settings(dsn=psycopg.conninfo.make_conninfo(dsn, user=name), jwt_secret=SECRET, maintenance_dsn=dsn)
    with serve(settings) as url:
        client = Api(url)
        r = client.post("/api/usage/events", "producer", "writer", json=platform_events())
        assert r.status_code == 200 and r.json()["rejected"] == 0, r.text
        owner.admin.refresh()
        yield client
        client.close()


def test_admin_routes_are_the_library_answers(api: Api, owner: Client) -> None:
    a = owner.admin
    today = NOW.date()
    yesterday = today - dt.timedelta(days=1)
    since = (NOW - dt.timedelta(days=7)).isoformat()
    checks: list[tuple[str, Any, Any]] = [
        ("/api/admin/usage/overview", Overview | None, a.overview()),
        ("/api/admin/usage/totals?dimension=voice", list[PlatformTotal], a.totals("voice")),
        ("/api/admin/usage/totals?order=cost", list[PlatformTotal], a.cost_breakdown("kind")),
        (
            "/api/admin/usage/leaderboards/voice?window=7d&metric=duration_ms&limit=5",
            list[LeaderboardEntry],
            a.leaderboard("voice", "7d", "duration_ms", 5),
        ),
        (
            f"/api/admin/usage/active-users?from={today - dt.timedelta(days=3)}&to={today}",
            list[ActiveUsers],
            a.active_users(today - dt.timedelta(days=3), today),
        ),
        (f"/api/admin/usage/week-over-week?as_of={yesterday}", list[WeekOverWeekCard], a.week_over_week(yesterday)),
        (
            f"/api/admin/usage/funnel?steps={','.join(FUNNEL)}&from={since.replace('+', '%2B')}",
            list[FunnelStep],
            a.funnel(FUNNEL, NOW - dt.timedelta(days=7)),
        ),
        ("/api/admin/usage/reliability?window=7d&kind=export", list[Reliability], a.reliability("7d", "export")),
        ("/api/admin/usage/error-codes?window=30d", list[ErrorCodeCount], a.error_codes("30d")),
        ("/api/admin/usage/cohorts", list[CohortCell], a.cohorts()),
        # Timeframes: a named window, a range of UTC days [from, to), one plan.
        ("/api/admin/usage/totals?window=24h", list[PlatformTotal], a.totals("kind", "24h")),
        (
            f"/api/admin/usage/leaderboards/voice?from={today - dt.timedelta(days=2)}&to={today + dt.timedelta(days=1)}",
            list[LeaderboardEntry],
            a.leaderboard("voice", from_day=today - dt.timedelta(days=2), to_day=today + dt.timedelta(days=1)),
        ),
        ("/api/admin/usage/overview?window=30d&plan=free", Overview | None, a.overview("30d", plan="free")),
        ("/api/admin/usage/reliability?plan=free&window=all", list[Reliability], a.reliability("all", plan="free")),
    ]
    for path, model, expected in checks:
        r = api.get(path, "admin", "analyst")
        assert r.status_code == 200, (path, r.text)
        got, want = r.json(), jsonable(model, expected)
        if "/funnel" in path or "from=" in path:  # computed at call time: refreshed_at is the moment of each query
            got, want = ([{k: v for k, v in s.items() if k != "refreshed_at"} for s in x] for x in (got, want))
        assert got == want, path
    # Numbers a user of the dashboard would check.
    overview = api.get("/api/admin/usage/overview", "admin", "analyst").json()
    assert overview["users"] == 6 and overview["events"] == sum(4 + u for u in range(6)) + 3 + sum(
        1 + u % 4 for u in range(6)
    )
    funnel = api.get(f"/api/admin/usage/funnel?from={since.replace('+', '%2B')}", "admin", "analyst").json()
    assert [s["users"] for s in funnel] == [6, 4, 2, 1]  # the default funnel is the paywall's
    # A named window as of the refresh (what the dashboard shows): precomputed for the declared paywall funnel.
    weekly = api.get("/api/admin/usage/funnel?window=7d", "admin", "analyst").json()
    assert weekly == jsonable(list[FunnelStep], a.funnel(window="7d")) and [s["users"] for s in weekly] == [6, 4, 2, 1]
    both = api.get(f"/api/admin/usage/funnel?window=7d&from={since.replace('+', '%2B')}", "admin", "analyst")
    assert (both.status_code, both.json()["field"]) == (400, "window"), both.text
    errors = api.get("/api/admin/usage/error-codes?window=30d", "admin", "analyst").json()
    assert [(e["error_code"], e["failures"]) for e in errors] == [("timeout", 3)]
    by_plan = api.get("/api/admin/usage/overview?plan=free", "admin", "analyst").json()
    assert by_plan["users"] == 6
    unknown = api.get("/api/admin/usage/overview?plan=team", "admin", "analyst")
    assert (unknown.status_code, unknown.json()["sqlstate"], unknown.json()["field"]) == (400, "PT011", "plan")


def test_trend_sparklines_and_the_whole_analytics(api: Api, owner: Client) -> None:
    first, last = NOW.date() - dt.timedelta(days=6), NOW.date()
    points = owner.admin.trend("kind", ["tts", "export"], first, last)
    r = api.get(f"/api/admin/usage/trends?values=tts,export&from={first}&to={last}&metric=quantity", "a", "analyst")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["days"] == [str(first + dt.timedelta(days=i)) for i in range(7)]
    for value in ("tts", "export"):
        expected = [str(p.quantity) for p in sorted(points, key=lambda p: p.day) if p.value == value]
        assert body["series"][value] == expected
    assert sum(int(x) for x in body["series"]["tts"]) == sum(100 * (i + 1) for u in range(6) for i in range(4 + u))
    r = api.get(f"/api/admin/usage/trends?from={last}&to={first}", "a", "analyst")
    assert (r.status_code, r.json()["field"]) == (400, "from_day")

    r = api.get("/api/admin/usage/analytics?window=7d&days=7", "a", "analyst")
    assert r.status_code == 200, r.text
    board = r.json()
    expected = owner.admin.dashboard("7d", days=7)
    assert board["overview"] == jsonable(Overview | None, expected.overview)
    assert board["leaderboards"]["voice"] == jsonable(list[LeaderboardEntry], expected.leaderboards["voice"])
    assert [s["users"] for s in board["funnel"]] == [s.users for s in expected.funnel]
    assert {f["view_name"] for f in board["freshness"]} == {f.view_name for f in expected.freshness}
    assert board["time_window"] == "7d" and board["min_group_size"] == 1


def test_view_reads_answer_304_until_the_next_refresh(api: Api, owner: Client) -> None:
    path = "/api/admin/usage/totals?dimension=voice"
    first = api.get(path, "a", "analyst")
    etag = first.headers["etag"]
    assert etag.startswith('W/"') and first.headers["cache-control"] == "private, no-cache"
    again = api.get(path, "a", "analyst", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    other = api.get("/api/admin/usage/totals?dimension=kind", "a", "analyst", headers={"If-None-Match": etag})
    assert other.status_code == 200, "another query is another representation"
    # New events change nothing until the views are refreshed; the refresh changes the ETag.
    api.post(
        "/api/usage/events",
        "p",
        "writer",
        json=[
            {"event_id": "late", "user_id": "user-0", "kind": "tts", "quantity": 7, "attributes": {"voice": "af_alloy"}}
        ],
    )
    assert api.get(path, "a", "analyst", headers={"If-None-Match": etag}).status_code == 304
    owner.admin.refresh()
    fresh = api.get(path, "a", "analyst", headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["etag"] != etag
    # A read with live parts: an ETag of its body.
    live = api.get("/api/admin/usage/overview", "a", "analyst")
    assert live.headers["etag"].startswith('"')
    assert (
        api.get(
            "/api/admin/usage/overview", "a", "analyst", headers={"If-None-Match": live.headers["etag"]}
        ).status_code
        == 304
    )


def test_refresh_and_freshness_routes(api: Api) -> None:
    r = api.post("/api/admin/usage/refresh", "a", "analyst")
    assert r.status_code == 200, r.text
    assert all(row["status"] != "skipped" for row in r.json()) and len(r.json()) >= 8
    fresh = api.get("/api/admin/usage/freshness", "a", "analyst").json()
    assert all(f["refreshed_at"] is not None for f in fresh)
    assert api.post("/api/admin/usage/refresh", "alice", "reader").status_code == 403


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics(api: Api, dsn: str) -> None:
    bad = [
        {"event_id": "m-neg", "user_id": "u", "kind": "tts", "quantity": -1},
        {"event_id": "m-neg2", "user_id": "u", "kind": "tts", "quantity": -2},
        {"event_id": "m-far", "user_id": "u", "kind": "tts", "occurred_at": "1990-01-01T00:00:00Z"},
        {"event_id": "user-0-tts-0", "user_id": "user-0", "kind": "tts"},
        {"event_id": "m-ok", "user_id": "u", "kind": "tts"},
    ]
    assert api.post("/api/usage/events", "p", "writer", json=bad).status_code == 200
    api.get("/api/usage/summary", "alice")
    r = api.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    m = _samples(r.text)
    recorded = len(platform_events()) + 1
    assert m[("pgtally_ingest_events_total", (("result", "recorded"),))] == recorded
    assert m[("pgtally_ingest_events_total", (("result", "duplicate"),))] == 1
    assert m[("pgtally_ingest_events_total", (("result", "rejected"),))] == 3
    assert m[("pgtally_ingest_rejections_total", (("sqlstate", "PT002"),))] == 2
    assert m[("pgtally_ingest_rejections_total", (("sqlstate", "PT004"),))] == 1
    count = (
        "pgtally_http_request_duration_seconds_count",
        (("method", "POST"), ("route", "/api/usage/events"), ("status", "200")),
    )
    assert m[count] == 2
    assert (
        m[
            (
                "pgtally_http_request_duration_seconds_count",
                (("method", "GET"), ("route", "/api/usage/summary"), ("status", "200")),
            )
        ]
        == 1
    )
    with psycopg.connect(dsn) as conn:
        pending = conn.execute("select count(*) from tally.pending_deltas").fetchone()[0]  # type: ignore[index]
        views = [r[0] for r in conn.execute("select view_name from tally.analytics_freshness()")]
    assert pending > 0 and m[("pgtally_pending_deltas", ())] == pending
    assert m[("pgtally_pending_deltas_oldest_age_seconds", ())] > 0
    for view in views:
        assert 0 <= m[("pgtally_analytics_view_age_seconds", (("view", view),))] < 600
        assert ("pgtally_analytics_view_rows", (("view", view),)) in m


def test_background_merge_is_measured(dsn: str, login_role, server_dsn: str) -> None:  # type: ignore[no-untyped-def]
    name = api_login_role(login_role, server_dsn)
    settings = Settings(
        dsn=psycopg.conninfo.make_conninfo(dsn, user=name), jwt_secret=SECRET, maintenance_dsn=dsn, merge_interval_s=0.2
    )
    with serve(settings) as url:
        api = Api(url)
        events = [{"event_id": f"bm-{i}", "user_id": f"u{i % 3}", "kind": "tts", "quantity": i} for i in range(50)]
        assert api.post("/api/usage/events", "p", "writer", json=events).json()["recorded"] == 50
        deadline = time.monotonic() + 20
        while True:
            m = _samples(api.get("/metrics").text)
            if m.get(("pgtally_merge_rows_total", ()), 0) >= 50:
                break
            assert time.monotonic() < deadline, "the background merge did not run"
            time.sleep(0.1)
        assert m[("pgtally_pending_deltas", ())] == 0
        assert m[("pgtally_merge_duration_seconds_count", ())] >= 1
        assert m[("pgtally_merge_last_success_timestamp_seconds", ())] > time.time() - 60
        api.close()
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select count(*) from tally.pending_deltas").fetchone() == (0,)
        assert conn.execute("select sum(quantity) from tally.user_totals where dimension = 'kind'").fetchone() == (
            sum(range(50)),
        )
