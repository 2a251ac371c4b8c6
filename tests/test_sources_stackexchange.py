"""The Stack Exchange source against project fixtures written from the API's documented
shapes (tests/fixtures/sources/stackexchange; no real recording exists)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from reachmeter.matching.identifiers import Identifier
from reachmeter.sources.runner import run_source, update_settings
from reachmeter.sources.stackexchange import site_domain
from reachmeter.sources.testing import Replay, replay_client
from reachmeter.store import Store
from reachmeter.store.catalog import upsert_output
from reachmeter.store.schema import Event, Evidence, Observation, QuarantinedRecord, SourceCursor

FIXTURES = Path(__file__).parent / "fixtures" / "sources" / "stackexchange"
DOI = "10.1063/1.1792071"
KEY = "se-key-(0123456789abcdef)"
SEARCH = "https://api.stackexchange.com/2.3/search/excerpts"


def _search(site: str, phrase: str, page: int, key: str = "") -> str:
    query = f'site={site}&q="{phrase}"&order=desc&sort=creation&pagesize=100&page={page}'
    return f"{SEARCH}?{query}" + (f"&key={key}" if key else "")


def _prepare(store: Store, *dois: str, key: str = "") -> None:
    with store.session() as session:
        for doi in dois:
            upsert_output(session, identifiers=[Identifier("doi", doi)])
    update_settings(store, "stackexchange", {"sites": ["chemistry"], "key": key})


def _replay(key: str = "") -> Replay:
    replay = Replay()
    replay.add_file(_search("chemistry", DOI, 1, key), FIXTURES / "excerpts_doi_page1.json")
    replay.add_file(_search("chemistry", DOI, 2, key), FIXTURES / "excerpts_doi_page2.json")
    return replay


def test_posts_naming_a_doi_are_mentions_with_their_score(store: Store) -> None:
    _prepare(store, DOI, key=KEY)
    replay = _replay(KEY)
    client = replay_client(replay)
    summary = run_source(store, "stackexchange", http=client)
    assert summary.status == "ok", summary.errors
    assert (summary.fetched, summary.stored, summary.quarantined) == (2, 4, 2)
    with store.session() as session:
        events = {e.subj_id: e for e in session.scalars(select(Event))}
        scores = dict(session.execute(select(Observation.obj_value, Observation.value)).all())
        reasons = sorted(session.scalars(select(QuarantinedRecord.reason)))
        evidence = " ".join(e.request_url for e in session.scalars(select(Evidence)))
    assert set(events) == {
        "https://chemistry.stackexchange.com/a/41547",
        "https://chemistry.stackexchange.com/q/139001",
    }
    answer = events["https://chemistry.stackexchange.com/a/41547"]
    assert answer.obj_id == f"https://doi.org/{DOI}"
    assert answer.relation_type_id == "discusses"
    assert answer.occurred_at.isoformat().startswith("2015-12-01T10:15:35")
    assert answer.subj["score"] == 14
    assert answer.subj["type"] == "answer"
    assert answer.license == "https://creativecommons.org/licenses/by-sa/4.0/"
    question = events["https://chemistry.stackexchange.com/q/139001"]
    assert question.subj["title"] == 'Is the "B3LYP" benchmark مرحبا still valid? 🧪'
    assert scores == {
        "https://chemistry.stackexchange.com/a/41547": 14,
        "https://chemistry.stackexchange.com/q/139001": 3,
    }
    assert reasons == [
        "creation_date 'yesterday' is not a Unix time",
        "search item of type 'answer' without its id",
    ]
    assert KEY not in evidence
    # The API asked for a 10 s backoff: the client now waits that long between requests.
    assert client._intervals["api.stackexchange.com"] == pytest.approx(10.0)


def test_rerun_adds_nothing_and_the_cursor_starts_over(store: Store) -> None:
    _prepare(store, DOI)
    run_source(store, "stackexchange", http=replay_client(_replay()))
    again = run_source(store, "stackexchange", http=replay_client(_replay()))
    assert (again.status, again.stored) == ("ok", 0)
    with store.session() as session:
        cursor = session.get(SourceCursor, ("stackexchange", "site:chemistry"))
    assert cursor is not None
    assert cursor.value == ""


def test_the_last_request_of_the_day_stops_the_run_and_the_next_run_resumes(store: Store) -> None:
    other = "10.2000/xyz123"  # after the first DOI in the order of the cursor
    _prepare(store, DOI, other)
    replay = Replay().add_file(_search("chemistry", DOI, 1), FIXTURES / "excerpts_quota_last.json")
    summary = run_source(store, "stackexchange", http=replay_client(replay))
    assert summary.status == "partial"
    assert "quota is used up" in summary.errors[0]
    assert len(replay.requests) == 1
    with store.session() as session:
        cursor = session.get(SourceCursor, ("stackexchange", "site:chemistry"))
    assert cursor is not None
    assert cursor.value == f"doi:{DOI}"
    resumed = Replay().add_file(
        _search("chemistry", other, 1), FIXTURES / "excerpts_quota_last.json"
    )
    run_source(store, "stackexchange", http=replay_client(resumed))
    assert [r.url.params["q"] for r in resumed.requests] == [f'"{other}"']


def test_a_refused_request_fails_the_run_saying_what_to_set(store: Store) -> None:
    _prepare(store, DOI, key=KEY)
    replay = Replay()
    replay.fallback = lambda request: httpx.Response(
        400, json={"error_id": 502, "error_name": "throttle_violation"}
    )
    summary = run_source(store, "stackexchange", http=replay_client(replay))
    assert summary.status == "failed"
    assert "quota is used up" in summary.errors[0]
    assert "reachmeter sources set stackexchange key" in summary.errors[0]
    assert KEY not in summary.errors[0]


@pytest.mark.parametrize(
    ("site", "domain"),
    [
        ("stackoverflow", "stackoverflow.com"),
        ("chemistry", "chemistry.stackexchange.com"),
        ("mathoverflow.net", "mathoverflow.net"),
    ],
)
def test_site_domain(site: str, domain: str) -> None:
    assert site_domain(site) == domain
