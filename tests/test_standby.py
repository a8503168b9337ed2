"""Reads on a hot standby: every read answers there as on the primary, writes refuse, and the client routes.

One primary and one streaming standby serve the whole module (tests/standby_support.py); each test works
with users of its own. The data set is loaded on the primary (merged, pending, refreshed) and replayed by the
standby before the reads are compared.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import inspect
import io
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from every_read import NOT_READS, argument_values, call_every_read, read_functions
from pgtally import AsyncClient, Client, ReadOnlyServer, UsageEvent
from pgtally._query import PRIMARY_ONLY, REPLICA_READS, api_method
from pgtally.admin import AdminApi
from pgtally.core import CoreApi
from pgtally.user_reads import UserReadsMixin
from standby_support import StandbyPair, standby_pair

UTC = dt.timezone.utc
AT = dt.datetime(2025, 6, 28, 12, 0, tzinfo=UTC)
FIRST_DAY, LAST_DAY = dt.date(2025, 6, 1), dt.date(2025, 6, 30)
USERS = ("sb-ann", "sb-bob", "sb-cy", "sb-dee", "sb-eve", "sb-fay")

#: Functions of schema tally a hot standby refuses or that do not belong there, and why. Every function must be
#: here, be a read the test calls (every_read.py, OWNER_READS) or be an internal helper (a leading "_").
REFUSED_ON_STANDBY = {
    "record_usage": "writes the log",
    "record_usage_batch": "writes the log",
    "begin_staging": "creates the session's temporary staging table for record_usage_staged",
    "record_usage_staged": "writes the log",
    "reverse_usage": "writes the log",
    "amend_usage": "writes the log",
    "check_quota": "locks (user, kind) and must see the latest usage: refuses with PT013",
    "merge_pending": "folds pending deltas into the rollups",
    "refresh_analytics": "refreshes the materialized views",
    "schedule_refresh": "writes the pg_cron schedule",
    "set_min_group_size": "writes the analytics settings",
    "declare_funnel": "writes the funnels the refresh precomputes",
    "drop_funnel": "writes the funnels the refresh precomputes",
    "set_user_settings": "writes the user's settings",
    "declare_dimension": "writes the dimension registry",
    "declare_kind": "writes the kind registry",
    "upsert_plan": "writes the plans",
    "remove_plan": "writes the plans",
    "start_subscription": "writes the subscriptions",
    "end_subscription": "writes the subscriptions",
    "subscribe_reports": "writes the report subscriptions",
    "unsubscribe_reports": "writes the report subscriptions",
    "add_webhook_endpoint": "writes the webhook endpoints",
    "remove_webhook_endpoint": "writes the webhook endpoints",
    "ensure_partitions": "creates partitions",
    "apply_retention": "drops partitions",
    "forget_user": "pseudonymizes a user everywhere",
    "rebuild": "rewrites the aggregates",
    "rebuild_keys": "rewrites the exactly-once keys",
}
#: Owner-only reads (maintenance) that a standby answers too: called with these arguments.
OWNER_READS = {"verify": "select * from tally.verify()", "rebuild_users": "select * from tally.rebuild_users()"}


@pytest.fixture(scope="session")
def pair() -> Iterator[StandbyPair]:
    with standby_pair() as found:
        yield found


@pytest.fixture(scope="session")
def loaded(pair: StandbyPair) -> StandbyPair:
    """The shared data set: plans, subscriptions, events of several kinds (part merged, part pending), refreshed."""
    with Client.connect(pair.primary) as tally:
        tally.declare_kind("sb-tts", "characters", "Speech", audio=True, featured_dimension="voice")
        tally.upsert_plan("sb-pro", tier=1, monthly_price="9.00", limits={"sb-tts": 1_000_000})
        events = []
        for u, user in enumerate(USERS):
            tally.start_subscription(user, "sb-pro", dt.datetime(2025, 5, 1, tzinfo=UTC))
            for i in range(40):
                day = dt.datetime(2025, 6, 1 + (i * 7 + u) % 28, 6 + i % 15, tzinfo=UTC)
                failed = i % 9 == 0
                events.append(
                    UsageEvent(
                        f"sb-{user}-{i}",
                        user,
                        ("sb-tts", "ocr", "paywall.viewed")[i % 3],
                        10 + i * (u + 1),
                        occurred_at=day,
                        duration_ms=1000 * i,
                        cost=Decimal("0.0125") * i,
                        status="failed" if failed else "succeeded",
                        error_code="E_TIMEOUT" if failed else None,
                        attributes={"voice": ("alloy", "nova")[i % 2], "model": "m1", "session_id": f"s{i // 5}"},
                    )
                )
        tally.record_many(events[: len(events) // 2])
        tally.merge_pending()
        tally.admin.refresh(merge_first=False)
        tally.record_many(events[len(events) // 2 :])  # pending: every read adds them
    pair.catch_up()
    return pair


def _now_free(value: Any, window: tuple[dt.datetime, dt.datetime]) -> Any:
    """``value`` with the moments of the call (now(), statement_timestamp(), within ``window``) made comparable
    across servers, and ages measured up to them (``age`` = the call's moment - ``refreshed_at``)."""
    if isinstance(value, dict):
        found = {k: _now_free(v, window) for k, v in value.items()}
        age, since = value.get("age"), value.get("refreshed_at")
        if isinstance(age, dt.timedelta) and isinstance(since, dt.datetime) and window[0] <= since + age <= window[1]:
            found["age"] = "since refreshed_at"
        return found
    if isinstance(value, list):
        return [_now_free(v, window) for v in value]
    if isinstance(value, dt.datetime) and window[0] <= value <= window[1]:
        return "now()"
    return value


def _every_answer(dsn: str) -> dict[str, Any]:
    """Every read and owner read on one server, in one REPEATABLE READ transaction (one snapshot)."""
    values = argument_values(USERS[0], AT, FIRST_DAY, LAST_DAY, ["sb-tts", "ocr", "paywall.viewed"])
    with psycopg.connect(dsn) as conn:
        conn.execute("set transaction isolation level repeatable read")
        start = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
        answers: dict[str, Any] = dict(call_every_read(conn, values))
        for name, query in OWNER_READS.items():
            answers[name] = conn.execute(query).fetchall()
        end = conn.execute("select clock_timestamp()").fetchone()[0]  # type: ignore[index]
        conn.rollback()
    return _now_free(answers, (start, end))


# ---------------------------------------------------------------- the SQL API on the standby


def test_every_read_answers_on_the_standby_as_on_the_primary(loaded: StandbyPair) -> None:
    primary, standby = _every_answer(loaded.primary), _every_answer(loaded.standby)
    assert sorted(standby) == sorted(primary)
    differ = [name for name in primary if standby[name] != primary[name]]
    assert differ == [], f"the standby answers differently: {differ}"
    # The data set reaches the reads: merged and pending rows, refreshed views, plans.
    kinds = {r["value"]: r["events"] for r in primary["lifetime_totals"]}
    assert sum(kinds.values()) == 40 - 5  # five failed events count as failures, not events
    assert primary["admin_totals"] and primary["subscription_summary"] and primary["export_events"]
    with psycopg.connect(loaded.standby) as conn:
        assert conn.execute("select pg_is_in_recovery()").fetchone() == (True,)


def test_every_function_is_a_read_the_standby_answers_or_is_listed_as_refused(loaded: StandbyPair) -> None:
    with psycopg.connect(loaded.primary) as conn:
        everything = {
            r[0] for r in conn.execute("select proname from pg_proc where pronamespace = 'tally'::regnamespace")
        }
        reads = {name for name, _ in read_functions(conn)}
    unclassified = everything - reads - OWNER_READS.keys() - REFUSED_ON_STANDBY.keys()
    unclassified = {name for name in unclassified if not name.startswith("_")}
    assert unclassified == set(), (
        "functions neither called on the standby by this test (every_read.py, OWNER_READS) nor listed, with the"
        f" reason, in REFUSED_ON_STANDBY: {sorted(unclassified)}"
    )
    assert sorted(REFUSED_ON_STANDBY.keys() - everything) == [], "REFUSED_ON_STANDBY names functions that are gone"
    assert REFUSED_ON_STANDBY.keys() >= NOT_READS
    assert not (reads & REFUSED_ON_STANDBY.keys()), "a function is both called as a read and listed as refused"


def test_check_quota_refuses_on_the_standby_even_for_an_unlimited_kind(loaded: StandbyPair) -> None:
    with psycopg.connect(loaded.standby, autocommit=True) as conn:
        for kind in ("sb-tts", "ocr"):  # limited, and unlimited (which reads nothing it could lock)
            with pytest.raises(psycopg.Error) as info:
                conn.execute("select tally.check_quota(%s, %s, 1)", (USERS[0], kind))
            assert info.value.sqlstate == "PT013", info.value
            assert "hot standby" in str(info.value)
            assert "primary" in (info.value.diag.message_hint or "")
    with psycopg.connect(loaded.primary, autocommit=True) as conn:
        assert conn.execute("select tally.check_quota(%s, 'ocr', 1)", (USERS[0],)).fetchone() == (None,)


# ---------------------------------------------------------------- writes refuse through the client


def _writes(user: str) -> dict[str, Callable[[Client], object]]:
    """A call of every method that runs on the primary, by qualified name (the method's arguments are valid)."""
    return {
        "CoreApi.record": lambda c: c.record(f"{user}-w", user, "ocr", 1, occurred_at=AT),
        "CoreApi.reverse": lambda c: c.reverse(USERS[0], f"sb-{USERS[0]}-1", f"{user}-rev"),
        "CoreApi.amend": lambda c: c.amend(USERS[0], f"sb-{USERS[0]}-1", f"{user}-amend", quantity_delta=-1),
        "CoreApi.record_many": lambda c: c.record_many([UsageEvent(f"{user}-m", user, "ocr", 1, occurred_at=AT)]),
        "CoreApi.set_user_settings": lambda c: c.set_user_settings(user, time_zone="Europe/Berlin"),
        "CoreApi.declare_dimension": lambda c: c.declare_dimension("sb_dim", ["model"]),
        "CoreApi.declare_kind": lambda c: c.declare_kind("sb-kind", "pages"),
        "CoreApi.merge_pending": lambda c: c.merge_pending(),
        "UserReadsMixin.upsert_plan": lambda c: c.upsert_plan("sb-other", tier=2, monthly_price=1),
        "UserReadsMixin.start_subscription": lambda c: c.start_subscription(user, "sb-pro", AT),
        "UserReadsMixin.end_subscription": lambda c: c.end_subscription(USERS[0], AT),
        "UserReadsMixin.check_quota": lambda c: c.check_quota(USERS[0], "ocr", 1),
        "AdminApi.refresh": lambda c: c.admin.refresh(),
        "AdminApi.set_min_group_size": lambda c: c.admin.set_min_group_size(3),
    }


def test_writes_quota_checks_and_refreshes_refuse_on_the_standby_with_read_only_server(loaded: StandbyPair) -> None:
    user = f"sb-w-{uuid.uuid4().hex[:8]}"
    writes = _writes(user)
    # schedule_refresh needs pg_cron, which the throwaway servers lack (it says so before writing anything).
    assert sorted(PRIMARY_ONLY.keys() - writes.keys()) == ["AdminApi.schedule_refresh"]
    with Client.connect(loaded.standby) as on_standby:
        for name, write in writes.items():
            with pytest.raises(ReadOnlyServer) as info:
                write(on_standby)
            assert info.value.sqlstate in ("25006", "PT013"), name
            assert "read-only hot standby" in str(info.value), name
            assert "primary" in str(info.value), name
    with Client.connect(loaded.primary) as on_primary:
        assert on_primary.check_quota(USERS[0], "sb-tts", 1) is not None  # the same calls work on the primary
        assert on_primary.record(f"{user}-w", user, "ocr", 1, occurred_at=AT) is True


# ---------------------------------------------------------------- routing


def _api_methods() -> dict[str, api_method[..., Any]]:
    return {
        value.__qualname__: value
        for api in (CoreApi, UserReadsMixin, AdminApi)
        for value in vars(api).values()
        if isinstance(value, api_method)
    }


def test_every_api_method_is_routed_on_purpose() -> None:
    methods = _api_methods()
    both = REPLICA_READS & PRIMARY_ONLY.keys()
    assert both == set(), f"listed as a replica read and as primary-only: {sorted(both)}"
    neither = methods.keys() - REPLICA_READS - PRIMARY_ONLY.keys()
    assert neither == set(), f"put each in REPLICA_READS or PRIMARY_ONLY (pgtally/_query.py): {sorted(neither)}"
    assert sorted((REPLICA_READS | PRIMARY_ONLY.keys()) - methods.keys()) == [], "the tables name methods that are gone"
    assert all(m.on_replica == (name in REPLICA_READS) for name, m in methods.items())


def _read_arguments(method: api_method[..., Any], user: str) -> dict[str, Any]:
    """Arguments for a read: the required ones and every date or moment (so no answer depends on today)."""
    given = {
        "user_id": user,
        "dimension": "voice",
        "from_day": FIRST_DAY,
        "to_day": LAST_DAY,
        "from_at": dt.datetime(2025, 6, 1, tzinfo=UTC),
        "to_at": dt.datetime(2025, 7, 1, tzinfo=UTC),
        "at": AT,
        "kind": "sb-tts",  # one unit: the quantity of all kinds adds different units
    }
    found: dict[str, Any] = {}
    for name, parameter in list(inspect.signature(method.fn).parameters.items())[1:]:
        if name == "out":
            found[name] = io.StringIO()
        elif name in given:
            found[name] = given[name]
        else:
            assert parameter.default is not parameter.empty, f"{method.__qualname__}: no test value for {name}"
    return found


def _comparable(value: Any, window: tuple[dt.datetime, dt.datetime]) -> Any:
    """A result as plain data, moments inside the call's time window (the server's now()) made equal."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: None if k == "age" else _comparable(v, window) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_comparable(v, window) for v in value]
    if isinstance(value, dt.datetime) and value.tzinfo and window[0] <= value <= window[1]:
        return "now()"
    return value


def _call_every_client_read(tally: Client) -> dict[str, Any]:
    answers = {}
    for name in sorted(REPLICA_READS):
        method = _api_methods()[name]
        target = tally.admin if name.startswith("AdminApi.") else tally
        kwargs = _read_arguments(method, USERS[1])
        start = dt.datetime.now(UTC) - dt.timedelta(seconds=1)
        result = getattr(target, method.__name__)(**kwargs)
        window = (start, dt.datetime.now(UTC) + dt.timedelta(seconds=1))
        answers[name] = _comparable(kwargs["out"].getvalue() if "out" in kwargs else result, window)
    return answers


def test_every_client_read_runs_on_the_replica_and_answers_as_the_primary(loaded: StandbyPair) -> None:
    loaded.catch_up()  # the replica has every write of the tests before, so both answer the same
    with Client.connect(loaded.primary) as plain:
        expected = _call_every_client_read(plain)
        assert plain.routing_stats.replica_reads == 0
    with Client.connect(loaded.primary, replicas=[loaded.standby]) as routed:
        found = _call_every_client_read(routed)
        stats = routed.routing_stats
    assert [name for name in expected if found[name] != expected[name]] == []
    # Every query on the replica (a method may run several: the dashboard, the summary card).
    assert stats.replica_reads >= len(REPLICA_READS) and stats.primary_reads == 0 and stats.primary_calls == 0
    assert expected["CoreApi.lifetime_totals"] and expected["UserReadsMixin.export_events_csv"].count("\n") > 10


def _kind_events(tally: Client, user: str) -> int:
    return sum(t.events for t in tally.lifetime_totals(user))


def test_reads_come_from_the_replica_writes_go_to_the_primary(loaded: StandbyPair) -> None:
    user = f"sb-r-{uuid.uuid4().hex[:8]}"
    # replica_wait: how long a read of this client's own write may wait for replay; generous, so that a slow replay on a
    # busy machine cannot send the read to the primary (the counts below say where each read ran, not how fast).
    with (
        Client.connect(loaded.primary, replicas=[loaded.standby], replica_wait=30.0) as routed,
        Client.connect(loaded.primary) as other,
    ):
        assert routed.record(f"{user}-1", user, "ocr", 1, occurred_at=AT) is True
        assert _kind_events(routed, user) == 1
        with loaded.replay_paused():
            # Another client's write is not this client's: its read goes to the replica, which has not replayed it.
            assert other.record(f"{user}-2", user, "ocr", 1, occurred_at=AT) is True
            assert _kind_events(routed, user) == 1
            assert _kind_events(other, user) == 2
            # A quota check and a write through the routed client run on the primary although replay is paused.
            assert routed.check_quota(user, "ocr", 1) is None
            assert routed.record(f"{user}-3", user, "ocr", 1, occurred_at=AT) is True
        stats = routed.routing_stats
    assert (stats.replica_reads, stats.primary_calls) == (2, 3)


def test_read_your_writes_through_the_replica(loaded: StandbyPair) -> None:
    user = f"sb-ryw-{uuid.uuid4().hex[:8]}"
    with Client.connect(loaded.primary, replicas=[loaded.standby], replica_wait=5.0) as routed:
        for i in range(40):
            assert routed.record(f"{user}-{i}", user, "ocr", 1, occurred_at=AT) is True
            assert _kind_events(routed, user) == i + 1, f"read {i} missed the write just before it"
        stats = routed.routing_stats
    assert (stats.replica_reads, stats.primary_reads, stats.lagging) == (40, 0, 0)


def test_a_read_falls_back_to_the_primary_when_the_replica_lags_beyond_the_bound(loaded: StandbyPair) -> None:
    user = f"sb-lag-{uuid.uuid4().hex[:8]}"
    with Client.connect(loaded.primary, replicas=[loaded.standby], replica_wait=0.3) as routed:
        with loaded.replay_paused():
            routed.record(f"{user}-1", user, "ocr", 1, occurred_at=AT)
            started = dt.datetime.now(UTC)
            assert _kind_events(routed, user) == 1  # from the primary: the replica did not replay the write
            waited = (dt.datetime.now(UTC) - started).total_seconds()
            assert 0.3 <= waited < 5
            stats = routed.routing_stats
            assert (stats.replica_reads, stats.primary_reads, stats.lagging) == (0, 1, 1)
        loaded.catch_up()
        assert _kind_events(routed, user) == 1
        assert routed.routing_stats.replica_reads == 1  # caught up: the replica serves again


def test_a_read_inside_the_callers_transaction_stays_on_the_primary(loaded: StandbyPair) -> None:
    user = f"sb-tx-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(loaded.primary) as conn:
        routed = Client(conn, replicas=[loaded.standby], replica_wait=30.0)  # the commit's replay may be slow
        routed.record(f"{user}-1", user, "ocr", 1, occurred_at=AT)  # not committed yet
        assert _kind_events(routed, user) == 1
        conn.commit()
        assert _kind_events(routed, user) == 1  # on the replica, once it replayed the commit
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        stats = routed.routing_stats
        assert (stats.primary_reads, stats.replica_reads) == (1, 1)
        routed.close()


def _dead_dsn(pair: StandbyPair) -> str:
    """A DSN where no server listens (the standby's socket directory, another port)."""
    return psycopg.conninfo.make_conninfo(pair.standby, port="1")


def test_a_replica_that_is_down_is_skipped(loaded: StandbyPair) -> None:
    user = USERS[2]
    with Client.connect(loaded.primary) as plain:
        expected = _kind_events(plain, user)
    with Client.connect(loaded.primary, replicas=[_dead_dsn(loaded)]) as routed:
        assert _kind_events(routed, user) == expected
        assert _kind_events(routed, user) == expected
        stats = routed.routing_stats
        # Tried once, then left out for replica_retry_after seconds: both reads on the primary.
        assert (stats.replica_failures, stats.primary_reads, stats.replica_reads) == (1, 2, 0)
    with Client.connect(loaded.primary, replicas=[_dead_dsn(loaded), loaded.standby]) as routed:
        for _ in range(4):
            assert _kind_events(routed, user) == expected
        stats = routed.routing_stats
        assert (stats.replica_failures, stats.primary_reads, stats.replica_reads) == (1, 0, 4)


def test_a_lost_replica_connection_is_reopened(loaded: StandbyPair) -> None:
    user = USERS[2]
    with Client.connect(loaded.primary, replicas=[loaded.standby], replica_retry_after=0) as routed:
        expected = _kind_events(routed, user)
        with psycopg.connect(loaded.standby, autocommit=True) as admin:
            admin.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where pid <> pg_backend_pid()"
                " and datname = current_database() and backend_type = 'client backend'"
            )
        # The replica's connection is lost: noted as a failure, and (replica_retry_after=0) the read runs
        # on the replica again at once, over a new connection.
        assert _kind_events(routed, user) == expected
        stats = routed.routing_stats
    assert (stats.replica_failures, stats.primary_reads, stats.replica_reads) == (1, 0, 2)


@contextlib.contextmanager
def _conflict_on_next_replica_query(client: Any, asynchronous: bool = False) -> Iterator[list[str]]:
    """The client's next query on a replica is cancelled as a hot standby does on a conflict with recovery."""
    raised: list[str] = []
    original = client._replica_connection

    def conflict() -> psycopg.Error:
        raised.append("40001")
        return psycopg.errors.SerializationFailure(
            "canceling statement due to conflict with recovery"
        )  # what the standby sends (SQLSTATE 40001)

    if asynchronous:

        @contextlib.asynccontextmanager
        async def flaky_async(replica: Any) -> Any:
            async with original(replica) as conn:
                if not raised:
                    raise conflict()
                yield conn

        client._replica_connection = flaky_async
    else:

        @contextlib.contextmanager
        def flaky(replica: Any) -> Iterator[Any]:
            with original(replica) as conn:
                if not raised:
                    raise conflict()
                yield conn

        client._replica_connection = flaky
    try:
        yield raised
    finally:
        client._replica_connection = original


def test_a_recovery_conflict_is_retried_on_the_replica(loaded: StandbyPair) -> None:
    with Client.connect(loaded.primary, replicas=[loaded.standby]) as routed:
        with _conflict_on_next_replica_query(routed) as raised:
            assert _kind_events(routed, USERS[3]) > 0
        assert raised == ["40001"]
        stats = routed.routing_stats
        assert (stats.replica_reads, stats.primary_reads, stats.replica_failures) == (1, 0, 0)
    with (
        Client.connect(loaded.primary, replicas=[loaded.standby], retries=0) as routed,
        _conflict_on_next_replica_query(routed),
        pytest.raises(psycopg.errors.SerializationFailure),
    ):
        routed.lifetime_totals(USERS[3])


def test_an_export_that_streamed_part_of_its_rows_is_not_repeated(loaded: StandbyPair) -> None:
    class BreaksAfterFirstChunk(io.StringIO):
        def write(self, s: str) -> int:
            n = super().write(s)
            raise psycopg.errors.SerializationFailure("canceling statement due to conflict with recovery")
            return n  # pragma: no cover

    out = BreaksAfterFirstChunk()
    with (
        Client.connect(loaded.primary, replicas=[loaded.standby], retries=3) as routed,
        pytest.raises(psycopg.errors.SerializationFailure),
    ):
        routed.export_events_csv(USERS[0], dt.datetime(2025, 6, 1, tzinfo=UTC), AT, out)
    assert out.getvalue().count("\n") <= 1  # one chunk written, and not a second time


# ---------------------------------------------------------------- the async client


def test_async_client_routes_reads_to_the_replica_and_keeps_read_your_writes(loaded: StandbyPair) -> None:
    user = f"sb-async-{uuid.uuid4().hex[:8]}"

    async def events(tally: AsyncClient) -> int:
        return sum(t.events for t in await tally.lifetime_totals(user))

    async def scenario() -> None:
        async with (
            await AsyncClient.connect(loaded.primary, replicas=[loaded.standby], replica_wait=5.0) as routed,
            await AsyncClient.connect(loaded.primary) as other,
        ):
            for i in range(20):
                assert await routed.record(f"{user}-{i}", user, "ocr", 1, occurred_at=AT) is True
                assert await events(routed) == i + 1
            stats = routed.routing_stats
            assert (stats.replica_reads, stats.primary_reads, stats.primary_calls) == (20, 0, 20)
            with loaded.replay_paused():
                await other.record(f"{user}-other", user, "ocr", 1, occurred_at=AT)
                assert await events(routed) == 20  # the replica, which has not replayed the other client's write
                assert await routed.check_quota(user, "ocr", 1) is None  # the primary
                routed._routing.wait = 0.3
                assert await routed.record(f"{user}-late", user, "ocr", 1, occurred_at=AT) is True
                assert await events(routed) == 22  # the primary: the replica lags beyond the bound
                assert routed.routing_stats.lagging == 1
            with _conflict_on_next_replica_query(routed, asynchronous=True) as raised:
                loaded.catch_up()
                assert await events(routed) == 22
            assert raised == ["40001"]
        async with await AsyncClient.connect(loaded.primary, replicas=[_dead_dsn(loaded), loaded.standby]) as routed:
            assert await events(routed) == 22
            assert await events(routed) == 22
            stats = routed.routing_stats
            assert (stats.replica_failures, stats.replica_reads, stats.primary_reads) == (1, 2, 0)
        async with await AsyncClient.connect(loaded.standby) as on_standby:
            with pytest.raises(ReadOnlyServer):
                await on_standby.record(f"{user}-x", user, "ocr", 1, occurred_at=AT)
            with pytest.raises(ReadOnlyServer):
                await on_standby.check_quota(user, "ocr", 1)

    asyncio.run(scenario())
