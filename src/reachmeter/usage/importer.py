"""Storing COUNTER reports: one usage observation per row and month, with evidence.

A report is checked whole before anything is written (``check_report``); a report that
breaks COUNTER's rules is rejected with every problem listed, and nothing of it is stored.
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

from reachmeter import __version__
from reachmeter.records import ObservationRecord
from reachmeter.settings import Settings
from reachmeter.store import Store
from reachmeter.store.schema import Run
from reachmeter.store.writer import FactWriter, ensure_evidence
from reachmeter.usage.counter import (
    CounterError,
    CounterReport,
    SushiException,
    check_report,
    read_report,
    row_object,
)

__all__ = ["COUNTER_SOURCE_ID", "CounterFileResult", "CounterImportSummary", "import_counter"]

COUNTER_SOURCE_ID = "counter"
_MAX_PROBLEMS_KEPT = 1000


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


def report_observations(
    report: CounterReport, *, source_id: str = COUNTER_SOURCE_ID
) -> Iterator[tuple[int, ObservationRecord]]:
    """The observations of a checked report, with the line or item each comes from."""
    observed_at = _observed_at(report)
    institution = report.institution
    bounds: dict[str, tuple[dt.date, dt.date]] = {}
    whole = (dt.date.fromisoformat(report.begin), dt.date.fromisoformat(report.end))
    blake = hashlib.blake2b
    if not report.end or not report.begin:
        raise ValueError("a checked report has its reporting period")
    for row in report.rows:
        if not row.metric:
            continue
        obj_id, scheme, value = row_object(report.report_id, row)
        qualifier = _qualifier(report, row.attributes, row.parent)
        metric = _metric(row.metric)
        # The months of one row share a key prefix, so their index entries are neighbours.
        digest = blake(
            f"{institution}|{row.identity()}|{report.report_id}".encode(), digest_size=12
        ).hexdigest()
        counts: Iterable[tuple[str, int]] = row.months.items()
        if not row.months and row.total is not None:
            # Exclude_Monthly_Details: one figure for the whole reporting period.
            counts = [("", row.total)]
        for month, count in counts:
            if month:
                period = bounds.get(month)
                if period is None:
                    period = bounds[month] = _month_bounds(month)
            else:
                period = whole
            yield (
                row.line,
                ObservationRecord(
                    f"counter:{digest}:{month or 'period'}:{count}",
                    metric,
                    float(count),
                    observed_at,
                    source_id,
                    obj_id,
                    scheme,
                    value,
                    None,
                    qualifier,
                    False,
                    period[0],
                    period[1],
                ),
            )


def _key_of(item: tuple[str, int, ObservationRecord]) -> str:
    return item[2].observation_key


def store_report(
    store: Store,
    report: CounterReport,
    *,
    request_url: str,
    payload_sha256: str,
    run_id: int | None,
    batch_size: int = 50_000,
    source_id: str = COUNTER_SOURCE_ID,
    progress: Callable[[int], None] | None = None,
) -> CounterFileResult:
    """Check a report and store it whole, or reject it with its problems (nothing stored)."""
    result = CounterFileResult(
        origin=report.origin,
        status="rejected",
        report_id=report.report_id,
        release=report.release,
        rows=len(report.rows),
        grand_total=report.grand_total,
    )
    problems = check_report(report)
    if problems:
        result.problems = problems[:_MAX_PROBLEMS_KEPT]
        if len(problems) > _MAX_PROBLEMS_KEPT:
            result.problems.append(f"... and {len(problems) - _MAX_PROBLEMS_KEPT} more")
        return result
    with store.begin() as connection:
        evidence_id = ensure_evidence(
            connection,
            source_id=source_id,
            source_version=f"reachmeter {__version__}",
            request_url=request_url,
            payload_sha256=payload_sha256,
            collected_at=dt.datetime.now(dt.UTC),
            run_id=run_id,
        )
    writer = FactWriter(store, run_id=run_id)
    origin = report.origin
    batch: list[tuple[str, int, ObservationRecord]] = []
    for line, record in report_observations(report, source_id=source_id):
        batch.append((origin, line, record))
        if len(batch) >= batch_size:
            # In key order the unique index is written page by page, not all over.
            batch.sort(key=_key_of)
            written = writer.write(batch, [], evidence_id)
            result.stored += written.observations
            result.duplicates += written.duplicates
            batch = []
            if progress:
                progress(result.stored + result.duplicates)
    if batch:
        batch.sort(key=_key_of)
        written = writer.write(batch, [], evidence_id)
        result.stored += written.observations
        result.duplicates += written.duplicates
    result.status = "imported"
    return result


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
    """Import COUNTER R5 / R5.1 report files; each is stored whole or rejected whole."""
    settings = settings or Settings()
    files = [Path(p) for p in paths]
    summary = CounterImportSummary()
    with store.session() as session:
        run = Run(
            kind="import", source_id=COUNTER_SOURCE_ID, detail={"paths": list(map(str, files))}
        )
        session.add(run)
        session.flush()
        summary.run_id = run.id
    done = 0
    # Reports make millions of short-lived acyclic objects; the cycle collector would scan
    # them over and over for nothing (reference counting still frees them).
    collecting = gc.isenabled()
    gc.disable()
    try:
        for path in files:
            try:
                report = read_report(path)
            except SushiException as exc:
                summary.files.append(CounterFileResult(str(path), "error", problems=[str(exc)]))
                continue
            except (CounterError, OSError, UnicodeDecodeError) as exc:
                summary.files.append(
                    CounterFileResult(str(path), "error", problems=[f"cannot be read: {exc}"])
                )
                continue
            base = done

            def report_progress(count: int, base: int = base) -> None:
                if progress:
                    progress(base + count)

            result = store_report(
                store,
                report,
                request_url=path.resolve().as_uri(),
                payload_sha256=_file_sha256(path),
                run_id=summary.run_id,
                batch_size=max(settings.ingest_batch_size, 50_000),
                progress=report_progress,
            )
            done += result.stored + result.duplicates
            summary.files.append(result)
    finally:
        if collecting:
            gc.enable()
        _finish_run(store, summary)
    return summary


def _finish_run(store: Store, summary: CounterImportSummary) -> None:
    with store.session() as session:
        run = session.get(Run, summary.run_id)
        if run is None:  # pragma: no cover - written at the start
            return
        imported = [f for f in summary.files if f.status == "imported"]
        run.finished_at = dt.datetime.now(dt.UTC)
        run.status = (
            "ok"
            if len(imported) == len(summary.files)
            else ("failed" if not imported else "partial")
        )
        run.read = sum(f.rows for f in summary.files)
        run.stored = summary.stored
        run.duplicates = sum(f.duplicates for f in summary.files)
        run.errors = len(summary.files) - len(imported)
        run.detail = {
            **run.detail,
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
        }
