"""Security hardening: pinned search_path, owner-only locks, bounded amounts and numeric sums, no trigger bypass,
writer COPY, anonymized peers, minimum group size, CSV-safe exports, safe default privileges.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from sqlfile import run_sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("0002_upgrade.sql")


def downgrade() -> None:
    run_sql("0002_downgrade.sql")
