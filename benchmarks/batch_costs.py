"""Where the batch ingest budget goes, per chunk of 10,000 events.

Records realistic events with the client's batch path on a throwaway server
(durable defaults) and times, per chunk: the client's Python work (rows for
COPY), the COPY into the session's staging table, and
``tally.record_usage_staged()``; then the same events COPYed into a bare table
(same columns and index), the baseline. With ``--explain`` it also prints the
time of each step inside the server (``auto_explain``, nested statements) for
the last chunk: validation, unnesting and sorting, key, log and delta inserts.

With ``--floor`` it measures instead what any SQL-only batch path must pay at
least: one CSV file loaded with psql's ``\\copy`` in one transaction into the
bare table (the baseline) and into the cheapest shapes that keep a separate
record, an exactly-once key and a pending delta per event, each without
validation or sorting: COPY into a temporary staging table then
``INSERT ... SELECT`` into the log alone, + the key rows, + the delta rows;
and COPY straight into a partitioned log whose statement trigger writes the
keys and deltas from its transition table. pgtally's staging path runs beside
them. See docs/benchmarks.md ("What limits the batch").

    python benchmarks/batch_costs.py [--events 100000] [--explain]
    python benchmarks/batch_costs.py --floor [--events 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python_client"))

from pgtally import migrate, server
from pgtally.bench.ingest import (
    BARE_SQL,
    CSV_COPY_OPTIONS,
    _batch_events,
    _drain,
    _partition_bare_like_tally,
    _psql,
    _write_csv,
)
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


COLUMNS = ", ".join(STAGING_COLUMNS)
# The floor's tables: the key and delta tables as pgtally's (columns, keys, indexes), and a log twin
# whose statement trigger writes the keys and deltas set-wise from the rows a COPY inserted.
FLOOR_SQL = """
create table bench.floor_keys (like tally.event_keys including all);
create table bench.floor_deltas (like tally.pending_deltas including all);
create table bench.trigger_log (like tally.usage_events including defaults) partition by range (occurred_at);
alter table bench.trigger_log alter column recorded_at set default now();
create table bench.trigger_log_default partition of bench.trigger_log default;
create index on bench.trigger_log (user_id, occurred_at);
create function bench.trigger_log_keys_and_deltas() returns trigger language plpgsql as $f$
begin
  insert into bench.floor_keys (user_id, event_id, occurred_at, correctable)
  select n.user_id, n.event_id, n.occurred_at, true from new_rows n;
  insert into bench.floor_deltas
  select n.user_id, n.kind, n.occurred_at, n.attributes, 1, 0, n.quantity, coalesce(n.duration_ms, 0),
         (n.duration_ms is not null)::int, n.cost, n.billable, true, null
    from new_rows n;
  return null;
end
$f$;
create trigger keys_and_deltas after insert on bench.trigger_log referencing new table as new_rows
  for each statement execute function bench.trigger_log_keys_and_deltas();
"""
STAGE = (
    "create temporary table floor_staging (like pg_temp.tally_staging) on commit drop;\n"
    "\\copy floor_staging ({columns}) from '{path}' {options}\n"
    "insert into bench.bare_log ({columns}) select {columns} from floor_staging;\n"
)
KEYS = (
    "insert into bench.floor_keys (user_id, event_id, occurred_at, correctable)"
    " select user_id, event_id, occurred_at, true from floor_staging;\n"
)
DELTAS = (
    "insert into bench.floor_deltas select user_id, kind, occurred_at, attributes, 1, 0, quantity,"
    " coalesce(duration_ms, 0), (duration_ms is not null)::int, cost, billable, true, null from floor_staging;\n"
)
# The most a batch could fold its deltas: the attributes the declared dimensions use (voice, model) and
# one row per user, kind, values and UTC hour (exact reads need the exact time; this is the upper bound).
FOLDED_DELTAS = (
    "insert into bench.floor_deltas select user_id, kind, date_trunc('hour', occurred_at),"
    " jsonb_strip_nulls(jsonb_build_object('voice', attributes->'voice', 'model', attributes->'model')),"
    " count(*), 0, sum(quantity), sum(coalesce(duration_ms, 0)), count(duration_ms), sum(cost), bool_or(billable),"
    " true, null from floor_staging group by 1, 2, 3, 4;\n"
)


def floor(events: int, rounds: int) -> None:
    """Rows/s of the cheapest SQL-only batch shapes against a bare COPY of the same CSV file."""
    sides: dict[str, str] = {
        "bare COPY (the baseline)": "\\copy bench.bare_log ({columns}) from '{path}' {options}\n",
        "staging + log rows": STAGE,
        "staging + log + key rows": STAGE + KEYS,
        "staging + log + key + delta rows": STAGE + KEYS + DELTAS,
        "staging + log + key + folded delta rows": STAGE + KEYS + FOLDED_DELTAS,
        "COPY into the log, statement trigger: keys + deltas": (
            "\\copy bench.trigger_log ({columns}) from '{path}' {options}\n"
        ),
        "pgtally: staging + tally.record_usage_staged()": (
            "select tally.begin_staging();\n"
            "\\copy pg_temp.tally_staging ({columns}) from '{path}' {options}\n"
            "select tally.record_usage_staged();\n"
        ),
    }
    results: dict[str, list[float]] = {name: [] for name in sides}
    folded = 0
    with server.database(backend="local") as dsn, tempfile.TemporaryDirectory() as tmp:
        migrate.upgrade(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(BARE_SQL)
            _partition_bare_like_tally(conn)
            conn.execute("select tally.begin_staging()")  # the staging table's shape, for LIKE
            conn.execute(FLOOR_SQL.replace("(like pg_temp.tally_staging)", ""))
        for r in range(rounds):
            path = Path(tmp) / f"round{r}.csv"
            _write_csv(path, _batch_events(events, f"f{r}"))
            for name, script in sides.items():
                # Every side but pgtally's starts from empty tables; pgtally's log keeps the earlier rounds.
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("truncate bench.bare_log, bench.trigger_log, bench.floor_keys, bench.floor_deltas")
                    conn.execute("checkpoint")
                sql = script.format(columns=COLUMNS, path=path, options=CSV_COPY_OPTIONS)
                if name.startswith("pgtally"):
                    # Each round's file holds new event ids, so every row is recorded.
                    results[name].append(_psql(dsn, sql, events))
                    _drain(dsn)
                else:
                    results[name].append(
                        _psql(dsn, sql.replace("(like pg_temp.tally_staging)", _staging_columns()), events)
                    )
                    if "folded" in name:
                        with psycopg.connect(dsn) as conn:
                            folded = conn.execute("select count(*) from bench.floor_deltas").fetchone()[0]  # type: ignore[index]
    bare = statistics.median(results["bare COPY (the baseline)"])
    print(f"{events:,} events in one CSV file, psql \\copy in one transaction, median of {rounds} rounds:")
    for name, values in results.items():
        rate = statistics.median(values)
        print(f"  {name:52s} {rate:9,.0f} rows/s   {rate / bare:.2f}x")
    print(f"  (the folded side wrote {folded:,} delta rows for {events:,} events)")


def _staging_columns() -> str:
    """The staging table's columns, as pgtally's (psql's own session has no tally_staging to copy from)."""
    source = (ROOT / "functions" / "0212_begin_staging.sql").read_text()
    start = source.index("create temporary table tally_staging (") + len("create temporary table tally_staging ")
    return source[start : source.index(") on commit delete rows") + 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=None, help="events per run (100,000; 200,000 with --floor)")
    parser.add_argument("--explain", action="store_true", help="print the server's plan of the last chunk")
    parser.add_argument("--floor", action="store_true", help="the cheapest SQL-only batch shapes vs a bare COPY")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --floor (median)")
    args = parser.parse_args()
    if args.floor:
        floor(args.events or 200_000, args.rounds)
        return
    args.events = args.events or 100_000
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
