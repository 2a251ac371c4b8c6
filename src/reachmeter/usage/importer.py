"""Storing COUNTER reports: one usage observation per row and month, with evidence.

A report is streamed, never held in memory: each row is checked (``ReportChecker``) and,
while the report is clean, turned into observation rows in storage form, which a writer
thread inserts in large batches (``FactWriter.insert_observation_rows``) while the next
rows are read. All of a report goes into one transaction, committed only when the whole
report has been read and breaks none of COUNTER's rules; otherwise it is rolled back, and
the report is rejected with every problem listed: nothing of it is stored.

Observation keys are derived from what the figure is (institution, report, item,
attributes, metric, month, value), so a TSV and its JSON twin, or the same report
harvested twice, store each figure once.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Table, func, select

from reachmeter import __version__
from reachmeter.records import ObservationRecord
from reachmeter.settings import Settings
from reachmeter.store import Store
from reachmeter.store.runs import finish_run, start_run
from reachmeter.store.schema import Observation
from reachmeter.store.writer import FactWriter, ensure_evidence, storage_time
from reachmeter.usage.counter import (
    CounterError,
    CounterReport,
    CounterRow,
    ReportChecker,
    SushiException,
    row_object,
    scan_report,
)

__all__ = ["COUNTER_SOURCE_ID", "CounterFileResult", "CounterImportSummary", "import_counter"]

COUNTER_SOURCE_ID = "counter"
_MAX_PROBLEMS_KEPT = 1000
# Observation rows per insert batch, and batches that may wait for the writer thread.
_BATCH_ROWS = 20_000
_QUEUED_BATCHES = 3
# A large report into a store holding fewer observations is a bulk load (SQLite only): the
# observations' secondary indexes are dropped and rebuilt once, in its transaction.
BULK_THRESHOLD = 200_000
_BYTES_PER_FIGURE_GUESS = 40
_DEFERRED_INDEXES = tuple(
    index
    for index in cast(Table, Observation.__table__).indexes
    if index.name in ("ix_observations_obj", "ix_observations_account_id")
)


@dataclass(slots=True)
class CounterFileResult:
    """What happened to one report: ``imported``, ``rejected`` (rule breaches) or ``error``."""

    origin: str
    status: str
    report_id: str = ""
    release: str = ""
    rows: int = 0
    stored: int = 0
    duplicates: int = 0
    grand_total: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass(slots=True)
class CounterImportSummary:
    files: list[CounterFileResult] = field(default_factory=list)
    run_id: int | None = None

    @property
    def stored(self) -> int:
        return sum(f.stored for f in self.files)

    @property
    def nothing_imported(self) -> bool:
        """True when no file could be imported (every one rejected or unreadable)."""
        return bool(self.files) and all(f.status != "imported" for f in self.files)


def _metric(metric_type: str) -> str:
    return metric_type.lower().replace("_", "-")


def _month_bounds(month: str) -> tuple[dt.date, dt.date]:
    start = dt.date(int(month[:4]), int(month[5:7]), 1)
    following = (start + dt.timedelta(days=32)).replace(day=1)
    return start, following - dt.timedelta(days=1)


def _observed_at(report: CounterReport) -> dt.datetime:
    text = report.created.strip()
    if text:
        try:
            created = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            created = None
        if created is not None:
            return created.replace(tzinfo=dt.UTC) if created.tzinfo is None else created
    end = dt.date.fromisoformat(report.end)
    return dt.datetime(end.year, end.month, end.day, tzinfo=dt.UTC)


def _qualifier(report: CounterReport, attributes: tuple[tuple[str, str], ...], parent: str) -> str:
    parts = [report.report_id, *(f"{k}={v}" for k, v in attributes)]
    if parent:
        parts.append(f"Parent={parent}")
    text = ";".join(parts)
    if len(text) > 200:
        digest = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
        text = f"{text[:183]}~{digest}"
    return text


# One figure of a row: key, metric, count and month ("" for the whole reporting period).
_Figure = tuple[str, str, int, str]


class _RowFigures:
    """What a checked report's rows say, figure by figure (shared by both output forms)."""

    def __init__(self, report: CounterReport) -> None:
        if not report.end or not report.begin:
            raise ValueError("a checked report has its reporting period")
        self.report = report
        self.whole = (dt.date.fromisoformat(report.begin), dt.date.fromisoformat(report.end))
        self.bounds: dict[str, tuple[dt.date, dt.date]] = {}
        self.metrics: dict[str, str] = {}

    def period(self, month: str) -> tuple[dt.date, dt.date]:
        if not month:
            return self.whole
        found = self.bounds.get(month)
        if found is None:
            found = self.bounds[month] = _month_bounds(month)
        return found

    def row(self, row: CounterRow) -> tuple[tuple[str, str, str], str, str, list[_Figure]]:
        """``(object, qualifier, metric, [(key, month, count, month)...])`` of one row."""
        report = self.report
        obj = row_object(report.report_id, row)
        qualifier = _qualifier(report, row.attributes, row.parent)
        metric = self.metrics.get(row.metric)
        if metric is None:
            metric = self.metrics[row.metric] = _metric(row.metric)
        # The months of one row share a key prefix, so their index entries are neighbours.
        digest = hashlib.blake2b(
            f"{report.institution}|{row.identity()}|{report.report_id}".encode(), digest_size=12
        ).hexdigest()
        counts: Iterable[tuple[str, int]] = row.months.items()
        if not row.months and row.total is not None:
            # Exclude_Monthly_Details: one figure for the whole reporting period.
            counts = [("", row.total)]
        figures = [
            (f"counter:{digest}:{month or 'period'}:{count}", metric, count, month)
            for month, count in counts
        ]
        return obj, qualifier, metric, figures


def report_observations(
    report: CounterReport,
    rows: Iterable[CounterRow] | None = None,
    *,
    source_id: str = COUNTER_SOURCE_ID,
) -> Iterator[tuple[int, ObservationRecord]]:
    """The observations of a checked report (its ``rows`` unless given), with the line or
    item each comes from."""
    observed_at = _observed_at(report)
    figures = _RowFigures(report)
    for row in report.rows if rows is None else rows:
        if not row.metric:
            continue
        (obj_id, scheme, value), qualifier, metric, found = figures.row(row)
        for key, _, count, month in found:
            start, end = figures.period(month)
            yield (
                row.line,
                ObservationRecord(
                    key, metric, float(count), observed_at, source_id, obj_id, scheme, value,
                    None, qualifier, False, start, end,
                ),
            )  # fmt: skip


class _TransactionWriter:
    """Inserts batches of observation rows on its own thread, all in one transaction:
    committed by ``finish(commit=True)``, rolled back otherwise (or on any error)."""

    _COMMIT = object()
    _ROLLBACK = object()

    def __init__(
        self, store: Store, run_id: int | None, evidence: dict[str, Any], *, bulk: bool = False
    ) -> None:
        self.store = store
        self.bulk = bulk and store.dialect == "sqlite"
        self.writer = FactWriter(store, run_id=run_id)
        self.sqlite = self.writer.sqlite
        self.stored = 0
        self.offered = 0
        self.error: BaseException | None = None
        self._evidence = evidence
        self._evidence_id: Future[int] = Future()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=_QUEUED_BATCHES)
        self._thread = threading.Thread(target=self._run, name="counter-writer", daemon=True)
        self._thread.start()

    def evidence_id(self) -> int:
        """The evidence record's id (written first, in the same transaction)."""
        return self._evidence_id.result()

    def put(self, rows: list[tuple[Any, ...]]) -> None:
        self.offered += len(rows)
        self._send(rows)

    def _send(self, item: object) -> None:
        while True:
            if not self._thread.is_alive():
                self._raise()
                return
            try:
                self._queue.put(item, timeout=1.0)
            except queue.Full:
                continue
            return

    def finish(self, *, commit: bool) -> None:
        """Commit (or roll back) and wait for the writer; raises what made it fail."""
        self._send(self._COMMIT if commit else self._ROLLBACK)
        self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            with self.store.engine.connect() as connection:
                if self.bulk:
                    # Every row's foreign keys are known good (the evidence written just
                    # before, no account), so SQLite need not look each one up. The pragma
                    # only takes effect outside a transaction (none is open yet: pysqlite
                    # sends BEGIN before the first write).
                    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                    connection.commit()
                try:
                    with connection.begin():
                        self._write(connection)
                finally:
                    if self.bulk:
                        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                        connection.commit()
        except _RolledBackError:
            pass
        except BaseException as exc:  # handed to the reading thread, which raises it
            self.error = exc
            if not self._evidence_id.done():
                self._evidence_id.set_exception(exc)
            # Unblock a reader waiting to queue more.
            while not self._queue.empty():
                self._queue.get_nowait()

    def _write(self, connection: Connection) -> None:
        self._evidence_id.set_result(ensure_evidence(connection, **self._evidence))
        if self.bulk:
            # Dropped inside the transaction: a rollback, or a killed process, keeps them.
            for index in _DEFERRED_INDEXES:
                index.drop(connection, checkfirst=True)
        while True:
            item = self._queue.get()
            if item is self._COMMIT:
                break
            if item is self._ROLLBACK:
                raise _RolledBackError
            self.stored += self.writer.insert_observation_rows(
                connection,
                item,  # type: ignore[arg-type]
            )
        if self.bulk:
            for index in _DEFERRED_INDEXES:
                index.create(connection, checkfirst=True)


class _RolledBackError(Exception):
    pass


def store_report(
    store: Store,
    report: CounterReport,
    rows: Iterable[CounterRow] | None = None,
    *,
    request_url: str,
    payload_sha256: str,
    run_id: int | None,
    source_id: str = COUNTER_SOURCE_ID,
    progress: Callable[[int], None] | None = None,
    bulk: bool = False,
) -> CounterFileResult:
    """Check a report and store it whole, or reject it with its problems (nothing stored).

    ``rows`` are the report's rows as read (by default ``report.rows``); they are read
    once, checked, and written in one transaction that is rolled back unless every row
    is clean. Reading errors (``CounterError``, ``OSError``, ...) roll back and are raised.
    ``bulk`` (for a large report, SQLite) defers the observations' secondary indexes.
    """
    checker = ReportChecker(report)
    result = CounterFileResult(
        origin=report.origin, status="rejected", report_id=report.report_id,
        release=report.release,
    )  # fmt: skip
    evidence: dict[str, Any] = {
        "source_id": source_id,
        "source_version": f"reachmeter {__version__}",
        "request_url": request_url,
        "payload_sha256": payload_sha256,
        "collected_at": dt.datetime.now(dt.UTC),
        "run_id": run_id,
    }
    writer: _TransactionWriter | None = None
    try:
        clean = True
        figures: _RowFigures | None = None
        batch: list[tuple[Any, ...]] = []
        append = batch.append
        for row in report.rows if rows is None else rows:
            if not checker.add(row):
                clean = False
            if not clean or not row.metric:
                continue
            if writer is None:
                if not checker.clean:  # a header problem: nothing will be written
                    clean = False
                    continue
                writer = _TransactionWriter(store, run_id, evidence, bulk=bulk)
                figures = _RowFigures(report)
                sqlite = writer.sqlite
                observed_at = storage_time(_observed_at(report), sqlite)
                evidence_id = writer.evidence_id()
                periods: dict[str, tuple[Any, Any]] = {}
            assert figures is not None  # noqa: S101 (set with the writer)
            (obj_id, scheme, value), qualifier, metric, found = figures.row(row)
            for key, _, count, month in found:
                period = periods.get(month)
                if period is None:
                    start, end = figures.period(month)
                    period = periods[month] = (
                        (start.isoformat(), end.isoformat()) if sqlite else (start, end)
                    )
                append(
                    (
                        key, obj_id, scheme, value, None, metric, qualifier, float(count),
                        False, period[0], period[1], observed_at, source_id, evidence_id,
                    )
                )  # fmt: skip
            if len(batch) >= _BATCH_ROWS:
                writer.put(batch)
                batch = []
                append = batch.append
                if progress:
                    progress(writer.offered)
        clean = clean and checker.clean
        if writer is not None:
            if clean and batch:
                writer.put(batch)
            writer.finish(commit=clean)
    except BaseException:
        if writer is not None:
            writer.finish(commit=False)
        raise
    result.rows = checker.rows
    result.grand_total = checker.grand_total
    if not clean:
        problems = checker.problems()
        result.problems = problems[:_MAX_PROBLEMS_KEPT]
        if len(problems) > _MAX_PROBLEMS_KEPT:
            result.problems.append(f"... and {len(problems) - _MAX_PROBLEMS_KEPT} more")
        return result
    if writer is None:
        # A clean report without figures: its evidence is still recorded.
        with store.begin() as connection:
            ensure_evidence(connection, **evidence)
    else:
        result.stored = writer.stored
        result.duplicates = writer.offered - writer.stored
        if progress:
            progress(writer.offered)
    result.status = "imported"
    return result


def _bulk_load_expected(store: Store, path: Path) -> bool:
    if store.dialect != "sqlite":
        return False
    incoming = path.stat().st_size // _BYTES_PER_FIGURE_GUESS
    if incoming < BULK_THRESHOLD:
        return False
    with store.engine.connect() as connection:
        held = connection.execute(select(func.count()).select_from(Observation)).scalar() or 0
    return incoming > held


def _file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def import_counter(
    store: Store,
    paths: Iterable[Path],
    *,
    settings: Settings | None = None,
    progress: Callable[[int], None] | None = None,
) -> CounterImportSummary:
    """Import COUNTER R5 / R5.1 report files; each is stored whole or rejected whole.

    ``settings`` is accepted for symmetry with ``ingest_paths``; no setting applies yet.
    """
    del settings
    files = [Path(p) for p in paths]
    summary = CounterImportSummary()
    summary.run_id = start_run(
        store, "import", COUNTER_SOURCE_ID, detail={"paths": list(map(str, files))}
    )
    done = 0
    # Reports make millions of short-lived acyclic objects; the cycle collector would scan
    # them over and over for nothing (reference counting still frees them).
    collecting = gc.isenabled()
    gc.disable()
    try:
        for path in files:
            base = done

            def report_progress(count: int, base: int = base) -> None:
                if progress:
                    progress(base + count)

            try:
                report, rows = scan_report(path)
                result = store_report(
                    store,
                    report,
                    rows,
                    request_url=path.resolve().as_uri(),
                    payload_sha256=_file_sha256(path),
                    run_id=summary.run_id,
                    progress=report_progress,
                    bulk=_bulk_load_expected(store, path),
                )
            except SushiException as exc:
                summary.files.append(CounterFileResult(str(path), "error", problems=[str(exc)]))
                continue
            except (CounterError, OSError, UnicodeDecodeError) as exc:
                summary.files.append(
                    CounterFileResult(str(path), "error", problems=[f"cannot be read: {exc}"])
                )
                continue
            done += result.stored + result.duplicates
            summary.files.append(result)
    finally:
        if collecting:
            gc.enable()
        _finish_run(store, summary)
    return summary


def _finish_run(store: Store, summary: CounterImportSummary) -> None:
    if summary.run_id is None:  # pragma: no cover - set by start_run
        return
    imported = [f for f in summary.files if f.status == "imported"]
    finish_run(
        store,
        summary.run_id,
        "ok" if len(imported) == len(summary.files) else ("failed" if not imported else "partial"),
        read=sum(f.rows for f in summary.files),
        stored=summary.stored,
        duplicates=sum(f.duplicates for f in summary.files),
        errors=len(summary.files) - len(imported),
        detail={
            "files": [
                {
                    "origin": f.origin,
                    "status": f.status,
                    "report_id": f.report_id,
                    "release": f.release,
                    "stored": f.stored,
                    "problems": f.problems[:20],
                }
                for f in summary.files
            ],
        },
    )
