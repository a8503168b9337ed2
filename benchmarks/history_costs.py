"""The 12-month usage history before and after it stopped calling tally._kind_unit once per day.

Loads a year of realistic usage for a few hundred users on a throwaway server,
installs the previous version of ``tally.usage_history`` beside the current one
(as ``tally.usage_history_before``) and calls both alternately for the same
users, by month and by day: p50 and p99 of each, and their ratio, measured
side by side so machine load hits both. See docs/benchmarks.md.

    python benchmarks/history_costs.py [--events 200000] [--calls 300]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python_client"))

from pgtally import Client, migrate, server
from pgtally.demo.workload import generate_events

BEFORE = "c4eeb1d"  # the 0.4.0 tree: usage_history with a tally._kind_unit call per day


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{BEFORE}:functions/0730_usage_history.sql"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    before = (
        source[: source.index("comment on function")]
        .replace("function tally.usage_history(", "function tally.usage_history_before(")
        .replace("usage_history.", "usage_history_before.")
    )
    now = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    with server.database(backend="local", settings=dict(server.FAST_UNSAFE)) as dsn:
        migrate.upgrade(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(before)
            events = generate_events(
                users=args.users, events=args.events, seed=7, start=now - dt.timedelta(days=365), end=now
            )
            Client(conn).record_many(events, chunk_size=20_000)
            while conn.execute("select tally.merge_pending(500000)").fetchone() != (0,):
                pass
            conn.execute("vacuum analyze")
            users = [r[0] for r in conn.execute("select distinct user_id from tally.user_totals")]
            rng = random.Random(1)
            for bucket in ("month", "day"):
                times: dict[str, list[float]] = {"before": [], "now": []}
                for i in range(args.calls + 20):
                    user = rng.choice(users)
                    for name in ("before", "now") if i % 2 else ("now", "before"):
                        fn = "usage_history_before" if name == "before" else "usage_history"
                        t0 = time.perf_counter()
                        conn.execute(
                            f"select * from tally.{fn}(%s, '12m', %s, null, null, null, %s)", (user, bucket, now)
                        ).fetchall()
                        if i >= 20:  # after a warm-up
                            times[name].append((time.perf_counter() - t0) * 1000)
                p = {k: (statistics.median(v), statistics.quantiles(v, n=100)[98]) for k, v in times.items()}
                print(
                    f"12-month history by {bucket}: before p50 {p['before'][0]:.2f} ms p99 {p['before'][1]:.2f} ms; "
                    f"now p50 {p['now'][0]:.2f} ms p99 {p['now'][1]:.2f} ms; "
                    f"before/now p50 {p['before'][0] / p['now'][0]:.1f}x p99 {p['before'][1] / p['now'][1]:.1f}x"
                )


if __name__ == "__main__":
    main()
