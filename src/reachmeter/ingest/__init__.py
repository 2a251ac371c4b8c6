"""Ingest of event files: Event Data JSON and JSON Lines, usage reports, generic CSV / JSONL.

``ingest_paths`` reads each file in its format, maps every record to events, observations
and corrections, and stores them in batches (one transaction each) on a writer thread
while the next batch is parsed. A record that cannot be used is quarantined with its file,
line and reason; the rest of the file still goes in. Re-running stores nothing twice.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from sqlalchemy import func, select

from reachmeter import __version__
from reachmeter.ingest.readers import FORMATS, Problem, detect_format, read_records
from reachmeter.records import (
    CorrectionRecord,
    EventRecord,
    ObservationRecord,
    RecordError,
    map_record,
)
from reachmeter.settings import Settings
from reachmeter.store import Store
from reachmeter.store.schema import Event, Run
from reachmeter.store.writer import BatchResult, FactWriter, Quarantine, ensure_evidence

__all__ = ["FORMATS", "IngestSummary", "ingest_paths"]

# Above this many expected new events (and more than the store holds), SQLite's secondary
# indexes on events are dropped for the load and rebuilt once at the end: far cheaper.
BULK_THRESHOLD = 200_000
_BYTES_PER_EVENT_GUESS = 400
_MAX_PROBLEMS_KEPT = 1000

Mapped = EventRecord | ObservationRecord | CorrectionRecord


@dataclass(slots=True)
class IngestSummary:
    """What an ingest did. ``read`` counts every record seen, good or bad."""

    files: int = 0
    read: int = 0
    stored: int = 0
    observations: int = 0
    corrections: int = 0
    duplicates: int = 0
    quarantined: int = 0
    problems: list[Quarantine] = field(default_factory=list)
    run_id: int | None = None

    @property
    def nothing_read(self) -> bool:
        """True when records were offered but not one could be used."""
        usable = self.stored + self.observations + self.corrections + self.duplicates
        return usable == 0 and self.quarantined > 0

    def add(self, result: BatchResult) -> None:
        self.stored += result.events
        self.observations += result.observations
        self.corrections += result.corrections
        self.duplicates += result.duplicates
        self.quarantined += result.quarantined
        room = _MAX_PROBLEMS_KEPT - len(self.problems)
        if room > 0:
            self.problems.extend(result.problems[:room])


class _Batches:
    """Stores batches as they are handed over and adds up what they did.

    Storing runs on the calling thread: a writer thread would release the GIL on every
    SQLite step and then wait for the parsing thread to give it back (a GIL convoy),
    which measured three times slower than doing the two in turn.
    """

    def __init__(self, writer: FactWriter, summary: IngestSummary) -> None:
        self._writer = writer
        self._summary = summary

    def submit(
        self, items: list[tuple[str, int, Mapped]], problems: list[Quarantine], evidence_id: int
    ) -> None:
        if items or problems:
            self._summary.add(self._writer.write(items, problems, evidence_id))

    def close(self) -> None:
        """Nothing is buffered: every batch was stored when it was submitted."""


def _file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _start_run(store: Store, paths: list[Path]) -> int:
    with store.session() as session:
        run = Run(kind="ingest", source_id=None, detail={"paths": [str(p) for p in paths]})
        session.add(run)
        session.flush()
        return run.id


def _finish_run(store: Store, run_id: int, summary: IngestSummary, status: str) -> None:
    with store.session() as session:
        run = session.get(Run, run_id)
        if run is None:  # pragma: no cover - the row was written at the start
            return
        run.finished_at = dt.datetime.now(dt.UTC)
        run.status = status
        run.read = summary.read
        run.stored = summary.stored + summary.observations + summary.corrections
        run.duplicates = summary.duplicates
        run.quarantined = summary.quarantined
        run.detail = {
            **run.detail,
            "events": summary.stored,
            "observations": summary.observations,
            "corrections": summary.corrections,
        }


def _bulk_load_expected(store: Store, paths: list[Path]) -> bool:
    if store.dialect != "sqlite":
        return False
    incoming = sum(p.stat().st_size for p in paths if p.is_file()) // _BYTES_PER_EVENT_GUESS
    if incoming < BULK_THRESHOLD:
        return False
    with store.engine.connect() as connection:
        held = connection.execute(select(func.count()).select_from(Event)).scalar() or 0
    return incoming > held


def ingest_paths(
    store: Store,
    paths: Iterable[Path],
    *,
    fmt: str | None = None,
    progress: Callable[[int], None] | None = None,
    settings: Settings | None = None,
) -> IngestSummary:
    """Ingest event files into the store and return what happened.

    ``fmt`` forces one format for every file (see ``FORMATS``); by default each file's
    format is detected. ``progress`` is called with the number of records read so far.
    """
    settings = settings or Settings()
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    files = [Path(p) for p in paths]
    summary = IngestSummary()
    run_id = _start_run(store, files)
    summary.run_id = run_id
    writer = FactWriter(store, run_id=run_id)
    bulk = _bulk_load_expected(store, files)
    if bulk:
        writer.drop_deferrable_indexes()
    batches = _Batches(writer, summary)
    batch_size = settings.ingest_batch_size
    status = "failed"
    # Ingest makes millions of short-lived acyclic objects; the cycle collector would scan
    # them over and over for nothing. Reference counting still frees them.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for path in files:
            summary.files += 1
            _ingest_file(store, path, fmt, batches, summary, settings, batch_size, progress)
        status = "ok" if summary.quarantined == 0 else "partial"
    finally:
        try:
            batches.close()
        finally:
            if collecting:
                gc.enable()
            if bulk:
                writer.restore_indexes()
            if status != "failed" and summary.nothing_read:
                status = "failed"
            _finish_run(store, run_id, summary, status)
    return summary


def _ingest_file(
    store: Store,
    path: Path,
    fmt: str | None,
    batches: _Batches,
    summary: IngestSummary,
    settings: Settings,
    batch_size: int,
    progress: Callable[[int], None] | None,
) -> None:
    origin = str(path)
    collected_at = dt.datetime.now(dt.UTC)
    if not path.is_file():
        batches.submit([], [Quarantine(origin, 0, "no such file", "")], _NO_EVIDENCE)
        summary.read += 1
        return
    if path.stat().st_size == 0:
        batches.submit([], [Quarantine(origin, 0, "file is empty", "")], _NO_EVIDENCE)
        summary.read += 1
        return
    file_format = fmt or detect_format(path)
    if file_format == "unknown":
        reason = (
            "not a recognised event file (Event Data JSON or JSON Lines, usage report, "
            "generic CSV or JSON Lines); use --format to force one"
        )
        with path.open("rb") as handle:
            head = handle.read(300).decode("utf-8", errors="replace")
        batches.submit([], [Quarantine(origin, 0, reason, head)], _NO_EVIDENCE)
        summary.read += 1
        return
    with store.begin() as connection:
        evidence_id = ensure_evidence(
            connection,
            source_id=f"ingest:{file_format}",
            source_version=f"reachmeter {__version__}",
            request_url=path.resolve().as_uri(),
            payload_sha256=_file_sha256(path),
            collected_at=collected_at,
            run_id=summary.run_id,
        )
    items: list[tuple[str, int, Mapped]] = []
    problems: list[Quarantine] = []
    read = 0
    for line, record in read_records(path, file_format, max_line_bytes=settings.max_line_bytes):
        read += 1
        if isinstance(record, Problem):
            problems.append(Quarantine(origin, line, record.reason, record.raw))
        else:
            try:
                for mapped in map_record(record, collected_at=collected_at):
                    items.append((origin, line, mapped))
            except RecordError as exc:
                problems.append(Quarantine(origin, line, str(exc), _raw_text(record)))
        if len(items) >= batch_size:
            batches.submit(items, problems, evidence_id)
            items, problems = [], []
            summary.read += read
            read = 0
            if progress:
                progress(summary.read)
    batches.submit(items, problems, evidence_id)
    summary.read += read
    if progress:
        progress(summary.read)


# Quarantine-only batches carry no facts, so they need no evidence record.
_NO_EVIDENCE = 0


def _raw_text(record: object) -> str:
    try:
        return orjson.dumps(record, default=str).decode()[:4096]
    except TypeError:
        return repr(record)[:4096]
