"""The async client: the same methods and results as the sync one, on a connection or a pool."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import io

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from pgtally import AsyncClient, Client, NegativeAmount, UsageEvent
from pgtally.admin import AdminClient, AsyncAdminClient

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)

# Usage relative to now: also runs at fixed clocks (tests/test_fixed_clocks.py).
pytestmark = pytest.mark.date_sensitive


def test_every_public_method_has_an_async_twin() -> None:
    sync = {n for n in dir(Client) if not n.startswith("_") and callable(getattr(Client, n))}
    missing = {n for n in sync if not hasattr(AsyncClient, n)}
    assert missing == set()
    for name in sync - {"connect", "close", "connection"}:
        assert inspect.iscoroutinefunction(getattr(AsyncClient, name)), f"AsyncClient.{name} is not async"
    admin = {n for n in dir(AdminClient) if not n.startswith("_")}
    assert all(inspect.iscoroutinefunction(getattr(AsyncAdminClient, n)) for n in admin)


def test_async_results_equal_sync_results(dsn: str) -> None:
    events = [
        UsageEvent(
            f"e{i}",
            f"u{i % 3}",
            "tts",
            100 + i,
            occurred_at=NOW - dt.timedelta(hours=i),
            duration_ms=1000 * i,
            attributes={"voice": ["af_alloy", "am_adam"][i % 2], "model": "kokoro"},
        )
        for i in range(40)
    ]

    async def scenario() -> tuple[list, list, object, object, str]:  # type: ignore[type-arg]
        async with await AsyncClient.connect(dsn) as tally:
            assert await tally.record_many(events, chunk_size=7) == 40
            assert await tally.record("e0", "u0", "tts", 100) is False
            assert await tally.record("x1", "u0", "ocr", 2) is True
            with pytest.raises(NegativeAmount):
                await tally.record("bad", "u0", "tts", -5)
            lifetime = await tally.lifetime_totals("u0", "voice")
            history = await tally.usage_history("u0", "7d", "day")
            card = await tally.summary_card("u0")
            await tally.merge_pending()
            board = await tally.admin.dashboard("7d")
            out = io.StringIO()
            await tally.export_events_csv("u0", NOW - dt.timedelta(days=30), NOW + dt.timedelta(days=1), out)
            return lifetime, history, card, board, out.getvalue()

    lifetime, history, card, board, csv_text = asyncio.run(scenario())
    with Client.connect(dsn) as tally:
        assert lifetime == tally.lifetime_totals("u0", "voice")
        assert history == tally.usage_history("u0", "7d", "day")
        assert card == tally.summary_card("u0")
        assert board.overview == tally.admin.dashboard("7d").overview  # type: ignore[attr-defined]
    assert csv_text.count("\n") == 1 + 15, "header and u0's 15 events"


def test_async_client_on_a_pool_with_concurrent_tasks(dsn: str, conn: psycopg.Connection) -> None:
    async def scenario() -> int:
        async with AsyncConnectionPool(dsn, min_size=2, max_size=4, open=False) as pool:
            tally = AsyncClient(pool)
            results = await asyncio.gather(*(tally.record(f"p{i % 20}", "hot", "tts", 1) for i in range(60)))
            return sum(results)

    assert asyncio.run(scenario()) == 20, "20 distinct ids among 60 concurrent calls are new"
    assert conn.execute("select sum(events) from tally.lifetime_totals('hot', 'kind')").fetchone() == (20,)
