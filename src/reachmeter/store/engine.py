"""Opening a store: database URLs, engine settings and migrations."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import ConnectionPoolEntry

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class StoreError(Exception):
    """The store cannot be opened or used as asked."""


def database_url(target: str | os.PathLike[str]) -> URL:
    """Turn a SQLite path or a database URL into a SQLAlchemy URL.

    ``postgresql://`` and ``postgres://`` URLs use the psycopg 3 driver.
    """
    text = os.fspath(target)
    if "://" not in text:
        return URL.create("sqlite+pysqlite", database=str(Path(text).expanduser().resolve()))
    url = make_url(text)
    if url.drivername in {"postgresql", "postgres"}:
        url = url.set(drivername="postgresql+psycopg")
    elif url.drivername == "sqlite":
        url = url.set(drivername="sqlite+pysqlite")
    if url.get_backend_name() not in {"sqlite", "postgresql"}:
        raise StoreError(
            f"unsupported database {url.get_backend_name()!r}: use SQLite or PostgreSQL"
        )
    return url


def _json_serializer(value: Any) -> str:
    return orjson.dumps(value).decode()


# SQLite's page cache per connection, in KiB (the default is 2 MiB): index pages of large
# stores stay in memory.
SQLITE_CACHE_KIB = 32 * 1024


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.close()


def make_engine(target: str | os.PathLike[str]) -> Engine:
    """An engine for a SQLite file (WAL) or a PostgreSQL server."""
    url = database_url(target)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        json_serializer=_json_serializer,
        json_deserializer=orjson.loads,
    )
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the store's schema up to date (safe to run on every start)."""
    with engine.begin() as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def is_migrated(engine: Engine) -> bool:
    return inspect(engine).has_table("events")
