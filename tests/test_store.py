"""The store's contract: migrations, time zones and crash safety, on both backends."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, insert, select

import reachmeter.store as store_module
from reachmeter.store import Store, open_store
from reachmeter.store.engine import database_url
from reachmeter.store.schema import Base, Event, Meta, Run


def test_migrations_create_exactly_the_models(store: Store) -> None:
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_times_come_back_aware_utc(store: Store) -> None:
    started = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with store.session() as session:
        session.add(Run(kind="test", started_at=started))
    with store.session() as session:
        run = session.scalars(select(Run)).one()
        assert run.started_at == dt.datetime(2025, 6, 1, 10, 0, tzinfo=dt.UTC)
        assert run.started_at.tzinfo == dt.UTC


def test_database_urls() -> None:
    assert database_url("x.db").drivername == "sqlite+pysqlite"
    assert database_url("postgresql://u@h/db").drivername == "postgresql+psycopg"


def test_sqlite_runs_in_wal_mode(sqlite_store: Store) -> None:
    with sqlite_store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_a_write_can_leave_its_checkpoint_to_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit of ``begin(checkpoint_later=True)`` copies nothing into the database file
    (the write-ahead log keeps every page); the checkpoint comes after, on a thread, and
    the connection goes back to the pool with SQLite's own threshold again."""
    path = tmp_path / "c.db"
    store = open_store(path)
    checkpoint = store._checkpoint  # the thread's work, run here below
    started: list[str] = []
    monkeypatch.setattr(store, "_checkpoint", lambda: started.append("checkpoint"))
    with store.engine.connect() as connection:
        before = connection.execute(select(func.count()).select_from(Meta)).scalar_one()
    size = path.stat().st_size
    try:
        with store.begin(checkpoint_later=True) as connection:
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
            for number in range(3000):  # about 1,500 pages: past the threshold of 1,000
                connection.execute(insert(Meta), {"key": f"k{number}", "value": "x" * 2000})
        assert started == ["checkpoint"]
        assert path.stat().st_size == size  # all still in the log
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
            count = connection.execute(select(func.count()).select_from(Meta)).scalar()
        assert count == before + 3000
        checkpoint()  # what the thread runs
        assert path.stat().st_size > size + 6_000_000
    finally:
        store.close()
    # Without it, the commit copies the log itself.
    store = open_store(path)
    size = path.stat().st_size
    try:
        with store.begin() as connection:
            for number in range(3000, 6000):
                connection.execute(insert(Meta), {"key": f"k{number}", "value": "x" * 2000})
        assert path.stat().st_size > size + 6_000_000
    finally:
        store.close()


def test_checkpoints_wait_for_the_end_of_a_deferred_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within ``checkpoints_deferred`` a commit copies the log into the database file only
    past the larger threshold (2,000 pages here); one checkpoint starts on leaving, and
    commits after it copy past SQLite's 1,000 again."""
    import reachmeter.store

    monkeypatch.setattr(reachmeter.store, "_DEFERRED_CHECKPOINT_PAGES", 2000)
    path = tmp_path / "d.db"
    store = open_store(path)
    started: list[str] = []
    monkeypatch.setattr(store, "_checkpoint", lambda: started.append("checkpoint"))
    size = path.stat().st_size
    try:
        with store.checkpoints_deferred():
            sizes = []
            for first in (0, 3000):  # two commits of about 1,500 pages each
                with store.begin() as connection:
                    threshold = connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
                    assert threshold == 2000
                    for number in range(first, first + 3000):
                        connection.execute(insert(Meta), {"key": f"k{number}", "value": "x" * 2000})
                sizes.append(path.stat().st_size)
            assert started == []
        assert sizes[0] == size  # 1,500 pages: all still in the log
        assert sizes[1] > size + 12_000_000  # 3,000: copied at the commit
        assert started == ["checkpoint"]
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    finally:
        store.close()


def test_dropped_indexes_are_built_on_threads_and_the_connection_set_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The secondary indexes are sorted on worker threads in small runs; the connection
    that built them gets its usual page cache back, with no sort threads."""
    from reachmeter.store import create_deferrable_indexes
    from reachmeter.store.engine import SQLITE_CACHE_KIB

    store = open_store(tmp_path / "i.db")
    seen: list[tuple[int, int]] = []
    real = store_module.DEFERRABLE_INDEXES[0].create

    def create(connection: Any, checkfirst: bool = False) -> None:
        seen.append(
            (
                connection.exec_driver_sql("PRAGMA threads").scalar(),
                connection.exec_driver_sql("PRAGMA cache_size").scalar(),
            )
        )
        real(connection, checkfirst=checkfirst)

    try:
        with store.begin() as connection:
            for index in store_module.DEFERRABLE_INDEXES:
                index.drop(connection)
        monkeypatch.setattr(store_module.DEFERRABLE_INDEXES[0], "create", create)
        with store.begin() as connection:
            create_deferrable_indexes(connection)
            assert connection.exec_driver_sql("PRAGMA threads").scalar() == 0
            cache = connection.exec_driver_sql("PRAGMA cache_size").scalar()
            assert cache == -SQLITE_CACHE_KIB
            names = {
                row[0]
                for row in connection.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'"
                )
            }
        assert seen == [(4, -8192)]
        assert {"ix_events_obj", "ix_events_source_occurred"} <= names
    finally:
        store.close()


def _write_events(path: Path, count: int) -> None:
    with path.open("wb") as handle:
        for number in range(count):
            handle.write(
                orjson.dumps(
                    {
                        "id": f"kill-{number}",
                        "subj_id": f"https://example.org/post/{number}",
                        "relation_type_id": "discusses",
                        "obj_id": f"https://doi.org/10.5555/kill.{number % 50}",
                        "source_id": "web",
                        "occurred_at": "2025-01-01T00:00:00Z",
                    }
                )
                + b"\n"
            )


def _running_on(db: Path) -> list[int]:
    """The processes whose command line names the store (the CLI and its workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:  # it has just ended
                continue
            if str(db).encode() in command:
                found.append(int(entry.name))
    return found


@pytest.mark.parametrize("workers", [False, True])
def test_killed_ingest_then_rerun_stores_every_event_once(tmp_path: Path, workers: bool) -> None:
    """Killed mid-way, in one process or with its two workers, an ingest run again stores
    every event exactly once; the workers of the killed one stop by themselves."""
    events = tmp_path / "events.jsonl"
    total = 300_000
    _write_events(events, total)
    db = tmp_path / "kill.db"
    open_store(db).close()
    env = {
        **os.environ,
        "REACHMETER_INGEST_BATCH_SIZE": "2000",
        "REACHMETER_INGEST_PARALLEL_BYTES": "1" if workers else str(1 << 40),
    }
    command = [sys.executable, "-m", "reachmeter", "ingest", "--db", str(db), str(events)]
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = open_store(db)
    stored = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        with store.engine.connect() as connection:
            stored = connection.execute(select(func.count()).select_from(Event)).scalar() or 0
        if stored >= 4000:
            break
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert 0 < stored < total, "the ingest must be killed part-way"
    if sys.platform == "linux":
        deadline = time.monotonic() + 30
        while _running_on(db) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _running_on(db) == []
    rerun = subprocess.run(command, env=env, capture_output=True, check=False)
    assert rerun.returncode == 0, rerun.stderr
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Event)).scalar() == total
        distinct = select(func.count(func.distinct(Event.event_key)))
        assert connection.execute(distinct).scalar() == total
        indexes = {
            row[0]
            for row in connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'"
            )
        }
    assert {"ix_events_obj", "ix_events_source_occurred"} <= indexes
    store.close()
