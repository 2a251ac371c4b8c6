"""Matches carry their event's source, author and time; each author's first mention of an
output on a source is kept; scores get a columnar snapshot.

Scoring counts each output's distinct authors per source from ``first_mentions``, or from
``event_matches`` and its index ``ix_event_matches_mention``, instead of joining every
match to its event row. Events are never edited, so the copied values never go stale.
Existing matches are filled in from their events, and the first mentions from them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime(timezone=True)
_MENTION = ["output_id", "source_id", "author", "occurred_at", "event_id"]


def upgrade() -> None:
    with op.batch_alter_table("event_matches") as batch:
        batch.add_column(sa.Column("source_id", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("author", sa.Text(), nullable=True))
        batch.add_column(sa.Column("occurred_at", _TIME, nullable=True))
    op.execute(
        "UPDATE event_matches SET"
        " source_id = (SELECT source_id FROM events WHERE events.id = event_matches.event_id),"
        " author = (SELECT coalesce(subj_author, subj_id) FROM events"
        " WHERE events.id = event_matches.event_id),"
        " occurred_at = (SELECT occurred_at FROM events WHERE events.id = event_matches.event_id)"
    )
    with op.batch_alter_table("event_matches") as batch:
        batch.alter_column("source_id", existing_type=sa.String(length=100), nullable=False)
        batch.alter_column("author", existing_type=sa.Text(), nullable=False)
        batch.alter_column("occurred_at", existing_type=_TIME, nullable=False)
        batch.drop_index("ix_event_matches_output_id")
        batch.create_index("ix_event_matches_mention", _MENTION)
    op.create_table(
        "first_mentions",
        sa.Column("output_id", _ID, nullable=False),
        sa.Column("source_id", sa.String(length=100), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("first_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["output_id"],
            ["outputs.id"],
            name=op.f("fk_first_mentions_output_id_outputs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("output_id", "source_id", "author", name=op.f("pk_first_mentions")),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO first_mentions (output_id, source_id, author, first_at)"
        " SELECT output_id, source_id, author, min(occurred_at) FROM event_matches"
        " GROUP BY output_id, source_id, author"
    )
    op.create_table(
        "score_snapshots",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("profile_name", sa.String(length=100), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("saved_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_score_snapshots")),
        sa.UniqueConstraint(
            "profile_name",
            "as_of",
            "part",
            name=op.f("uq_score_snapshots_profile_name_as_of_part"),
        ),
    )


def downgrade() -> None:
    op.drop_table("score_snapshots")
    op.drop_table("first_mentions")
    with op.batch_alter_table("event_matches") as batch:
        batch.drop_index("ix_event_matches_mention")
        batch.create_index("ix_event_matches_output_id", ["output_id"])
        batch.drop_column("occurred_at")
        batch.drop_column("author")
        batch.drop_column("source_id")
