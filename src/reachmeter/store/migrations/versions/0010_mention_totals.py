"""Each output's authors per source are kept as a total; first mentions are indexed by
output and time; merged outputs by a partial index.

An incremental scoring run counts the changed outputs' authors from ``mention_totals``
(one row per output and source) and reads only their recent first mentions, by
``ix_first_mentions_recent``, instead of every first mention they have. The totals are
filled in from the first mentions already stored.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_MERGED = sa.text("merged_into_id IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "mention_totals",
        sa.Column("output_id", _ID, nullable=False),
        sa.Column("source_id", sa.String(length=100), nullable=False),
        sa.Column("authors", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["output_id"],
            ["outputs.id"],
            name=op.f("fk_mention_totals_output_id_outputs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("output_id", "source_id", name=op.f("pk_mention_totals")),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO mention_totals (output_id, source_id, authors)"
        " SELECT output_id, source_id, count(*) FROM first_mentions"
        " GROUP BY output_id, source_id"
    )
    op.create_index("ix_first_mentions_recent", "first_mentions", ["output_id", "first_at"])
    op.create_index(
        "ix_outputs_merged",
        "outputs",
        ["merged_into_id"],
        sqlite_where=_MERGED,
        postgresql_where=_MERGED,
    )


def downgrade() -> None:
    op.drop_index("ix_outputs_merged", table_name="outputs")
    op.drop_index("ix_first_mentions_recent", table_name="first_mentions")
    op.drop_table("mention_totals")
