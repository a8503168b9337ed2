"""Property-based test of the whole API with schemathesis, against a real uvicorn server and a real database.

For every operation of the served OpenAPI document, hypothesis generates requests from the schema (bounded:
a few examples per operation, under a minute in all) sent with a valid token of the role the route is for;
every response must be no 5xx, a documented status code and content type, and conform to the response schema.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from http_support import SECRET, Api, api_login_role, auth, serve
from pgtally import Client
from pgtally.http import Settings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 25


@pytest.fixture
def base_url(dsn: str, login_role, server_dsn: str) -> Iterator[str]:  # type: ignore[no-untyped-def]
    name = api_login_role(login_role, server_dsn)
    with Client.connect(dsn) as owner:
        owner.upsert_plan("free", tier=0, monthly_price=0, limits={"tts": 5000}, is_default=True)
        owner.admin.set_min_group_size(1)
    settings = Settings(dsn=psycopg.conninfo.make_conninfo(dsn, user=name), jwt_secret=SECRET, maintenance_dsn=dsn)
    with serve(settings) as url:
        api = Api(url)
        now = dt.datetime.now(dt.timezone.utc)
        events = [
            {
                "event_id": f"st-{i}",
                "user_id": "alice",
                "kind": ("tts", "ocr", "paywall.viewed")[i % 3],
                "quantity": 10 + i,
                "duration_ms": 1000 + i,
                "occurred_at": (now - dt.timedelta(hours=9 * i)).isoformat(),
                "attributes": {"voice": "af_alloy", "model": "kokoro", "format": "pdf"},
            }
            for i in range(40)
        ]
        assert api.post("/api/usage/events", "p", "writer", json=events).json()["recorded"] == 40
        with Client.connect(dsn) as owner:
            owner.admin.refresh()
        api.close()
        yield url


def role_of(path: str) -> str:
    if path.startswith("/api/admin/"):
        return "analyst"
    if path == "/api/usage/events":
        return "writer"
    return "reader"


def conformance_test(strategy: Any, base_url: str, headers: dict[str, str]) -> Callable[[], None]:
    """A hypothesis test: every case of ``strategy``, sent with ``headers``, passes the checks."""

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, headers=headers)
        case.validate_response(response, checks=CHECKS)

    return check


def test_every_operation_conforms_to_the_schema(base_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    failures: list[str] = []
    for operation in operations:
        headers = auth("alice", role_of(operation.path))
        strategies = [operation.as_strategy()]
        if operation.path == "/api/usage/export":
            # Not the PDF: Chromium takes seconds per page (tests/test_http_api.py prints one).
            strategies = [operation.as_strategy(query={"format": f}) for f in ("csv", "json", "html")]
        for strategy in strategies:
            check = conformance_test(strategy, base_url, headers)
            try:
                check()
            except Exception as exc:  # collect every operation's failure, then fail once
                failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
