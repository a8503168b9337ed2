"""Alembic environment for pgtally.

The database is a live connection handed over by `pgtally migrate`
(config.attributes["connection"]), or a libpq DSN from `-x dsn=...` or
DATABASE_URL. Offline mode (`alembic upgrade head --sql`) prints the SQL.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psycopg
from alembic import context
from sqlalchemy import create_engine, pool

sys.path.insert(0, str(Path(__file__).resolve().parent))

config = context.config


def _dsn() -> str:
    dsn = context.get_x_argument(as_dictionary=True).get("dsn") or os.environ.get("DATABASE_URL")
    if not dsn:
        raise SystemExit("pgtally migrations: pass -x dsn=... or set DATABASE_URL")
    return dsn


# After every upgrade, in the same transaction: whatever a revision added is owned by
# tally_owner and grants PUBLIC nothing, even if the revision forgot to say so.
SECURE = "do $$ begin if to_regprocedure('tally._secure_objects()') is not null then perform tally._secure_objects(); end if; end $$"


def run_offline() -> None:
    context.configure(url="postgresql+psycopg://", literal_binds=True, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()
        context.get_context().impl.static_output(SECURE + ";")


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, transactional_ddl=True)
        with context.begin_transaction():
            context.run_migrations()
            connection.exec_driver_sql(SECURE)
        return
    dsn = _dsn()
    engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn), poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, transactional_ddl=True)
        with context.begin_transaction():
            context.run_migrations()
            conn.exec_driver_sql(SECURE)


if context.is_offline_mode():
    run_offline()
else:
    run_online()
