"""User-facing read latency (the user-read target): summary card and 12-month history against the same answers from the raw log.

Loads a realistic workload (pgtally.demo.workload.generate_events: Zipf users, local
time zones, sessions) through Client.record_many, merges it, then times
tally.summary_card and tally.usage_history(..., '12m', 'month' and 'day') for
a sample of users (the heaviest ones and random ones), and the equivalent
queries over tally.usage_events. Prints p50/p99 per read and the ratio
raw / rollup, measured in the same run. See docs/user-analytics.md.

    python benchmarks/user_reads.py [--events 1000000] [--users 10000] [--calls 400] [--dsn URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python_client"))

from pgtally import Client, migrate, server

# The timed reads and the same answers from the raw log, shared with `pgtally bench reads`.
from pgtally.bench.reads import HISTORY_SQL, RAW_HISTORY_SQL, RAW_SUMMARY_SQL, SUMMARY_SQL
from pgtally.demo.workload import generate_events, user_time_zones


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


def timed(
    conn: psycopg.Connection, users: list[str], calls: int, run: Callable[[psycopg.Cursor, str], None]
) -> list[float]:
    samples = []
    with conn.cursor() as cur:
        for i in range(calls):
            user = users[i % len(users)]
            t0 = time.perf_counter()
            run(cur, user)
            cur.fetchall()
            samples.append((time.perf_counter() - t0) * 1000)
    return samples


def load(dsn: str, events: int, users: int, seed: int, now: dt.datetime) -> None:
    with Client.connect(dsn) as client:
        client.upsert_plan(
            "free", tier=0, monthly_price=0, limits={"tts": 200_000, "ocr": 100, "export": 20}, is_default=True
        )
        client.upsert_plan("pro", tier=1, monthly_price="9.99", limits={"tts": 2_000_000})
        for user, zone in user_time_zones(users, seed).items():
            client.set_user_settings(user, time_zone=zone)
        t0 = time.perf_counter()
        loaded = client.record_many(
            generate_events(users, events, seed, now - dt.timedelta(days=365), now), chunk_size=20_000
        )
        t1 = time.perf_counter()
        merged = 0
        while (n := client.merge_pending(200_000)) > 0:
            merged += n
        t2 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("vacuum analyze")
    print(
        f"loaded {loaded:,} events of {users:,} users in {t1 - t0:.0f} s, merged {merged:,} deltas in {t2 - t1:.0f} s"
    )


def run(dsn: str, args: argparse.Namespace) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    load(dsn, args.events, args.users, args.seed, now)
    with psycopg.connect(dsn, autocommit=True) as conn:
        by_activity = [
            r[0]
            for r in conn.execute(
                "select user_id from tally.user_totals where dimension = 'kind' group by user_id order by sum(events) desc"
            ).fetchall()
        ]
        rng = random.Random(args.seed)
        sample = by_activity[:5] + rng.sample(by_activity[5:], min(len(by_activity) - 5, 45))
        heaviest = conn.execute(
            "select sum(events) from tally.user_totals where dimension = 'kind' and user_id = %s", (by_activity[0],)
        ).fetchone()
        print(
            f"{len(by_activity):,} active users; heaviest {by_activity[0]} has {heaviest[0] if heaviest else 0:,} events; "
            f"sample: 5 heaviest + {len(sample) - 5} random"
        )
        raw_calls = max(50, args.calls // 8)
        reads: list[tuple[str, Callable[[psycopg.Cursor, str], None], Callable[[psycopg.Cursor, str], None]]] = [
            (
                "summary card",
                lambda cur, u: cur.execute(SUMMARY_SQL, (u, now)),
                lambda cur, u: cur.execute(RAW_SUMMARY_SQL, {"u": u, "at": now}),
            ),
            (
                "12-month history, months",
                lambda cur, u: cur.execute(HISTORY_SQL, (u, "month", now)),
                lambda cur, u: cur.execute(RAW_HISTORY_SQL, {"u": u, "at": now, "bucket": "month"}),
            ),
            (
                "12-month history, days",
                lambda cur, u: cur.execute(HISTORY_SQL, (u, "day", now)),
                lambda cur, u: cur.execute(RAW_HISTORY_SQL, {"u": u, "at": now, "bucket": "day"}),
            ),
        ]
        rows = []
        for name, fast, slow in reads:
            timed(conn, sample, len(sample), fast)  # warm up (plans, caches)
            timed(conn, sample, len(sample), slow)
            fast_ms = timed(conn, sample, args.calls, fast)
            slow_ms = timed(conn, sample, raw_calls, slow)
            f50, f99 = percentiles(fast_ms)
            s50, s99 = percentiles(slow_ms)
            rows.append((name, f50, f99, s50, s99, s50 / f50, s99 / f99))
            # The heaviest user alone (the worst case of the Zipf tail).
            hf50, hf99 = percentiles(timed(conn, sample[:1], args.calls // 4, fast))
            hs50, hs99 = percentiles(timed(conn, sample[:1], max(10, raw_calls // 4), slow))
            rows.append(("  heaviest user only", hf50, hf99, hs50, hs99, hs50 / hf50, hs99 / hf99))
    print()
    print(
        f"{'read (' + format(args.events, ',') + ' events)':34s} {'p50 ms':>8s} {'p99 ms':>8s} {'raw p50':>9s} {'raw p99':>9s} "
        f"{'x p50':>8s} {'x p99':>8s}"
    )
    for name, f50, f99, s50, s99, r50, r99 in rows:
        print(f"{name:34s} {f50:8.2f} {f99:8.2f} {s50:9.2f} {s99:9.2f} {r50:8.1f} {r99:8.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--calls", type=int, default=400, help="timed calls per read (the raw log gets calls / 8)")
    ap.add_argument("--dsn", help="an empty database to install into (default: a throwaway local cluster)")
    args = ap.parse_args()
    if args.dsn:
        migrate.upgrade(args.dsn)
        run(args.dsn, args)
        return
    with server.database(backend="local") as base:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute("create database user_reads")
        dsn = psycopg.conninfo.make_conninfo(base, dbname="user_reads")
        migrate.upgrade(dsn)
        run(dsn, args)


if __name__ == "__main__":
    main()
