"""The store: SQLite (the embedded default) or PostgreSQL, through SQLAlchemy and Alembic."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from reachmeter.store.engine import StoreError, make_engine, migrate
from reachmeter.store.schema import DEFERRABLE_INDEXES, Base, Meta

__all__ = ["Base", "Store", "StoreError", "open_store"]


class Store:
    """An opened, migrated store. Cheap to pass around; holds one engine (a connection pool)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection in a transaction, committed on success and rolled back on error."""
        with self.engine.begin() as connection:
            yield connection

    @contextmanager
    def session(self) -> Iterator[Session]:
        """An ORM session in a transaction, committed on success and rolled back on error."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    def get_meta(self, key: str) -> str | None:
        with self.engine.connect() as connection:
            return connection.execute(select(Meta.value).where(Meta.key == key)).scalar()

    def set_meta(self, key: str, value: str) -> None:
        with self.session() as session:
            session.merge(Meta(key=key, value=value))

    @property
    def is_demo(self) -> bool:
        """Whether this store holds the generated demo organisation."""
        return self.get_meta("demo") == "true"

    def close(self) -> None:
        self.engine.dispose()


def open_store(target: str | os.PathLike[str]) -> Store:
    """Open (creating and migrating as needed) the store at a SQLite path or database URL."""
    engine = make_engine(target)
    migrate(engine)
    # A bulk ingest drops secondary indexes for speed; one killed mid-way leaves them out.
    with engine.begin() as connection:
        for index in DEFERRABLE_INDEXES:
            index.create(connection, checkfirst=True)
    return Store(engine)
