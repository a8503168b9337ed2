"""Where the batch ingest budget goes, per chunk of 10,000 events.

Records realistic events with the client's batch path on a throwaway server
(durable defaults) and times, per chunk: the client's Python work (rows for
COPY), the COPY into the session's staging table, and
``tally.record_usage_staged()``; then the same events COPYed into a bare table
(same columns and index), the baseline. With ``--explain`` it also prints the
time of each step inside the server (``auto_explain``, nested statements) for
the last chunk: validation, unnesting and sorting, key, log and delta inserts.
See docs/benchmarks.md ("What limits the batch").

    python benchmarks/batch_costs.py [--events 100000] [--explain]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python_client"))

from pgtally import migrate, server
from pgtally.bench.ingest import BARE_SQL, _batch_events, _partition_bare_like_tally
from pgtally.core import STAGING_COLUMNS, STAGING_COPY, staging_row
from pgtally.models import UsageEvent

CHUNK = 10_000
EXPLAIN = (
    "load 'auto_explain'; set auto_explain.log_min_duration = 0; set auto_explain.log_analyze = on;"
    " set auto_explain.log_nested_statements = on; set auto_explain.log_level = notice"
)
# Plan nodes worth naming: what each costs is its "actual time" end minus the end of its input.
STEP = re.compile(r"^\s*(?:->\s*)?(Insert on \w+|Sort|Function Scan on u|Limit)\b.*actual time=([\d.]+)\.\.([\d.]+)")


def chunks(events: list[UsageEvent]) -> list[list[UsageEvent]]:
    return [events[i : i + CHUNK] for i in range(0, len(events), CHUNK)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--explain", action="store_true", help="print the server's plan of the last chunk")
    args = parser.parse_args()
    if args.events < CHUNK:
        parser.error(f"--events must be at least {CHUNK}")
    with server.database(backend="local") as dsn:
        migrate.upgrade(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(BARE_SQL)
            _partition_bare_like_tally(conn)
            notices: list[str] = []
            conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
            python = copy = staged = 0.0
            parts = chunks(_batch_events(args.events, "cost"))
            for i, part in enumerate(parts):
                t0 = time.perf_counter()
                part = sorted(part, key=lambda e: (e.user_id, e.event_id))
                rows = [staging_row(e) for e in part]
                t1 = time.perf_counter()
                with conn.transaction():
                    conn.execute("select tally.begin_staging()")
                    with conn.cursor().copy(STAGING_COPY) as cp:
                        for row in rows:
                            cp.write_row(row)
                    t2 = time.perf_counter()
                    if args.explain and i == len(parts) - 1:
                        conn.execute(EXPLAIN)
                    conn.execute("select tally.record_usage_staged()")
                t3 = time.perf_counter()
                python, copy, staged = python + t1 - t0, copy + t2 - t1, staged + t3 - t2
            bare_events = _batch_events(args.events, "bare")
            t0 = time.perf_counter()
            with conn.cursor().copy(f"copy bench.bare_log ({', '.join(STAGING_COLUMNS)}) from stdin") as cp:
                for e in bare_events:
                    cp.write_row(staging_row(e))
            bare = time.perf_counter() - t0
    n = len(parts)
    print(f"per chunk of {CHUNK:,} events (mean of {n} chunks), ms:")
    print(f"  client rows (sort, staging_row)   {python / n * 1000:7.1f}")
    print(f"  COPY into the staging table       {copy / n * 1000:7.1f}")
    print(f"  tally.record_usage_staged()       {staged / n * 1000:7.1f}")
    print(f"  bare COPY of the same rows        {bare / (args.events / CHUNK) * 1000:7.1f}  (rows built inside)")
    if args.explain:
        print("server steps of the last chunk (auto_explain, ms; node end times, not exclusive):")
        for message in notices:
            duration = re.search(r"duration: ([\d.]+) ms", message)
            if duration:
                print(f"  statement {float(duration.group(1)):8.1f}")
            for line in message.splitlines():
                m = STEP.match(line)
                if m:
                    print(f"    {m.group(1):<28} {float(m.group(2)):8.1f} .. {float(m.group(3)):8.1f}")


if __name__ == "__main__":
    main()
