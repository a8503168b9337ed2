"""Threshold alerts: recorded once per user, period, kind and threshold where usage is merged; delivered to
signed webhooks with retries.

Usage is recorded on fixed dates of 2025 and merged explicitly. The webhook
receiver is an http.server in a thread that checks every signature with the
standardwebhooks package (an implementation independent of pgtally's).
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from standardwebhooks.webhooks import Webhook

from pgtally.alerts import add_endpoint, deliver_alerts, list_endpoints, remove_endpoint, set_enabled, sign
from pgtally.cli import main

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)  # the delivery runs' clock: only differences matter


def _record(conn: psycopg.Connection, event_id: str, user: str, quantity: int, at: str, kind: str = "tts") -> None:
    conn.execute("select tally.record_usage(%s, %s, %s, %s, occurred_at => %s)", (event_id, user, kind, quantity, at))


def _alerts(conn: psycopg.Connection, user: str | None = None) -> list[tuple[Any, ...]]:
    return conn.execute(
        """select user_id, period_start::text, kind, threshold, plan, monthly_limit, quantity::bigint
             from tally.quota_alerts where %(u)s::text is null or user_id = %(u)s
            order by user_id, period_start, kind, threshold""",
        {"u": user},
    ).fetchall()


@pytest.fixture
def plans(conn: psycopg.Connection) -> psycopg.Connection:
    """free (default): tts 1,000 per period, ocr unlimited; pro: tts 10,000."""
    conn.execute("""select tally.upsert_plan('free', 0, 0, '{"tts": 1000}', true)""")
    conn.execute("""select tally.upsert_plan('pro', 1, 10, '{"tts": 10000}')""")
    return conn


def test_crossing_80_then_100_percent_over_several_merges_records_exactly_two_alerts(plans: psycopg.Connection) -> None:
    conn = plans
    steps = [(500, 0), (290, 0), (10, 1), (150, 1), (50, 2), (400, 2)]  # running totals 500, 790, 800, 950, 1000, 1400
    for i, (quantity, expected) in enumerate(steps):
        _record(conn, f"e{i}", "u1", quantity, f"2025-03-{i + 2:02d} 10:00+00")
        conn.execute("select tally.merge_pending()")
        assert len(_alerts(conn)) == expected, (i, _alerts(conn))
    assert _alerts(conn) == [
        ("u1", "2025-03-01", "tts", 80, "free", 1000, 800),
        ("u1", "2025-03-01", "tts", 100, "free", 1000, 1000),
    ]


def test_crossing_both_thresholds_in_one_merge_records_both(plans: psycopg.Connection) -> None:
    conn = plans
    _record(conn, "a", "u1", 300, "2025-03-02 10:00+00")
    _record(conn, "b", "u1", 900, "2025-03-03 10:00+00")
    conn.execute("select tally.merge_pending()")
    assert [(t, q) for *_, t, _p, _l, q in _alerts(conn)] == [(80, 1200), (100, 1200)]


def test_no_limit_means_no_alert(plans: psycopg.Connection) -> None:
    conn = plans
    _record(conn, "o", "u1", 10**9, "2025-03-02 10:00+00", kind="ocr")  # free has no ocr limit
    _record(conn, "n", "u1", 5000, "2025-03-02 10:00+00", kind="tts")
    conn.execute(
        "select tally.record_usage('f', 'u1', 'tts', 5000, occurred_at => '2025-03-02 11:00+00', status => 'failed')"
    )
    conn.execute(
        "select tally.record_usage('nb', 'u2', 'tts', 5000, occurred_at => '2025-03-02 11:00+00', billable => false)"
    )
    conn.execute("select tally.merge_pending()")
    assert [(u, k, t) for u, _, k, t, *_ in _alerts(conn)] == [("u1", "tts", 80), ("u1", "tts", 100)]
    # Without any default plan, nobody has a limit.
    conn.execute("update tally.plans set is_default = false")
    _record(conn, "x", "u3", 5000, "2025-03-02 10:00+00")
    conn.execute("select tally.merge_pending()")
    assert _alerts(conn, "u3") == []


def test_a_new_billing_period_alerts_again_and_the_plan_in_force_decides(plans: psycopg.Connection) -> None:
    conn = plans
    conn.execute("select tally.set_user_settings('u1', 'UTC', 15)")  # periods start on the 15th
    _record(conn, "a", "u1", 900, "2025-03-14 10:00+00")  # period 2025-02-15
    _record(conn, "b", "u1", 900, "2025-03-15 10:00+00")  # period 2025-03-15
    conn.execute("select tally.merge_pending()")
    assert [(p, t) for _, p, _, t, *_ in _alerts(conn)] == [("2025-02-15", 80), ("2025-03-15", 80)]
    # On pro from April 20th (periods now start on the 20th): 9,000 of pro's 10,000 is 90%, under free it was over.
    conn.execute("select tally.start_subscription('u2', 'pro', '2025-04-20 00:00+00')")
    _record(conn, "c", "u2", 9000, "2025-04-21 10:00+00")
    _record(conn, "d", "u2", 900, "2025-04-19 10:00+00")  # before the subscription: free, period 2025-03-20
    conn.execute("select tally.merge_pending()")
    assert _alerts(conn, "u2") == [
        ("u2", "2025-03-20", "tts", 80, "free", 1000, 900),
        ("u2", "2025-04-20", "tts", 80, "pro", 10000, 9000),
    ]


def test_rebuild_and_repeated_merges_do_not_double(plans: psycopg.Connection) -> None:
    conn = plans
    _record(conn, "a", "u1", 1000, "2025-03-02 10:00+00")
    conn.execute("select tally.merge_pending()")
    before = conn.execute("select alert_id, created_at from tally.quota_alerts order by threshold").fetchall()
    conn.execute("select tally.rebuild()")
    conn.execute("select tally.rebuild('u1')")
    _record(conn, "b", "u1", 5, "2025-03-03 10:00+00")
    conn.execute("select tally.merge_pending()")
    assert conn.execute("select alert_id, created_at from tally.quota_alerts order by threshold").fetchall() == before


def test_concurrent_writers_merges_and_rebuilds_record_each_alert_once(dsn: str, plans: psycopg.Connection) -> None:
    users = [f"u{i}" for i in range(6)]
    errors: list[BaseException] = []

    def write(user: str) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as c:
                for i in range(30):
                    _record(c, f"{user}-{i}", user, 40, f"2025-03-{1 + i % 28:02d} 10:00+00")
        except BaseException as exc:
            errors.append(exc)

    def merge(rebuild: bool) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as c:
                for _ in range(25):
                    c.execute("select tally.rebuild('u0')" if rebuild else "select tally.merge_pending(7)")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(u,)) for u in users]
    threads += [threading.Thread(target=merge, args=(r,)) for r in (False, False, True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert errors == []
    plans.execute("select tally.merge_pending()")
    got = plans.execute(
        "select user_id, threshold, count(*) from tally.quota_alerts group by 1, 2 order by 1, 2"
    ).fetchall()
    assert got == [(u, t, 1) for u in users for t in (80, 100)]  # 30 x 40 = 1,200 of 1,000 each


def test_readers_see_their_own_alerts_only(dsn: str, plans: psycopg.Connection, login_role: Any) -> None:
    _record(plans, "a", "u1", 1000, "2025-03-02 10:00+00")
    _record(plans, "b", "u2", 1000, "2025-03-02 10:00+00")
    plans.execute("select tally.merge_pending()")
    reader = login_role("tally_reader")
    with psycopg.connect(psycopg.conninfo.make_conninfo(dsn, user=reader)) as c:
        c.execute("select set_config('tally.user_id', 'u2', true)")
        assert c.execute("select distinct user_id from tally.quota_alerts").fetchall() == [("u2",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("select * from tally.webhook_endpoints")


# --------------------------------------------------------------------------- delivery


class Receiver:
    """A webhook receiver: verifies every request with standardwebhooks, answers from a list of statuses."""

    def __init__(self, secret: str, statuses: list[int]) -> None:
        self.webhook = Webhook(secret)
        self.statuses = statuses
        self.requests: list[dict[str, Any]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    receiver.webhook.verify(body, headers)
                    verified = True
                except Exception:
                    verified = False
                receiver.requests.append({"body": json.loads(body), "headers": headers, "verified": verified})
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/pgtally"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.close()


def _endpoint(conn: psycopg.Connection, receivers: list[Receiver], statuses: list[int]) -> tuple[int, Receiver]:
    receiver = Receiver("whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", statuses)  # replaced below by the real secret
    endpoint, secret = add_endpoint(conn, receiver.url, description="test receiver")
    receiver.webhook = Webhook(secret)
    receivers.append(receiver)
    return endpoint.endpoint_id, receiver


def _log(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        """select attempt, status_code, next_attempt_at, delivered_at is not null
             from tally.alert_delivery_attempts order by alert_id, endpoint_id, attempt"""
    ).fetchall()


def test_a_receiver_failing_twice_gets_the_alert_on_the_third_attempt_with_growing_backoff(
    plans: psycopg.Connection, receivers: list[Receiver]
) -> None:
    conn = plans
    _, receiver = _endpoint(conn, receivers, [500, 503, 204])
    _record(conn, "a", "u1", 850, "2025-03-02 10:00+00")
    conn.execute("select tally.merge_pending()")

    assert deliver_alerts(conn, now=T0).failed == 1
    assert deliver_alerts(conn, now=T0 + dt.timedelta(seconds=59)).attempts == ()  # not due yet
    assert deliver_alerts(conn, now=T0 + dt.timedelta(seconds=60)).failed == 1
    assert deliver_alerts(conn, now=T0 + dt.timedelta(seconds=179)).attempts == ()
    run = deliver_alerts(conn, now=T0 + dt.timedelta(seconds=180))
    assert (run.delivered, run.failed) == (1, 0)
    log = _log(conn)
    assert [(a, s, d) for a, s, _, d in log] == [(1, 500, False), (2, 503, False), (3, 204, True)]
    first_gap, second_gap = log[0][2] - T0, log[1][2] - (T0 + dt.timedelta(seconds=60))
    assert (first_gap, second_gap) == (dt.timedelta(seconds=60), dt.timedelta(seconds=120))
    assert log[2][2] is None

    # Run twice more: a delivered alert is not posted again.
    assert deliver_alerts(conn, now=T0 + dt.timedelta(days=1)).attempts == ()
    assert deliver_alerts(conn).attempts == ()
    assert len(receiver.requests) == 3
    assert all(r["verified"] for r in receiver.requests)
    assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1  # the same message id on every attempt
    body = receiver.requests[-1]["body"]
    assert body["type"] == "quota.threshold_reached"
    assert {k: body["data"][k] for k in ("user_id", "kind", "threshold", "plan", "monthly_limit", "quantity")} == {
        "user_id": "u1",
        "kind": "tts",
        "threshold": 80,
        "plan": "free",
        "monthly_limit": 1000,
        "quantity": 850,
    }
    assert body["data"]["period_start"] == "2025-03-01" and body["data"]["period_end"] == "2025-04-01"


def test_each_alert_goes_to_each_enabled_endpoint_once_and_signatures_are_checked(
    plans: psycopg.Connection, receivers: list[Receiver]
) -> None:
    conn = plans
    first, one = _endpoint(conn, receivers, [200])
    second, two = _endpoint(conn, receivers, [200])
    paused, three = _endpoint(conn, receivers, [200])
    assert set_enabled(conn, paused, False)
    _record(conn, "a", "u1", 1000, "2025-03-02 10:00+00")
    _record(conn, "b", "u2", 900, "2025-03-02 10:00+00")
    conn.execute("select tally.merge_pending()")
    run = deliver_alerts(conn, now=T0)
    assert (run.delivered, run.failed) == (6, 0)  # 3 alerts x 2 enabled endpoints
    assert deliver_alerts(conn, now=T0 + dt.timedelta(hours=1)).attempts == ()
    for receiver in (one, two):
        assert len(receiver.requests) == 3 and all(r["verified"] for r in receiver.requests)
        got = sorted((r["body"]["data"]["user_id"], r["body"]["data"]["threshold"]) for r in receiver.requests)
        assert got == [("u1", 80), ("u1", 100), ("u2", 80)]
    assert three.requests == []
    # A receiver with another secret rejects the signature: the check can fail.
    one.webhook = Webhook("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=")
    _record(conn, "c", "u3", 1000, "2025-03-02 10:00+00")
    conn.execute("select tally.merge_pending()")
    deliver_alerts(conn, now=T0)
    assert not one.requests[-1]["verified"] and two.requests[-1]["verified"]
    assert remove_endpoint(conn, first) and not remove_endpoint(conn, first)
    assert [e.endpoint_id for e in list_endpoints(conn)] == [second, paused]


def test_an_unreachable_endpoint_is_logged_and_retried_up_to_the_limit(plans: psycopg.Connection) -> None:
    conn = plans
    add_endpoint(conn, "http://127.0.0.1:9/unreachable")  # discard port: connection refused
    _record(conn, "a", "u1", 800, "2025-03-02 10:00+00")
    conn.execute("select tally.merge_pending()")
    now = T0
    for _ in range(3):
        run = deliver_alerts(conn, now=now, max_attempts=3, timeout=2)
        assert len(run.attempts) == 1 and run.attempts[0].status_code is None and run.attempts[0].error
        now += dt.timedelta(hours=7)
    assert deliver_alerts(conn, now=now, max_attempts=3).attempts == ()  # gave up after three
    assert [(a, s) for a, s, *_ in _log(conn)] == [(1, None), (2, None), (3, None)]
    assert _log(conn)[-1][2] is None


def test_our_signature_is_the_standard_one() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"type":"quota.threshold_reached"}'
    theirs = Webhook(secret).sign("msg_1", dt.datetime.fromtimestamp(1_700_000_000, dt.timezone.utc), body.decode())
    assert sign(secret, "msg_1", 1_700_000_000, body) == theirs


def test_the_webhook_and_alert_commands(dsn: str, plans: psycopg.Connection, receivers: list[Receiver]) -> None:
    receiver = Receiver("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", [200])
    receivers.append(receiver)
    res = CliRunner().invoke(main, ["webhook", "add", receiver.url, "--dsn", dsn, "--json"])
    assert res.exit_code == 0, res.output
    added = json.loads(res.output)
    assert added["secret"].startswith("whsec_") and added["endpoint"]["url"] == receiver.url
    receiver.webhook = Webhook(added["secret"])
    res = CliRunner().invoke(main, ["webhook", "add", "ftp://x", "--dsn", dsn])
    assert res.exit_code == 2 and "url" in res.output
    _record(plans, "a", "u1", 1000, "2025-03-02 10:00+00")
    plans.execute("select tally.merge_pending()")
    res = CliRunner().invoke(main, ["deliver-alerts", "--dsn", dsn, "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["delivered"] == 2, res.output
    assert all(r["verified"] for r in receiver.requests) and len(receiver.requests) == 2
    res = CliRunner().invoke(main, ["alerts", "--dsn", dsn, "--user", "u1", "--json"])
    assert [(a["threshold"], a["delivered"], a["endpoints"]) for a in json.loads(res.output)] == [
        (80, 1, 1),
        (100, 1, 1),
    ]
    endpoint_id = added["endpoint"]["endpoint_id"]
    for action in ("disable", "enable", "remove"):
        res = CliRunner().invoke(main, ["webhook", action, str(endpoint_id), "--dsn", dsn])
        assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["webhook", "remove", str(endpoint_id), "--dsn", dsn])
    assert res.exit_code == 1 and f"no webhook endpoint {endpoint_id}" in res.output
