"""Webhook endpoints and the delivery of threshold alerts to them (Standard Webhooks signatures, backoff, log).

Every alert goes to every enabled endpoint that existed when the alert was
recorded. One delivery is a POST of a JSON body with the headers
``webhook-id`` (the alert's id, the same on every attempt, so a receiver can
drop a repeat), ``webhook-timestamp`` (Unix seconds of the attempt) and
``webhook-signature`` (``v1,`` and the base64 HMAC-SHA256 of
``"{id}.{timestamp}.{body}"`` keyed with the base64-decoded part of the
endpoint's ``whsec_`` secret). A 2xx answer delivers it; anything else (a
status, a timeout, a refused connection, a redirect) is retried after an
exponentially growing delay, up to a number of attempts. Each attempt is a row
of ``tally.alert_delivery_attempts``.

The state of each (alert, endpoint) is a row of ``tally.alert_deliveries``,
claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` for the attempt and updated
in the same transaction: two runs never post the same alert to the same
endpoint at once, and a delivered one is never posted again. A run killed after
the receiver answered 2xx and before the commit posts it again on the next
run, with the same ``webhook-id``.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

#: Attempts per alert and endpoint before a run stops retrying it.
MAX_ATTEMPTS = 8
#: Delay after the first failed attempt; it doubles after each further failure.
BASE_DELAY = dt.timedelta(seconds=60)
#: The longest delay between two attempts.
MAX_DELAY = dt.timedelta(hours=6)
#: The ``type`` of the JSON payload.
EVENT_TYPE = "quota.threshold_reached"


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """A webhook endpoint (its secret is shown once, when it is added)."""

    endpoint_id: int
    url: str
    enabled: bool
    description: str | None
    created_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One delivery attempt of a run: the answer's status (None when none came) or the error."""

    alert_id: str
    endpoint_id: int
    url: str
    attempt: int
    status_code: int | None
    error: str | None
    delivered: bool
    next_attempt_at: dt.datetime | None


@dataclasses.dataclass(frozen=True)
class DeliveryRun:
    """What a run of :func:`deliver_alerts` did."""

    attempts: tuple[Attempt, ...]

    @property
    def delivered(self) -> int:
        return sum(1 for a in self.attempts if a.delivered)

    @property
    def failed(self) -> int:
        return sum(1 for a in self.attempts if not a.delivered)


# --------------------------------------------------------------------- signing


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret: the base64-decoded part after the prefix."""
    encoded = secret.removeprefix("whsec_")
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``."""
    mac = hmac.new(secret_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def payload(alert: dict[str, Any]) -> bytes:
    """The JSON body of an alert's delivery (Standard Webhooks shape: type, timestamp, data)."""
    data = {
        key: _json_value(alert[key])
        for key in (
            "alert_id",
            "user_id",
            "kind",
            "threshold",
            "period_start",
            "period_end",
            "plan",
            "monthly_limit",
            "quantity",
        )
    }
    data["alert_id"] = str(alert["alert_id"])
    body = {"type": EVENT_TYPE, "timestamp": _json_value(alert["created_at"]), "data": data}
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


# ------------------------------------------------------------------- endpoints


def add_endpoint(
    conn: psycopg.Connection[Any], url: str, *, secret: str | None = None, description: str | None = None
) -> tuple[Endpoint, str]:
    """Adds an endpoint (``tally.add_webhook_endpoint``); returns it and its signing secret (``whsec_...``)."""
    row = conn.execute(
        "select endpoint_id, endpoint_url, signing_secret from tally.add_webhook_endpoint(%s, %s, %s)",
        (url, secret, description),
    ).fetchone()
    assert row is not None
    found = [e for e in list_endpoints(conn) if e.endpoint_id == row[0]]
    return found[0], str(row[2])


def list_endpoints(conn: psycopg.Connection[Any]) -> list[Endpoint]:
    """Every endpoint, oldest first (without secrets)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select endpoint_id, url, enabled, description, created_at from tally.webhook_endpoints order by endpoint_id"
        )
        return [Endpoint(**r) for r in cur.fetchall()]


def remove_endpoint(conn: psycopg.Connection[Any], endpoint_id: int) -> bool:
    """Deletes an endpoint with its delivery state and log; False when there is none."""
    row = conn.execute("select tally.remove_webhook_endpoint(%s)", (endpoint_id,)).fetchone()
    return bool(row and row[0])


def set_enabled(conn: psycopg.Connection[Any], endpoint_id: int, enabled: bool) -> bool:
    """Pauses (False) or resumes (True) deliveries to an endpoint; False when there is none."""
    cur = conn.execute("update tally.webhook_endpoints set enabled = %s where endpoint_id = %s", (enabled, endpoint_id))
    return cur.rowcount > 0


# ------------------------------------------------------------------- delivery


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer that is not 2xx: it is not followed (the signature is for this URL)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())

#: Posts (url, body, headers, timeout) and returns the HTTP status; raises OSError when no answer came.
Poster = Callable[[str, bytes, dict[str, str], float], int]


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POSTs with the standard library; the status of any answer (2xx or not), OSError when none came."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def backoff(attempt: int, base: dt.timedelta = BASE_DELAY, cap: dt.timedelta = MAX_DELAY) -> dt.timedelta:
    """The delay after failed attempt number ``attempt`` (1, 2, ...): base, 2 base, 4 base, ... up to cap."""
    return min(base * (1 << min(attempt - 1, 40)), cap)


def deliver_alerts(
    conn: psycopg.Connection[Any],
    *,
    now: dt.datetime | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    base_delay: dt.timedelta = BASE_DELAY,
    max_delay: dt.timedelta = MAX_DELAY,
    timeout: float = 10.0,
    post: Poster = http_post,
) -> DeliveryRun:
    """Posts every due, undelivered alert to every enabled endpoint once; returns the attempts made.

    ``conn`` is an autocommit connection of the owner. ``now`` is the moment
    the run schedules by (default: the database's clock): an attempt is due
    when it was never tried or its ``next_attempt_at`` has come; a failure
    schedules the next one ``base_delay`` later, doubling each time up to
    ``max_delay``, and a pair gets at most ``max_attempts``. The signature's
    timestamp is always the real time of the attempt. Example (run it from cron
    every minute, like the merge)::

        with psycopg.connect(dsn, autocommit=True) as conn:
            run = deliver_alerts(conn)
            print(run.delivered, run.failed)
    """
    if now is None:
        row = conn.execute("select clock_timestamp()").fetchone()
        assert row is not None
        now = row[0]
    # Every (alert, enabled endpoint) pair that has no state yet: the endpoint gets the alerts recorded after it was added.
    conn.execute(
        """insert into tally.alert_deliveries (alert_id, endpoint_id)
           select a.alert_id, e.endpoint_id
             from tally.quota_alerts a
             join tally.webhook_endpoints e on e.enabled and a.created_at >= e.created_at
            order by a.alert_id, e.endpoint_id
           on conflict do nothing"""
    )
    done: list[str] = []
    attempts: list[Attempt] = []
    while True:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                """select d.alert_id, d.endpoint_id, d.attempts, e.url, e.secret, a.user_id, a.kind, a.threshold,
                          a.period_start, a.period_end, a.plan, a.monthly_limit, a.quantity, a.created_at
                     from tally.alert_deliveries d
                     join tally.webhook_endpoints e on e.endpoint_id = d.endpoint_id and e.enabled
                     join tally.quota_alerts a on a.alert_id = d.alert_id
                    where d.delivered_at is null and d.attempts < %(max)s
                      and (d.next_attempt_at is null or d.next_attempt_at <= %(now)s)
                      and d.alert_id::text || '/' || d.endpoint_id <> all(%(done)s)
                    order by d.next_attempt_at nulls first, a.created_at, d.alert_id, d.endpoint_id
                    limit 1
                      for update of d skip locked""",
                {"max": max_attempts, "now": now, "done": done},
            )
            alert = cur.fetchone()
            if alert is None:
                break
            done.append(f"{alert['alert_id']}/{alert['endpoint_id']}")
            attempt = alert["attempts"] + 1
            body = payload(alert)
            msg_id = str(alert["alert_id"])
            stamp = int(time.time())
            headers = {
                "content-type": "application/json",
                "user-agent": "pgtally-webhooks",
                "webhook-id": msg_id,
                "webhook-timestamp": str(stamp),
                "webhook-signature": sign(alert["secret"], msg_id, stamp, body),
            }
            status: int | None = None
            error: str | None = None
            try:
                status = post(alert["url"], body, headers, timeout)
            except (OSError, ValueError) as exc:  # no answer: refused, reset, timed out, bad URL
                error = f"{type(exc).__name__}: {exc}"[:2000]
            delivered = status is not None and 200 <= status < 300
            if not delivered and error is None:
                error = f"HTTP {status}"
            next_at = None if delivered or attempt >= max_attempts else now + backoff(attempt, base_delay, max_delay)
            cur.execute(
                """update tally.alert_deliveries
                      set attempts = %(attempt)s, next_attempt_at = %(next)s,
                          delivered_at = case when %(delivered)s then clock_timestamp() end
                    where alert_id = %(alert)s and endpoint_id = %(endpoint)s""",
                {
                    "attempt": attempt,
                    "next": next_at,
                    "delivered": delivered,
                    "alert": alert["alert_id"],
                    "endpoint": alert["endpoint_id"],
                },
            )
            cur.execute(
                """insert into tally.alert_delivery_attempts
                     (alert_id, endpoint_id, attempt, status_code, error, next_attempt_at, delivered_at)
                   values (%(alert)s, %(endpoint)s, %(attempt)s, %(status)s, %(error)s, %(next)s,
                           case when %(delivered)s then clock_timestamp() end)""",
                {
                    "alert": alert["alert_id"],
                    "endpoint": alert["endpoint_id"],
                    "attempt": attempt,
                    "status": status,
                    "error": error,
                    "next": next_at,
                    "delivered": delivered,
                },
            )
            attempts.append(
                Attempt(msg_id, alert["endpoint_id"], alert["url"], attempt, status, error, delivered, next_at)
            )
    return DeliveryRun(tuple(attempts))
