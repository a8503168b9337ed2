"""Run one versioned SQL file from migrations/sql inside the current revision.

Revisions call ``run_sql("0001_initial.sql")``. The SQL goes to the driver
untouched (no bind-parameter parsing), or to the output in offline mode.
"""

from __future__ import annotations

from pathlib import Path

from alembic import context, op

SQL_DIR = Path(__file__).resolve().parent / "sql"


def run_sql(name: str) -> None:
    sql = (SQL_DIR / name).read_text()
    if context.is_offline_mode():
        op.get_context().impl.static_output(sql)
    else:
        op.get_bind().connection.driver_connection.execute(sql)
