"""The worker: scheduled collection with recorded Crossref responses, one worker per store
(a lease), stopping mid-collection and resuming from the cursor, SIGTERM on a real process."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from reachmeter.cli import app
from reachmeter.matching.identifiers import Identifier
from reachmeter.monitor.worker import (
    ALERTS_JOB,
    Worker,
    WorkerBusyError,
    list_schedules,
    parse_every,
    set_schedule,
)
from reachmeter.settings import Settings
from reachmeter.sources.runner import SourceError
from reachmeter.sources.testing import Replay, replay_client
from reachmeter.store import Store, open_store
from reachmeter.store.catalog import upsert_output
from reachmeter.store.schema import Observation, Run, Score, SourceCursor
from reachmeter.store.schema import Source as SourceRow
from reachmeter.store.schema_monitor import Schedule, WorkerLease
from tests.conftest import ROOT, shared_data

runner = CliRunner()
MANY = (
    "10.1016/j.neurobiolaging.2010.03.024",
    "10.1002/jor.1100150407",
    "10.1038/srep16696",
    "10.1109/icdcsw.2003.1203662",
    "10.3892/ijo_00000353",
)


def _track(store: Store, *dois: str) -> None:
    with store.session() as session:
        for doi in dois:
            upsert_output(session, identifiers=[Identifier("doi", doi)])


def _settings() -> Settings:
    return Settings(contact_email="tests@example.org", worker_lease=60)


def test_parse_every() -> None:
    assert [parse_every(t) for t in ("30m", "6h", "1d", "2w")] == [1800, 21600, 86400, 1209600]
    with pytest.raises(ValueError, match="not an interval"):
        parse_every("5x")
    with pytest.raises(ValueError, match="shorter than a minute"):
        parse_every("30s")


def test_run_once_collects_what_is_due_logs_it_and_scores(store: Store) -> None:
    replay = Replay()
    replay.add_vcr(shared_data("crossref-api", "test-works", "test_works_with_one_id.yaml"))
    _track(store, "10.1371/journal.pone.0033693")
    now = dt.datetime.now(dt.UTC)
    set_schedule(store, "crossref", 3600, now=now)
    worker = Worker(store, _settings(), http=replay_client(replay))
    summary = worker.run_due(now)
    assert [(r.source_id, r.status, r.stored) for r in summary.runs] == [("crossref", "ok", 1)]
    assert summary.scored == 1
    assert summary.alerts is not None
    with store.session() as session:
        assert session.scalar(select(Observation.value)) == 72
        run = session.scalars(select(Run)).one()
        assert (run.kind, run.source_id, run.status) == ("collect", "crossref", "ok")
        crossref = session.get(Schedule, "crossref")
        assert crossref is not None
        assert crossref.last_status == "ok"
        assert crossref.next_run_at == crossref.last_started_at + dt.timedelta(hours=1)  # type: ignore[operator]
        assert session.scalar(select(func.count()).select_from(Score)) == 1
    # Nothing is due again within the hour; after it, the source runs again.
    assert worker.run_due(now + dt.timedelta(minutes=30)).runs == []
    again = worker.run_due(now + dt.timedelta(hours=2))
    assert [r.source_id for r in again.runs] == ["crossref"]
    assert {s["job"] for s in list_schedules(store)} == {"crossref", ALERTS_JOB}


def test_a_paused_source_is_skipped_and_said_so(store: Store) -> None:
    now = dt.datetime.now(dt.UTC)
    set_schedule(store, "crossref", 3600, now=now)
    with store.session() as session:
        session.add(SourceRow(id="crossref", name="Crossref", enabled=False,
                              paused_reason="paused after 5 failed runs in a row"))  # fmt: skip
    summary = Worker(store, _settings(), http=replay_client(Replay())).run_due(now)
    assert summary.runs == []
    assert summary.skipped == [
        "crossref: source crossref is paused: paused after 5 failed runs in a row"
    ]


def test_only_one_worker_holds_the_lease(store: Store) -> None:
    first = Worker(store, _settings(), holder="first")
    second = Worker(store, _settings(), holder="second")
    now = dt.datetime.now(dt.UTC)
    assert first.acquire(now)
    assert not second.acquire(now)
    with pytest.raises(WorkerBusyError, match=r"another worker is running \(first until "):
        second.run_due(now)
    # A lease that was not renewed expires; then another worker may take over.
    assert second.acquire(now + dt.timedelta(seconds=61))
    assert not first.acquire(now + dt.timedelta(seconds=62))
    second.release()
    assert first.acquire(now)
    with store.session() as session:
        assert session.scalars(select(WorkerLease.holder)).one() == "first"


def test_a_stop_mid_collection_is_logged_and_the_next_run_resumes(store: Store) -> None:
    replay = Replay()
    replay.add_vcr(shared_data("crossref-api", "test-works", "test_works_with_many_ids.yaml"))
    _track(store, *MANY)
    now = dt.datetime.now(dt.UTC)
    set_schedule(store, "crossref", 3600, now=now)
    worker = Worker(store, _settings())
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if len(asked) == 2:
            worker.stop()  # as SIGTERM would, while the second page is being fetched
        return replay.handle_request(request)

    worker.http = replay_client(httpx.MockTransport(answer))
    summary = worker.run_due(now)
    assert summary.interrupted == "crossref"
    assert len(asked) == 2
    with store.session() as session:
        run = session.scalars(select(Run)).one()
        assert (run.status, run.read, run.stored) == ("interrupted", 2, 2)
        assert run.finished_at is not None
        cursor = session.scalars(select(SourceCursor.value)).one()
        assert cursor == "10.1016/j.neurobiolaging.2010.03.024"  # the second DOI, sorted
        crossref = session.get(Schedule, "crossref")
        assert crossref is not None
        assert crossref.last_status == "interrupted"
        assert crossref.next_run_at <= now  # still due
    # A new worker picks up where the first stopped: only the three DOIs left.
    asked.clear()
    resumed = Worker(store, _settings(), http=replay_client(httpx.MockTransport(answer)))
    worker.release()
    summary = resumed.run_due(now)
    assert [(r.status, r.stored) for r in summary.runs] == [("ok", 3)]
    assert [path.removeprefix("/works/") for path in asked] == sorted(MANY)[2:]
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Observation)) == 5


def _wait_for(check: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def test_sigterm_stops_a_running_worker_cleanly(tmp_path: Path) -> None:
    db = tmp_path / "worker.db"
    open_store(db).close()
    env = {
        **os.environ,
        "REACHMETER_WORKER_TICK": "1",
        "REACHMETER_WORKER_LEASE": "30",
        "PYTHONPATH": str(ROOT / "src"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "reachmeter", "run", "--db", str(db)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    store = open_store(db)
    try:

        def checked_once() -> bool:
            with store.session() as session:
                alerts = session.get(Schedule, ALERTS_JOB)
                return alerts is not None and alerts.last_finished_at is not None

        _wait_for(checked_once)
        with store.session() as session:
            holder = session.scalars(select(WorkerLease.holder)).one()
        assert holder.split(":")[1] == str(process.pid)
        # A second worker on the same store is refused while this one runs.
        refused = runner.invoke(app, ["run", "--once", "--db", str(db)])
        assert refused.exit_code == 2
        assert "another worker is running" in refused.output
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
        assert "received SIGTERM; stopping after the page in hand" in stderr
        assert "lease released" in stderr
        with store.session() as session:
            assert session.scalar(select(func.count()).select_from(WorkerLease)) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        store.close()


def test_the_schedule_cli(tmp_path: Path) -> None:
    db = ["--db", str(tmp_path / "s.db")]
    result = runner.invoke(app, ["schedule", "set", "crossref", "--every", "6h", *db])
    assert result.exit_code == 0, result.output
    assert "crossref: every 6h" in result.output
    result = runner.invoke(app, ["schedule", "list", *db])
    assert "360 min" in result.output
    result = runner.invoke(app, ["schedule", "set", "crossref", "--every", "5x", *db])
    assert result.exit_code == 2
    assert "'5x' is not an interval like 30m, 6h, 1d or 1w" in result.output
    result = runner.invoke(app, ["schedule", "set", "myspace", *db])
    assert result.exit_code == 2
    assert "unknown source 'myspace'" in result.output
    store = open_store(tmp_path / "s.db")
    try:
        with pytest.raises(SourceError, match="unknown source 'nope'"):
            set_schedule(store, "nope")
    finally:
        store.close()


def test_run_once_from_the_cli_with_nothing_scheduled(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--once", "--db", str(tmp_path / "o.db")])
    assert result.exit_code == 0, result.output
    assert "alerts raised: none" in result.output
    assert "alerts sent: 0, to retry: 0, failed: 0" in result.output
