"""The ingest's fast paths: Event Data times on the fast path, batches joined for a bulk
load, and a bulk load stored by the worker processes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select

from reachmeter.ingest.batches import together
from reachmeter.ingest.fast import fast_event_row
from reachmeter.records import map_record
from reachmeter.settings import Settings
from reachmeter.store import Store
from reachmeter.store.schema import Event, Evidence
from reachmeter.store.writer import PreparedBatch, Quarantine, event_row, storage_time

COLLECTED = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("occurred_at", "stored"),
    [
        ("2024-03-05T06:07:08Z", "2024-03-05 06:07:08.000000"),
        ("2024-03-05T06:07:08.5Z", "2024-03-05 06:07:08.500000"),
        ("2024-03-05T06:07:08,25+00:00", "2024-03-05 06:07:08.250000"),
        # Shapes whose text is not "YYYY-MM-DDTHH:MM:SS...": the stored time is built from
        # the parsed value, never cut out of the text.
        ("2024-03-05T06:07+00:00", "2024-03-05 06:07:00.000000"),
        ("2024-03-05T0607+00:00", "2024-03-05 06:07:00.000000"),
        ("2024-W10-2T06:07:08Z", "2024-03-05 06:07:08.000000"),
        ("20240305T060708Z", "2024-03-05 06:07:08.000000"),
        ("2024-03-05T08:07:08+02:00", "2024-03-05 06:07:08.000000"),
        ("2024-03-05T06:07:08", "2024-03-05 06:07:08.000000"),
    ],
)
def test_fast_path_stores_every_time_shape_as_the_general_path(
    occurred_at: str, stored: str
) -> None:
    record = {
        "id": "t1",
        "subj_id": "https://x.example/a",
        "relation_type_id": "discusses",
        "obj_id": "10.5555/x",
        "source_id": "web",
        "occurred_at": occurred_at,
        "timestamp": occurred_at,
    }
    for sqlite in (True, False):
        fast = fast_event_row(record, storage_time(COLLECTED, sqlite), 3, sqlite)
        (general,) = map_record(record, collected_at=COLLECTED)
        assert fast == event_row(general, 3, sqlite)
    fast = fast_event_row(record, storage_time(COLLECTED, True), 3, True)
    assert fast is not None
    assert (fast[8], fast[9]) == (stored, stored)


def test_fast_path_reads_the_subject_author_as_the_general_path() -> None:
    base = {
        "id": "a1",
        "subj_id": "https://x.example/a",
        "relation_type_id": "discusses",
        "obj_id": "10.5555/x",
        "source_id": "web",
        "occurred_at": "2024-03-05T06:07:08Z",
    }
    subjects: list[object] = [
        {"author": {"url": " https://x.example/me ", "name": "Me"}},
        {"author": {"name": "Only a name"}},
        {"author": {"id": 42}},
        {"author": " A. Person "},
        {"author": ""},
        {"author": ["not", "read"]},
        {"title": "no author"},
        {},
        None,
    ]
    authors = []
    for subj in subjects:
        record = {**base, "subj": subj}
        fast = fast_event_row(record, storage_time(COLLECTED, True), 1, True)
        (general,) = map_record(record, collected_at=COLLECTED)
        assert fast == event_row(general, 1, True), subj
        assert fast is not None
        authors.append(fast[10])
    assert authors == [
        "https://x.example/me",
        "Only a name",
        "42",
        "A. Person",
        None,
        None,
        None,
        None,
        None,
    ]


def test_batches_of_a_bulk_load_are_stored_together() -> None:
    def batch(first: int, events: int, read: int) -> PreparedBatch:
        return PreparedBatch(
            events=[(n,) for n in range(first, first + events)],
            event_origins=[("f", n) for n in range(first, first + events)],
            quarantine=[Quarantine("f", first, "bad", "")],
            evidence_id=2,
            read=read,
        )

    joined = list(together([batch(0, 2, 3), batch(2, 2, 2), batch(4, 1, 1), batch(5, 0, 4)], 4))
    assert [[row[0] for row in b.events] for b in joined] == [[0, 1, 2, 3], [4]]
    assert [[line for _, line in b.event_origins] for b in joined] == [[0, 1, 2, 3], [4]]
    assert [[q.line for q in b.quarantine] for b in joined] == [[0, 2], [4, 5]]
    assert [b.read for b in joined] == [5, 5]


def test_a_bulk_load_stored_by_the_workers_stores_as_any_other(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import reachmeter.ingest as ingest

    monkeypatch.setattr(ingest, "BULK_THRESHOLD", 1)
    monkeypatch.setattr(ingest, "BULK_TRANSACTION_EVENTS", 3)
    lines = [
        orjson.dumps(
            {
                "id": f"bulk-{n}",
                "subj_id": f"https://x.example/{n}",
                "relation_type_id": "discusses",
                "obj_id": f"10.5555/bulk.{n % 3}",
                "source_id": "web",
                "occurred_at": f"2024-03-{1 + n:02d}T06:07:08Z",
            }
        )
        for n in range(10)
    ]
    lines.insert(4, b"{not json")
    path = tmp_path / "bulk.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    settings = Settings(ingest_parallel_bytes=1, ingest_batch_size=2)
    seen: list[int] = []
    summary = ingest.ingest_paths(sqlite_store, [path], settings=settings, progress=seen.append)
    assert (summary.read, summary.stored, summary.quarantined) == (11, 10, 1)
    assert [(q.line, q.reason[:14]) for q in summary.problems] == [(5, "malformed JSON")]
    # Batches of two events, stored three or more at a time: 4, 4 (with the bad line), 2.
    assert seen == [4, 9, 11]
    again = ingest.ingest_paths(sqlite_store, [path], settings=settings)
    assert (again.stored, again.duplicates, again.quarantined) == (0, 10, 1)
    with sqlite_store.engine.connect() as connection:
        keys = connection.execute(select(Event.event_key).order_by(Event.id)).scalars().all()
        evidence = connection.execute(
            select(Event.evidence_id, Evidence.source_id).join(Evidence).distinct()
        ).all()
        indexes = {
            row[0]
            for row in connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'"
            )
        }
    assert keys == [f"bulk-{n}" for n in range(10)]
    assert [source for _, source in evidence] == ["ingest:jsonl"]
    assert {"ix_events_obj", "ix_events_source_occurred"} <= indexes


def test_fast_path_trims_shared_names_as_the_general_path() -> None:
    rows = []
    for relation, source, licence in [
        (" discusses ", "web ", " https://l.example/cc0 "),
        ("discusses", "web", "https://l.example/cc0"),
        ("discusses", "web", "   "),
    ]:
        record = {
            "id": f"n-{len(rows)}",
            "subj_id": "https://x.example/a",
            "relation_type_id": relation,
            "obj_id": "10.5555/x",
            "source_id": source,
            "occurred_at": "2024-03-05T06:07:08Z",
            "license": licence,
        }
        fast = fast_event_row(record, storage_time(COLLECTED, True), 1, True)
        (general,) = map_record(record, collected_at=COLLECTED)
        assert fast == event_row(general, 1, True)
        assert fast is not None
        rows.append((fast[3], fast[7], fast[14]))
    assert rows == [
        ("discusses", "web", "https://l.example/cc0"),
        ("discusses", "web", "https://l.example/cc0"),
        ("discusses", "web", None),
    ]
