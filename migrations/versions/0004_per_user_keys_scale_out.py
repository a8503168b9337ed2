"""Beyond one server: exactly-once per user ((user_id, event_id)), and every function as of this revision
(the merge, erasure, rebuild and batch paths a Citus cluster can run; the quota check that refuses on a hot
standby; record_usage as SECURITY DEFINER).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from sqlfile import run_sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("0004_upgrade.sql")


def downgrade() -> None:
    run_sql("0004_downgrade.sql")
