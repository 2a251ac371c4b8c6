"""Lookups: people by name key, outputs by publication date.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from reachmeter.store.schema import name_key

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("name_key", sa.String(length=300), nullable=True))
    people = sa.table("people", sa.column("id", sa.Integer), sa.column("name", sa.String))
    connection = op.get_bind()
    rows = connection.execute(sa.select(people.c.id, people.c.name)).all()
    keyed = sa.table("people", sa.column("id", sa.Integer), sa.column("name_key", sa.String))
    for person_id, name in rows:
        connection.execute(
            keyed.update().where(keyed.c.id == person_id).values(name_key=name_key(name or ""))
        )
    op.create_index("ix_people_name_key", "people", ["name_key"])
    op.create_index("ix_outputs_published", "outputs", ["published_on", "id"])


def downgrade() -> None:
    op.drop_index("ix_outputs_published", table_name="outputs")
    op.drop_index("ix_people_name_key", table_name="people")
    with op.batch_alter_table("people") as batch:
        batch.drop_column("name_key")
