"""Alembic environment: migrations run on the connection handed in by ``store.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from reachmeter.store.schema import Base

target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if _connection is not None:
    run_migrations(_connection)
else:
    with context.config.attributes["engine"].begin() as _conn:
        run_migrations(_conn)
