"""The Hacker News source against a project fixture written from Algolia's documented HN
Search answer (no recording of it exists in ../shared/data): tests/fixtures/sources/hackernews."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from reachmeter.matching.identifiers import Identifier
from reachmeter.sources.runner import run_source
from reachmeter.sources.testing import Replay, replay_client
from reachmeter.store import Store
from reachmeter.store.catalog import upsert_output
from reachmeter.store.schema import Event, Observation, QuarantinedRecord, SourceCursor

FIXTURES = Path(__file__).parent / "fixtures" / "sources" / "hackernews"
DOI = "10.1371/journal.pone.0033693"
SEARCH = (
    "https://hn.algolia.com/api/v1/search?query={query}&restrictSearchableAttributes=url"
    "&tags=story&hitsPerPage=100&page=0"
)


def _run(store: Store, replay: Replay) -> tuple[str, int, int]:
    summary = run_source(store, "hackernews", http=replay_client(replay))
    assert not summary.errors, summary.errors
    return summary.status, summary.stored, summary.quarantined


def test_stories_linking_to_a_tracked_doi_become_mentions_with_points_and_comments(
    store: Store,
) -> None:
    with store.session() as session:
        upsert_output(session, identifiers=[Identifier("doi", DOI)])
    replay = Replay().add_file(SEARCH.format(query=DOI), FIXTURES / "search_doi.json")
    # Two stories link to the DOI; one names another DOI (search is fuzzy), one has no
    # URL, one has no objectID (quarantined).
    assert _run(store, replay) == ("ok", 6, 1)
    with store.session() as session:
        events = {e.subj_id: e for e in session.scalars(select(Event))}
        figures = sorted(
            (o.obj_value, o.metric, o.value) for o in session.scalars(select(Observation))
        )
        problem = session.scalars(select(QuarantinedRecord)).one()
        cursor = session.scalars(select(SourceCursor)).one()
    assert sorted(events) == [
        "https://news.ycombinator.com/item?id=31415926",
        "https://news.ycombinator.com/item?id=31500001",
    ]
    story = events["https://news.ycombinator.com/item?id=31415926"]
    assert (story.obj_scheme, story.obj_value, story.relation_type_id) == ("doi", DOI, "discusses")
    assert story.subj_author == "https://news.ycombinator.com/user?id=mmeyer"
    assert story.occurred_at.isoformat() == "2022-05-17T14:03:11+00:00"
    assert story.subj is not None
    assert story.subj["title"] == "Methylphenidate exposure during pregnancy 💊 (2012)"
    rtl = events["https://news.ycombinator.com/item?id=31500001"]
    assert rtl.subj is not None
    assert rtl.subj["title"] == "מחקר: תרופות ADHD בהריון"
    assert figures == [
        ("https://news.ycombinator.com/item?id=31415926", "comments", 37.0),
        ("https://news.ycombinator.com/item?id=31415926", "points", 142.0),
        ("https://news.ycombinator.com/item?id=31500001", "comments", 0.0),
        ("https://news.ycombinator.com/item?id=31500001", "points", 5.0),
    ]
    assert problem.reason == "Hacker News hit #5: hit has no objectID"
    assert (cursor.stream, cursor.value) == ("targets", "")
    # Run again: the same stories and figures are not stored twice.
    again = Replay().add_file(SEARCH.format(query=DOI), FIXTURES / "search_doi.json")
    assert _run(store, again)[1] == 0


def test_a_tracked_url_is_searched_without_its_scheme_and_matched_exactly(store: Store) -> None:
    page = "https://journals.plos.org/plosone/article?id=10.1371/journal.pone.0033693"
    with store.session() as session:
        upsert_output(session, identifiers=[Identifier("url", page)])
    replay = Replay().add_file(
        SEARCH.format(query=page.split("://", 1)[1]), FIXTURES / "search_doi.json"
    )
    status, stored, _ = _run(store, replay)
    with store.session() as session:
        events = session.scalars(select(Event)).all()
    # Only the story whose URL is that page; the doi.org link names the DOI, not the page.
    assert (status, stored) == ("ok", 3)
    assert [(e.subj_id, e.obj_scheme) for e in events] == [
        ("https://news.ycombinator.com/item?id=31415926", "url")
    ]
