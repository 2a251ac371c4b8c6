"""The worker behind ``reachmeter run``: collect each source on its schedule, keep the
scores up to date, raise alerts and deliver them.

One worker at a time: a worker holds a lease (a row in ``worker_leases`` with an expiry,
renewed while it runs); a second one refuses to start until the lease is released or
has expired, so no job ever runs twice. The schedule lives in the store (``schedules``):
a job not finished when the worker stopped is still due, and the source resumes from the
cursors saved with every page it stored.

On SIGTERM (or Ctrl-C) the worker stops after the page in hand: the run is logged as
``interrupted``, the lease released, and the process exits 0.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import signal
import socket
import threading
import uuid
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from reachmeter.http import HttpClient
from reachmeter.monitor.alerts import RaiseSummary, raise_alerts
from reachmeter.monitor.deliver import DeliverySummary, deliver_pending
from reachmeter.scoring import load_profile, update_scores
from reachmeter.settings import Settings
from reachmeter.sources.runner import RunSummary, SourceError, available_sources, run_source
from reachmeter.store import Store
from reachmeter.store.schema import Run
from reachmeter.store.schema_monitor import Schedule, WorkerLease

__all__ = [
    "ALERTS_JOB",
    "LEASE_NAME",
    "TickSummary",
    "Worker",
    "WorkerBusyError",
    "list_schedules",
    "parse_every",
    "set_schedule",
]

log = logging.getLogger(__name__)

LEASE_NAME = "worker"
ALERTS_JOB = "alerts"
DEFAULT_ALERTS_EVERY = 900
_EVERY = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class WorkerBusyError(RuntimeError):
    """Another worker holds the lease."""


class _Stopping(Exception):
    """Raised from a source's progress callback to stop after the page in hand."""


def parse_every(text: str) -> int:
    """Seconds in ``30m``, ``6h``, ``1d``, ``1w`` (at least a minute)."""
    match = _EVERY.match(text)
    if not match:
        raise ValueError(f"{text!r} is not an interval like 30m, 6h, 1d or 1w")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 60:
        raise ValueError(f"{text!r} is shorter than a minute")
    return seconds


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def set_schedule(
    store: Store,
    job: str,
    every_seconds: int | None = None,
    *,
    enabled: bool = True,
    now: dt.datetime | None = None,
) -> None:
    """Schedule a source (``job`` is its id) or the ``alerts`` check; a new job is due now."""
    if job != ALERTS_JOB and job not in available_sources():
        known = ", ".join(available_sources())
        raise SourceError(f"unknown source {job!r}; known: {known} (or {ALERTS_JOB})")
    now = now or _now()
    with store.session() as session:
        row = session.get(Schedule, job)
        if row is None:
            row = Schedule(
                job=job,
                every_seconds=every_seconds or 86400,
                enabled=enabled,
                next_run_at=now,
            )
            session.add(row)
        else:
            if every_seconds:
                row.every_seconds = every_seconds
            row.enabled = enabled


def list_schedules(store: Store) -> list[dict[str, Any]]:
    with store.session() as session:
        return [
            {
                "job": s.job,
                "every_seconds": s.every_seconds,
                "enabled": s.enabled,
                "next_run_at": s.next_run_at,
                "last_started_at": s.last_started_at,
                "last_finished_at": s.last_finished_at,
                "last_status": s.last_status,
            }
            for s in session.scalars(select(Schedule).order_by(Schedule.job))
        ]


@dataclass
class TickSummary:
    """What one pass over the due jobs did."""

    runs: list[RunSummary] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    interrupted: str | None = None
    scored: int = 0
    alerts: RaiseSummary | None = None
    delivery: DeliverySummary | None = None


class Worker:
    """Runs the due jobs of one store; ``run_forever`` under APScheduler, ``run_due`` once."""

    def __init__(
        self,
        store: Store,
        settings: Settings | None = None,
        *,
        http: HttpClient | None = None,
        webhook_http: HttpClient | None = None,
        holder: str | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or Settings()
        self.http = http
        self.webhook_http = webhook_http
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._busy = threading.Lock()

    # -- the lease ---------------------------------------------------------------------------

    def acquire(self, now: dt.datetime | None = None) -> bool:
        """Take (or renew) the lease; False when another live worker holds it."""
        now = now or _now()
        expires = now + dt.timedelta(seconds=self.settings.worker_lease)
        with self.store.begin() as connection:
            dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
            connection.execute(
                dialect.insert(WorkerLease)
                .values(name=LEASE_NAME, holder=self.holder, acquired_at=now, expires_at=expires)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            taken = connection.execute(
                update(WorkerLease)
                .where(
                    WorkerLease.name == LEASE_NAME,
                    (WorkerLease.holder == self.holder) | (WorkerLease.expires_at < now),
                )
                .values(holder=self.holder, expires_at=expires)
            )
            return bool(taken.rowcount)

    def holder_of_lease(self) -> tuple[str, dt.datetime] | None:
        with self.store.session() as session:
            lease = session.get(WorkerLease, LEASE_NAME)
            return (lease.holder, lease.expires_at) if lease else None

    def release(self) -> None:
        with self.store.begin() as connection:
            connection.execute(
                WorkerLease.__table__.delete().where(  # type: ignore[attr-defined]
                    (WorkerLease.name == LEASE_NAME) & (WorkerLease.holder == self.holder)
                )
            )

    def busy_error(self) -> WorkerBusyError:
        held = self.holder_of_lease()
        who = f"{held[0]} until {held[1]:%Y-%m-%d %H:%M:%S} UTC" if held else "another worker"
        return WorkerBusyError(f"another worker is running ({who})")

    # -- stopping ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker to stop after the page in hand."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- the jobs ----------------------------------------------------------------------------

    def _due(self, now: dt.datetime) -> list[Schedule]:
        with self.store.session() as session:
            if session.get(Schedule, ALERTS_JOB) is None:
                session.add(
                    Schedule(
                        job=ALERTS_JOB,
                        every_seconds=DEFAULT_ALERTS_EVERY,
                        enabled=True,
                        next_run_at=now,
                    )
                )
                session.flush()
            return list(
                session.scalars(
                    select(Schedule)
                    .where(Schedule.enabled.is_(True), Schedule.next_run_at <= now)
                    .order_by(Schedule.next_run_at, Schedule.job)
                )
            )

    def _finish_job(self, job: str, started: dt.datetime, status: str, advance: bool) -> None:
        with self.store.session() as session:
            row = session.get(Schedule, job)
            if row is None:
                return
            row.last_finished_at = _now()
            row.last_status = status
            if advance:
                next_run = started + dt.timedelta(seconds=row.every_seconds)
                row.next_run_at = max(next_run, started + dt.timedelta(seconds=60))

    def _start_job(self, job: str, started: dt.datetime) -> None:
        with self.store.session() as session:
            row = session.get(Schedule, job)
            if row is not None:
                row.last_started_at = started

    def _collect(self, job: str, summary: TickSummary) -> None:
        started = _now()
        self._start_job(job, started)
        seen: list[RunSummary] = []

        def check(progress: RunSummary) -> None:
            if not seen:
                seen.append(progress)
            if self.stopping:
                raise _Stopping

        try:
            result = run_source(
                self.store, job, http=self.http, settings=self.settings, progress=check
            )
        except SourceError as exc:
            log.warning("skipped %s: %s", job, exc)
            summary.skipped.append(f"{job}: {exc}")
            self._finish_job(job, started, "skipped", advance=True)
            return
        except _Stopping:
            if seen:
                self._mark_interrupted(seen[0])
            summary.interrupted = job
            self._finish_job(job, started, "interrupted", advance=False)
            log.info("stopped during %s; it resumes from its cursors", job)
            return
        summary.runs.append(result)
        log.info(
            "%s: %s, fetched %d, stored %d, errors %d",
            job,
            result.status,
            result.fetched,
            result.stored,
            len(result.errors),
        )
        self._finish_job(job, started, result.status, advance=True)

    def _mark_interrupted(self, progress: RunSummary) -> None:
        with self.store.session() as session:
            run = session.get(Run, progress.run_id)
            if run is None:
                return
            run.status = "interrupted"
            run.finished_at = _now()
            run.read = progress.fetched
            run.stored = progress.stored
            run.duplicates = progress.duplicates
            run.quarantined = progress.quarantined
            run.detail = {**(run.detail or {}), "interrupted": "worker stopped (SIGTERM)"}

    def _score(self, summary: TickSummary, today: dt.date) -> None:
        for name in (n.strip() for n in self.settings.worker_profiles.split(",")):
            if name:
                summary.scored += update_scores(self.store, load_profile(name), today).scored

    def run_due(self, now: dt.datetime | None = None) -> TickSummary:
        """Run every job due at ``now`` once: sources, then scores, alerts and delivery."""
        now = now or _now()
        summary = TickSummary()
        if not self.acquire(now):
            raise self.busy_error()
        with self._busy:
            due = self._due(now)
            for job in (s.job for s in due if s.job != ALERTS_JOB):
                if self.stopping:
                    break
                self._collect(job, summary)
            if self.stopping:
                return summary
            collected = any(r.stored for r in summary.runs)
            check_due = any(s.job == ALERTS_JOB for s in due)
            if collected or check_due:
                started = _now()
                self._start_job(ALERTS_JOB, started)
                self._score(summary, now.date())
                summary.alerts = raise_alerts(self.store, now)
                self._finish_job(ALERTS_JOB, started, "ok", advance=check_due)
            summary.delivery = deliver_pending(
                self.store, self.settings, now=now, http=self.webhook_http
            )
        return summary

    # -- running -----------------------------------------------------------------------------

    def _tick(self) -> None:
        try:
            summary = self.run_due()
        except WorkerBusyError as exc:
            log.error("lost the lease: %s; stopping", exc)
            self.stop()
            return
        except Exception:
            log.exception("the worker's pass failed; it is tried again at the next tick")
            return
        if summary.alerts and summary.alerts.total:
            log.info("alerts raised: %s", summary.alerts.raised)
        if summary.delivery and (summary.delivery.sent or summary.delivery.errors):
            log.info(
                "alerts sent: %d, retrying: %d, failed: %d",
                summary.delivery.sent,
                summary.delivery.retrying,
                summary.delivery.failed,
            )
            for error in summary.delivery.errors[:10]:
                log.warning("%s", error)

    def _heartbeat(self) -> None:
        if not self.stopping and not self.acquire():
            log.error("another worker took the lease; stopping")
            self.stop()

    def run_forever(self) -> None:
        """Run until SIGTERM or SIGINT (or the lease is lost), then release the lease."""
        from apscheduler.schedulers.blocking import BlockingScheduler  # type: ignore[import-untyped]

        if not self.acquire():
            raise self.busy_error()
        scheduler = BlockingScheduler(timezone=dt.UTC)
        common: dict[str, Any] = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        scheduler.add_job(
            self._tick, "interval", seconds=self.settings.worker_tick, next_run_time=_now(),
            id="tick", **common,
        )  # fmt: skip
        scheduler.add_job(
            self._heartbeat, "interval", seconds=max(1.0, self.settings.worker_lease / 3),
            id="lease", **common,
        )  # fmt: skip

        def watch_stop() -> None:
            if self.stopping and scheduler.running:
                scheduler.shutdown(wait=False)

        scheduler.add_job(watch_stop, "interval", seconds=1, id="stop", **common)

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s; stopping after the page in hand", signal.Signals(signum).name)
            self.stop()
            if scheduler.running:
                scheduler.shutdown(wait=False)

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        log.info("worker %s started (tick every %gs)", self.holder, self.settings.worker_tick)
        try:
            scheduler.start()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
            # Let the pass in flight reach the end of its page.
            if self._busy.acquire(timeout=self.settings.worker_lease):
                self._busy.release()
            self.release()
            log.info("worker %s stopped; lease released", self.holder)
