"""The marks of the days the refresh re-aggregates (tally.admin_daily_stale) are insert-only, one row per day and
marking transaction: writers marking the same days never wait for each other or for the refresh.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from sqlfile import run_sql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("0008_upgrade.sql")


def downgrade() -> None:
    run_sql("0008_downgrade.sql")
