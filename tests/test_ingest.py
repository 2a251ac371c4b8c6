"""Ingest of event files, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, insert, select

from reachmeter.ingest import ingest_paths
from reachmeter.records import key_hash
from reachmeter.settings import Settings
from reachmeter.store import Store
from reachmeter.store.schema import Correction, Event, Evidence, Observation, QuarantinedRecord, Run
from reachmeter.store.writer import ensure_evidence
from tests.conftest import shared_data

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
UTC = dt.UTC


def count(store: Store, model: type) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(model)).scalar() or 0)


def event(store: Store, event_key: str) -> Event:
    with store.session() as session:
        found = session.scalars(select(Event).where(Event.event_key == event_key)).one()
        session.expunge(found)
        return found


def test_crossref_event_data_examples_store_one_event_each(store: Store) -> None:
    path = shared_data("crossref-event-data", "events_from_docs.json")
    summary = ingest_paths(store, [path])
    assert (summary.read, summary.stored, summary.duplicates, summary.quarantined) == (15, 15, 0, 0)
    with store.engine.connect() as connection:
        by_source = dict(
            connection.execute(
                select(Event.source_id, func.count()).group_by(Event.source_id)
            ).all()
        )
    assert by_source == {
        "reddit": 1,
        "cambia-lens": 1,
        "crossref": 1,
        "datacite": 1,
        "f1000": 1,
        "hypothesis": 2,
        "plaudit": 1,
        "reddit-links": 1,
        "stackexchange": 1,
        "twitter": 2,
        "web": 1,
        "wikipedia": 1,
        "wordpressdotcom": 1,
    }
    reddit = event(store, "0003a012-e3fd-4d2f-8c18-1d8b7bb07e20")
    assert reddit.subj_id == (
        "https://reddit.com/r/science/comments/42p4xg/"
        "prognostic_indicators_for_ebola_patient_survival/"
    )
    assert reddit.relation_type_id == "discusses"
    assert reddit.obj_id == "https://doi.org/10.3201/eid2202.151250"
    assert (reddit.obj_scheme, reddit.obj_value) == ("doi", "10.3201/eid2202.151250")
    assert reddit.source_id == "reddit"
    assert reddit.occurred_at == dt.datetime(2016, 1, 26, 1, 49, 17, tzinfo=UTC)
    assert reddit.collected_at == dt.datetime(2017, 2, 22, 17, 16, 17, 909000, tzinfo=UTC)
    assert reddit.evidence_url == (
        "https://evidence.eventdata.crossref.org/evidence/"
        "2017022244f5e774-b3ca-4b29-8555-269777b38983"
    )
    assert reddit.subj == {
        "pid": reddit.subj_id,
        "type": "post",
        "title": "Prognostic Indicators for Ebola Patient Survival",
        "issued": "2016-01-26T01:49:17.000Z",
    }
    # DOIs are case-insensitive: stored lower-cased in the canonical doi.org form.
    crossref = event(store, "8676e950-8ac5-4074-8ac3-c0a18ada7e99")
    assert crossref.obj_id == "https://doi.org/10.13127/itaca/2.1"
    assert crossref.relation_type_id == "cites"
    with store.session() as session:
        evidence = session.scalars(select(Evidence)).one()
        assert evidence.source_id == "ingest:json"
        assert evidence.request_url == path.resolve().as_uri()
        assert len(evidence.payload_sha256) == 64
        assert {e.evidence_id for e in session.scalars(select(Event))} == {evidence.id}


def test_datacite_events_folder_goes_in(store: Store) -> None:
    folder = shared_data("datacite-events")
    summary = ingest_paths(store, sorted(folder.iterdir()))
    assert summary.files == 12
    assert (summary.stored, summary.observations, summary.duplicates) == (1, 285, 7)
    assert summary.quarantined == 3
    reasons = sorted((Path(q.origin).name, q.line, q.reason[:40]) for q in summary.problems)
    assert reasons == [
        ("event_data_resp_1", 0, "not a recognised event file (Event Data "),
        ("event_data_resp_2", 0, "not a recognised event file (Event Data "),
        ("events_empty.json", 1, "missing subj_id, relation_type_id, obj_i"),
    ]
    referencing = event(store, "c8bcd46c-3433-47ac-b8db-d039ce346d65")
    assert referencing.relation_type_id == "references"
    assert referencing.subj_id == "https://doi.org/10.15468/dl.hy9tqg"
    assert referencing.obj_id == "https://doi.org/10.15468/xgoxap"
    with store.session() as session:
        usage = session.scalars(
            select(Observation).where(
                Observation.observation_key == "eventdata:a17e783b-8214-451e-9b0d-077213c2acae"
            )
        ).one()
        assert (usage.obj_value, usage.metric, usage.qualifier, usage.value) == (
            "10.7291/d1q94r",
            "total-dataset-investigations",
            "regular",
            3.0,
        )
        assert (usage.period_start, usage.period_end) == (dt.date(2128, 4, 1), dt.date(2128, 4, 30))
        # A report's DOIs come as doi:..., upper case or bare: folded into one form.
        dataone = session.scalars(
            select(Observation).where(
                Observation.obj_value == "10.5063/aa/bowdish.122.10",
                Observation.metric == "unique-dataset-requests",
            )
        ).one()
        assert (dataone.value, dataone.period_start, dataone.period_end) == (
            7.0,
            dt.date(2013, 11, 2),
            dt.date(2013, 11, 30),
        )
        upper = session.execute(
            select(Observation.metric, Observation.qualifier, Observation.value)
            .where(Observation.obj_value == "10.6071/z7wc73")
            .order_by(Observation.metric, Observation.qualifier, Observation.value)
        ).all()
        assert upper == [
            ("total-dataset-investigations", "regular", 1.0),
            ("total-dataset-requests", "machine", 254.0),
            ("total-dataset-requests", "machine", 254.0),
            ("unique-dataset-requests", "machine", 208.0),
            ("unique-dataset-requests", "machine", 208.0),
        ]
        # The gzip-compressed resolution report unpacks to its 136 metric values.
        resolutions = session.execute(
            select(func.count(), func.sum(Observation.value)).where(
                Observation.source_id == "datacite-resolutions",
                Observation.period_start == dt.date(2019, 4, 1),
            )
        ).one()
        assert resolutions[0] == 136


def test_running_again_adds_nothing(store: Store) -> None:
    paths = [
        shared_data("crossref-event-data", "events_from_docs.json"),
        *sorted(shared_data("datacite-events").iterdir()),
    ]
    first = ingest_paths(store, paths)
    before = {
        m.__name__: count(store, m) for m in (Event, Observation, QuarantinedRecord, Evidence)
    }
    second = ingest_paths(store, paths)
    after = {m.__name__: count(store, m) for m in (Event, Observation, QuarantinedRecord, Evidence)}
    assert (
        before == after == {"Event": 16, "Observation": 285, "QuarantinedRecord": 3, "Evidence": 11}
    )
    assert (second.stored, second.observations) == (0, 0)
    assert second.duplicates == first.stored + first.observations + first.duplicates
    assert count(store, Run) == 2


def test_deleted_event_becomes_a_correction_not_a_second_event(store: Store) -> None:
    path = FIXTURES / "deletion.json"
    summary = ingest_paths(store, [path])
    assert (summary.stored, summary.corrections) == (2, 1)
    again = ingest_paths(store, [path])
    assert (again.stored, again.corrections, again.duplicates) == (0, 0, 2)
    assert count(store, Event) == 2
    with store.session() as session:
        correction = session.scalars(select(Correction)).one()
        assert correction.target_kind == "event"
        assert correction.target_key == "d0a1b2c3-0000-4000-8000-000000000001"
        assert correction.action == "deleted"
        assert correction.reason.endswith("2017-05-08T08-41-00Z-CED-9.json")
        assert correction.corrected_at == dt.datetime(2018, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_bad_records_are_quarantined_and_the_rest_goes_in(store: Store) -> None:
    path = FIXTURES / "mixed.jsonl"
    summary = ingest_paths(store, [path])
    assert (summary.read, summary.stored, summary.observations, summary.quarantined) == (8, 2, 1, 5)
    problems = [(q.line, q.reason) for q in summary.problems]
    assert [line for line, _ in problems] == [2, 3, 4, 5, 6]
    assert problems[0][1].startswith("malformed JSON: ")
    assert problems[1][1] == "missing relation_type_id"
    assert problems[2][1] == "obj_id: 'not an identifier' is not a recognised identifier"
    assert problems[3][1] == "occurred_at 'yesterday' is not an ISO 8601 time"
    assert problems[4][1] == "expected a JSON object, found list"
    with store.session() as session:
        stored = session.scalars(select(QuarantinedRecord).order_by(QuarantinedRecord.line)).all()
        assert [(q.origin, q.line) for q in stored] == [(str(path), n) for n in (2, 3, 4, 5, 6)]
        assert '"id": "a2"' in stored[0].raw
    assert sorted(e.event_key for e in [event(store, "a1"), event(store, "a6")]) == ["a1", "a6"]
    ingest_paths(store, [path])
    assert count(store, QuarantinedRecord) == 5


def test_encoding_empty_files_and_huge_lines(store: Store, tmp_path: Path) -> None:
    good = (
        '{"id": "g1", "subj_id": "https://x.example/1", "relation_type_id": "discusses", '
        '"obj_id": "10.5555/enc", "source_id": "web", "occurred_at": "2024-01-01"}\n'
    )
    latin = tmp_path / "latin1.jsonl"
    latin.write_bytes(
        good.encode()
        + '{"id": "g2", "subj_id": "https://x.example/caf\u00e9", "relation_type_id": "d", '
        '"obj_id": "10.5555/enc", "source_id": "web", "occurred_at": "2024-01-01"}\n'.encode(
            "latin-1"
        )
    )
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    huge = tmp_path / "huge.jsonl"
    huge.write_text('{"pad": "' + "x" * 5000 + '"}\n' + good.replace("g1", "g3"))
    summary = ingest_paths(store, [latin, empty, huge], settings=Settings(max_line_bytes=1000))
    assert summary.stored == 2
    reasons = {(Path(q.origin).name, q.line): q.reason for q in summary.problems}
    assert reasons[("latin1.jsonl", 2)].startswith("not valid UTF-8")
    assert reasons[("empty.json", 0)] == "file is empty"
    assert reasons[("huge.jsonl", 1)] == "line is 5012 bytes, over the limit of 1000"


def test_generic_csv_mentions(store: Store) -> None:
    summary = ingest_paths(store, [FIXTURES / "mentions.csv"])
    assert (summary.read, summary.stored, summary.quarantined) == (3, 3, 0)
    with store.session() as session:
        events = session.scalars(select(Event).order_by(Event.occurred_at)).all()
        assert [(e.obj_scheme, e.obj_value) for e in events] == [
            ("url", "https://law.demo-university.example/briefings/data-protection-2025"),
            ("doi", "10.5555/demo.1"),
            ("doi", "10.5555/demo.1"),
        ]
        assert events[1].occurred_at == dt.datetime(2025, 3, 5, 7, 30, tzinfo=UTC)
        assert events[2].occurred_at == dt.datetime(2025, 3, 6, tzinfo=UTC)
        assert events[0].subj == {"title": "Review of the data protection briefing"}
        assert events[1].subj_author == "alice.example"
    # Without an id, the key is derived from the record: ingesting again adds nothing.
    assert ingest_paths(store, [FIXTURES / "mentions.csv"]).duplicates == 3


def test_forced_format_overrides_detection(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "events.txt"
    path.write_text((FIXTURES / "mixed.jsonl").read_text().splitlines()[0] + "\n")
    assert ingest_paths(store, [path], fmt="jsonl").stored == 1
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        ingest_paths(store, [path], fmt="xml")


def test_vcr_cassette_of_an_empty_event_page_reads_no_records(store: Store) -> None:
    path = shared_data("datacite-events", "crossref_import_crossref_events_import.yml")
    summary = ingest_paths(store, [path])
    assert (summary.read, summary.stored, summary.quarantined) == (0, 0, 0)
    assert not summary.nothing_read


def test_fast_path_gives_the_same_rows_as_the_general_path() -> None:
    import orjson

    from reachmeter.ingest.fast import fast_event_row
    from reachmeter.records import map_record
    from reachmeter.store.writer import event_row, storage_time

    records = orjson.loads(shared_data("crossref-event-data", "events_from_docs.json").read_bytes())
    records += [
        {
            "id": "n1",
            "subj_id": " https://x.example/a ",
            "relation_type_id": "discusses",
            "obj_id": "doi:10.5555/X",
            "source_id": "web",
            "occurred_at": "2024-02-03T04:05:06+02:00",
            "subj": {"pid": "https://x.example/a", "author": {"url": "https://x.example/me"}},
        },
        {
            "id": "n2",
            "subj_id": "https://x.example/b",
            "relation_type_id": "discusses",
            "obj_id": "https://doi.org/10.5555/x",
            "source_id": "web",
            "occurred_at": "2024-02-03",
        },
    ]
    collected = dt.datetime(2025, 1, 1, tzinfo=UTC)
    compared = 0
    for sqlite in (True, False):
        for record in records:
            fast = fast_event_row(record, storage_time(collected, sqlite), 7, sqlite)
            if fast is None:
                continue
            (general,) = map_record(record, collected_at=collected)
            assert fast == event_row(general, 7, sqlite), record["id"]
            compared += 1
    # Everything but the Crossref example with a "total" takes the fast path.
    assert compared == 2 * (len(records) - 1)


def test_large_files_are_read_in_a_second_process(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    lines = (FIXTURES / "mixed.jsonl").read_text()
    path.write_text(lines)
    settings = Settings(ingest_parallel_bytes=1, ingest_batch_size=2)
    summary = ingest_paths(store, [path], settings=settings)
    assert (summary.read, summary.stored, summary.observations, summary.quarantined) == (8, 2, 1, 5)
    assert sorted(q.line for q in summary.problems) == [2, 3, 4, 5, 6]


def test_ingested_events_are_matched_to_tracked_outputs(store: Store) -> None:
    from reachmeter.matching.identifiers import normalize
    from reachmeter.store.catalog import upsert_output
    from reachmeter.store.schema import EventMatch

    with store.session() as session:
        output, _ = upsert_output(
            session, identifiers=[normalize("10.5555/ABC")], title="Tracked", type="article"
        )
        output_id = output.id
    summary = ingest_paths(store, [FIXTURES / "mixed.jsonl"])
    assert (summary.stored, summary.matched) == (2, 2)
    with store.session() as session:
        matches = session.scalars(select(EventMatch).order_by(EventMatch.event_id)).all()
        assert [(m.output_id, m.method, m.verification) for m in matches] == [
            (output_id, "doi-literal", "literal"),
            (output_id, "doi-literal", "literal"),
        ]


@pytest.mark.parametrize("second_process", [False, True])
def test_a_key_whose_hash_a_stored_other_key_has_is_quarantined(
    store: Store, tmp_path: Path, second_process: bool
) -> None:
    """Events are kept unique by a 64-bit hash of their key. A new key with the hash of a
    stored, different key is not stored, and not counted as a duplicate either: it is
    quarantined with both keys named."""
    with store.begin() as connection:
        evidence = ensure_evidence(
            connection,
            source_id="test",
            source_version="1",
            request_url="https://x.example/forged",
            payload_sha256="0" * 64,
            collected_at=dt.datetime(2025, 1, 1, tzinfo=UTC),
            run_id=None,
        )
        connection.execute(
            insert(Event).values(
                key_hash=key_hash("beta"),  # as if "not-beta" had the hash of "beta"
                event_key="not-beta",
                subj_id="https://x.example/forged",
                relation_type_id="discusses",
                obj_id="https://doi.org/10.5555/forged",
                obj_scheme="doi",
                obj_value="10.5555/forged",
                source_id="web",
                occurred_at=dt.datetime(2025, 1, 1, tzinfo=UTC),
                collected_at=dt.datetime(2025, 1, 1, tzinfo=UTC),
                evidence_id=evidence,
            )
        )
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        b"".join(
            orjson.dumps(
                {
                    "id": key,
                    "subj_id": f"https://x.example/{key}",
                    "relation_type_id": "discusses",
                    "obj_id": "https://doi.org/10.5555/forged",
                    "source_id": "web",
                    "occurred_at": "2025-02-01T00:00:00Z",
                }
            )
            + b"\n"
            for key in ("alpha", "beta", "alpha")
        )
    )
    settings = Settings(ingest_parallel_bytes=1 if second_process else 1 << 30)
    summary = ingest_paths(store, [path], settings=settings)
    assert (summary.read, summary.stored, summary.duplicates, summary.quarantined) == (3, 1, 1, 1)
    assert [(q.line, q.reason) for q in summary.problems] == [
        (
            2,
            "event key 'beta' has the same 64-bit hash as stored event 'not-beta'; "
            "it was not stored",
        )
    ]
    with store.engine.connect() as connection:
        keys = connection.execute(select(Event.event_key).order_by(Event.id)).scalars().all()
        quarantined = connection.execute(select(QuarantinedRecord.raw)).scalars().all()
    assert keys == ["not-beta", "alpha"]
    assert quarantined == ["beta"]
