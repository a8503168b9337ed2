"""Recording usage inside a SQLAlchemy session and the example app."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from pgtally import NegativeAmount
from pgtally.sqlalchemy import record_usage

ROOT = Path(__file__).resolve().parents[1]


def engine_for(dsn: str):  # type: ignore[no-untyped-def]
    return create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn))


def test_usage_commits_and_rolls_back_with_the_session(dsn: str, conn: psycopg.Connection) -> None:
    engine = engine_for(dsn)
    with Session(engine) as session, session.begin():
        assert record_usage(session, event_id="e1", user_id="u1", kind="export", quantity=1) is True
        assert record_usage(session, event_id="e1", user_id="u1", kind="export", quantity=1) is False
    with pytest.raises(RuntimeError), Session(engine) as session, session.begin():
        record_usage(session, event_id="e2", user_id="u1", kind="export", quantity=1)
        raise RuntimeError("business logic failed")
    assert [r[0] for r in conn.execute("select event_id from tally.usage_events")] == ["e1"]


def test_errors_are_pgtally_exceptions(dsn: str) -> None:
    with Session(engine_for(dsn)) as session, pytest.raises(NegativeAmount) as info:
        record_usage(session, event_id="e1", user_id="u1", kind="export", quantity=-1)
    assert info.value.field == "quantity"


def test_example_app_keeps_business_and_usage_rows_together(dsn: str, conn: psycopg.Connection) -> None:
    res = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "sqlalchemy_exports.py")],
        env={**os.environ, "DATABASE_URL": dsn, "PYTHONPATH": str(ROOT / "python_client")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    exports = conn.execute("select count(*) from app_exports").fetchone()
    usage = conn.execute("select count(*) from tally.usage_events").fetchone()
    assert exports == (1,) and usage == (1,), "the crashed export left neither row"
    with Session(engine_for(dsn)) as session:
        assert session.execute(text("select kind from tally.usage_events")).scalar_one() == "export"
