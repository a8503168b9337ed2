"""A cheaper set-wise batch path: validation without correction lookups when a batch has none, plain key
inserts for a batch of new keys (ON CONFLICT only when one exists), keys sorted in byte order, the staging
table owned by the owner role and read directly (no arrays), truncated between chunks; settings of users
without merged usage change without a per-user rebuild.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from sqlfile import run_sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("0005_upgrade.sql")


def downgrade() -> None:
    run_sql("0005_downgrade.sql")
