"""Ingest of event files: Event Data JSON and JSON Lines, usage reports, generic CSV / JSONL.

``ingest_paths`` reads each file in its format, maps every record to events, observations
and corrections, and stores them in batches (one transaction each); a large JSON Lines
file is read and prepared in a second process while this one stores. A record that cannot
be used is quarantined with its file, line and reason; the rest of the file still goes in.
Re-running stores nothing twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import marshal
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select

from reachmeter import __version__
from reachmeter.ingest.fast import fast_event_row
from reachmeter.ingest.readers import FORMATS, Problem, detect_format, read_records
from reachmeter.matching.match import match_new_events
from reachmeter.reading import Later, items_from_process
from reachmeter.records import (
    CorrectionRecord,
    EventRecord,
    ObservationRecord,
    RecordError,
    map_record,
)
from reachmeter.settings import Settings
from reachmeter.store import Store
from reachmeter.store.runs import finish_run, start_run
from reachmeter.store.schema import Event
from reachmeter.store.writer import (
    CORRECTION_COLUMNS,
    EVENT_COLUMNS,
    BatchResult,
    FactWriter,
    PreparedBatch,
    Quarantine,
    ensure_evidence,
    prepare_batch,
    storage_time,
)

__all__ = ["FORMATS", "IngestSummary", "ingest_paths"]

# Above this many expected new events (and more than the store holds), SQLite's secondary
# indexes on events are dropped for the load and rebuilt once at the end: far cheaper.
BULK_THRESHOLD = 200_000
# During such a load, batches are stored together, this many events or more in one
# transaction: every transaction rewrites the pages of the unique key index that it
# touches (random keys touch most of them), so fewer, larger ones cost far less.
BULK_TRANSACTION_EVENTS = 50_000
# Batches received from the reading process ahead of need: it prepares the next ones while
# this process stores (without them, the two took turns, each idle half the time).
READ_AHEAD_BATCHES = 6
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


def _prepared_batches(
    path: Path,
    file_format: str,
    *,
    evidence: Callable[[], int],
    sqlite: bool,
    collected_at: dt.datetime,
    batch_size: int,
    max_line_bytes: int,
) -> Iterator[PreparedBatch]:
    """Read, map and prepare a file's records in batches; touches no database.

    Plain events take the fast path straight to their storage rows; everything else is
    mapped by ``map_record``. Each batch's rows hold the evidence id that ``evidence()``
    gives as the batch starts.
    """
    origin = str(path)
    collected_text = storage_time(collected_at, sqlite)
    evidence_id = evidence()
    batch = PreparedBatch(evidence_id=evidence_id)
    events, event_origins, observations = batch.events, batch.event_origins, batch.observations
    read = 0
    for line, record in read_records(path, file_format, max_line_bytes=max_line_bytes):
        read += 1
        if isinstance(record, Problem):
            batch.quarantine.append(Quarantine(origin, line, record.reason, record.raw))
            continue
        row = fast_event_row(record, collected_text, evidence_id, sqlite)
        if row is not None:
            events.append(row)
            event_origins.append((origin, line))
        else:
            try:
                mapped = [
                    (origin, line, item) for item in map_record(record, collected_at=collected_at)
                ]
            except RecordError as exc:
                batch.quarantine.append(Quarantine(origin, line, str(exc), _raw_text(record)))
            else:
                # Prepared at once, so rows keep the order of the file.
                prepare_batch(mapped, [], evidence_id, sqlite=sqlite, batch=batch)
        if len(events) + len(observations) >= batch_size:
            batch.read = read
            yield batch
            read = 0
            evidence_id = evidence()
            batch = PreparedBatch(evidence_id=evidence_id)
            events, event_origins = batch.events, batch.event_origins
            observations = batch.observations
    batch.read = read
    yield batch


# The evidence id that rows prepared before the real one is known hold (ids start at 1;
# a row stored with it would fail its foreign key).
_EVIDENCE_PENDING = 0
# At most this many batches are prepared before it (a few seconds of hashing at 5M events
# would otherwise hold hundreds of thousands of rows).
_MAX_HELD_BATCHES = 8
_EVENT_EVIDENCE_AT = EVENT_COLUMNS.index("evidence_id")
_CORRECTION_EVIDENCE_AT = CORRECTION_COLUMNS.index("evidence_id")


def _with_evidence(batch: PreparedBatch, evidence_id: int) -> PreparedBatch:
    """A batch prepared before its evidence id was known, given it."""
    if batch.evidence_id != _EVIDENCE_PENDING:
        return batch
    batch.evidence_id = evidence_id
    at = _EVENT_EVIDENCE_AT
    batch.events = [(*row[:at], evidence_id, *row[at + 1 :]) for row in batch.events]
    at = _CORRECTION_EVIDENCE_AT
    batch.corrections = [(*row[:at], evidence_id, *row[at + 1 :]) for row in batch.corrections]
    return batch


def _pack(batch: PreparedBatch) -> PreparedBatch | tuple[bytes, PreparedBatch]:
    """A batch as the child sends it: its event rows marshalled apart from the rest.

    Rows in SQLite's storage form hold only text, integers and None, which ``marshal``
    writes and reads several times faster than ``pickle``; the parent runs the same
    interpreter, so the format matches. Rows holding anything else (PostgreSQL's
    datetimes) go with the batch, pickled.
    """
    try:
        rows = marshal.dumps((batch.events, batch.event_origins))
    except ValueError:
        return batch
    batch.events, batch.event_origins = [], []
    return rows, batch


def _unpack(message: PreparedBatch | tuple[bytes, PreparedBatch]) -> PreparedBatch:
    if isinstance(message, PreparedBatch):
        return message
    rows, batch = message
    batch.events, batch.event_origins = marshal.loads(rows)  # noqa: S302 (our own child)
    return batch


def _packed_batches(
    evidence: Later[int], arguments: dict[str, Any]
) -> Iterator[PreparedBatch | tuple[bytes, PreparedBatch]]:
    """Reading process: the file's batches, packed to be sent (``_pack``).

    It starts while the storing process hashes the file for its evidence record: the
    batches prepared meanwhile are held, and given the evidence id once it arrives.
    """

    held: list[PreparedBatch] = []

    def evidence_id() -> int:
        if evidence.ready() or len(held) >= _MAX_HELD_BATCHES:
            return evidence.get()
        return _EVIDENCE_PENDING

    for batch in _prepared_batches(**arguments, evidence=evidence_id):
        if batch.evidence_id == _EVIDENCE_PENDING:
            held.append(batch)
            continue
        for early in held:
            yield _pack(_with_evidence(early, batch.evidence_id))
        held.clear()
        yield _pack(batch)
    for early in held:
        yield _pack(_with_evidence(early, evidence.get()))


def _batches_from_process(
    arguments: dict[str, Any], record_evidence: Callable[[], int]
) -> Iterator[PreparedBatch]:
    """Prepare batches in a second process so reading and storing use both cores
    (``reachmeter.reading``); ``record_evidence`` runs here while that process starts
    reading, and gives the evidence id every row holds."""
    for message in items_from_process(
        _packed_batches, (arguments,), record_evidence, ahead=READ_AHEAD_BATCHES, later=True
    ):
        yield _unpack(message)


def _together(batches: Iterable[PreparedBatch], events: int) -> Iterator[PreparedBatch]:
    """Consecutive batches of one file joined until each holds ``events`` events or more."""
    joined: PreparedBatch | None = None
    for batch in batches:
        if joined is None:
            joined = batch
        else:
            joined.events.extend(batch.events)
            joined.event_origins.extend(batch.event_origins)
            joined.observations.extend(batch.observations)
            joined.corrections.extend(batch.corrections)
            joined.quarantine.extend(batch.quarantine)
            joined.read += batch.read
            joined.in_batch_duplicates += batch.in_batch_duplicates
        if len(joined.events) >= events:
            yield joined
            joined = None
    if joined is not None:
        yield joined


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

    arguments: dict[str, Any] = {
        "path": path,
        "file_format": file_format,
        "sqlite": writer.sqlite,
        "collected_at": collected_at,
        "batch_size": settings.ingest_batch_size,
        "max_line_bytes": settings.max_line_bytes,
    }
    large = file_format == "jsonl" and path.stat().st_size >= settings.ingest_parallel_bytes
    if large:
        batches = _batches_from_process(arguments, record_evidence)
    else:
        evidence_id = record_evidence()
        batches = _prepared_batches(**arguments, evidence=lambda: evidence_id)
    if bulk:
        batches = _together(batches, BULK_TRANSACTION_EVENTS)
    for batch in batches:
        summary.read += batch.read
        summary.add(writer.write_prepared(batch))
        if progress:
            progress(summary.read)


_UNKNOWN_FORMAT = (
    "not a recognised event file (Event Data JSON or JSON Lines, usage report, "
    "generic CSV or JSON Lines); use --format to force one"
)


def _raw_text(record: object) -> str:
    try:
        return orjson.dumps(record, default=str).decode()[:4096]
    except TypeError:
        return repr(record)[:4096]
