"""Large JSON Lines files stored by two worker processes (``reachmeter.ingest.parallel``):
the same result as one process, in the file's order, with the file's line numbers."""

from __future__ import annotations

import codecs
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

import reachmeter.ingest as ingest
from reachmeter.ingest import IngestSummary, ingest_paths, parallel
from reachmeter.ingest.batches import EVIDENCE_PENDING, with_evidence
from reachmeter.ingest.readers import Span, line_start, read_records
from reachmeter.settings import Settings
from reachmeter.store import Store, open_store
from reachmeter.store.schema import Correction, Event, Evidence, Observation, QuarantinedRecord
from reachmeter.store.writer import EVENT_COLUMNS, PreparedBatch

WORKERS = Settings(ingest_parallel_bytes=1, ingest_batch_size=2, max_line_bytes=400)
ONE_PROCESS = Settings(ingest_parallel_bytes=1 << 40, ingest_batch_size=2, max_line_bytes=400)


def _event(number: int, **extra: Any) -> bytes:
    return orjson.dumps(
        {
            "id": f"p-{number}",
            "subj_id": f"https://x.example/post/{number}",
            "relation_type_id": "discusses",
            "obj_id": f"https://doi.org/10.5555/par.{number % 4}",
            "source_id": "web",
            "occurred_at": f"2024-03-{1 + number % 28:02d}T06:07:08Z",
        }
        | extra
    )


BAD_KEY = "unexpected character, expected a string key"


def _write_mixed(path: Path) -> None:
    """Thirty lines of every kind (line numbers in the comments)."""
    lines = [codecs.BOM_UTF8 + _event(0)]  # 1
    lines += [_event(n) for n in range(1, 6)]  # 2-6
    lines.append(b"{not json")  # 7
    lines.append(b"")  # 8, blank: no record
    lines += [_event(n) for n in range(6, 10)]  # 9-12
    lines.append(b'"a string"')  # 13
    lines.append(_event(3))  # 14, a duplicate of line 5
    lines.append(_event(99, subj_id="x" * 600))  # 15, over the 400-byte limit
    lines += [_event(n) for n in range(10, 14)]  # 16-19
    lines.append(  # 20, an observation
        orjson.dumps(
            {
                "metric": "citations",
                "value": 12,
                "obj_id": "10.5555/par.1",
                "cumulative": True,
                "observed_at": "2024-06-01T00:00:00Z",
                "source_id": "crossref",
            }
        )
    )
    lines.append(_event(2, updated="deleted", updated_date="2024-07-01T00:00:00Z"))  # 21
    lines += [_event(n, occurred_at="yesterday") for n in (50, 51)]  # 22-23
    lines += [_event(n) for n in range(14, 21)]  # 24-30
    path.write_bytes(b"\n".join(lines))  # the last line has no newline


def _stored(store: Store) -> dict[str, Any]:
    with store.engine.connect() as connection:
        events = connection.execute(
            select(
                Event.event_key,
                Event.subj_id,
                Event.obj_value,
                Event.occurred_at,
                Event.evidence_id == Evidence.id,
            )
            .join(Evidence)
            .order_by(Event.id)
        ).all()
        quarantined = connection.execute(
            select(QuarantinedRecord.line, QuarantinedRecord.reason).order_by(
                QuarantinedRecord.line
            )
        ).all()
        observations = connection.execute(select(Observation.metric, Observation.value)).all()
        corrections = connection.execute(select(Correction.target_key, Correction.action)).all()
    return {
        "events": [tuple(row) for row in events],
        "quarantined": [tuple(row) for row in quarantined],
        "observations": [tuple(row) for row in observations],
        "corrections": [tuple(row) for row in corrections],
    }


def _counts(summary: IngestSummary) -> tuple[int, ...]:
    return (
        summary.read,
        summary.stored,
        summary.observations,
        summary.corrections,
        summary.duplicates,
        summary.quarantined,
    )


def _spy_on_workers(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files that ``ingest_paths`` gives to the worker processes."""
    calls: list[Path] = []
    real = ingest.stored_by_processes

    def spy(store: Store, path: Path, *args: Any, **kwargs: Any) -> Any:
        calls.append(path)
        return real(store, path, *args, **kwargs)

    monkeypatch.setattr(ingest, "stored_by_processes", spy)
    return calls


# Blocks smaller than a line, a few lines each, and the whole file in one.
@pytest.mark.parametrize("block_bytes", [100, 700, 1 << 20])
def test_workers_store_what_one_process_stores(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int
) -> None:
    path = tmp_path / "mixed.jsonl"
    _write_mixed(path)
    alone = open_store(tmp_path / "alone.db")
    try:
        expected = ingest_paths(alone, [path], settings=ONE_PROCESS)
        expected_rows = _stored(alone)
    finally:
        alone.close()
    monkeypatch.setattr(parallel, "BLOCK_BYTES", block_bytes)
    calls = _spy_on_workers(monkeypatch)
    summary = ingest_paths(store, [path], settings=WORKERS)
    assert calls == [path]
    assert _counts(summary) == _counts(expected) == (29, 21, 1, 1, 2, 5)
    assert [(q.line, q.reason) for q in summary.problems] == [
        (
            7,
            "malformed JSON: unexpected character, expected a string key: line 1 column 2 (char 1)",
        ),
        (13, "expected a JSON object, found str"),
        (15, "line is 754 bytes, over the limit of 400"),
        (22, "occurred_at 'yesterday' is not an ISO 8601 time"),
        (23, "occurred_at 'yesterday' is not an ISO 8601 time"),
    ]
    assert [(q.line, q.reason) for q in expected.problems] == [
        (q.line, q.reason) for q in summary.problems
    ]
    stored = _stored(store)
    assert stored == expected_rows
    assert [row[0] for row in stored["events"]] == [f"p-{n}" for n in range(21)]
    assert all(row[4] for row in stored["events"])  # each holds the file's evidence
    assert stored["quarantined"] == [(q.line, q.reason) for q in summary.problems]
    assert stored["observations"] == [("citations", 12.0)]
    assert stored["corrections"] == [("p-2", "deleted")]
    again = ingest_paths(store, [path], settings=WORKERS)
    assert _counts(again) == (29, 0, 0, 0, 24, 5)


def test_rows_prepared_before_the_evidence_record_exists_are_given_its_id(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers start reading while this process hashes the file for its evidence
    record; here the hash takes a second, so every block is prepared without the id."""
    path = tmp_path / "late.jsonl"
    path.write_bytes(b"\n".join(_event(n) for n in range(12)) + b"\n")
    hashed = ingest._file_sha256

    def slow_hash(file: Path) -> str:
        time.sleep(1)
        return hashed(file)

    monkeypatch.setattr(ingest, "_file_sha256", slow_hash)
    monkeypatch.setattr(parallel, "BLOCK_BYTES", 400)
    calls = _spy_on_workers(monkeypatch)
    summary = ingest_paths(sqlite_store, [path], settings=WORKERS)
    assert calls == [path]
    assert (summary.read, summary.stored, summary.quarantined) == (12, 12, 0)
    with sqlite_store.engine.connect() as connection:
        evidence = connection.execute(select(Evidence.id, Evidence.payload_sha256)).all()
        rows = connection.execute(select(Event.event_key, Event.evidence_id).order_by(Event.id))
        assert [tuple(row) for row in rows] == [(f"p-{n}", evidence[0][0]) for n in range(12)]
    assert evidence[0][1] == hashed(path)


def test_a_batch_prepared_without_its_evidence_id_is_given_it() -> None:
    at = EVENT_COLUMNS.index("evidence_id")
    rows = [tuple(f"{key}-{column}" for column in EVENT_COLUMNS) for key in ("k1", "k2")]
    pending = PreparedBatch(
        events=[(*row[:at], EVIDENCE_PENDING, *row[at + 1 :]) for row in rows],
        corrections=[("event", "k3", "deleted", None, "t", "t", EVIDENCE_PENDING)],
        evidence_id=EVIDENCE_PENDING,
    )
    given = with_evidence(pending, 9)
    assert given.evidence_id == 9
    assert given.events == [(*row[:at], 9, *row[at + 1 :]) for row in rows]
    assert given.corrections == [("event", "k3", "deleted", None, "t", "t", 9)]
    known = PreparedBatch(events=list(rows), evidence_id=4)
    assert with_evidence(known, 9) is known
    assert known.events == rows


def test_line_start_finds_the_first_line_at_or_after_an_offset(tmp_path: Path) -> None:
    path = tmp_path / "lines.jsonl"
    path.write_bytes(b"ab\ncdef\n\ngh")  # lines start at 0, 3, 8 and 9; 11 bytes
    with path.open("rb") as handle:
        starts = [line_start(handle, offset) for offset in range(13)]
    assert starts == [0, 3, 3, 3, 8, 8, 8, 8, 8, 9, 11, 11, 11]


def test_spans_of_a_file_read_every_line_once(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    long_line = orjson.dumps({"id": "long", "text": "z" * 300})
    path.write_bytes(b'{"n": 1}\n\n' + long_line + b'\n{"n": 2}\n{"n": 3}')
    size = path.stat().st_size
    read: list[tuple[int, object]] = []
    counted = 0
    with path.open("rb") as handle:
        for start in range(0, size, 50):
            span = Span(line_start(handle, start), line_start(handle, start + 50))
            for line, item in read_records(path, "jsonl", max_line_bytes=100, span=span):
                read.append((counted + line, item if isinstance(item, dict) else "problem"))
            counted += span.lines
    assert counted == 5
    assert read == [(1, {"n": 1}), (3, "problem"), (4, {"n": 2}), (5, {"n": 3})]
