"""The DataCite source: the events API asked per tracked DOI (``/events?doi=...``).

No recording of a whole ``/events`` response exists in ../shared/data: the real event
(``datacite-events/datacite_event.json``, from DataCite's levriero fixtures) is served in
the API's JSON:API envelope built here, and paging and usage events use hand-written pages
in the documented shape (``tests/fixtures/sources/datacite_events_page*_handwritten.json``).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from sqlalchemy import select

from reachmeter.matching.identifiers import Identifier
from reachmeter.sources.runner import run_source, update_settings
from reachmeter.sources.testing import Replay, replay_client
from reachmeter.store import Store
from reachmeter.store.catalog import upsert_output
from reachmeter.store.schema import Event, EventMatch, Observation, OutputIdentifier, SourceCursor
from tests.conftest import shared_data

FIXTURES = Path(__file__).parent / "fixtures" / "sources"
EVENTS = "https://api.datacite.org/events"


def _track(store: Store, *dois: str) -> None:
    with store.session() as session:
        for doi in dois:
            upsert_output(session, identifiers=[Identifier("doi", doi)])


def test_events_of_a_tracked_doi_are_stored_as_they_were_recorded(store: Store) -> None:
    event = json.loads(shared_data("datacite-events", "datacite_event.json").read_text())
    attributes = {k: v for k, v in event.items() if k != "id"}
    replay = Replay().add(
        f"{EVENTS}?doi=10.15468/xgoxap&page[size]=1000",
        {
            "data": [{"id": event["id"], "type": "events", "attributes": attributes}],
            "meta": {"total": 1, "total-pages": 1, "page": 1},
            "links": {"self": f"{EVENTS}?doi=10.15468/xgoxap"},
        },
    )
    _track(store, "10.15468/xgoxap")
    summary = run_source(store, "datacite", http=replay_client(replay))
    assert summary.status == "ok", summary.errors
    assert (summary.fetched, summary.stored, summary.matched) == (1, 1, 1)
    with store.session() as session:
        stored = session.scalars(select(Event)).one()
        cursor = session.scalars(select(SourceCursor)).one()
        # The run links the new event to the tracked output it is about.
        match = session.scalars(select(EventMatch)).one()
        output_id = session.scalars(
            select(OutputIdentifier.output_id).where(OutputIdentifier.value == "10.15468/xgoxap")
        ).one()
    assert (match.event_id, match.output_id) == (stored.id, output_id)
    assert (stored.event_key, stored.subj_id, stored.relation_type_id, stored.obj_id) == (
        "c8bcd46c-3433-47ac-b8db-d039ce346d65",
        "https://doi.org/10.15468/dl.hy9tqg",
        "references",
        "https://doi.org/10.15468/xgoxap",
    )
    assert (stored.obj_scheme, stored.obj_value, stored.source_id) == (
        "doi", "10.15468/xgoxap", "datacite",
    )  # fmt: skip
    assert stored.occurred_at == dt.datetime(2018, 1, 29, 18, 49, 21, tzinfo=dt.UTC)
    assert stored.license == "https://creativecommons.org/publicdomain/zero/1.0/"
    assert stored.subj is not None
    assert stored.subj["name"] == "GBIF Occurrence Download"
    # Every tracked DOI was asked about: the cursor is back at the start.
    assert (cursor.stream, cursor.value) == ("dois", "")


def test_events_pages_are_followed_and_usage_becomes_monthly_views_and_downloads(
    store: Store,
) -> None:
    replay = (
        Replay()
        .add_file(
            f"{EVENTS}?doi=10.5061/dryad.reachmeter&page[size]=2",
            FIXTURES / "datacite_events_page1_handwritten.json",
        )
        .add_file(
            f"{EVENTS}?doi=10.5061/dryad.reachmeter&page[number]=2&page[size]=2",
            FIXTURES / "datacite_events_page2_handwritten.json",
        )
    )
    _track(store, "10.5061/dryad.reachmeter")
    update_settings(store, "datacite", {"page_size": 2})
    summary = run_source(store, "datacite", http=replay_client(replay))
    assert summary.status == "ok", summary.errors
    assert (summary.fetched, summary.stored) == (2, 3)
    assert [r.url.params.get("page[number]") for r in replay.requests] == [None, "2"]
    with store.session() as session:
        event = session.scalars(select(Event)).one()
        usage = session.execute(
            select(
                Observation.metric,
                Observation.value,
                Observation.qualifier,
                Observation.period_start,
                Observation.period_end,
                Observation.obj_value,
            ).order_by(Observation.metric)
        ).all()
    assert (event.subj_id, event.relation_type_id, event.obj_value) == (
        "https://doi.org/10.1234/reachmeter.citing", "references", "10.5061/dryad.reachmeter",
    )  # fmt: skip
    february = (dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    assert [tuple(row) for row in usage] == [
        ("downloads", 5.0, "regular", *february, "10.5061/dryad.reachmeter"),
        ("views", 12.0, "regular", *february, "10.5061/dryad.reachmeter"),
    ]


def test_a_second_run_of_the_same_pages_stores_nothing_new(store: Store) -> None:
    def replay() -> Replay:
        return (
            Replay()
            .add_file(
                f"{EVENTS}?doi=10.5061/dryad.reachmeter&page[size]=2",
                FIXTURES / "datacite_events_page1_handwritten.json",
            )
            .add_file(
                f"{EVENTS}?doi=10.5061/dryad.reachmeter&page[number]=2&page[size]=2",
                FIXTURES / "datacite_events_page2_handwritten.json",
            )
        )

    _track(store, "10.5061/dryad.reachmeter")
    update_settings(store, "datacite", {"page_size": 2})
    run_source(store, "datacite", http=replay_client(replay()))
    again = run_source(store, "datacite", http=replay_client(replay()))
    assert (again.status, again.stored, again.duplicates) == ("ok", 0, 3)
