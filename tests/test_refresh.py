"""tally.refresh_analytics with real connections: readers are never blocked, two refreshes never both run,
and only analysts read the analytics.

A refresh is made long by holding an ACCESS EXCLUSIVE lock on one of the rollups
it reads (tally.user_daily_ops, read by the second view): it then sits inside
its transaction, holding the EXCLUSIVE locks of REFRESH ... CONCURRENTLY, until
the test lets it go.

The tests wait on conditions, never on wall time (no sleeps, timeouts or latencies
to measure), so they hold at any clock, a fixed one included: a session that would
be blocked is seen waiting on a lock in pg_stat_activity, where it stays until the
test releases the lock that holds the refresh.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from pgtally.admin import RefreshNotScheduled
from pgtally.client import Client
from pgtally.models import UsageEvent

UTC = dt.timezone.utc
# The analytics views one refresh_analytics() call refreshes (tally._analytics_views()).
VIEWS = 10

# The analytics' windows (24h, 7d, 30d) are relative to the moment of the refresh: run at fixed clocks too.
pytestmark = pytest.mark.date_sensitive


def _events(prefix: str, users: int, per_user: int) -> list[UsageEvent]:
    day = dt.datetime(2026, 11, 1, 10, tzinfo=UTC)
    return [
        UsageEvent(
            f"{prefix}-{u}-{i}",
            f"{prefix}-user-{u}",
            "tts",
            100,
            day + dt.timedelta(days=i % 20),
            7000,
            "0.001",
            attributes={"voice": "af_alloy", "model": "kokoro"},
        )
        for u in range(users)
        for i in range(per_user)
    ]


@pytest.fixture
def loaded(dsn: str) -> Iterator[str]:
    """A database with 20 users' usage merged and refreshed once."""
    with Client.connect(dsn) as client:
        client.record_many(_events("a", 20, 10))
        client.admin.refresh()
    yield dsn


def _wait_until(predicate: Callable[[], bool], polls: int = 3000) -> None:
    """Polls a condition (a bounded number of times, a short pause apart: a safety net, not a timing)."""
    for _ in range(polls):
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"the condition did not hold after {polls} polls")


def _waiting_on_lock(conn: psycopg.Connection, pid: int) -> bool:
    row = conn.execute("select wait_event_type from pg_stat_activity where pid = %s", (pid,)).fetchone()
    return bool(row and row[0] == "Lock")


def _waiting(conn: psycopg.Connection, pid: int) -> str | None:
    """What the session ``pid`` waits for when it waits on something other than its client: a lock, a sleep."""
    row = conn.execute(
        "select wait_event_type || ': ' || wait_event from pg_stat_activity"
        " where pid = %s and state = 'active' and wait_event_type in ('Lock', 'Timeout')",
        (pid,),
    ).fetchone()
    return row[0] if row else None


def _waits_running(
    conn: psycopg.Connection, writer: psycopg.Connection, sql: str, params: tuple[Any, ...]
) -> str | None:
    """Runs ``sql`` on ``writer`` in a thread; returns what it waited for (and cancels it) if it waits, else None."""
    done = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            writer.execute(sql, params)
        except BaseException as exc:
            failure.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    pid = writer.info.backend_pid
    _wait_until(lambda: done.is_set() or _waiting(conn, pid) is not None)
    if done.is_set():
        thread.join()
        assert not failure, failure
        return None
    why = _waiting(conn, pid)
    conn.execute("select pg_cancel_backend(%s)", (pid,))
    thread.join(60)
    return why or "a lock"


class _Background(threading.Thread):
    """Runs a function on its own connection and keeps its result or exception."""

    def __init__(self, dsn: str, fn: Callable[[psycopg.Connection], Any]) -> None:
        super().__init__(daemon=True)
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.pid = self.conn.info.backend_pid
        self.fn = fn
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.fn(self.conn)
        except BaseException as exc:
            self.error = exc
        finally:
            self.conn.close()


def _refresh(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute("select view_name, status from tally.refresh_analytics()").fetchall()


def test_a_long_refresh_does_not_block_readers(loaded: str) -> None:
    dsn = loaded
    with psycopg.connect(dsn, autocommit=True) as conn, Client.connect(dsn) as writer:
        before = conn.execute("select users, events from tally.admin_overview()").fetchone()
        assert before == (20, 200)
        # New usage, merged, so the next refresh changes the answers.
        writer.record_many(_events("b", 25, 4))
        assert writer.merge_pending() == 100

        locker = psycopg.connect(dsn)
        try:
            locker.execute("lock table tally.user_daily_ops in access exclusive mode")
            refresher = _Background(dsn, _refresh)
            refresher.start()
            _wait_until(lambda: _waiting_on_lock(conn, refresher.pid))

            # The refresh is stuck mid-way: admin_totals_mv is refreshed (uncommitted) and it waits on the
            # next view. A reader reads every analytics answer ten times meanwhile; were it blocked, it would
            # wait on a lock for as long as the refresh is held, where pg_stat_activity shows it.
            queries = (
                "select users, events from tally.admin_overview()",
                "select sum(events)::bigint, count(*) from tally.admin_totals('kind')",
                "select count(*) from tally.admin_leaderboard('voice', 'all')",
                "select count(*) from tally.admin_active_users('2026-11-01', '2026-11-30')",
                "select sum(events)::bigint from tally.admin_trend('kind', null, '2026-11-01', '2026-11-30')",
            )
            reader = _Background(
                dsn, lambda c: [(sql, c.execute(sql).fetchone()) for _ in range(10) for sql in queries]
            )
            reader.start()
            blocked = _what_it_waited_for(conn, reader)
            assert blocked is None, f"a reader waited ({blocked}) during the refresh"
            reader.join()
            assert reader.error is None
            assert refresher.is_alive(), "the refresh must still be running while the reader reads"
            assert _waiting_on_lock(conn, refresher.pid)
            assert len(reader.result) == 50
            # Readers keep seeing the previous contents, consistently.
            answers = set(reader.result)
            assert ("select users, events from tally.admin_overview()", (20, 200)) in answers
            assert len(answers) == 5
        finally:
            locker.rollback()
            locker.close()
        refresher.join(30)
        assert refresher.error is None
        assert [s for _, s in refresher.result] == ["refreshed"] * VIEWS
        # After the refresh commits, every view shows the new usage at once.
        assert conn.execute("select users, events from tally.admin_overview()").fetchone() == (45, 300)
        assert conn.execute("select sum(events)::bigint from tally.admin_totals('kind')").fetchone() == (300,)
        trend = "select sum(events)::bigint from tally.admin_trend('kind', null, '2026-11-01', '2026-11-30')"
        assert conn.execute(trend).fetchone() == (300,)


_DAILY_IS_EXACT = (
    "select not exists (select * from tally.admin_daily except select * from tally._admin_daily_rows(null))"
    " and not exists (select * from tally._admin_daily_rows(null) except select * from tally.admin_daily)"
)
_OCT_2 = dt.datetime(2026, 10, 2, 10, tzinfo=UTC)


def _oct_2_events(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "select coalesce(sum(events), 0)::int from tally.admin_daily"
        " where dimension = 'kind' and plan = '*' and day = '2026-10-02' and value = 'tts'"
    ).fetchone()
    assert row is not None
    return int(row[0])


# One user's TTS row of a day in the rollup, written directly: its statement marks the day for the refresh.
_USER_DAY_ROW = (
    "insert into tally.user_daily_values (user_id, day, plan, dimension, value, kind, events, succeeded, quantity)"
    " values (%s, %s, '', 'kind', 'tts', 'tts', 1, 1, 10)"
)


def _refresh_takes_every_mark(conn: psycopg.Connection) -> None:
    """The next refresh re-aggregates what is marked: the table is exact and nothing stays marked."""
    _refresh(conn)
    assert conn.execute(_DAILY_IS_EXACT).fetchone() == (True,)
    assert _marked(conn) == []


def _marked(conn: psycopg.Connection) -> list[dt.date]:
    return [r[0] for r in conn.execute("select distinct day from tally.admin_daily_stale order by day")]


def _merge_a_late_event(writer: Client, conn: psycopg.Connection) -> None:
    """A late event on Oct 2, recorded and merged (committed): the merge marks the day for the next refresh."""
    writer.record("late-1", "late-user-1", "tts", 10, occurred_at=_OCT_2)
    writer.merge_pending()
    assert _marked(conn) == [dt.date(2026, 10, 2)]


def test_a_merge_committed_during_the_refresh_is_taken_at_the_next(loaded: str) -> None:
    """The daily totals re-aggregate only the days marked as changed. A merge that marks a day again and is still
    uncommitted while a refresh runs (so the refresh cannot see its rows or its mark) keeps the day marked: the
    refresh does not wait for it and deletes only the marks it read, and the next refresh counts it."""
    dsn = loaded
    with psycopg.connect(dsn, autocommit=True) as conn, Client.connect(dsn) as writer:
        _merge_a_late_event(writer, conn)
        # A late event recorded and merged in one transaction, held open: the refresh cannot see it at all.
        merger = psycopg.connect(dsn)
        try:
            merger.execute("select tally.record_usage('late-2', 'late-user-2', 'tts', 10, %s)", (_OCT_2,))
            assert merger.execute("select tally.merge_pending()").fetchone() == (1,)
            refresher = _Background(dsn, _refresh)
            refresher.start()
            _wait_until(lambda: _waiting_on_lock(conn, refresher.pid) or not refresher.is_alive())
            assert not refresher.is_alive(), "the refresh waited for the merge"
            assert refresher.error is None and [s for _, s in refresher.result] == ["refreshed"] * VIEWS
            assert _oct_2_events(conn) == 1, "the refresh could not see the uncommitted merge"
            merger.commit()
        finally:
            merger.close()
        assert _marked(conn) == [dt.date(2026, 10, 2)], "the day the merge marked again stays marked"
        _refresh_takes_every_mark(conn)
        assert _oct_2_events(conn) == 2


def test_a_mark_committed_after_the_refresh_read_the_marks_stays(loaded: str) -> None:
    """A writer commits a change of a marked day after the refresh has read the marks and before it deletes them
    (the refresh is held there by a lock on the daily totals table, which only it touches): the refresh deletes the
    mark it read, not the writer's, so the day stays marked and the next refresh counts the change."""
    dsn = loaded
    with psycopg.connect(dsn, autocommit=True) as conn, Client.connect(dsn) as writer:
        _merge_a_late_event(writer, conn)
        locker = psycopg.connect(dsn)
        try:
            locker.execute("lock table tally.admin_daily in access exclusive mode")
            refresher = _Background(dsn, _refresh)
            refresher.start()
            _wait_until(lambda: _waiting_on_lock(conn, refresher.pid) or not refresher.is_alive())
            assert refresher.is_alive(), refresher.error
            conn.execute(_USER_DAY_ROW, ("between-user", _OCT_2.date()))  # marks Oct 2 again, committed
        finally:
            locker.rollback()
            locker.close()
        refresher.join(60)
        assert refresher.error is None and [s for _, s in refresher.result] == ["refreshed"] * VIEWS
        assert _marked(conn) == [dt.date(2026, 10, 2)], "the mark committed after the refresh read the marks stays"
        _refresh_takes_every_mark(conn)


def test_a_merge_during_an_uncommitted_refresh_does_not_wait_for_it(loaded: str) -> None:
    """The other order: a refresh has unmarked a day and not committed; a merge of that day neither waits for the
    refresh nor is lost: it adds a mark of its own, which the refresh's commit leaves for the next refresh."""
    dsn = loaded
    with psycopg.connect(dsn, autocommit=True) as conn, Client.connect(dsn) as writer:
        _merge_a_late_event(writer, conn)
        refresher = psycopg.connect(dsn)
        try:
            _refresh(refresher)  # done, not committed: Oct 2 is unmarked in its transaction
            writer.record("late-2", "late-user-2", "tts", 10, occurred_at=_OCT_2)
            merger = _Background(dsn, lambda c: c.execute("select tally.merge_pending()").fetchone())
            merger.start()
            waited = _what_it_waited_for(conn, merger)
            assert waited is None, f"the merge waited for the uncommitted refresh ({waited})"
            merger.join(60)
            assert merger.error is None and merger.result == (1,)
            refresher.commit()
        finally:
            refresher.close()
        assert _oct_2_events(conn) == 1, "the refresh could not see the merge"
        assert _marked(conn) == [dt.date(2026, 10, 2)], "the merge's mark outlives the refresh's commit"
        _refresh_takes_every_mark(conn)
        assert _oct_2_events(conn) == 2


def test_writers_marking_the_same_days_in_opposite_orders_never_wait(loaded: str) -> None:
    """Two transactions change the per-user rows of the same two days in opposite orders, a statement per day (as a
    rebuild's delete then insert does). Each statement marks its day for the refresh; marks are per transaction, so
    neither writer waits for the other's marks and they cannot deadlock; the next refresh counts both."""
    dsn = loaded
    days = [dt.date(2026, 10, 5), dt.date(2026, 10, 6)]
    with psycopg.connect(dsn, autocommit=True) as conn:
        first, second = psycopg.connect(dsn), psycopg.connect(dsn)
        try:
            first.execute(_USER_DAY_ROW, ("order-a", days[0]))
            second.execute(_USER_DAY_ROW, ("order-b", days[1]))
            # Each now marks the day the other marked first.
            blocked = [
                why
                for writer, day, user in ((first, days[1], "order-a"), (second, days[0], "order-b"))
                if (why := _waits_running(conn, writer, _USER_DAY_ROW, (user, day))) is not None
            ][:1]
            assert not blocked, f"a writer waited for the other's marks ({blocked[0]})"
            first.commit()
            second.commit()
        finally:
            first.close()
            second.close()
        assert _marked(conn) == days
        _refresh_takes_every_mark(conn)


def test_a_plain_refresh_would_block_them(loaded: str) -> None:
    """The control: without CONCURRENTLY a refresh locks readers out, which the test above would catch."""
    with psycopg.connect(loaded) as blocker, psycopg.connect(loaded, autocommit=True) as conn:
        blocker.execute("refresh materialized view tally.admin_overview_mv")
        reader = _Background(loaded, lambda c: c.execute("select users from tally.admin_overview()").fetchone())
        reader.start()
        _wait_until(lambda: _waiting_on_lock(conn, reader.pid) or not reader.is_alive())
        assert reader.is_alive() and _waiting_on_lock(conn, reader.pid), "the reader was not blocked"
        blocker.rollback()
        reader.join()
        assert reader.error is None and reader.result == (20,)


def test_two_concurrent_refreshes_do_not_both_run(loaded: str) -> None:
    dsn = loaded
    with psycopg.connect(dsn, autocommit=True) as conn:
        logged = conn.execute("select count(*) from tally.refresh_log").fetchone()[0]  # type: ignore[index]
        locker = psycopg.connect(dsn)
        try:
            locker.execute("lock table tally.user_daily_ops in access exclusive mode")
            first = _Background(dsn, _refresh)
            first.start()
            _wait_until(lambda: _waiting_on_lock(conn, first.pid))
            # A second caller does not queue behind the first (on a lock, or sleeping and retrying): it
            # returns at once, saying so, while the first is still held.
            second = _Background(dsn, _refresh)
            second.start()
            waited = _what_it_waited_for(conn, second)
            assert waited is None, f"the second refresh waited ({waited})"
            second.join()
            assert second.error is None and second.result == [(None, "skipped")]
            assert first.is_alive() and _waiting_on_lock(conn, first.pid)
        finally:
            locker.rollback()
            locker.close()
        first.join(30)
        assert first.error is None and [s for _, s in first.result] == ["refreshed"] * VIEWS
        assert conn.execute("select count(*) from tally.refresh_log").fetchone()[0] == logged + VIEWS  # type: ignore[index]
        # With the first one done, the next call refreshes again.
        assert [s for _, s in _refresh(conn)] == ["refreshed"] * VIEWS


def test_racing_refreshes_exactly_one_runs(loaded: str) -> None:
    """Eight callers released at once: one refreshes, the others are told another refresh is running."""
    dsn = loaded
    with psycopg.connect(dsn, autocommit=True) as conn:
        locker = psycopg.connect(dsn)
        try:
            # The lock keeps the winner inside its transaction until every caller has answered.
            locker.execute("lock table tally.user_daily_ops in access exclusive mode")
            barrier = threading.Barrier(8)

            def call(c: psycopg.Connection) -> list[tuple[Any, ...]]:
                barrier.wait()
                return _refresh(c)

            callers = [_Background(dsn, call) for _ in range(8)]
            for c in callers:
                c.start()
            _wait_until(
                lambda: (
                    sum(1 for c in callers if not c.is_alive()) == 7
                    and any(_waiting_on_lock(conn, c.pid) for c in callers if c.is_alive())
                )
            )
        finally:
            locker.rollback()
            locker.close()
        for c in callers:
            c.join(30)
        outcomes = sorted(tuple(s for _, s in c.result) for c in callers)
        assert outcomes == [("refreshed",) * VIEWS] + [("skipped",)] * 7


def test_only_analysts_read_the_analytics(loaded: str, login_role: Callable[[str], str]) -> None:
    reader, analyst = login_role("tally_reader"), login_role("tally_analyst")
    with psycopg.connect(loaded, autocommit=True) as conn:
        client = Client(conn)
        conn.execute(f"set role {reader}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as err:
            client.admin.overview()
        assert err.value.sqlstate == "42501"
        for sql in (
            "select * from tally.admin_totals_mv",
            "select * from tally.admin_funnel('{tts}')",
            "select * from tally.refresh_analytics()",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
        conn.execute("reset role")

        conn.execute(f"set role {analyst}")
        assert client.admin.overview().users == 20  # type: ignore[union-attr]
        assert [t.value for t in client.admin.totals("voice")] == ["af_alloy"]
        assert client.admin.funnel(["tts"])[0].users == 20
        assert all(not r.skipped for r in client.admin.refresh(merge_first=False))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select * from tally.user_kind_days")
        conn.execute("reset role")


def test_schedule_without_pg_cron_names_the_crontab_line(loaded: str) -> None:
    with Client.connect(loaded) as client, pytest.raises(RefreshNotScheduled) as err:
        client.admin.schedule_refresh(dt.timedelta(minutes=10))
    assert "pg_cron is not installed" in str(err.value)
    assert "*/10 * * * * DATABASE_URL=postgresql://... pgtally refresh" in str(err.value)


def _what_it_waited_for(conn: psycopg.Connection, task: _Background) -> str | None:
    """Waits until ``task`` ends or waits on a lock or a sleep; returns what it waited for, None if it never did."""
    waited: list[str] = []

    def done_or_waiting() -> bool:
        if (why := _waiting(conn, task.pid)) is not None:
            waited.append(why)
        return not task.is_alive() or bool(waited)

    _wait_until(done_or_waiting)
    return waited[0] if waited else None
