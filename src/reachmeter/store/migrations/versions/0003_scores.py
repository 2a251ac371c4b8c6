"""Scores: the methods log of scoring profiles, stored scores, and data-quality flags.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 20:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "scoring_methods",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("profile_name", sa.String(length=100), nullable=False),
        sa.Column("profile_version", sa.String(length=40), nullable=False),
        sa.Column("profile_sha256", sa.String(length=64), nullable=False),
        sa.Column("changed_at", _TIME, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("profile_text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scoring_methods")),
        sa.UniqueConstraint(
            "profile_name",
            "profile_sha256",
            name=op.f("uq_scoring_methods_profile_name_profile_sha256"),
        ),
    )
    op.create_table(
        "scores",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("output_id", _ID, nullable=False),
        sa.Column("profile_name", sa.String(length=100), nullable=False),
        sa.Column("profile_version", sa.String(length=40), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("mentions", sa.Integer(), nullable=False),
        sa.Column("breakdown", sa.JSON(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("flags", sa.Integer(), nullable=False),
        sa.Column("computed_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["output_id"],
            ["outputs.id"],
            name=op.f("fk_scores_output_id_outputs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scores")),
        sa.UniqueConstraint(
            "profile_name",
            "as_of",
            "output_id",
            name=op.f("uq_scores_profile_name_as_of_output_id"),
        ),
    )
    op.create_index(op.f("ix_scores_output_id"), "scores", ["output_id"], unique=False)
    op.create_index("ix_scores_rank", "scores", ["profile_name", "as_of", "score"], unique=False)
    op.create_table(
        "score_flags",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("output_id", _ID, nullable=True),
        sa.Column("event_id", _ID, nullable=True),
        sa.Column("observation_id", _ID, nullable=True),
        sa.Column("source_id", sa.String(length=100), nullable=True),
        sa.Column("subj_author", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("detected_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["output_id"],
            ["outputs.id"],
            name=op.f("fk_score_flags_output_id_outputs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_score_flags_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["observation_id"],
            ["observations.id"],
            name=op.f("fk_score_flags_observation_id_observations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_score_flags")),
    )
    op.create_index(op.f("ix_score_flags_output_id"), "score_flags", ["output_id"], unique=False)
    op.create_index(op.f("ix_score_flags_event_id"), "score_flags", ["event_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_score_flags_event_id"), table_name="score_flags")
    op.drop_index(op.f("ix_score_flags_output_id"), table_name="score_flags")
    op.drop_table("score_flags")
    op.drop_index("ix_scores_rank", table_name="scores")
    op.drop_index(op.f("ix_scores_output_id"), table_name="scores")
    op.drop_table("scores")
    op.drop_table("scoring_methods")
