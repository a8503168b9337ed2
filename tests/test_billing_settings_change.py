"""A billing-anchor change with real commits: the quota check is exact in the changing transaction and in the next one.

The open billing period is compared with a recomputation from the raw log; a merge attempted while the change is
uncommitted skips (it would fold the user's deltas with the old anchor) and merges them after the commit.
"""

from __future__ import annotations

import psycopg

AT = "2026-11-21 12:00+00"


def _quota_refused(conn: psycopg.Connection, amount: int) -> bool:
    try:
        with conn.transaction():
            conn.execute("select tally.check_quota('a', 'tts', %s, %s)", (amount, AT))
    except psycopg.Error as exc:
        assert exc.sqlstate == "PT012", exc
        return True
    return False


def _log_period_usage(conn: psycopg.Connection, start: str, end: str) -> int:
    row = conn.execute(
        """select coalesce(sum(quantity), 0)::bigint from tally.usage_events
            where user_id = 'a' and kind = 'tts' and billable and status = 'succeeded'
              and occurred_at >= %s::timestamptz and occurred_at < %s::timestamptz""",
        (start, end),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_anchor_change_keeps_the_quota_exact_now_and_after_commit(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as setup:
        setup.execute("select tally.upsert_plan('free', 0, 0, '{\"tts\": 30000}', true)")
        setup.execute("select tally.set_user_settings('a', 'UTC', 1)")
        for event_id, at, chars in (("a1", "2026-11-05 10:00+00", 10000), ("a2", "2026-11-14 10:00+00", 8000)):
            setup.execute("select tests.tts(%s, 'a', %s, %s)", (event_id, at, chars))
        assert setup.execute("select tally.merge_pending()").fetchone() == (2,)
        setup.execute("select tests.tts('a3', 'a', '2026-11-20 10:00+00', 5000)")  # stays pending

    with psycopg.connect(dsn) as changer, psycopg.connect(dsn, autocommit=True) as merger:
        changer.execute("select tally.set_user_settings('a', 'UTC', 13)")
        # Same transaction: Nov 13..Dec 13 holds 8000 merged + 5000 pending.
        assert not _quota_refused(changer, 17000)
        assert _quota_refused(changer, 17001)
        # A merge meanwhile skips instead of folding the pending delta with the old anchor.
        assert merger.execute("select tally.merge_pending()").fetchone() == (0,)
        changer.commit()

        assert merger.execute("select tally.merge_pending()").fetchone() == (1,)
        with psycopg.connect(dsn) as nxt:
            assert _quota_refused(nxt, 17001)
            assert not _quota_refused(nxt, 17000)
            used = nxt.execute("select quantity from tally.period_totals('a', %s) where kind = 'tts'", (AT,)).fetchone()
            assert used is not None
            assert int(used[0]) == _log_period_usage(nxt, "2026-11-13 00:00+00", "2026-12-13 00:00+00") == 13000
            rows = nxt.execute("select check_name from tally.verify() where drifted > 0").fetchall()
            assert rows == []


def test_subscription_start_moves_the_open_period_to_its_anniversary(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as setup:
        setup.execute("select tally.upsert_plan('pro', 1, 10, '{\"tts\": 4000}')")
        setup.execute("select tests.tts('s1', 'a', '2026-10-25 10:00+00', 1000)")
        setup.execute("select tests.tts('s2', 'a', '2026-11-05 10:00+00', 2000)")
        setup.execute("select tally.merge_pending()")
        setup.execute("select tally.start_subscription('a', 'pro', '2026-10-23 10:00+00')")
    with psycopg.connect(dsn) as nxt:
        row = nxt.execute(
            "select period_start::text, period_end::text, quantity from tally.period_totals('a', %s)", (AT,)
        ).fetchone()
        assert row == ("2026-10-23", "2026-11-23", 3000)
        assert int(row[2]) == _log_period_usage(nxt, "2026-10-23 00:00+00", "2026-11-23 00:00+00")
        assert nxt.execute("select tally.check_quota('a', 'tts', %s, %s)", (1000, AT)).fetchone() == (0,)
        assert _quota_refused(nxt, 1001)


def test_settings_of_many_new_users_in_one_transaction(dsn: str) -> None:
    """Onboarding: time zones of thousands of users without usage set in one statement, no lock table exhaustion.

    A new user has no rollups to re-bucket, so no per-user rebuild (and its temporary tables, whose locks
    last to the end of the transaction) runs; a merge still waits for the change to commit.
    """
    with psycopg.connect(dsn) as conn, psycopg.connect(dsn, autocommit=True) as merger:
        conn.execute("select tests.tts('p1', 'new-1', '2026-11-20 23:30+00', 100)")  # pending, not merged
        conn.commit()
        conn.execute(
            "select count(tally.set_user_settings('new-' || i, 'Asia/Kolkata', 1)) from generate_series(1, 3000) i"
        )
        locks = conn.execute("select count(*) from pg_locks where pid = pg_backend_pid()").fetchone()
        assert locks is not None and locks[0] < 50, locks
        # new-1's pending delta is not folded with the old (UTC) day before the change commits.
        assert merger.execute("select tally.merge_pending()").fetchone() == (0,)
        conn.commit()
        assert merger.execute("select tally.merge_pending()").fetchone() == (1,)
        day = merger.execute(
            "select day from tally.daily_totals('new-1', 'kind', '2026-11-01', '2026-11-30') where value = 'tts'"
        ).fetchone()
        assert day is not None and str(day[0]) == "2026-11-21", day  # 23:30 UTC is the next day in Kolkata
