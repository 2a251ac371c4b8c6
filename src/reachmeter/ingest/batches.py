"""A file's records read, mapped and put in storage form, in batches (no database access).

Plain events take the fast path straight to their storage rows (``ingest.fast``);
everything else is mapped by ``map_record``. Rows hold the id of the evidence record of
the file they came from; rows prepared before that id is known hold ``EVIDENCE_PENDING``
and are given it later (``with_evidence``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import orjson

from reachmeter.ingest.fast import fast_event_row
from reachmeter.ingest.readers import Problem, Span, read_records
from reachmeter.records import RecordError, map_record
from reachmeter.store.writer import (
    CORRECTION_COLUMNS,
    EVENT_COLUMNS,
    PreparedBatch,
    Quarantine,
    prepare_batch,
    storage_time,
)

__all__ = ["EVIDENCE_PENDING", "prepared_batches", "raw_text", "together", "with_evidence"]

# The evidence id that rows prepared before the real one is known hold (ids start at 1;
# a row stored with it would fail its foreign key).
EVIDENCE_PENDING = 0
_EVENT_EVIDENCE_AT = EVENT_COLUMNS.index("evidence_id")
_CORRECTION_EVIDENCE_AT = CORRECTION_COLUMNS.index("evidence_id")


def prepared_batches(
    path: Path,
    file_format: str,
    *,
    evidence: Callable[[], int],
    sqlite: bool,
    collected_at: dt.datetime,
    batch_size: int,
    max_line_bytes: int,
    span: Span | None = None,
) -> Iterator[PreparedBatch]:
    """Read, map and prepare a file's records (or a span's) in batches of ``batch_size``
    events and observations.

    Each batch's rows hold the evidence id that ``evidence()`` gives as the batch starts.
    """
    origin = str(path)
    collected_text = storage_time(collected_at, sqlite)
    evidence_id = evidence()
    batch = PreparedBatch(evidence_id=evidence_id)
    events, event_origins, observations = batch.events, batch.event_origins, batch.observations
    read = 0
    records = read_records(path, file_format, max_line_bytes=max_line_bytes, span=span)
    for line, record in records:
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
                batch.quarantine.append(Quarantine(origin, line, str(exc), raw_text(record)))
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


def with_evidence(batch: PreparedBatch, evidence_id: int) -> PreparedBatch:
    """A batch prepared before its evidence id was known, given it."""
    if batch.evidence_id != EVIDENCE_PENDING:
        return batch
    batch.evidence_id = evidence_id
    at = _EVENT_EVIDENCE_AT
    batch.events = [(*row[:at], evidence_id, *row[at + 1 :]) for row in batch.events]
    at = _CORRECTION_EVIDENCE_AT
    batch.corrections = [(*row[:at], evidence_id, *row[at + 1 :]) for row in batch.corrections]
    return batch


def together(batches: Iterable[PreparedBatch], events: int) -> Iterator[PreparedBatch]:
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


def raw_text(record: object) -> str:
    """A record as text for the quarantine (JSON where it can be)."""
    try:
        return orjson.dumps(record, default=str).decode()[:4096]
    except TypeError:
        return repr(record)[:4096]
