"""The platform's daily totals (tally.admin_daily) kept by the refresh day by day: only the UTC days whose per-user
rows changed since the last refresh, and the days with pending deltas, are re-aggregated (the materialized view
re-aggregated every user-day at every refresh).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from sqlfile import run_sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("0007_upgrade.sql")


def downgrade() -> None:
    run_sql("0007_downgrade.sql")
