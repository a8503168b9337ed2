"""The dashboard's funnel precomputed by the refresh (declared funnels per named timeframe and plan, read in
constant time by tally.admin_funnel_window); the call-time funnel computed one statement per step over all the
users on the journey instead of one function call per user and step; daily totals straight from the merged rows
when nothing of the user's is pending, and the usage history summed per bucket before zero-filling.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from sqlfile import run_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("0006_upgrade.sql")


def downgrade() -> None:
    run_sql("0006_downgrade.sql")
