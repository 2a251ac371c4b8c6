"""Observations by account: a partial index, over the rows that have an account.

Most observations (usage reports, citations) belong to no account; leaving them out keeps
the index small and costs their inserts nothing.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_HAS_ACCOUNT = sa.text("account_id IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_observations_account_id", table_name="observations")
    op.create_index(
        "ix_observations_account_id",
        "observations",
        ["account_id"],
        sqlite_where=_HAS_ACCOUNT,
        postgresql_where=_HAS_ACCOUNT,
    )


def downgrade() -> None:
    op.drop_index("ix_observations_account_id", table_name="observations")
    op.create_index("ix_observations_account_id", "observations", ["account_id"])
