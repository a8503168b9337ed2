"""What a user's type checker sees of the clients: checked by mypy --strict in tests/test_gates.py, never run.

Every API method is written once (pgtally._query.api_method); these lines fail
the mypy gate when the sync client stops returning plain values or an async
method stops being an awaitable of the same value.
"""

from __future__ import annotations

import datetime as dt

from typing_extensions import assert_type

from pgtally import AsyncClient, Client, DimensionTotal
from pgtally.admin_models import Dashboard, Overview
from pgtally.user_models import PeerPercentile, SummaryCard

DAY = dt.date(2026, 3, 1)


def sync_client(client: Client) -> None:
    assert_type(client.record("job-1", "user-42", "tts", 180, attributes={"voice": "af_alloy"}), bool)
    assert_type(client.record_many([{"event_id": "a", "user_id": "u", "kind": "tts"}]), int)
    assert_type(client.lifetime_totals("user-42", "voice"), list[DimensionTotal])
    assert_type(client.summary_card("user-42"), SummaryCard)
    assert_type(client.peer_percentile("user-42", "tts"), PeerPercentile | None)
    assert_type(client.plan_at("user-42"), str | None)
    assert_type(client.admin.overview(), Overview | None)
    assert_type(client.admin.dashboard("30d"), Dashboard)


async def async_client(client: AsyncClient) -> None:
    assert_type(await client.record("job-1", "user-42", "tts", 180, attributes={"voice": "af_alloy"}), bool)
    assert_type(await client.record_many([{"event_id": "a", "user_id": "u", "kind": "tts"}]), int)
    assert_type(await client.lifetime_totals("user-42", "voice"), list[DimensionTotal])
    assert_type(await client.summary_card("user-42"), SummaryCard)
    assert_type(await client.peer_percentile("user-42", "tts"), PeerPercentile | None)
    assert_type(await client.plan_at("user-42"), str | None)
    assert_type(await client.admin.overview(), Overview | None)
    assert_type(await client.admin.dashboard("30d"), Dashboard)


def wrong_arguments_are_caught(client: Client) -> None:
    client.record("job-1", "user-42", "tts", "180")  # type: ignore[arg-type]
    client.lifetime_totals("user-42", dimensions="voice")  # type: ignore[call-arg]
