"""The Crossref source against recorded Crossref REST API responses (habanero's cassettes)."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from reachmeter.matching.identifiers import Identifier
from reachmeter.sources.runner import run_source, update_settings
from reachmeter.sources.testing import Replay, replay_client
from reachmeter.store import Store
from reachmeter.store.catalog import upsert_output
from reachmeter.store.schema import Observation, Output, Run, SourceCursor
from tests.conftest import shared_data


def _track(store: Store, *dois: str) -> None:
    with store.session() as session:
        for doi in dois:
            upsert_output(session, identifiers=[Identifier("doi", doi)])


def _cassettes(*names: str) -> Replay:
    replay = Replay()
    for name in names:
        replay.add_vcr(shared_data("crossref-api", name))
    return replay


def test_crossref_stores_metadata_and_citation_count_of_a_tracked_doi(store: Store) -> None:
    replay = _cassettes("test-works/test_works_with_one_id.yaml")
    _track(store, "10.1371/journal.pone.0033693")
    summary = run_source(store, "crossref", http=replay_client(replay))
    assert summary.status == "ok", summary.errors
    with store.session() as session:
        value = session.scalar(
            select(Observation.value).where(Observation.obj_value == "10.1371/journal.pone.0033693")
        )
        output = session.scalars(select(Output)).one()
    assert value == 72
    assert output.title.startswith("Methylphenidate Exposure")
    assert output.venue == "PLoS ONE"
    assert str(output.published_on) == "2012-03-21"


def test_crossref_skips_a_doi_crossref_does_not_know_and_goes_on(store: Store) -> None:
    replay = _cassettes(
        "test-works/test_works_with_one_id.yaml", "test-works/test_works_bad_id_warn.yaml"
    )
    _track(store, "10.1371/journal.pone.0033693", "10.1371/notarealdoi")
    summary = run_source(store, "crossref", http=replay_client(replay))
    assert summary.status == "partial"
    assert summary.skipped == 1
    assert "notarealdoi" in summary.errors[0]
    assert summary.stored == 1
    with store.session() as session:
        run = session.scalars(select(Run)).one()
    assert run.errors == 1
    assert run.detail["failed_requests"][0]["status"] == 404


def test_crossref_pages_a_listing_with_deep_paging_cursors(store: Store) -> None:
    replay = _cassettes("test-cursor/test_cursor_max.yaml")
    update_settings(
        store,
        "crossref",
        {
            "track_dois": False,
            "lists": [{"path": "works", "params": {"query": "widget"}, "max_pages": 3}],
        },
    )
    summary = run_source(store, "crossref", http=replay_client(replay))
    assert summary.status == "ok", summary.errors
    assert summary.fetched == 3
    cursors = [r.url.params.get("cursor") for r in replay.requests]
    assert cursors[0] == "*"
    assert cursors[1] != "*"
    with store.session() as session:
        outputs = session.scalar(select(func.count()).select_from(Output))
        cursor = session.scalars(select(SourceCursor)).one()
    assert outputs == summary.outputs > 20
    assert cursor.stream == "list:works?query=widget"
    # The next run asks only for what was indexed since (less the lag window).
    again = Replay()
    # An empty page in the recorded shape: nothing new since the last run.
    again.fallback = lambda request: httpx.Response(
        200, json={"status": "ok", "message": {"items": [], "next-cursor": None}}
    )
    summary = run_source(store, "crossref", http=replay_client(again))
    assert "from-index-date" in again.requests[0].url.params["filter"]
    assert summary.status == "ok"
