"""The standard suite every source passes, on recorded real responses (no network).

Each installed source (found through the entry points, as a third party's would be) needs
a case here: settings, tracked outputs and a replay of what the API answered.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from reachmeter.matching.identifiers import Identifier
from reachmeter.sources.runner import PAUSE_AFTER, available_sources, run_source, update_settings
from reachmeter.sources.testing import Replay, replay_client
from reachmeter.store import Store
from reachmeter.store.catalog import add_account, upsert_output
from reachmeter.store.schema import Event, Evidence, Observation, Run, SourceCursor
from reachmeter.store.schema import Source as SourceRow
from tests.conftest import shared_data

FIXTURES = Path(__file__).parent / "fixtures" / "sources"
SECRET = "sekret-KEY-123"  # noqa: S105 (a made-up key the test looks for in logs)

Case = tuple[dict[str, object], list[Identifier], Callable[[], Replay]]


def _crossref() -> Replay:
    return Replay().add_vcr(
        shared_data("crossref-api", "test-works", "test_works_with_one_id.yaml")
    )


def _datacite() -> Replay:
    return Replay().add_file(
        "https://api.datacite.org/reports/report-7",
        shared_data("datacite-usage-reports", "report_7.json"),
    )


def _openalex() -> Replay:
    works = json.loads(shared_data("openalex", "entity_list_samples.json").read_text())["works"]
    dois = "|".join(
        sorted(w["doi"].removeprefix("https://doi.org/").lower() for w in works if w.get("doi"))
    )
    return Replay().add(
        f"https://api.openalex.org/works?filter=doi:{dois}&per-page=50",
        {"meta": {"count": len(works)}, "results": works},
    )


def _openalex_dois() -> list[Identifier]:
    works = json.loads(shared_data("openalex", "entity_list_samples.json").read_text())["works"]
    return [
        Identifier("doi", w["doi"].removeprefix("https://doi.org/").lower())
        for w in works
        if w.get("doi")
    ]


def _europepmc() -> Replay:
    return Replay().add_file(
        "https://www.ebi.ac.uk/europepmc/webservices/rest/MED/17183631/citations"
        "?format=json&page=1&pageSize=1000",
        shared_data("lagotto", "europe_pmc.json"),
    )


def _zenodo() -> Replay:
    return Replay().add_file(
        "https://zenodo.org/api/records/1234567", FIXTURES / "zenodo_record.json"
    )


def _sushi() -> Replay:
    replay = Replay()
    path = shared_data("counter", "cop5", "r51", "TRJ1_sample_r51.json")
    replay.fallback = lambda request: httpx.Response(200, content=path.read_bytes())
    return replay


def _feeds() -> Replay:
    return Replay().add(
        "https://news.example.org/feed.rss",
        (FIXTURES / "feeds" / "news.rss").read_bytes(),
        headers={"content-type": "application/rss+xml"},
    )


def _wikipedia() -> Replay:
    api = "https://en.wikipedia.org/w/api.php?action=query&format=json&formatversion=2"
    doi = "10.1007/s00253-011-3689-1"
    wiki = FIXTURES / "wikipedia"
    return (
        Replay()
        .add_file(
            f"{api}&continue=&list=exturlusage&euquery=doi.org/{doi}&euprop=title|url"
            "&eunamespace=0&eulimit=max",
            wiki / "exturlusage_doi.json",
        )
        .add_file(
            f'{api}&continue=&list=search&srsearch=insource:"{doi}"&srnamespace=0&srlimit=max'
            "&srprop=timestamp&srinfo=totalhits",
            wiki / "search_doi_empty.json",
        )
        .add_file(
            f"{api}&prop=revisions&rvprop=ids|timestamp"
            "&titles=Gliotoxin|Aspergillus fumigatus|סם פטרייתי 🍄",
            wiki / "revisions.json",
        )
    )


def _youtube() -> Replay:
    api, youtube = "https://www.googleapis.com/youtube/v3", FIXTURES / "youtube"
    uploads = "UUq9rHkZl0vX3dJcM5nT7sAw"
    listing = f"{api}/playlistItems?part=contentDetails&playlistId={uploads}&maxResults=50"
    return (
        Replay()
        .add_file(
            f"{api}/channels?part=snippet,statistics,contentDetails&forHandle=@reachmeterlab"
            f"&key={SECRET}",
            youtube / "channels_handle.json",
        )
        .add_file(f"{listing}&key={SECRET}", youtube / "playlist_page1.json")
        .add_file(
            f"{listing}&key={SECRET}&pageToken=EAAaBlBUOkNBSQ", youtube / "playlist_page2.json"
        )
        .add_file(
            f"{api}/videos?part=snippet,statistics"
            f"&id=aaaaaaaaaa1,bbbbbbbbbb2,cccccccccc3,dddddddddd4&key={SECRET}",
            youtube / "videos.json",
        )
    )


def _stackexchange() -> Replay:
    search = "https://api.stackexchange.com/2.3/search/excerpts?site=chemistry"
    query = f'&q="10.1063/1.1792071"&order=desc&sort=creation&pagesize=100&key={SECRET}'
    se = FIXTURES / "stackexchange"
    return (
        Replay()
        .add_file(f"{search}{query}&page=1", se / "excerpts_doi_page1.json")
        .add_file(f"{search}{query}&page=2", se / "excerpts_doi_page2.json")
    )


# Accounts a source's case collects from (platform, handle), owned by the organisation.
ACCOUNTS: dict[str, list[tuple[str, str]]] = {"youtube": [("youtube", "@reachmeterlab")]}


def _bluesky() -> Replay:
    folder = FIXTURES / "bluesky"
    replay = Replay().add(
        "https://bsky.social/xrpc/com.atproto.server.createSession",
        (folder / "create_session.json").read_bytes(),
        method="POST",
    )
    search = json.loads((folder / "search_posts.json").read_text())

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("searchPosts"):
            return httpx.Response(200, json=search)
        if request.url.path.endswith("getPosts"):  # the re-check: every post still there
            return httpx.Response(200, json={"posts": search["posts"][:3]})
        raise AssertionError(f"unexpected request {request.url}")

    replay.fallback = answer
    return replay


def _hackernews() -> Replay:
    return Replay().add_file(
        "https://hn.algolia.com/api/v1/search?query=10.1371/journal.pone.0033693"
        "&restrictSearchableAttributes=url&tags=story&hitsPerPage=100&page=0",
        FIXTURES / "hackernews" / "search_doi.json",
    )


def _mastodon() -> Replay:
    statuses = json.loads((FIXTURES / "mastodon" / "tag_statuses.json").read_text())
    tag = "https://mastodon.social/api/v1/timelines/tag/openscience?limit=40"
    replay = Replay().add(tag, statuses).add(f"{tag}&min_id=113300000000000004", [])
    for status in statuses:  # the re-check of recent mentions: each as it was
        replay.add(f"https://mastodon.social/api/v1/statuses/{status['id']}", status)
    return replay


def _reddit() -> Replay:
    login = json.loads(shared_data("reddit", "TestReddit.test_info_url.json").read_text())
    info = "https://oauth.reddit.com/api/info?raw_json=1&limit=100&url="
    return (
        Replay()
        .add(
            "https://www.reddit.com/api/v1/access_token",
            login["interactions"][0]["response"]["body"]["string"],
            method="POST",
        )
        .add_file(
            f"{info}https://doi.org/10.1371/journal.pone.0033693",
            shared_data("lagotto", "reddit.json"),
        )
        .add_file(
            f"{info}http://dx.doi.org/10.1371/journal.pone.0033693",
            shared_data("lagotto", "reddit_nil.json"),
        )
    )


CASES: dict[str, Callable[[], Case]] = {
    "bluesky": lambda: (
        {"handle": "alice.bsky.social", "app_password": SECRET},
        [Identifier("doi", "10.1371/journal.pone.0033693")],
        _bluesky,
    ),
    "hackernews": lambda: ({}, [Identifier("doi", "10.1371/journal.pone.0033693")], _hackernews),
    "mastodon": lambda: (
        {"instances": ["mastodon.social"], "tags": ["openscience"]},
        [Identifier("doi", "10.1371/journal.pone.0033693")],
        _mastodon,
    ),
    "reddit": lambda: (
        {"enabled": True, "client_id": "app-id", "client_secret": SECRET},
        [Identifier("doi", "10.1371/journal.pone.0033693")],
        _reddit,
    ),
    "wikipedia": lambda: ({}, [Identifier("doi", "10.1007/s00253-011-3689-1")], _wikipedia),
    "youtube": lambda: ({"api_key": SECRET}, [], _youtube),
    "stackexchange": lambda: (
        {"sites": ["chemistry"], "key": SECRET},
        [Identifier("doi", "10.1063/1.1792071")],
        _stackexchange,
    ),
    "crossref": lambda: ({}, [Identifier("doi", "10.1371/journal.pone.0033693")], _crossref),
    "datacite": lambda: ({"report_ids": ["report-7"], "track_dois": False}, [], _datacite),
    "openalex": lambda: ({}, _openalex_dois(), _openalex),
    "europepmc": lambda: ({"track_dois": False}, [Identifier("pmid", "17183631")], _europepmc),
    "zenodo": lambda: ({}, [Identifier("doi", "10.5281/zenodo.1234567")], _zenodo),
    "feeds": lambda: (
        {"feeds": [{"url": "https://news.example.org/feed.rss", "kind": "news"}]},
        [Identifier("doi", "10.1234/reef.2026.001")],
        _feeds,
    ),
    "sushi": lambda: (
        {
            "endpoints": [
                {
                    "name": "sample",
                    "base_url": "https://sushi.example.org/counter",
                    "customer_id": "cust-1",
                    "requestor_id": "req-1",
                    "api_key": SECRET,
                    "reports": ["TR_J1"],
                    "start": "2022-01",
                }
            ]
        },
        [],
        _sushi,
    ),
}


def test_every_installed_source_has_a_contract_case() -> None:
    assert set(available_sources()) == set(CASES)


def _prepare(store: Store, source_id: str) -> Replay:
    settings, tracked, replay = CASES[source_id]()
    with store.session() as session:
        for identifier in tracked:
            upsert_output(session, identifiers=[identifier])
        for platform, handle in ACCOUNTS.get(source_id, []):
            add_account(session, platform, handle, owner=None, org=True)
    if settings:
        update_settings(store, source_id, settings)
    return replay()


def _count(store: Store, table: type) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


@pytest.mark.parametrize("source_id", sorted(CASES))
def test_source_stores_facts_with_evidence_cursor_and_run_log(store: Store, source_id: str) -> None:
    replay = _prepare(store, source_id)
    summary = run_source(store, source_id, http=replay_client(replay))
    assert summary.status == "ok", summary.errors
    assert summary.stored > 0
    with store.session() as session:
        evidence = session.scalars(select(Evidence)).all()
        assert evidence
        assert {e.source_id for e in evidence} == {source_id}
        evidence_ids = {e.id for e in evidence}
        facts = [
            *session.scalars(select(Observation.evidence_id)),
            *session.scalars(select(Event.evidence_id)),
        ]
        assert set(facts) <= evidence_ids
        assert session.scalars(select(SourceCursor)).all()
        run = session.scalars(select(Run).where(Run.source_id == source_id)).one()
        assert (run.status, run.read, run.stored) == ("ok", summary.fetched, summary.stored)
        assert run.finished_at is not None
        text = " ".join([*(e.request_url for e in evidence), *(e.payload or "" for e in evidence)])
        text += json.dumps(run.detail)
    assert SECRET not in text


@pytest.mark.parametrize("source_id", sorted(CASES))
def test_source_rerun_adds_nothing(store: Store, source_id: str) -> None:
    replay = _prepare(store, source_id)
    run_source(store, source_id, http=replay_client(replay))
    before = _count(store, Observation) + _count(store, Event)
    again = _prepare(store, source_id)
    summary = run_source(store, source_id, http=replay_client(again))
    assert summary.stored == 0
    assert _count(store, Observation) + _count(store, Event) == before


def _always(status: int, body: bytes = b"") -> Replay:
    replay = Replay()
    replay.fallback = lambda request: httpx.Response(status, content=body)
    return replay


@pytest.mark.parametrize("source_id", sorted(CASES))
@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (503, b"", "HTTP 503"),
        (200, b"<!DOCTYPE html><html><body>Maintenance</body></html>", "HTML page"),
        (200, b'{"truncated": ', "not valid JSON"),
    ],
)
def test_source_upstream_failure_is_logged_and_fails_the_run(
    store: Store, source_id: str, status: int, body: bytes, expected: str
) -> None:
    _prepare(store, source_id)
    summary = run_source(store, source_id, http=replay_client(_always(status, body)))
    assert summary.status == "failed"
    assert any(expected in error for error in summary.errors), summary.errors
    assert SECRET not in " ".join(summary.errors)
    with store.session() as session:
        run = session.scalars(select(Run).where(Run.source_id == source_id)).one()
        row = session.get(SourceRow, source_id)
    assert run.errors >= 1
    assert row is not None
    assert row.consecutive_failures == 1


def test_a_source_is_paused_after_repeated_failures_with_the_reason(store: Store) -> None:
    _prepare(store, "zenodo")
    for _ in range(PAUSE_AFTER):
        summary = run_source(store, "zenodo", http=replay_client(_always(503)))
    assert summary.paused_reason is not None
    assert "HTTP 503" in summary.paused_reason
    with store.session() as session:
        row = session.get(SourceRow, "zenodo")
    assert row is not None
    assert not row.enabled
    assert "5 failed runs in a row" in (row.paused_reason or "")
