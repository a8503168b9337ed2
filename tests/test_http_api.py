"""The HTTP API against a real uvicorn server and a real database: every user route, ingest, problems, identity.

Data are recorded through the API's own ingest endpoint (the real write path, as tally_writer); the answers
are compared with the SQL functions' answers read by the owner through the library for the same moment
(``at``). The server connects as a NOINHERIT login role that may only become tally_reader, tally_analyst or
tally_writer, as docs/http.md tells operators to set it up.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import tracemalloc
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from pydantic import TypeAdapter

from http_support import SECRET, Api, api_login_role, auth, serve, token
from pgtally import Client
from pgtally.http import RequestIdFilter, Settings
from pgtally.user_models import (
    CalendarDay,
    Comparison,
    EngagementProfile,
    HistoryBucket,
    QuotaForecast,
    SubscriptionSummary,
    SummaryCard,
)

AT = "2025-03-20T12:00:00Z"
AT_DT = dt.datetime(2025, 3, 20, 12, tzinfo=dt.timezone.utc)
PROBLEM = "application/problem+json"


def jsonable(model: Any, value: Any) -> Any:
    """What the API answers for a library value (the same dataclass serialized the same way)."""
    return TypeAdapter(model).dump_python(value, mode="json")


def top(card: dict, dimension: str) -> list[dict]:
    """The top values of a featured dimension on a summary card (JSON)."""
    return dict(card["featured"]).get(dimension, [])


def events_for(user: str, n: int, *, day: int = 10, voice: str = "af_alloy", prefix: str | None = None) -> list[dict]:
    return [
        {
            "event_id": f"{prefix or user}-{i}",
            "user_id": user,
            "kind": "tts",
            "quantity": 100 + i,
            "duration_ms": 1000 * (i + 1),
            "cost": "0.0015",
            "occurred_at": f"2025-03-{day + i % 5:02d}T1{i % 10}:00:00Z",
            "attributes": {"voice": voice, "model": "kokoro"},
        }
        for i in range(n)
    ]


@pytest.fixture
def api(dsn: str, login_role, server_dsn: str) -> Iterator[Api]:  # type: ignore[no-untyped-def]
    name = api_login_role(login_role, server_dsn)
    settings = Settings(
        dsn=psycopg.conninfo.make_conninfo(dsn, user=name), jwt_secret=SECRET, maintenance_dsn=dsn, pool_max_size=4
    )
    with serve(settings) as url:
        client = Api(url)
        yield client
        client.close()


@pytest.fixture
def loaded(api: Api, dsn: str) -> Api:
    """Alice and Bob have usage, recorded through POST /api/usage/events."""
    with Client.connect(dsn) as owner:
        owner.upsert_plan("free", tier=0, monthly_price=0, limits={"tts": 5000}, is_default=True)
    batch = (
        events_for("alice", 12)
        + events_for("bob", 7, voice="bf_emma")
        + [
            {
                "event_id": "alice-ocr",
                "user_id": "alice",
                "kind": "ocr",
                "quantity": 3,
                "occurred_at": "2025-03-12T09:00:00Z",
            },
            {
                "event_id": "alice-fail",
                "user_id": "alice",
                "kind": "tts",
                "quantity": 5,
                "status": "failed",
                "error_code": '=HYPERLINK("x")',
                "occurred_at": "2025-03-13T09:00:00Z",
            },
        ]
    )
    r = api.post("/api/usage/events", "tts-worker", "writer", json=batch)
    assert r.status_code == 200, r.text
    assert r.json()["recorded"] == len(batch)
    return api


# ------------------------------------------------------------------------------------------- ingest


def test_ingest_answers_per_event_and_records_the_valid_ones(api: Api, dsn: str) -> None:
    first = api.post("/api/usage/events", "svc", "writer", json=events_for("carol", 3))
    assert first.status_code == 200 and first.json()["recorded"] == 3
    batch = [
        *events_for("carol", 2),  # carol-0, carol-1: recorded before
        {"event_id": "c-new", "user_id": "carol", "kind": "ocr", "quantity": 1},
        {"event_id": "c-new", "user_id": "carol", "kind": "ocr", "quantity": 1},  # repeated in the batch
        {"event_id": "c-neg", "user_id": "carol", "kind": "ocr", "quantity": -4},
        {"event_id": "c-empty", "user_id": "", "kind": "ocr"},
        {"event_id": "c-status", "user_id": "carol", "kind": "ocr", "status": "exploded"},
        {"event_id": "c-huge", "user_id": "carol", "kind": "ocr", "quantity": 10**16},
        {
            "event_id": "c-fix",
            "user_id": "carol",
            "kind": "ocr",
            "status": "reversed",
            "corrects_event_id": "c-late",
            "quantity": -2,
        },
        {"event_id": "c-late", "user_id": "carol", "kind": "ocr", "quantity": 2},  # the original after its correction
    ]
    r = api.post("/api/usage/events", "svc", "writer", json=batch)
    assert r.status_code == 200, r.text
    body = r.json()
    statuses = [(x["index"], x["event_id"], x["status"], x.get("sqlstate"), x.get("field")) for x in body["results"]]
    assert statuses == [
        (0, "carol-0", "duplicate", None, None),
        (1, "carol-1", "duplicate", None, None),
        (2, "c-new", "recorded", None, None),
        (3, "c-new", "duplicate", None, None),
        (4, "c-neg", "rejected", "PT002", "quantity"),
        (5, "c-empty", "rejected", "PT001", "user_id"),
        (6, "c-status", "rejected", "PT003", "status"),
        (7, "c-huge", "rejected", "PT002", "quantity"),
        (8, "c-fix", "recorded", None, None),
        (9, "c-late", "recorded", None, None),
    ]
    assert "quantity" in body["results"][4]["message"]
    assert (body["recorded"], body["duplicates"], body["rejected"]) == (3, 3, 4)
    with psycopg.connect(dsn) as conn:
        ids = {r[0] for r in conn.execute("select event_id from tally.usage_events where user_id = 'carol'")}
        assert ids == {"carol-0", "carol-1", "carol-2", "c-new", "c-fix", "c-late"}
        ocr = conn.execute("select events, quantity from tally.lifetime_totals('carol', 'kind') where value = 'ocr'")
        assert ocr.fetchone() == (1, 1)  # c-new; c-late reversed by c-fix
    # A retried batch is answered "duplicate" for every event, and changes nothing.
    again = api.post("/api/usage/events", "svc", "writer", json=events_for("carol", 3))
    assert [x["status"] for x in again.json()["results"]] == ["duplicate"] * 3


def test_ingest_refuses_a_batch_that_does_not_match_the_schema(api: Api, dsn: str) -> None:
    r = api.post("/api/usage/events", "svc", "writer", json=[{"user_id": "u", "kind": "tts"}])
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    problem = r.json()
    assert problem["status"] == 422 and problem["type"].startswith("urn:pgtally:problem:")
    assert any(e["loc"][-1] == "event_id" for e in problem["errors"])
    r = api.post(
        "/api/usage/events", "svc", "writer", json=[{"event_id": "a", "user_id": "u", "kind": "t", "attributes": [1]}]
    )
    assert r.status_code == 422
    r = api.post(
        "/api/usage/events", "svc", "writer", json=[{"event_id": "a", "user_id": "u", "kind": "t", "recorded_at": AT}]
    )
    assert r.status_code == 422, "the database sets recorded_at: a producer may not send it"
    r = api.post(
        "/api/usage/events", "svc", "writer", json=[{"event_id": "a", "user_id": "u", "kind": "t", "quantity": 2**63}]
    )
    assert r.status_code == 422, "beyond the log's bigint"
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select count(*) from tally.usage_events").fetchone() == (0,)


# ------------------------------------------------------------------------------------------- reads


def test_summary_is_the_sql_summary_card(loaded: Api, dsn: str) -> None:
    r = loaded.get(f"/api/usage/summary?at={AT}", "alice")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    with Client.connect(dsn) as owner:
        assert body["card"] == jsonable(SummaryCard, owner.summary_card("alice", at=AT_DT))
        assert body["engagement"] == jsonable(EngagementProfile, owner.engagement_profile("alice", AT_DT))
        assert body["subscription"] == jsonable(SubscriptionSummary, owner.subscription_summary("alice", AT_DT))
    assert body["user_id"] == "alice"
    assert body["card"]["total"]["events"] == 13  # 12 tts + 1 ocr; the failure is not an event
    assert top(body["card"], "voice")[0]["value"] == "af_alloy"
    assert body["card"]["total"]["cost"] == "0.0180"  # exact, as a string


def test_history_is_the_sql_usage_history(loaded: Api, dsn: str) -> None:
    with Client.connect(dsn) as owner:
        expected = owner.usage_history(
            "alice", "custom", "week", from_day=dt.date(2025, 3, 1), to_day=dt.date(2025, 3, 20), at=AT_DT
        )
        stacked = owner.usage_history("alice", "3m", "month", dimension="voice", at=AT_DT)
    r = loaded.get(f"/api/usage/history?period=custom&from=2025-03-01&to=2025-03-20&groupBy=week&at={AT}", "alice")
    assert r.status_code == 200, r.text
    assert r.json()["buckets"] == jsonable(list[HistoryBucket], expected)
    assert r.json()["group_by"] == "week"
    # Chosen metrics only.
    r = loaded.get(
        f"/api/usage/history?period=custom&from=2025-03-01&to=2025-03-20&metrics=events,cost&at={AT}", "alice"
    )
    first = r.json()["buckets"][0]
    assert set(first) == {"bucket_start", "bucket_end", "value", "unit", "events", "cost"}
    assert sum(b["events"] for b in r.json()["buckets"]) == 13
    # Stacked by a dimension.
    r = loaded.get(f"/api/usage/history?period=3m&groupBy=month&dimension=voice&at={AT}", "alice")
    assert r.json()["buckets"] == jsonable(list[HistoryBucket], stacked)


def test_analytics_and_insights_are_the_sql_answers(loaded: Api, dsn: str) -> None:
    r = loaded.get(f"/api/usage/analytics?at={AT}&year=2025", "alice")
    assert r.status_code == 200, r.text
    body = r.json()
    with Client.connect(dsn) as owner:
        comparisons = owner.compare_usage("alice", metric="events", at=AT_DT)
        assert body["trends"]["comparisons"] == jsonable(list[Comparison], comparisons)
        assert body["patterns"]["calendar"] == jsonable(
            list[CalendarDay], owner.calendar_heatmap("alice", 2025, at=AT_DT)
        )
        assert body["predictions"]["forecast"] == jsonable(list[QuotaForecast], owner.quota_forecast("alice", at=AT_DT))
        insights = owner.usage_insights("alice", at=AT_DT)
    assert len(body["patterns"]["hours_of_week"]) == 168
    assert body["trends"]["peak"]["bucket_start"] == "2025-03-01"
    only = loaded.get(f"/api/usage/analytics?type=predictions&at={AT}", "alice").json()
    assert only["trends"] is None and only["patterns"] is None and only["predictions"] == body["predictions"]
    r = loaded.get(f"/api/usage/insights?at={AT}", "alice")
    assert r.status_code == 200
    assert [i["message"] for i in r.json()["insights"]] == [i.message for i in insights]


# ------------------------------------------------------------------------------- identity, RLS


def test_each_user_sees_only_their_own_usage(loaded: Api, dsn: str, login_role, server_dsn: str) -> None:  # type: ignore[no-untyped-def]
    alice = loaded.get(f"/api/usage/summary?at={AT}", "alice").json()
    # Another user's id in the query string is ignored: the user is the token's.
    for query in ("user_id=bob", "user=bob", "sub=bob"):
        r = loaded.get(f"/api/usage/summary?at={AT}&{query}", "alice")
        assert r.json() == alice
    bob = loaded.get(f"/api/usage/summary?at={AT}", "bob").json()
    assert top(bob["card"], "voice")[0]["value"] == "bf_emma"
    assert "bf_emma" not in json.dumps(alice) and "af_alloy" not in json.dumps(bob)
    export = loaded.get("/api/usage/export?format=csv&period=custom&from=2025-03-01&to=2025-03-31", "bob").text
    assert "alice" not in export and export.count("\n") == 8  # header + bob's 7 events
    # A user without usage sees zeros, not somebody else's.
    nobody = loaded.get(f"/api/usage/summary?at={AT}", "mallory").json()
    assert nobody["card"]["total"]["events"] == 0 and top(nobody["card"], "voice") == []


def test_the_database_not_the_app_keeps_users_apart(loaded: Api, dsn: str) -> None:
    """The request session (the API's first statement) scopes the transaction: a query naming bob finds nothing."""
    from pgtally.http.auth import Identity, Role
    from pgtally.http.db import _SESSION_SQL, session_params

    settings = Settings(dsn=dsn, jwt_secret=SECRET)
    with psycopg.connect(dsn) as conn, conn.transaction():
        conn.execute(_SESSION_SQL, session_params(Identity("alice", Role.reader), Role.reader, settings, True))
        assert conn.execute("select current_user").fetchone() == ("tally_reader",)
        assert conn.execute("select count(*) from tally.lifetime_totals('bob', 'kind')").fetchone() == (0,)
        assert conn.execute("select count(*) from tally.my_usage_events").fetchone() == (14,)
        assert conn.execute("select count(*) from tally.user_totals where user_id = 'bob'").fetchone() == (0,)


def test_authentication_and_roles(loaded: Api) -> None:
    def problem(r: httpx.Response, status: int) -> dict:
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
        body = r.json()
        assert {"type", "title", "status", "detail"} <= set(body) and body["status"] == status
        return body

    assert problem(loaded.get("/api/usage/summary"), 401)["detail"].startswith("no bearer token")
    assert loaded.get("/api/usage/summary").headers["www-authenticate"] == "Bearer"
    expired = token("alice", expires_in=dt.timedelta(seconds=-60))
    r = loaded.get("/api/usage/summary", headers={"Authorization": f"Bearer {expired}"})
    assert "expired" in problem(r, 401)["detail"]
    forged = jwt.encode(
        {"sub": "alice", "role": "reader", "exp": 4102444800},
        "not-the-secret-but-as-long-as-one-0123456789",
        algorithm="HS256",
    )
    r = loaded.get("/api/usage/summary", headers={"Authorization": f"Bearer {forged}"})
    assert "signature" in problem(r, 401)["detail"]
    unsigned = jwt.encode({"sub": "alice", "role": "analyst", "exp": 4102444800}, None, algorithm="none")
    problem(loaded.get("/api/admin/usage/overview", headers={"Authorization": f"Bearer {unsigned}"}), 401)
    no_exp = jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256")
    problem(loaded.get("/api/usage/summary", headers={"Authorization": f"Bearer {no_exp}"}), 401)
    # Roles: each route is for one role.
    assert "analyst" in problem(loaded.get("/api/admin/usage/overview", "alice", "reader"), 403)["detail"]
    assert "reader" in problem(loaded.get("/api/usage/summary", "svc", "writer"), 403)["detail"]
    problem(loaded.get("/api/usage/history", "adm", "analyst"), 403)
    problem(loaded.post("/api/usage/events", "alice", "reader", json=events_for("alice", 1, prefix="sneaky")), 403)


def test_database_rejections_are_problems_with_sqlstate_and_field(loaded: Api) -> None:
    r = loaded.get("/api/usage/history?dimension=no_such_dimension", "alice")
    assert r.status_code == 400 and r.headers["content-type"].startswith(PROBLEM)
    assert (r.json()["sqlstate"], r.json()["title"]) == ("PT010", "Invalid argument")
    r = loaded.get("/api/usage/history?period=custom", "alice")
    assert (r.status_code, r.json()["sqlstate"], r.json()["field"]) == (400, "PT011", "to_day")
    r = loaded.get("/api/usage/history?period=999m", "alice")
    assert (r.status_code, r.json()["sqlstate"], r.json()["field"]) == (400, "PT011", "range")
    r = loaded.get("/api/usage/history?period=9999y", "alice")  # before year 1: PostgreSQL's own error
    assert r.status_code == 400 and r.json()["sqlstate"].startswith("22")
    r = loaded.get("/api/usage/history?metrics=events,minutes", "alice")
    assert (r.status_code, r.json()["field"]) == (400, "metrics")
    r = loaded.get("/api/usage/history?groupBy=hour", "alice")
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "groupBy"]
    r = loaded.get("/no/such/route")
    assert r.status_code == 404 and r.headers["content-type"].startswith(PROBLEM)


def test_request_ids_are_echoed_or_generated(loaded: Api) -> None:
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter("[%(request_id)s] %(name)s: %(message)s"))
    logger = logging.getLogger("pgtally.http")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        r = loaded.get("/api/usage/summary", "alice", headers={"X-Request-ID": "req-42.a"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert r.headers["x-request-id"] == "req-42.a"
    assert any(line.startswith("[req-42.a] pgtally.http.access: GET /api/usage/summary 200") for line in lines), lines
    r = loaded.get("/api/usage/history?period=custom", "alice", headers={"X-Request-ID": "req-43"})
    assert r.headers["x-request-id"] == "req-43" and r.json()["request_id"] == "req-43"
    generated = loaded.get("/api/usage/summary", "alice").headers["x-request-id"]
    assert len(generated) == 32
    # A value that could forge log lines is replaced.
    r = loaded.get("/api/usage/summary", "alice", headers={"X-Request-ID": "x evil=line <b>"})
    assert len(r.headers["x-request-id"]) == 32
    assert r.headers["server-timing"].startswith("app;dur=")


# ------------------------------------------------------------------------------------------- export


def test_csv_export_streams_the_events_safely(loaded: Api, dsn: str) -> None:
    query = "period=custom&from=2025-03-01&to=2025-03-31"
    r = loaded.get(f"/api/usage/export?{query}", "alice", headers={"Accept": "text/csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"] and "content-length" not in r.headers
    with Client.connect(dsn) as owner:
        expected = io.BytesIO()
        owner.export_events_csv(
            "alice",
            dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc),
            dt.datetime(2025, 4, 1, tzinfo=dt.timezone.utc),
            expected,
        )
    assert r.content == expected.getvalue()
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 14
    assert next(x for x in rows if x["event_id"] == "alice-fail")["error_code"].startswith("'=")  # no formula
    raw = loaded.get(f"/api/usage/export?{query}&format=csv&raw=true", "alice").text
    assert '"=HYPERLINK(""x"")"' in raw
    rollups = loaded.get(f"/api/usage/export?{query}&format=csv&data=rollups&dimension=voice", "alice").text
    assert rollups.splitlines()[0] == "day,dimension,value,events,failures,quantity,duration_ms,cost"
    assert {line.split(",")[2] for line in rollups.splitlines()[1:]} == {"af_alloy"}


def test_json_export_and_named_periods(loaded: Api) -> None:
    r = loaded.get("/api/usage/export?period=custom&from=2025-03-01&to=2025-03-11", "alice")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert (body["from"], body["to"], body["data"]) == ("2025-03-01", "2025-03-11", "events")
    # Days 10 and 11 of alice's events (i % 5 in (0, 1)), with every column of the log's contract.
    assert sorted(e["event_id"] for e in body["events"]) == sorted(f"alice-{i}" for i in (0, 1, 5, 6, 10, 11))
    assert body["events"][0]["attributes"] == {"voice": "af_alloy", "model": "kokoro"}
    last = loaded.get("/api/usage/export?period=last_month&at=2025-04-05T00:00:00Z", "alice").json()
    assert (last["from"], last["to"], len(last["events"])) == ("2025-03-01", "2025-03-31", 14)
    this = loaded.get("/api/usage/export?period=this_month&at=2025-04-05T00:00:00Z", "alice").json()
    assert (this["from"], this["to"], this["events"]) == ("2025-04-01", "2025-04-05", [])
    r = loaded.get("/api/usage/export?format=json&data=rollups&dimension=nope", "alice")
    assert r.status_code == 400 and r.json()["sqlstate"] == "PT010"


def test_csv_export_holds_constant_memory(api: Api, dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            """insert into tally.usage_events (event_id, user_id, kind, quantity, occurred_at, attributes)
               select 'big-' || g, 'dora', 'tts', g, '2025-02-01'::timestamptz + g * interval '10 seconds',
                      jsonb_build_object('voice', 'af_alloy', 'note', repeat('x', 100))
                 from generate_series(1, 60000) g"""
        )
    tracemalloc.start()
    try:
        size = 0
        with api.http.stream(
            "GET", "/api/usage/export?format=csv&period=custom&from=2025-01-01&to=2025-03-31", headers=auth("dora")
        ) as r:
            assert r.status_code == 200
            for chunk in r.iter_bytes():
                size += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size > 10_000_000, size
    assert peak < size / 4, f"peak {peak:,} bytes for a {size:,}-byte export"


def test_html_and_pdf_reports(loaded: Api) -> None:
    r = loaded.get("/api/usage/export?format=html&period=last_month&at=2025-04-02T00:00:00Z", "alice")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "alice" in r.text and "bob" not in r.text
    assert loaded.get("/api/usage/export?format=html", "mallory").status_code == 404
    from pgtally.reports import ChromiumMissing, find_chromium

    try:
        find_chromium()
    except ChromiumMissing:
        pytest.skip("no Chromium to print the PDF")
    r = loaded.get(
        "/api/usage/export?period=last_month&at=2025-04-02T00:00:00Z", "alice", headers={"Accept": "application/pdf"}
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF")


# -------------------------------------------------------------------------------- subscriptions


def test_subscribe_and_unsubscribe(loaded: Api, dsn: str) -> None:
    r = loaded.post("/api/usage/subscribe", "alice", json={"email": "alice@example.com"})
    assert r.status_code == 200, r.text
    sub = r.json()
    assert (sub["user_id"], sub["email_address"]) == ("alice", "alice@example.com")
    bad = loaded.post("/api/usage/subscribe", "alice", json={"email": "not an address"})
    assert (bad.status_code, bad.json()["sqlstate"], bad.json()["field"]) == (400, "PT011", "email")
    assert loaded.post("/api/usage/subscribe", json={"email": "alice@example.com"}).status_code == 401
    link = loaded.get(f"/api/usage/unsubscribe?token={sub['unsubscribe_token']}")
    assert link.status_code == 200 and "not receive" in link.text
    assert "not valid" in loaded.get(f"/api/usage/unsubscribe?token={sub['unsubscribe_token']}").text
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select count(*) from tally.report_subscriptions").fetchone() == (0,)
    again = loaded.post("/api/usage/subscribe", "bob", json={"email": "bob@example.com"}).json()
    r = loaded.post("/api/usage/unsubscribe", json={"token": again["unsubscribe_token"]})
    assert r.json() == {"unsubscribed": True}
    # RFC 8058 one-click: the token in the query string, a form body.
    third = loaded.post("/api/usage/subscribe", "bob", json={"email": "bob@example.com"}).json()
    r = loaded.post(
        f"/api/usage/unsubscribe?token={third['unsubscribe_token']}",
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.json() == {"unsubscribed": True}
    assert loaded.post("/api/usage/unsubscribe", json={}).status_code == 422


def test_decimal_values_are_exact_strings(loaded: Api) -> None:
    card = loaded.get(f"/api/usage/summary?at={AT}", "alice").json()["card"]
    assert Decimal(card["kinds"][0]["cost"]) == Decimal("0.0180")
