"""Initial schema: usage log, exactly-once keys, pending deltas, rollups, write and read API.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from sqlfile import run_sql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("0001_upgrade.sql")


def downgrade() -> None:
    run_sql("0001_downgrade.sql")
