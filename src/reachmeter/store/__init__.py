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

from reachmeter.store.engine import SQLITE_CACHE_KIB, StoreError, make_engine, migrate
from reachmeter.store.schema import DEFERRABLE_INDEXES, Base, Meta

__all__ = ["Base", "Store", "StoreError", "create_deferrable_indexes", "open_store"]

log = logging.getLogger(__name__)

# SQLite's own threshold for copying the write-ahead log into the database file at a
# commit (its default, which every other connection keeps).
_AUTOCHECKPOINT_PAGES = 1000
# The threshold within ``checkpoints_deferred``: 256 MiB of 4 KiB pages. Pages that every
# transaction of a bulk load rewrites (a unique index's) are copied once per checkpoint,
# so fewer checkpoints copy far less; the log stays bounded all the same.
_DEFERRED_CHECKPOINT_PAGES = 65536


class Store:
    """An opened, migrated store. Cheap to pass around; holds one engine (a connection pool)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._checkpoints: list[threading.Thread] = []
        self._deferring = 0

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

        Within ``checkpoints_deferred`` commits copy the log only once it is large.
        """
        deferred = self._deferring > 0
        if not (checkpoint_later or deferred) or self.dialect != "sqlite":
            with self.engine.begin() as connection:
                yield connection
            return
        with self.engine.connect() as connection:
            raw = connection.connection.driver_connection
            if raw is None:  # pragma: no cover - a pooled connection always has one
                raise StoreError("no database connection")
            threshold = _DEFERRED_CHECKPOINT_PAGES if deferred and not checkpoint_later else 0
            raw.execute(f"PRAGMA wal_autocheckpoint={threshold}")
            try:
                with connection.begin():
                    yield connection
            finally:
                raw.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
        if not deferred:
            self._checkpoint_on_thread()

    @contextmanager
    def checkpoints_deferred(self, *, checkpoint_after: bool = True) -> Iterator[None]:
        """On SQLite, transactions begun here (``begin``) copy the write-ahead log into
        the database file only past 256 MiB of it, not SQLite's 4 MiB; one checkpoint on a
        thread copies the rest on leaving (unless ``checkpoint_after`` is false: for a
        process that writes a part of a load that another one checkpoints).

        For bulk loads, whose every commit would otherwise pass the threshold and copy
        what it wrote, including the pages of a unique index that the next commit writes
        again.
        """
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
            if self._deferring == 0 and self.dialect == "sqlite" and checkpoint_after:
                self._checkpoint_on_thread()

    def _checkpoint_on_thread(self) -> None:
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
        create_deferrable_indexes(connection)
    return Store(engine)


# How SQLite builds an index over a large table: it sorts the keys in runs the size of its
# page cache, each run on a worker thread, and merges them. Runs of 8 MiB on up to four
# threads build the events' indexes about a third faster than one sort in a 32 MiB cache
# (3.0 s against 4.5 s at 1M events).
_INDEX_SORT_THREADS = 4
_INDEX_SORT_CACHE_KIB = 8 * 1024


def create_deferrable_indexes(connection: Connection) -> None:
    """Create the events' secondary indexes that a bulk load dropped (those missing)."""
    raw = connection.connection.driver_connection if connection.dialect.name == "sqlite" else None
    if raw is not None:
        raw.execute(f"PRAGMA threads={_INDEX_SORT_THREADS}")
        raw.execute(f"PRAGMA cache_size=-{_INDEX_SORT_CACHE_KIB}")
    try:
        for index in DEFERRABLE_INDEXES:
            index.create(connection, checkfirst=True)
    finally:
        if raw is not None:
            raw.execute("PRAGMA threads=0")
            raw.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
