"""Numbers a business can bill on: the plan recorded with each event, kinds and units, admin analytics by
UTC day and plan, rebuild and verify of every derived table; report subscriptions, outbox, quota alerts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from sqlfile import run_sql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("0003_upgrade.sql")


def downgrade() -> None:
    run_sql("0003_downgrade.sql")
