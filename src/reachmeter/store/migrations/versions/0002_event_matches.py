"""Event matches: which tracked output each event was matched to, by which method.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "event_matches",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("event_id", _ID, nullable=False),
        sa.Column("output_id", _ID, nullable=False),
        sa.Column("identifier", sa.String(length=2000), nullable=False),
        sa.Column("method", sa.String(length=40), nullable=False),
        sa.Column("verification", sa.String(length=40), nullable=False),
        sa.Column("matched_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_event_matches_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["output_id"],
            ["outputs.id"],
            name=op.f("fk_event_matches_output_id_outputs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_matches")),
        sa.UniqueConstraint(
            "event_id", "output_id", name=op.f("uq_event_matches_event_id_output_id")
        ),
    )
    op.create_index(
        op.f("ix_event_matches_output_id"), "event_matches", ["output_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_event_matches_output_id"), table_name="event_matches")
    op.drop_table("event_matches")
