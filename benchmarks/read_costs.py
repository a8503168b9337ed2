"""A read before and after a change, side by side: the 12-month usage history, the funnel, or the refresh of the
platform's daily totals.

Loads a year of realistic usage on a throwaway server, installs the functions of
an earlier tree (``--before``, a git revision; default the 0.5.0 tree) beside the
current ones under names ending in ``_before``, checks that both give the same
answers, then calls both alternately, so machine load hits both:

* ``history``: ``tally.usage_history(.., '12m', 'month' | 'day')`` for random users
  and for the 5 heaviest (whose rows make the tail);
* ``funnel``: ``tally.admin_funnel`` over the paywall funnel for the last 7 and 30
  days and all time, and over ``{tts,export}`` for 30 days;
* ``refresh``: the daily totals as 0.6.0's materialized view (``--before 142277b``),
  refreshed in full and CONCURRENTLY, against the table kept day by day
  (``tally._refresh_admin_daily``), each round after new usage is recorded and merged
  as before a scheduled refresh (``pgtally bench reads`` does the same); both hold the
  same rows after every round; and the table re-aggregated in full (every day marked).

Prints p50 and p99 of each and their ratio before/now. See docs/benchmarks.md.

    python benchmarks/read_costs.py history [--events 1000000] [--users 10000] [--calls 300]
    python benchmarks/read_costs.py funnel [--before 55f2634]
    python benchmarks/read_costs.py refresh --before 142277b [--events 3000000 --users 30000] [--calls 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python_client"))

from pgtally import Client, migrate, server
from pgtally.bench.reads import record_recent_usage, steady_events
from pgtally.demo.workload import generate_events

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
PAYWALL = ["paywall.viewed", "paywall.clicked", "checkout.started", "checkout.completed"]
# Per read: the files of the earlier tree to install, and the functions (by name) they define and call.
FILES = {
    "history": (
        ["functions/0620_daily_totals.sql", "functions/0730_usage_history.sql"],
        ["daily_totals", "usage_history"],
    ),
    "funnel": (["functions/0866_admin_funnel.sql"], ["admin_funnel"]),
    "refresh": (["db/0832_admin_daily_mv.sql"], ["admin_daily_mv"]),
}


def install_before(conn: psycopg.Connection, revision: str, read: str) -> None:
    """The earlier tree's functions as tally.<name>_before, calling each other by their new names."""
    files, names = FILES[read]
    for path in files:
        source = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{revision}:{path}"], capture_output=True, text=True, check=True
        ).stdout
        if read == "refresh":  # a materialized view: under its new name, with the unique index CONCURRENTLY needs
            source = source[: source.index("comment on materialized view")].replace(
                "tally.admin_daily_mv ", "tally.admin_daily_mv_before "
            )
            source += "create unique index on tally.admin_daily_mv_before (dimension, plan, day, value);"
        else:
            source = source[: source.index("comment on function")]
        for name in names:
            source = source.replace(f"tally.{name}(", f"tally.{name}_before(").replace(f"{name}.", f"{name}_before.")
        conn.execute(source)


def alternate(calls: list[Callable[[str], object]], rounds: int, warm_up: int = 5) -> dict[str, list[float]]:
    """Each call as 'before' and as 'now', one after the other (which goes first alternates); ms per name."""
    times: dict[str, list[float]] = {"before": [], "now": []}
    for i in range(warm_up + rounds):
        for j, call in enumerate(calls):
            for name in ("before", "now") if (i + j) % 2 else ("now", "before"):
                t0 = time.perf_counter()
                call(name)
                if i >= warm_up:
                    times[name].append((time.perf_counter() - t0) * 1000)
    return times


def report(label: str, times: dict[str, list[float]]) -> None:
    p = {k: (statistics.median(v), statistics.quantiles(v, n=100)[98]) for k, v in times.items()}
    print(
        f"{label}: before p50 {p['before'][0]:.2f} ms p99 {p['before'][1]:.2f} ms; "
        f"now p50 {p['now'][0]:.2f} ms p99 {p['now'][1]:.2f} ms; "
        f"before/now p50 {p['before'][0] / p['now'][0]:.1f}x p99 {p['before'][1] / p['now'][1]:.1f}x"
    )


def history(conn: psycopg.Connection, calls: int) -> None:
    users = [r[0] for r in conn.execute("select distinct user_id from tally.user_totals order by 1")]
    heaviest = [
        r[0]
        for r in conn.execute(
            "select user_id from tally.user_totals where dimension = 'kind' group by user_id order by sum(events) desc limit 5"
        )
    ]
    sql = "select * from tally.usage_history{}(%s, '12m', %s, %s, null, null, %s)"

    def answer(name: str, user: str, bucket: str, dimension: str | None = None) -> list[tuple]:
        fn = "_before" if name == "before" else ""
        return conn.execute(sql.format(fn), (user, bucket, dimension, NOW)).fetchall()

    for user in heaviest + users[:50]:
        for bucket in ("month", "day"):
            for dimension in (None, "kind", "voice"):
                assert answer("before", user, bucket, dimension) == answer("now", user, bucket, dimension), user
    print(f"same answers for {len(heaviest) + 50} users, by month and day, unstacked and stacked")
    rng = random.Random(1)
    for bucket in ("month", "day"):
        picks = [rng.choice(users) for _ in range(calls)]
        report(
            f"12-month history by {bucket}, random users",
            alternate([lambda name, u=u, b=bucket: answer(name, u, b) for u in picks], 1, warm_up=1),
        )
        report(
            f"12-month history by {bucket}, the 5 heaviest users",
            alternate([lambda name, u=u, b=bucket: answer(name, u, b) for u in heaviest], max(10, calls // 10)),
        )


def funnel(conn: psycopg.Connection, calls: int) -> None:
    cases = {
        "paywall funnel, 7 days": (PAYWALL, NOW - dt.timedelta(days=7)),
        "paywall funnel, 30 days": (PAYWALL, NOW - dt.timedelta(days=30)),
        "paywall funnel, all time": (PAYWALL, None),
        "tts then export, 30 days": (["tts", "export"], NOW - dt.timedelta(days=30)),
    }

    def answer(name: str, steps: list[str], since: dt.datetime | None) -> list[tuple]:
        fn = "_before" if name == "before" else ""
        return conn.execute(
            f"select step, users from tally.admin_funnel{fn}(%s, %s, %s)", (steps, since, NOW)
        ).fetchall()

    for steps, since in cases.values():
        assert answer("before", steps, since) == answer("now", steps, since), steps
    print(f"same answers for {len(cases)} funnels")
    for label, (steps, since) in cases.items():
        report(label, alternate([lambda name, s=steps, f=since: answer(name, s, f)], max(10, calls // 10)))


def refresh(conn: psycopg.Connection, calls: int) -> None:
    same = (
        "select not exists (select * from tally.admin_daily_mv_before except select * from tally.admin_daily)"
        " and not exists (select * from tally.admin_daily except select * from tally.admin_daily_mv_before)"
    )
    n_events = steady_events(int(conn.execute("select count(*) from tally.usage_events").fetchone()[0]))  # type: ignore[index]
    statements = {
        "before": "refresh materialized view concurrently tally.admin_daily_mv_before",
        "now": "select tally._refresh_admin_daily()",
    }
    # The first of each: every day (the view was created before the load; a new install marks every day).
    conn.execute(statements["before"])
    conn.execute(statements["now"])
    assert conn.execute(same).fetchone() == (True,)
    times: dict[str, list[float]] = {"before": [], "now": []}
    for i in range(calls):
        record_recent_usage(conn, NOW, i, n_events)
        for name in ("before", "now") if i % 2 else ("now", "before"):
            t0 = time.perf_counter()
            conn.execute(statements[name])
            times[name].append((time.perf_counter() - t0) * 1000)
        assert conn.execute(same).fetchone() == (True,), f"round {i}"
    print(f"same rows after each of {calls} rounds of {n_events:,} new events merged")
    before, now = statistics.median(times["before"]), statistics.median(times["now"])
    print(
        f"daily totals refresh after new usage: before (the view, in full) p50 {before:.0f} ms; "
        f"now (the changed days) p50 {now:.0f} ms; before/now {before / now:.1f}x"
    )
    full = []
    for _ in range(max(1, calls // 2)):
        conn.execute(
            "insert into tally.admin_daily_stale values ('-infinity', pg_current_xact_id()) on conflict do nothing"
        )
        t0 = time.perf_counter()
        conn.execute(statements["now"])
        full.append((time.perf_counter() - t0) * 1000)
    print(f"the table re-aggregated in full (every day marked): p50 {statistics.median(full):.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("read", choices=sorted(FILES))
    parser.add_argument("--before", default="55f2634", help="The earlier tree (a git revision; default: 0.5.0).")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    with server.database(backend="local", settings=dict(server.FAST_UNSAFE)) as dsn:
        migrate.upgrade(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            install_before(conn, args.before, args.read)
            conn.execute("select tally.set_min_group_size(1)")  # compare every step, however small
            events = generate_events(
                users=args.users, events=args.events, seed=7, start=NOW - dt.timedelta(days=365), end=NOW
            )
            Client(conn).record_many(events, chunk_size=50_000)
            while conn.execute("select tally.merge_pending(500000)").fetchone() != (0,):
                pass
            conn.execute("vacuum analyze")
            print(f"{args.events:,} events, {args.users:,} users; before = {args.before}")
            {"history": history, "funnel": funnel, "refresh": refresh}[args.read](conn, args.calls)


if __name__ == "__main__":
    main()
