"""The write path as producers and readers meet it: writers COPY into the log with every guarantee of
INSERT, the batch paths still work for writers, and readers see their own raw events only (through the
view ``tally.my_usage_events``, since the log has no row-level security so that writers can COPY)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterator
from decimal import Decimal

import psycopg
import pytest

from pgtally import Client, UsageEvent

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
COPY_SQL = (
    "copy tally.usage_events (event_id, user_id, kind, quantity, occurred_at, duration_ms, cost, status, "
    "error_code, attributes) from stdin with (format csv)"
)


# Fixture order matters: login_role comes first so that its roles are dropped after the
# connection (and the temporary objects it made as them) is closed.


@pytest.fixture
def writer(login_role: Callable[[str], str], conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """The test connection acting as a login role of tally_writer."""
    conn.execute(f"set role {login_role('tally_writer')}")
    yield conn
    conn.execute("reset role")


def counts(conn: psycopg.Connection) -> tuple[int, int, int]:
    """Rows of the log, the exactly-once keys and the pending deltas (read as the superuser)."""
    with psycopg.connect(conn.info.dsn, autocommit=True) as su:
        row = su.execute(
            "select (select count(*) from tally.usage_events), (select count(*) from tally.event_keys),"
            " (select count(*) from tally.pending_deltas)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def copy_csv(conn: psycopg.Connection, text: str) -> int:
    with conn.cursor() as cur:
        with cur.copy(COPY_SQL) as copy:
            copy.write(text.encode())
        return cur.rowcount


def expected_totals(
    rows: list[tuple[str, str, str, int, int, Decimal, str]], user: str
) -> dict[str, tuple[int, int, int, Decimal, int]]:
    """Per kind (events, quantity, duration_ms, cost, failures) of a user's first occurrences, computed in Python."""
    seen: set[str] = set()
    out: dict[str, list] = {}
    for event_id, user_id, kind, quantity, duration_ms, cost, status in rows:
        if event_id in seen:
            continue
        seen.add(event_id)
        if user_id != user:
            continue
        t = out.setdefault(kind, [0, 0, 0, Decimal(0), 0])
        if status == "succeeded":
            t[0] += 1
            t[1] += quantity
            t[2] += duration_ms
            t[3] += cost
        elif status == "failed":
            t[4] += 1
    return {k: (v[0], v[1], v[2], v[3], v[4]) for k, v in out.items()}


# (a lifetime duration is None when no event had one; the expected sums here count those as 0)
def totals(client: Client, user: str) -> dict[str, tuple[int, int, int, Decimal, int]]:
    return {
        t.value: (t.events, int(t.quantity), int(t.duration_ms or 0), t.cost, t.failures)
        for t in client.lifetime_totals(user)
    }


# --------------------------------------------------------------------------- COPY by writers


def test_writer_copies_into_the_log_exactly_once(writer: psycopg.Connection, conn: psycopg.Connection) -> None:
    with psycopg.connect(conn.info.dsn, autocommit=True) as su:
        assert Client(su).record("job-1", "alice", "tts", 100, occurred_at=T0, duration_ms=1000, cost=Decimal("0.5"))
    csv = (
        'job-2,alice,tts,200,2026-03-10 11:00:00+00,2000,0.25,succeeded,,"{""voice"": ""af_alloy""}"\n'
        "job-1,alice,tts,999,2026-03-10 12:00:00+00,9,9,succeeded,,{}\n"  # recorded before: skipped
        "job-3,bob,ocr,3,2026-03-10 13:00:00+00,,0,succeeded,,{}\n"
        "job-2,alice,tts,777,2026-03-10 14:00:00+00,7,7,succeeded,,{}\n"  # repeated in the file: skipped
        "job-4,alice,tts,50,2026-03-10 15:00:00+00,500,0.1,failed,provider_timeout,{}\n"
        "job-5,bob,ocr,4,2026-01-05 09:00:00+00,,0,succeeded,,{}\n"  # the default partition
    )
    assert copy_csv(writer, csv) == 4, "COPY reports the rows it recorded, not the skipped duplicates"
    assert counts(conn) == (5, 5, 5)

    rows = [("job-1", "alice", "tts", 100, 1000, Decimal("0.5"), "succeeded")]
    for line in csv.splitlines():
        f = line.split(",")
        rows.append((f[0], f[1], f[2], int(f[3]), int(f[5] or 0), Decimal(f[6]), f[7]))
    client = Client(conn)
    conn.execute("reset role")
    for user in ("alice", "bob"):
        assert totals(client, user) == expected_totals(rows, user)
    assert totals(client, "alice") == {"tts": (2, 300, 3000, Decimal("0.75"), 1)}
    client.merge_pending()
    for user in ("alice", "bob"):
        assert totals(client, user) == expected_totals(rows, user), "exact after the merge too"
    assert conn.execute("select sum(drifted) from tally.verify()").fetchone() == (0,)
    # The database set recorded_at and kept the first version of each event.
    assert conn.execute(
        "select quantity, recorded_at is not null from tally.usage_events where event_id = 'job-2'"
    ).fetchall() == [(200, True)]


def test_writer_copy_with_an_invalid_row_stores_nothing(writer: psycopg.Connection, conn: psycopg.Connection) -> None:
    csv = (
        "ok-1,alice,tts,10,2026-03-10 11:00:00+00,,0,succeeded,,{}\n"
        "bad-1,alice,tts,-5,2026-03-10 11:00:00+00,,0,succeeded,,{}\n"
        "ok-2,alice,tts,10,2026-03-10 11:00:00+00,,0,succeeded,,{}\n"
    )
    with pytest.raises(psycopg.Error) as err:
        copy_csv(writer, csv)
    assert err.value.sqlstate == "PT002"
    assert err.value.diag.column_name == "quantity"
    assert counts(conn) == (0, 0, 0)
    # The same file without the bad row then records both events once.
    assert copy_csv(writer, csv.replace("bad-1,alice,tts,-5", "bad-1,alice,tts,5")) == 3
    assert counts(conn) == (3, 3, 3)


def test_writer_copy_under_a_forged_batch_token_is_refused(
    writer: psycopg.Connection, conn: psycopg.Connection
) -> None:
    writer.execute("set tally.batch_token = 'forged'")
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as err:
        copy_csv(writer, "f-1,alice,tts,1,2026-03-10 11:00:00+00,,0,succeeded,,{}\n")
    assert "tally.batch_token" in str(err.value)
    writer.execute("reset tally.batch_token")
    assert counts(conn) == (0, 0, 0)


def test_writer_batch_paths_still_work_and_are_exactly_once(
    writer: psycopg.Connection, conn: psycopg.Connection
) -> None:
    client = Client(writer)
    events = [UsageEvent(f"m-{i}", "carol", "tts", i, occurred_at=T0) for i in range(1, 11)]
    assert client.record_many(events, chunk_size=4) == 10
    assert client.record_many([*events, UsageEvent("m-11", "carol", "tts", 11, occurred_at=T0)], chunk_size=4) == 1
    # A hand-set token does not matter to the batch path, which issues its own (and refuses plain inserts).
    writer.execute("set tally.batch_token = 'forged'")
    assert client.record_many([UsageEvent("m-12", "carol", "tts", 12, occurred_at=T0)]) == 1
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        client.record("m-13", "carol", "tts", 13, occurred_at=T0)
    writer.execute("reset tally.batch_token")
    assert counts(conn) == (12, 12, 12)
    conn.execute("reset role")
    assert totals(Client(conn), "carol") == {"tts": (12, sum(range(1, 13)), 0, Decimal(0), 0)}


# --------------------------------------------------------------------------- readers


def test_reader_view_keeps_leaky_functions_from_other_users(
    login_role: Callable[[str], str], conn: psycopg.Connection
) -> None:
    """A reader's own WHERE clause runs after the view's user filter (security barrier), even on a seq scan."""
    client = Client(conn)
    client.record("a-1", "alice", "tts", 1, occurred_at=T0)
    client.record("b-1", "bob", "tts", 1, occurred_at=T0)
    seen: list[str] = []
    conn.add_notice_handler(lambda d: seen.append(d.message_primary or ""))
    conn.execute(f"set role {login_role('tally_reader')}")
    conn.execute("set tally.user_id = 'alice'")
    conn.execute("set enable_indexscan = off")
    conn.execute("set enable_bitmapscan = off")
    conn.execute("""create function pg_temp.leak(text) returns boolean language plpgsql cost 0.0000001
                    as $$ begin raise notice 'saw %', $1; return true; end $$""")
    rows = conn.execute("select event_id from tally.my_usage_events where pg_temp.leak(user_id)").fetchall()
    assert rows == [("a-1",)]
    assert seen == ["saw alice"]
    conn.execute("reset role")


def test_reader_export_reads_only_the_own_user(login_role: Callable[[str], str], conn: psycopg.Connection) -> None:
    client = Client(conn)
    client.record("a-1", "alice", "tts", 1, occurred_at=T0)
    client.record("b-1", "bob", "tts", 2, occurred_at=T0)
    lo, hi = T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=1)
    out = io.StringIO()
    assert client.export_events_csv("bob", lo, hi, out) == 1, "the owner (here a superuser) exports any user"
    conn.execute(f"set role {login_role('tally_reader')}")
    conn.execute("set tally.user_id = 'alice'")
    assert client.export_events_csv("alice", lo, hi, io.StringIO()) == 1
    assert client.export_events_csv("bob", lo, hi, io.StringIO()) == 0
    conn.execute("reset role")
