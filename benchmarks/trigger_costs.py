"""Where the single-row ingest budget goes: the insert trigger body, step by step.

Runs pgbench (8 clients, single-row INSERTs, 10,000 users) against a bare
table and against tally.usage_events with the insert trigger's function
replaced by growing parts of the real one: empty, + validation, + the
exactly-once key, the full body. Prints each side's ratio against bare,
measured in the same run. See docs/benchmarks.md.

    python benchmarks/trigger_costs.py [--seconds 6] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python_client"))

from pgtally import migrate, server
from pgtally.bench import ingest

SOURCE = next((ROOT / "functions").rglob("*_trg_usage_events_before_insert_record.sql")).read_text()
FUNCTION = SOURCE[SOURCE.index("create or replace function") : SOURCE.index("comment on function")]
HEAD = FUNCTION[: FUNCTION.index("begin\n") + len("begin\n")]
BODY = FUNCTION[len(HEAD) :]
VALIDATION = BODY[: BODY.index("  if is_correction then")]
KEY = BODY[BODY.index("  new.recorded_at := statement_timestamp();") : BODY.index("  if new.status = 'reversed' then")]
PLAN = FUNCTION[FUNCTION.index("  new.plan := coalesce(") : FUNCTION.index("  -- Exactly-once: the first")]

# The insert triggers as shipped: a WHEN clause on the row trigger (lets the set-wise batch path
# through) and a statement trigger with a WHEN clause checking the batch token. PostgreSQL compiles
# a trigger's WHEN clause for every statement, so single-row inserts pay for both on every row.
SHIPPED_TRIGGERS = ""
NO_WHEN_TRIGGERS = """
drop trigger usage_events_before_insert_record on tally.usage_events;
drop trigger usage_events_before_insert_check_batch_token on tally.usage_events;
create trigger usage_events_before_insert_record before insert on tally.usage_events
  for each row execute function tally._trg_usage_events_before_insert_record();
"""


def variants() -> dict[str, tuple[str, str]]:
    """Name -> (function body to install, trigger DDL to run after it)."""
    tail = "  return new;\nend\n$$;\n"
    no_plan = FUNCTION.replace(PLAN, "  new.plan := null;\n")
    return {
        "empty trigger": (HEAD + "  new.recorded_at := statement_timestamp();\n" + tail, SHIPPED_TRIGGERS),
        "+ validation": (HEAD + VALIDATION + "  new.recorded_at := statement_timestamp();\n" + tail, SHIPPED_TRIGGERS),
        "+ exactly-once key": (HEAD + VALIDATION + KEY.replace(PLAN, "") + tail, SHIPPED_TRIGGERS),
        "+ plan in force": (HEAD + VALIDATION + KEY + tail, SHIPPED_TRIGGERS),
        "full write path": (FUNCTION, SHIPPED_TRIGGERS),
        "full, no plan lookup": (no_plan, SHIPPED_TRIGGERS),
        "full, no WHEN clauses": (FUNCTION, NO_WHEN_TRIGGERS),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with server.database(backend="local") as base:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute("create database trigger_costs")
        dsn = psycopg.conninfo.make_conninfo(base, dbname="trigger_costs")
        migrate.upgrade(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(ingest.BARE_SQL)
            ingest._partition_bare_like_tally(conn)
        results: dict[str, list[float]] = {"bare": []}
        for _ in range(args.rounds):
            results["bare"].append(ingest._pgbench(dsn, "bench.bare_log", 10_000, 8, args.seconds))
            for name, (sql, ddl) in variants().items():
                with psycopg.connect(dsn) as conn:  # one transaction: restored below
                    conn.execute(sql)
                    if ddl:
                        conn.execute(ddl)
                    conn.commit()
                results.setdefault(name, []).append(ingest._pgbench(dsn, "tally.usage_events", 10_000, 8, args.seconds))
                if ddl:
                    restore = """
drop trigger usage_events_before_insert_record on tally.usage_events;
""" + (ROOT / "db" / "0900_triggers.sql").read_text().split("create trigger usage_events_before_change_refuse")[0]
                    with psycopg.connect(dsn) as conn:
                        conn.execute(restore)
                        conn.commit()
                ingest._drain(dsn)
    bare = statistics.median(results["bare"])
    for name, values in results.items():
        print(f"{name:22s} {statistics.median(values):9,.0f} rows/s   ratio {statistics.median(values) / bare:.2f}")


if __name__ == "__main__":
    main()
