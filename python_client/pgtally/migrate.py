"""Apply pgtally's Alembic migrations to a database (what `pgtally migrate` runs)."""

from __future__ import annotations

import io

import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, pool

from ._resources import project_file


def alembic_config(dsn: str | None = None, output: io.StringIO | None = None) -> Config:
    """An Alembic Config pointing at pgtally's migrations (no alembic.ini needed)."""
    cfg = Config(output_buffer=output) if output is not None else Config()
    cfg.set_main_option("script_location", str(project_file("migrations")))
    if dsn:
        cfg.cmd_opts = None
        cfg.attributes["dsn"] = dsn
    return cfg


def _run(dsn: str, fn: object, revision: str) -> None:
    engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn), poolclass=pool.NullPool)
    with engine.begin() as conn:
        cfg = alembic_config(dsn)
        cfg.attributes["connection"] = conn
        fn(cfg, revision)  # type: ignore[operator]


def upgrade(dsn: str, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (default: the latest)."""
    _run(dsn, command.upgrade, revision)


def downgrade(dsn: str, revision: str = "base") -> None:
    """Downgrade the database to ``revision`` (default: remove pgtally)."""
    _run(dsn, command.downgrade, revision)


def current_revision(dsn: str) -> str | None:
    """The revision the database is at, or None when pgtally is not installed."""
    with psycopg.connect(dsn) as conn:
        exists = conn.execute("select to_regclass('public.alembic_version') is not null").fetchone()
        if not exists or not exists[0]:
            return None
        row = conn.execute("select version_num from public.alembic_version").fetchone()
        return row[0] if row else None


def offline_sql(revision: str = "head") -> str:
    """The SQL an upgrade to ``revision`` would run, without connecting."""
    buf = io.StringIO()
    cfg = alembic_config(output=buf)
    command.upgrade(cfg, revision, sql=True)
    return buf.getvalue()
