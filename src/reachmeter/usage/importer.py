"""Storing COUNTER reports: one usage observation per row and month, with evidence.

A report is streamed, never held in memory: each row is checked (``ReportChecker``) and,
while the report is clean, turned into observation rows in storage form, inserted in large
batches (``FactWriter.insert_observation_rows``). A large file is read and checked in a
second process while this one stores what it has sent, so the two use both cores (threads
would take turns on the interpreter lock). All of a report goes into one transaction,
committed only when the whole report has been read and breaks none of COUNTER's rules;
otherwise it is rolled back, and the report is rejected with every problem listed: nothing
of it is stored.

Observation keys are derived from what the figure is (institution, report, item,
attributes, metric, month, value), so a TSV and its JSON twin, or the same report
harvested twice, store each figure once.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from reachmeter import __version__
from reachmeter.reading import ReadingProcessError, items_from_process
from reachmeter.records import ObservationRecord
from reachmeter.settings import Settings
from reachmeter.store import Store
from reachmeter.store.engine import SQLITE_CACHE_KIB
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
# Observation rows per insert batch (and per message from a reading process).
_BATCH_ROWS = 20_000
# A large report into a store holding fewer observations is a bulk load (SQLite only): its
# connection skips foreign key lookups and has a larger page cache while it loads.
BULK_THRESHOLD = 200_000
_BULK_CACHE_KIB = 128 * 1024
_BYTES_PER_FIGURE_GUESS = 40


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

    def row(
        self, row: CounterRow
    ) -> tuple[tuple[str, str, str], str, str, str, Iterable[tuple[str, int]]]:
        """``(object, qualifier, metric, key prefix, [(month, count)...])`` of one row; a
        figure's key is the prefix, its month (``period`` when "") and its count."""
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
        return obj, qualifier, metric, f"counter:{digest}:", counts


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
        (obj_id, scheme, value), qualifier, metric, prefix, counts = figures.row(row)
        for month, count in counts:
            start, end = figures.period(month)
            yield (
                row.line,
                ObservationRecord(
                    f"{prefix}{month or 'period'}:{count}", metric, float(count), observed_at,
                    source_id, obj_id, scheme, value, None, qualifier, False, start, end,
                ),
            )  # fmt: skip


@dataclass(slots=True)
class _Checked:
    """What reading a report found, once every row is read: its header facts, the rows'
    count and grand total, and its problems (at most ``_MAX_PROBLEMS_KEPT`` of them)."""

    report_id: str
    release: str
    rows: int
    grand_total: int
    clean: bool
    problems: list[str]


# What the reading side sends the writing side: batches of storage rows, then the outcome.
_Message = list[tuple[Any, ...]] | _Checked


def _report_messages(
    report: CounterReport,
    rows: Iterable[CounterRow],
    *,
    evidence_id: int,
    sqlite: bool,
    source_id: str,
) -> Iterator[_Message]:
    """Check a report's rows as they are read and, while the report is clean, turn them
    into observation rows in storage form, in batches; the last message is the outcome.

    Touches no database, so it runs in the importing process or in a reading process.
    """
    checker = ReportChecker(report)
    clean = True
    figures: _RowFigures | None = None
    observed_at: Any = None
    # Per month: its name in keys, and its first and last day in storage form.
    periods: dict[str, tuple[str, Any, Any]] = {}
    batch: list[tuple[Any, ...]] = []
    append = batch.append
    for row in rows:
        if not checker.add(row):
            clean = False
        if not clean or not row.metric:
            continue
        if figures is None:
            if not checker.clean:  # a header problem: nothing will be written
                clean = False
                continue
            figures = _RowFigures(report)
            observed_at = storage_time(_observed_at(report), sqlite)
        (obj_id, scheme, value), qualifier, metric, prefix, counts = figures.row(row)
        for month, count in counts:
            period = periods.get(month)
            if period is None:
                start, end = figures.period(month)
                period = periods[month] = (
                    month or "period",
                    *((start.isoformat(), end.isoformat()) if sqlite else (start, end)),
                )
            append(
                (
                    f"{prefix}{period[0]}:{count}", obj_id, scheme, value, None, metric,
                    qualifier, float(count), False, period[1], period[2], observed_at,
                    source_id, evidence_id,
                )
            )  # fmt: skip
        if len(batch) >= _BATCH_ROWS:
            yield batch
            batch = []
            append = batch.append
    clean = clean and checker.clean
    if clean and batch:
        yield batch
    problems = [] if clean else checker.problems()
    kept = problems[:_MAX_PROBLEMS_KEPT]
    if len(problems) > _MAX_PROBLEMS_KEPT:
        kept.append(f"... and {len(problems) - _MAX_PROBLEMS_KEPT} more")
    yield _Checked(report.report_id, report.release, checker.rows, checker.grand_total, clean, kept)


# Makes the messages of a report, given the evidence id and whether the store is SQLite.
_MessageSource = Callable[[int, bool], Iterator[_Message]]


def _store_messages(
    store: Store,
    messages: _MessageSource,
    evidence: dict[str, Any],
    *,
    origin: str,
    run_id: int | None,
    progress: Callable[[int], None] | None,
    bulk: bool,
) -> CounterFileResult:
    """Write a report's batches in one transaction (with its evidence first), committed
    when the outcome says the report is clean, rolled back otherwise or on any error."""
    bulk = bulk and store.dialect == "sqlite"
    writer = FactWriter(store, run_id=run_id)
    stored = offered = 0
    checked: _Checked | None = None
    with store.engine.connect() as connection:
        if bulk:
            # Every row's foreign keys are known good (the evidence written just before, no
            # account), so SQLite need not look each one up. The pragma only takes effect
            # outside a transaction (none is open yet: pysqlite sends BEGIN before a write).
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            # A larger page cache while loading: the unique key index takes rows in no
            # order, and pages pushed out of a small cache are read back again and again.
            connection.exec_driver_sql(f"PRAGMA cache_size=-{_BULK_CACHE_KIB}")
            connection.commit()
        try:
            transaction = connection.begin()
            try:
                evidence_id = ensure_evidence(connection, **evidence)
                for message in messages(evidence_id, writer.sqlite):
                    if isinstance(message, _Checked):
                        checked = message
                        break
                    stored += writer.insert_observation_rows(connection, message)
                    offered += len(message)
                    if progress:
                        progress(offered)
                if checked is None:  # pragma: no cover - every message source ends with it
                    raise CounterError("the report was not read to its end")
                if checked.clean:
                    transaction.commit()
                else:
                    transaction.rollback()
            except BaseException:
                transaction.rollback()
                raise
        finally:
            if bulk:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
                connection.commit()
    result = CounterFileResult(
        origin=origin, status="imported" if checked.clean else "rejected",
        report_id=checked.report_id, release=checked.release, rows=checked.rows,
        grand_total=checked.grand_total, problems=checked.problems,
    )  # fmt: skip
    if checked.clean:
        result.stored = stored
        result.duplicates = offered - stored
    return result


def _evidence(
    source_id: str, request_url: str, payload_sha256: str, run_id: int | None
) -> dict[str, Any]:
    return {
        "source_id": source_id,
        "source_version": f"reachmeter {__version__}",
        "request_url": request_url,
        "payload_sha256": payload_sha256,
        "collected_at": dt.datetime.now(dt.UTC),
        "run_id": run_id,
    }


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
    ``bulk`` (for a large report, SQLite) loads with a larger cache and no foreign key
    lookups.
    """

    def messages(evidence_id: int, sqlite: bool) -> Iterator[_Message]:
        return _report_messages(
            report,
            report.rows if rows is None else rows,
            evidence_id=evidence_id,
            sqlite=sqlite,
            source_id=source_id,
        )

    return _store_messages(
        store,
        messages,
        _evidence(source_id, request_url, payload_sha256, run_id),
        origin=report.origin,
        run_id=run_id,
        progress=progress,
        bulk=bulk,
    )


# -- a large report file: read in a second process ------------------------------------------


def _read_report_file(
    evidence_id: int, path: str, source_id: str, sqlite: bool
) -> Iterator[_Message]:
    """Reading process: scan, check and prepare a report file's rows."""
    report, rows = scan_report(Path(path))
    yield from _report_messages(
        report, rows, evidence_id=evidence_id, sqlite=sqlite, source_id=source_id
    )


def _messages_from_process(path: Path, source_id: str) -> _MessageSource:
    """A message source reading ``path`` in a second process (``reachmeter.reading``)."""

    def messages(evidence_id: int, sqlite: bool) -> Iterator[_Message]:
        return items_from_process(
            _read_report_file, (str(path), source_id, sqlite), lambda: evidence_id
        )

    return messages


def _store_file(
    store: Store,
    path: Path,
    *,
    run_id: int | None,
    progress: Callable[[int], None] | None,
    in_child: bool,
) -> CounterFileResult:
    if not in_child:
        report, rows = scan_report(path)  # raises first for what is not a report at all
        return store_report(
            store,
            report,
            rows,
            request_url=path.resolve().as_uri(),
            payload_sha256=_file_sha256(path),
            run_id=run_id,
            progress=progress,
            bulk=_bulk_load_expected(store, path),
        )
    return _store_messages(
        store,
        _messages_from_process(path, COUNTER_SOURCE_ID),
        _evidence(COUNTER_SOURCE_ID, path.resolve().as_uri(), _file_sha256(path), run_id),
        origin=str(path),
        run_id=run_id,
        progress=progress,
        bulk=_bulk_load_expected(store, path),
    )


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

    A file of ``settings.counter_parallel_bytes`` or more is read and checked in a second
    process while this one stores it.
    """
    parallel_bytes = (settings or Settings()).counter_parallel_bytes
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
                result = _store_file(
                    store,
                    path,
                    run_id=summary.run_id,
                    progress=report_progress,
                    in_child=path.is_file() and path.stat().st_size >= parallel_bytes,
                )
            except SushiException as exc:
                summary.files.append(CounterFileResult(str(path), "error", problems=[str(exc)]))
                continue
            except (CounterError, OSError, UnicodeDecodeError, ReadingProcessError) as exc:
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
