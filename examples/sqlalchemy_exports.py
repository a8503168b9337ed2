"""Example app: an export service that writes its business row and its usage row in one transaction.

    DATABASE_URL=postgresql://... python examples/sqlalchemy_exports.py

It creates a table `app_exports` (the host app's own table, outside pgtally),
records one export that commits (both rows exist) and one that crashes after
recording usage (both rows are rolled back).
"""

from __future__ import annotations

import os
import sys
import uuid

import psycopg
from sqlalchemy import Engine, String, create_engine, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from pgtally.sqlalchemy import record_usage


class Base(DeclarativeBase):
    pass


class Export(Base):
    """The host application's own table: one row per rendered export."""

    __tablename__ = "app_exports"
    id: Mapped[str] = mapped_column(String, primary_key=True)
    user_id: Mapped[str] = mapped_column(String)
    format: Mapped[str] = mapped_column(String)


def render_export(engine: Engine, user_id: str, fmt: str, crash: bool = False) -> str:
    """Business row + usage row in one transaction; ``crash`` fails after both were written."""
    job_id = f"export-{uuid.uuid4()}"
    with Session(engine) as session, session.begin():
        session.add(Export(id=job_id, user_id=user_id, format=fmt))
        record_usage(session, event_id=job_id, user_id=user_id, kind="export", quantity=1, attributes={"format": fmt})
        if crash:
            raise RuntimeError("renderer crashed after recording usage")
    return job_id


def main(dsn: str) -> int:
    engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn))
    Base.metadata.create_all(engine)
    committed = render_export(engine, "user-42", "mp3")
    try:
        render_export(engine, "user-42", "wav", crash=True)
    except RuntimeError:
        pass
    with Session(engine) as session:
        exports = session.scalars(select(Export.id)).all()
        usage = session.scalars(text("select event_id from tally.usage_events")).all()
    print(f"business rows {list(exports)}, usage rows {list(usage)}")
    return 0 if list(exports) == [committed] and list(usage) == [committed] else 1


if __name__ == "__main__":
    sys.exit(main(os.environ["DATABASE_URL"]))
