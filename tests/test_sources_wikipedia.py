"""The Wikipedia source: real ``list=search`` recordings (Lagotto's cassettes) and project
fixtures of ``list=exturlusage`` and ``prop=revisions`` (tests/fixtures/sources/wikipedia)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import yaml
from sqlalchemy import func, select

from reachmeter.matching.identifiers import Identifier
from reachmeter.sources.runner import run_source, update_settings
from reachmeter.sources.testing import Replay, replay_client
from reachmeter.store import Store
from reachmeter.store.catalog import upsert_output
from reachmeter.store.schema import Correction, Event, Evidence, QuarantinedRecord, SourceCursor
from tests.conftest import shared_data

FIXTURES = Path(__file__).parent / "fixtures" / "sources" / "wikipedia"
CASSETTES = ("lagotto", "vcr_cassettes", "Wikipedia", "get_data")
PLOS_DOI = "10.1371/journal.pone.0008776"
DOI = "10.1007/s00253-011-3689-1"
API = "https://en.wikipedia.org/w/api.php"


def _track(store: Store, doi: str) -> None:
    with store.session() as session:
        upsert_output(session, identifiers=[Identifier("doi", doi)])


def _params(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(str(request.url)).query).items()}


def _recorded_search_pages(name: str) -> dict[str, bytes]:
    """The recorded ``list=search`` answers of a Lagotto cassette, by ``sroffset``."""
    document = yaml.safe_load(shared_data(*CASSETTES, name).read_text(encoding="utf-8"))
    pages = {}
    for interaction in document["http_interactions"]:
        if interaction["response"]["status"]["code"] != 200:
            continue
        query = parse_qs(urlsplit(interaction["request"]["uri"]).query)
        pages[query["sroffset"][0]] = interaction["response"]["body"]["string"].encode()
    return pages


def _revisions_for(request: httpx.Request) -> httpx.Response:
    """A ``prop=revisions`` answer in the documented shape for the titles asked."""
    titles = _params(request)["titles"].split("|")
    pages = [
        {
            "pageid": 100 + number,
            "ns": 0,
            "title": title,
            "revisions": [{"revid": 5000 + number, "timestamp": "2015-08-23T18:59:41Z"}],
        }
        for number, title in enumerate(titles)
    ]
    return httpx.Response(200, json={"batchcomplete": True, "query": {"pages": pages}})


def _search_replay(pages: dict[str, bytes]) -> Replay:
    replay = Replay()

    def answer(request: httpx.Request) -> httpx.Response:
        params = _params(request)
        if params.get("list") == "search":
            assert params["srsearch"] == f'insource:"{PLOS_DOI}"'
            return httpx.Response(200, content=pages[params.get("sroffset", "0")])
        assert params.get("prop") == "revisions", params
        return _revisions_for(request)

    replay.fallback = answer
    return replay


def _count(store: Store, table: type) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def test_recorded_search_gives_one_mention_per_page_across_fourteen_pages(store: Store) -> None:
    pages = _recorded_search_pages(
        "should_report_if_there_are_events_and_event_count_returned_by_the_Wikipedia_API.yml"
    )
    assert len(pages) == 14
    _track(store, PLOS_DOI)
    update_settings(store, "wikipedia", {"exturlusage": False})
    replay = _search_replay(pages)
    summary = run_source(store, "wikipedia", http=replay_client(replay))
    assert summary.status == "ok", summary.errors
    # 677 hits over 14 pages, but results shifted while paging: 627 distinct pages.
    assert summary.stored == 627
    assert summary.fetched == 14 + 13  # search pages + revision lookups of 50 titles
    with store.session() as session:
        events = session.scalars(select(Event)).all()
        cursor = session.get(SourceCursor, ("wikipedia", f"en:doi:{PLOS_DOI}"))
    assert {e.obj_value for e in events} == {PLOS_DOI}
    assert {e.relation_type_id for e in events} == {"references"}
    lobatus = [e for e in events if e.subj and e.subj["title"] == "Lobatus costatus"]
    assert len(lobatus) == 1
    assert lobatus[0].subj_id == "https://en.wikipedia.org/wiki/Lobatus_costatus"
    assert lobatus[0].subj["revision"] >= 5000
    assert cursor is not None
    assert len(orjson.loads(cursor.value)) == 627

    again = _search_replay(pages)
    rerun = run_source(store, "wikipedia", http=replay_client(again))
    assert rerun.stored == 0
    assert _count(store, Event) == 627
    asked = [_params(r).get("prop") for r in again.requests]
    assert "revisions" not in asked  # pages already known are not looked up again


def test_recorded_empty_search_stores_nothing_but_the_evidence(store: Store) -> None:
    pages = _recorded_search_pages(
        "should_report_if_there_are_no_events_and_event_count_returned_by_the_Wikipedia_API.yml"
    )
    _track(store, PLOS_DOI)
    update_settings(store, "wikipedia", {"exturlusage": False})
    summary = run_source(store, "wikipedia", http=replay_client(_search_replay(pages)))
    assert (summary.status, summary.stored, summary.fetched) == ("ok", 0, 1)
    assert _count(store, Evidence) == 1


def test_recorded_mediawiki_error_skips_the_query_with_its_reason(store: Store) -> None:
    _track(store, PLOS_DOI)
    update_settings(store, "wikipedia", {"exturlusage": False})
    replay = Replay()
    body = shared_data("lagotto", "wikipedia_error.json").read_bytes()
    replay.fallback = lambda request: httpx.Response(200, content=body)
    summary = run_source(store, "wikipedia", http=replay_client(replay))
    assert summary.status == "partial"
    assert summary.skipped == 1
    assert "srsearch-text-disabled: text search is disabled" in summary.errors[0]


def _usage_replay(usage: str, *, edited: int = 0) -> Replay:
    common = "action=query&format=json&formatversion=2&continue="
    replay = Replay()
    replay.add_file(
        f"{API}?{common}&list=exturlusage&euquery=doi.org/{DOI}&euprop=title|url"
        "&eunamespace=0&eulimit=max",
        FIXTURES / usage,
    )
    replay.add_file(
        f'{API}?{common}&list=search&srsearch=insource:"{DOI}"&srnamespace=0&srlimit=max'
        "&srprop=timestamp&srinfo=totalhits",
        FIXTURES / "search_doi_empty.json",
    )
    revisions = json.loads((FIXTURES / "revisions.json").read_text(encoding="utf-8"))

    def answer(request: httpx.Request) -> httpx.Response:
        asked = set(_params(request)["titles"].split("|"))
        pages = [p for p in revisions["query"]["pages"] if p["title"] in asked]
        for page in pages:
            page["revisions"][0]["revid"] += edited
        return httpx.Response(200, json={"query": {"pages": pages}})

    replay.fallback = answer
    return replay


def test_links_on_a_page_are_one_mention_and_a_longer_doi_is_not_a_citation(
    store: Store,
) -> None:
    _track(store, DOI)
    summary = run_source(
        store, "wikipedia", http=replay_client(_usage_replay("exturlusage_doi.json"))
    )
    assert summary.status == "ok", summary.errors
    assert summary.stored == 3
    assert summary.quarantined == 1
    with store.session() as session:
        events = {e.subj["title"]: e for e in session.scalars(select(Event)) if e.subj}
        reason = session.scalars(select(QuarantinedRecord.reason)).one()
    assert set(events) == {"Gliotoxin", "Aspergillus fumigatus", "סם פטרייתי 🍄"}
    gliotoxin = events["Gliotoxin"]
    assert gliotoxin.subj["revision"] == 780858119
    assert gliotoxin.subj["url"].endswith("title=Gliotoxin&oldid=780858119")
    assert gliotoxin.occurred_at.isoformat().startswith("2017-05-17T16:18:29")
    assert gliotoxin.obj_id == f"https://doi.org/{DOI}"
    assert gliotoxin.subj["found-by"] == "exturlusage"
    assert "without a title" in reason


def test_a_page_that_stops_citing_gets_a_deletion_and_citing_again_is_a_new_mention(
    store: Store,
) -> None:
    _track(store, DOI)
    run_source(store, "wikipedia", http=replay_client(_usage_replay("exturlusage_doi.json")))
    with store.session() as session:
        key = session.scalars(
            select(Event.event_key).where(Event.subj_id.like("%Aspergillus_fumigatus"))
        ).one()
    later = run_source(
        store, "wikipedia", http=replay_client(_usage_replay("exturlusage_doi_later.json"))
    )
    assert later.stored == 1  # the correction
    with store.session() as session:
        correction = session.scalars(select(Correction)).one()
    assert (correction.target_key, correction.action) == (key, "deleted")
    assert "no longer cites doi:" in correction.reason
    # Cited again in a later revision: a new mention; the other pages stay as they were.
    again = run_source(
        store, "wikipedia", http=replay_client(_usage_replay("exturlusage_doi.json", edited=7))
    )
    assert again.stored == 1
    with store.session() as session:
        revisions = session.scalars(
            select(Event.subj).where(Event.subj_id.like("%Aspergillus_fumigatus"))
        ).all()
    assert sorted(r["revision"] for r in revisions) == [1190001234, 1190001241]
    assert _count(store, Event) == 4
    assert _count(store, Correction) == 1
