"""Admin analytics (the dashboard target): refresh time of every view and dashboard read latency, against the raw log.

Loads a realistic workload (default 1M events, 10,000 users, one year, users'
time zones set) with Client.record_many into a throwaway server, merges it,
then measures:

- tally.refresh_analytics(): per view and in total (median of --refreshes runs);
- each read of the dashboard (`pgtally admin`): p50/p99 over --reads calls, and
  the whole dashboard (AdminClient.dashboard);
- the same answers computed from the raw log (tally.usage_events), p50/p99 over
  --raw-reads calls, and the ratio raw / views measured in the same run;
- the merge cost of the admin applier: merging --applier-events events with
  tally._apply_admin against the same merge with it stubbed out.

    python benchmarks/admin.py [--events 1000000] [--users 10000] [--output result.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python_client"))

from pgtally import migrate, server
from pgtally.client import Client
from pgtally.demo.workload import generate_events, user_time_zones

STEPS = "'{paywall.viewed,paywall.clicked,checkout.started,checkout.completed}'"

# Each dashboard read, through the admin API (materialized views) and from the raw log.
READS: dict[str, tuple[str, str]] = {
    "overview": (
        "select * from tally.admin_overview()",
        """select count(distinct user_id), count(*) filter (where status = 'succeeded'),
                  count(*) filter (where status = 'failed'), sum(cost) filter (where status = 'succeeded'),
                  count(distinct user_id) filter (where billable and cost > 0 and status = 'succeeded')
             from tally.usage_events""",
    ),
    "totals by kind": (
        "select * from tally.admin_totals('kind')",
        """select kind, count(*) filter (where status = 'succeeded'), count(*) filter (where status = 'failed'),
                  sum(quantity) filter (where status = 'succeeded'), sum(cost) filter (where status = 'succeeded'),
                  count(distinct user_id)
             from tally.usage_events group by kind""",
    ),
    "leaderboard voice 7d": (
        "select * from tally.admin_leaderboard('voice', '7d')",
        """select attributes ->> 'voice', count(*), sum(quantity), count(distinct user_id)
             from tally.usage_events
            where status = 'succeeded' and attributes ? 'voice' and occurred_at >= now() - interval '7 days'
            group by 1 order by 2 desc limit 10""",
    ),
    "leaderboard model all": (
        "select * from tally.admin_leaderboard('model', 'all')",
        """select attributes ->> 'model', count(*), sum(quantity), count(distinct user_id)
             from tally.usage_events where status = 'succeeded' and attributes ? 'model'
            group by 1 order by 2 desc limit 10""",
    ),
    "trend 14 days": (
        "select * from tally.admin_trend('kind', null, current_date - 13, current_date)",
        """select kind, (occurred_at at time zone 'UTC')::date, count(*), count(distinct user_id)
             from tally.usage_events where occurred_at >= current_date - 13 group by 1, 2""",
    ),
    "DAU/WAU/MAU 14 days": (
        "select * from tally.admin_active_users(current_date - 13, current_date)",
        """select d, (select count(distinct user_id) from tally.usage_events
                       where occurred_at >= d and occurred_at < d + 1),
                     (select count(distinct user_id) from tally.usage_events
                       where occurred_at >= d - 6 and occurred_at < d + 1),
                     (select count(distinct user_id) from tally.usage_events
                       where occurred_at >= d - 29 and occurred_at < d + 1)
             from generate_series(current_date - 13, current_date, interval '1 day') as g(t),
                  lateral (select g.t::date as d) x""",
    ),
    "week over week": (
        "select * from tally.admin_week_over_week()",
        """select kind, count(*) filter (where occurred_at >= current_date - 7),
                  count(*) filter (where occurred_at < current_date - 7),
                  count(distinct user_id) filter (where occurred_at >= current_date - 7),
                  count(distinct user_id) filter (where occurred_at < current_date - 7),
                  sum(cost) filter (where occurred_at >= current_date - 7 and billable)
             from tally.usage_events where occurred_at >= current_date - 14 and occurred_at < current_date group by kind""",
    ),
    "funnel 30d": (
        # The dashboard's funnel: the declared paywall funnel of the window, as of the refresh.
        f"select * from tally.admin_funnel_window({STEPS}, '30d')",
        f"""with f as (select user_id, kind, min(occurred_at) as t from tally.usage_events
                        where status = 'succeeded' and kind = any ({STEPS}) group by 1, 2),
                 s1 as (select user_id, t from f where kind = 'paywall.viewed' and t >= now() - interval '30 days'),
                 s2 as (select f.user_id, f.t from s1 join f using (user_id) where f.kind = 'paywall.clicked' and f.t >= s1.t),
                 s3 as (select f.user_id, f.t from s2 join f using (user_id) where f.kind = 'checkout.started' and f.t >= s2.t),
                 s4 as (select f.user_id, f.t from s3 join f using (user_id) where f.kind = 'checkout.completed' and f.t >= s3.t)
            select (select count(*) from s1), (select count(*) from s2), (select count(*) from s3), (select count(*) from s4)""",
    ),
    "reliability 7d": (
        "select * from tally.admin_reliability('7d')",
        """select kind, attributes ->> 'format', count(*) filter (where status = 'succeeded'),
                  count(*) filter (where status = 'failed'), avg(duration_ms) filter (where status = 'succeeded'),
                  percentile_disc(0.95) within group (order by duration_ms) filter (where status = 'succeeded')
             from tally.usage_events where occurred_at >= now() - interval '7 days'
            group by grouping sets ((1, 2), (1))""",
    ),
    "error codes 7d": (
        "select * from tally.admin_error_codes('7d')",
        """select kind, error_code, count(*), count(distinct user_id), max(occurred_at) from tally.usage_events
            where status = 'failed' and occurred_at >= now() - interval '7 days' group by 1, 2 order by 3 desc limit 10""",
    ),
    "cohorts": (
        "select * from tally.admin_cohorts()",
        """with m as (select user_id, date_trunc('month', occurred_at) as month from tally.usage_events group by 1, 2),
                 c as (select user_id, min(month) as cohort from m group by 1)
            select c.cohort, m.month, count(*) from m join c using (user_id)
             where c.cohort >= date_trunc('month', now()) - interval '11 months' group by 1, 2""",
    ),
    "freshness": ("select * from tally.analytics_freshness()", "select 1"),
}


def _percentile(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, round(q * len(s) + 0.5) - 1))]


def _time(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _load(dsn: str, events: int, users: int, seed: int, days: int) -> dict[str, float]:
    now = dt.datetime.now(dt.timezone.utc)
    with Client.connect(dsn) as client:
        for user, zone in user_time_zones(users, seed).items():
            client.set_user_settings(user, time_zone=zone)
        t0 = time.perf_counter()
        sent = 0

        def progress(n: int) -> None:
            nonlocal sent
            sent += n
            if sent % 200_000 < n:
                print(f"  loaded {sent:,} events ({time.perf_counter() - t0:.0f} s)", flush=True)

        client.record_many(
            generate_events(users, events, seed, now - dt.timedelta(days=days), now),
            chunk_size=20_000,
            progress=progress,
        )
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        while client.merge_pending(200_000):
            pass
        merge_s = time.perf_counter() - t0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("vacuum analyze")
    return {"load_s": load_s, "merge_s": merge_s}


def _applier_cost(base: str, n: int, users: int, seed: int) -> dict[str, float]:
    """Merge time of n events with the admin applier and with it stubbed out (fresh database each)."""
    now = dt.datetime.now(dt.timezone.utc)
    out: dict[str, float] = {}
    for name, stub in (("with admin applier", False), ("applier stubbed", True)):
        db = f"applier_{'stub' if stub else 'real'}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"drop database if exists {db}")
            conn.execute(f"create database {db}")
        dsn = psycopg.conninfo.make_conninfo(base, dbname=db)
        migrate.upgrade(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            if stub:
                conn.execute(
                    "create or replace function tally._apply_admin() returns void language plpgsql "
                    "security definer set search_path = '' as $$ begin return; end $$"
                )
        with Client.connect(dsn) as client:
            client.record_many(generate_events(users, n, seed, now - dt.timedelta(days=365), now), chunk_size=20_000)
            t0 = time.perf_counter()
            while client.merge_pending(100_000):
                pass
            out[name] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--refreshes", type=int, default=3)
    ap.add_argument("--reads", type=int, default=200, help="calls per dashboard read (views)")
    ap.add_argument("--raw-reads", type=int, default=5, help="calls per read computed from the raw log")
    ap.add_argument("--applier-events", type=int, default=100_000, help="0 skips the applier cost measurement")
    ap.add_argument("--dsn", help="an existing server (superuser) instead of a throwaway one")
    ap.add_argument("--output", help="also write the results as JSON here")
    args = ap.parse_args()

    result: dict[str, Any] = {"events": args.events, "users": args.users, "days": args.days}
    with ExitStack() as stack:
        base = args.dsn or stack.enter_context(server.database(backend="local", settings=dict(server.FAST_UNSAFE)))
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute("drop database if exists admin_bench")
            conn.execute("create database admin_bench")
            result["server"] = conn.execute("show server_version").fetchone()[0]  # type: ignore[index]
        dsn = psycopg.conninfo.make_conninfo(base, dbname="admin_bench")
        migrate.upgrade(dsn)
        print(f"loading {args.events:,} events of {args.users:,} users over {args.days} days ...", flush=True)
        result.update(_load(dsn, args.events, args.users, args.seed, args.days))
        print(f"  load {result['load_s']:.1f} s, merge {result['merge_s']:.1f} s", flush=True)

        with psycopg.connect(dsn, autocommit=True) as conn:
            result["rows"] = dict(
                conn.execute(
                    """select 'usage_events', count(*) from tally.usage_events union all
                   select 'user_daily', count(*) from tally.user_daily union all
                   select 'user_daily_ops', count(*) from tally.user_daily_ops union all
                   select 'user_daily_durations', count(*) from tally.user_daily_durations union all
                   select 'user_kind_days', count(*) from tally.user_kind_days"""
                ).fetchall()
            )
            runs = [
                conn.execute("select view_name, duration_ms, row_count from tally.refresh_analytics()").fetchall()
                for _ in range(args.refreshes)
            ]
            # The first refresh fills the views; later ones diff against them (the steady state).
            per_view = {name: [float(run[i][1]) for run in runs] for i, (name, _, _) in enumerate(runs[0])}
            totals = [sum(float(r[1]) for r in run) for run in runs]
            result["refresh_ms"] = {v: statistics.median(ms) for v, ms in per_view.items()}
            result["refresh_rows"] = {name: rows for name, _, rows in runs[-1]}
            result["refresh_total_ms"] = {"first": totals[0], "median": statistics.median(totals)}

            reads: dict[str, dict[str, float]] = {}
            for name, (view_sql, raw_sql) in READS.items():
                mv = _time(lambda s=view_sql: conn.execute(s).fetchall(), args.reads)  # type: ignore[misc]
                row = {"views_p50": _percentile(mv, 0.5), "views_p99": _percentile(mv, 0.99)}
                if name != "freshness":
                    raw = _time(lambda s=raw_sql: conn.execute(s).fetchall(), args.raw_reads)  # type: ignore[misc]
                    row |= {"raw_p50": _percentile(raw, 0.5), "raw_p99": _percentile(raw, 0.99)}
                    row["ratio_p50"] = row["raw_p50"] / row["views_p50"]
                reads[name] = row
                print(
                    f"  {name}: views p50 {row['views_p50']:.2f} ms p99 {row['views_p99']:.2f} ms"
                    + (f"; raw p50 {row['raw_p50']:.0f} ms ({row['ratio_p50']:.0f}x)" if "raw_p50" in row else ""),
                    flush=True,
                )
            result["reads"] = reads
            client = Client(conn)
            whole = _time(lambda: client.admin.dashboard("7d"), max(20, args.reads // 5))
            result["dashboard_ms"] = {
                "p50": _percentile(whole, 0.5),
                "p99": _percentile(whole, 0.99),
                "raw_sum_p50": sum(r.get("raw_p50", 0.0) for r in reads.values()),
            }

        if args.applier_events:
            print(f"applier cost on {args.applier_events:,} events ...", flush=True)
            result["merge_s"] = result["merge_s"]
            result["applier"] = _applier_cost(base, args.applier_events, max(100, args.users // 10), args.seed)

    print(json.dumps(result, indent=2, default=str))
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
