"""The store: SQLite (the embedded default) or PostgreSQL, through SQLAlchemy and Alembic."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from reachmeter.store.engine import StoreError, make_engine, migrate
from reachmeter.store.schema import DEFERRABLE_INDEXES, Base, Meta

__all__ = ["Base", "Store", "StoreError", "open_store"]

log = logging.getLogger(__name__)

# SQLite's own threshold for copying the write-ahead log into the database file at a
# commit (its default, which every other connection keeps).
_AUTOCHECKPOINT_PAGES = 1000


class Store:
    """An opened, migrated store. Cheap to pass around; holds one engine (a connection pool)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._checkpoints: list[threading.Thread] = []

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def begin(self, *, checkpoint_later: bool = False) -> Iterator[Connection]:
        """A connection in a transaction, committed on success and rolled back on error.

        With ``checkpoint_later``, on SQLite, the commit does not also copy the write-ahead
        log into the database file (SQLite's checkpoint, which a commit past 1,000 logged
        pages does): a thread does it right after. For large writes, such as a scoring
        run's: they are committed, durable and seen by readers as soon as the commit
        returns, as ever; the copying no longer holds the writer up.
        """
        if not checkpoint_later or self.dialect != "sqlite":
            with self.engine.begin() as connection:
                yield connection
            return
        with self.engine.connect() as connection:
            raw = connection.connection.driver_connection
            if raw is None:  # pragma: no cover - a pooled connection always has one
                raise StoreError("no database connection")
            raw.execute("PRAGMA wal_autocheckpoint=0")
            try:
                with connection.begin():
                    yield connection
            finally:
                raw.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
        self._checkpoints = [thread for thread in self._checkpoints if thread.is_alive()]
        thread = threading.Thread(target=self._checkpoint, name="reachmeter-checkpoint")
        self._checkpoints.append(thread)
        thread.start()

    def _checkpoint(self) -> None:
        """Copy what the write-ahead log holds into the database file, as far as readers
        allow (a passive checkpoint: it never waits for them, nor holds up a writer)."""
        try:
            with self.engine.connect() as connection:
                raw = connection.connection.driver_connection
                if raw is not None:
                    raw.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except (SQLAlchemyError, sqlite3.Error) as error:  # the next commit's will do it
            log.warning("checkpoint of the store failed: %s", error)

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

    def wait_for_checkpoints(self) -> None:
        """Return once the checkpoints that ``begin(checkpoint_later=True)`` started are
        done."""
        for thread in self._checkpoints:
            thread.join()
        self._checkpoints.clear()

    def close(self) -> None:
        """Wait for checkpoints under way, then close the pool's connections."""
        self.wait_for_checkpoints()
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
