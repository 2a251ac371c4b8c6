"""Ingest of event files: Event Data JSON and JSON Lines, usage reports, generic CSV / JSONL.

``ingest_paths`` reads each file in its format, maps every record to events, observations
and corrections, and stores them in batches (one transaction each); a large JSON Lines
file is read, prepared and stored by two worker processes (``ingest.parallel``). A record
that cannot be used is quarantined with its file, line and reason; the rest of the file
still goes in.
Re-running stores nothing twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select

from reachmeter import __version__
from reachmeter.ingest.batches import prepared_batches, together
from reachmeter.ingest.parallel import shared_by_processes, stored_by_processes
from reachmeter.ingest.readers import FORMATS, detect_format
from reachmeter.matching.match import match_new_events
from reachmeter.settings import Settings
from reachmeter.store import Store
from reachmeter.store.runs import finish_run, start_run
from reachmeter.store.schema import Event
from reachmeter.store.writer import (
    BatchResult,
    FactWriter,
    PreparedBatch,
    Quarantine,
    ensure_evidence,
)

__all__ = ["FORMATS", "IngestSummary", "ingest_paths"]

# Above this many expected new events (and more than the store holds), SQLite's secondary
# indexes on events are dropped for the load and rebuilt once at the end: far cheaper.
BULK_THRESHOLD = 200_000
# During such a load, batches are stored together, this many events or more in one
# transaction: every transaction rewrites the pages of the unique key index that it
# touches (random keys touch most of them), so fewer, larger ones cost far less.
BULK_TRANSACTION_EVENTS = 50_000
_BYTES_PER_EVENT_GUESS = 400
_MAX_PROBLEMS_KEPT = 1000


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
    matched: int = 0
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


def _file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _finish_run(store: Store, run_id: int, summary: IngestSummary, status: str) -> None:
    finish_run(
        store,
        run_id,
        status,
        read=summary.read,
        stored=summary.stored + summary.observations + summary.corrections,
        duplicates=summary.duplicates,
        quarantined=summary.quarantined,
        detail={
            "events": summary.stored,
            "observations": summary.observations,
            "corrections": summary.corrections,
            "matched": summary.matched,
        },
    )


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
    run_id = start_run(store, "ingest", detail={"paths": [str(p) for p in files]})
    summary.run_id = run_id
    writer = FactWriter(store, run_id=run_id)
    bulk = _bulk_load_expected(store, files)
    if bulk:
        writer.drop_deferrable_indexes()
    status = "failed"
    # Ingest makes millions of short-lived acyclic objects; the cycle collector would scan
    # them over and over for nothing. Reference counting still frees them.
    collecting = gc.isenabled()
    gc.disable()
    try:
        # A bulk load's commits copy the write-ahead log into the database file a few
        # times, not at each commit (at 5M events: 104 s instead of 130 s).
        with store.checkpoints_deferred() if bulk else contextlib.nullcontext():
            for path in files:
                summary.files += 1
                _ingest_file(store, writer, path, fmt, summary, settings, progress, bulk=bulk)
            # Link the new events to the outputs they are about (unmatched ones are kept,
            # and `reachmeter match` links them once their output is tracked).
            with store.begin() as connection:
                summary.matched = match_new_events(connection).matched
        status = "ok" if summary.quarantined == 0 else "partial"
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
    writer: FactWriter,
    path: Path,
    fmt: str | None,
    summary: IngestSummary,
    settings: Settings,
    progress: Callable[[int], None] | None,
    *,
    bulk: bool = False,
) -> None:
    origin = str(path)
    collected_at = dt.datetime.now(dt.UTC)
    problem = None
    file_format = fmt
    if not path.is_file():
        problem = Quarantine(origin, 0, "no such file", "")
    elif path.stat().st_size == 0:
        problem = Quarantine(origin, 0, "file is empty", "")
    else:
        file_format = fmt or detect_format(path)
        if file_format == "unknown":
            with path.open("rb") as handle:
                head = handle.read(300).decode("utf-8", errors="replace")
            problem = Quarantine(origin, 0, _UNKNOWN_FORMAT, head)
    if problem is not None or file_format is None:
        summary.read += 1
        summary.add(writer.write_prepared(PreparedBatch(quarantine=[problem] if problem else [])))
        return
    chosen_format = file_format

    def record_evidence() -> int:
        with store.begin() as connection:
            return ensure_evidence(
                connection,
                source_id=f"ingest:{chosen_format}",
                source_version=f"reachmeter {__version__}",
                request_url=path.resolve().as_uri(),
                payload_sha256=_file_sha256(path),
                collected_at=collected_at,
                run_id=summary.run_id,
            )

    transaction_events = BULK_TRANSACTION_EVENTS if bulk else 0
    results: Iterable[tuple[int, BatchResult]]
    if (
        file_format == "jsonl"
        and path.stat().st_size >= settings.ingest_parallel_bytes
        and shared_by_processes(store)
    ):
        results = stored_by_processes(
            store,
            path,
            file_format,
            record_evidence=record_evidence,
            collected_at=collected_at,
            batch_size=settings.ingest_batch_size,
            max_line_bytes=settings.max_line_bytes,
            run_id=summary.run_id,
            transaction_events=transaction_events,
            problems_kept=_MAX_PROBLEMS_KEPT,
        )
    else:
        results = _stored_here(
            writer, path, file_format, record_evidence(), collected_at, settings, transaction_events
        )
    for read, result in results:
        summary.read += read
        summary.add(result)
        if progress:
            progress(summary.read)


def _stored_here(
    writer: FactWriter,
    path: Path,
    file_format: str,
    evidence_id: int,
    collected_at: dt.datetime,
    settings: Settings,
    transaction_events: int,
) -> Iterator[tuple[int, BatchResult]]:
    """Store a file's records from this process; yields each transaction's records read
    and result."""
    batches: Iterable[PreparedBatch] = prepared_batches(
        path,
        file_format,
        evidence=lambda: evidence_id,
        sqlite=writer.sqlite,
        collected_at=collected_at,
        batch_size=settings.ingest_batch_size,
        max_line_bytes=settings.max_line_bytes,
    )
    if transaction_events:
        batches = together(batches, transaction_events)
    for batch in batches:
        yield batch.read, writer.write_prepared(batch)


_UNKNOWN_FORMAT = (
    "not a recognised event file (Event Data JSON or JSON Lines, usage report, "
    "generic CSV or JSON Lines); use --format to force one"
)
