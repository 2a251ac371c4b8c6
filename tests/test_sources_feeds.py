"""The feeds source: project-written RSS / Atom / JSON feeds and the real answers of three
blog-search services (Lagotto's recordings of WordPress.com, ResearchBlogging, ScienceSeeker),
replayed through the shared client."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from reachmeter.imports.opml import add_feed
from reachmeter.matching.identifiers import Identifier, normalize
from reachmeter.scoring.reach import reach_report
from reachmeter.sources.feeds import FeedError, parse_feed
from reachmeter.sources.runner import run_source, update_settings
from reachmeter.sources.testing import Replay, replay_client
from reachmeter.store import Store
from reachmeter.store.catalog import upsert_output, upsert_person
from reachmeter.store.schema import (
    Account,
    Correction,
    Event,
    EventMatch,
    Evidence,
    Observation,
    Run,
    SourceCursor,
)
from reachmeter.store.schema import Source as SourceRow
from tests.conftest import shared_data

FEEDS = Path(__file__).parent / "fixtures" / "sources" / "feeds"
NEWS = "https://news.example.org/feed.rss"
BLOG = "https://ada.example.org/feed.atom"
REEF = "10.1234/reef.2026.001"
SOIL = "10.5555/soil.7"
LANDING = "https://journal.example.org/articles/42"
ARXIV = "2610.01234"
RSS = {"content-type": "application/rss+xml"}
ATOM = {"content-type": "application/atom+xml"}

SCIENCESEEKER = (
    "http://scienceseeker.org/search/default/?type=post&filter0=citation&modifier0=doi&value0={doi}"
)
WORDPRESS = "http://en.search.wordpress.com/?q=%22{doi}%22&t=post&f=json&size=20"
RESEARCHBLOGGING = "http://researchbloggingconnect.com/blogposts?count=100&article=doi:{doi}"


def _track(store: Store, *identifiers: Identifier) -> None:
    with store.session() as session:
        for identifier in identifiers:
            upsert_output(session, identifiers=[identifier])


def _feeds(store: Store, *feeds: dict[str, Any]) -> None:
    update_settings(store, "feeds", {"feeds": list(feeds)})


def _replay(*answers: tuple[str, bytes, dict[str, str]]) -> Replay:
    replay = Replay()
    for url, body, headers in answers:
        replay.add(url, body, headers=headers)
    return replay


def _fixture(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


def _events(store: Store) -> list[Event]:
    with store.session() as session:
        return list(session.scalars(select(Event).order_by(Event.occurred_at, Event.obj_value)))


def _count(store: Store, table: type) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def _search_url(template: str, doi: str) -> str:
    return template.replace("{doi}", doi.replace("/", "%2F"))


def _news_outputs(store: Store) -> None:
    _track(
        store,
        Identifier("doi", REEF),
        Identifier("doi", SOIL),
        normalize(LANDING, "url"),
    )


# -- project-written feeds ---------------------------------------------------------------


def test_news_entries_that_link_tracked_outputs_become_news_mentions(store: Store) -> None:
    _news_outputs(store)
    _feeds(store, {"url": NEWS, "kind": "news"})
    summary = run_source(
        store, "feeds", http=replay_client(_replay((NEWS, _fixture("news.rss"), RSS)))
    )
    assert summary.status == "ok", summary.errors
    events = _events(store)
    # Five items: four name a tracked output (one of them twice), one names nothing tracked.
    assert summary.stored == 4
    undated = next(e for e in events if e.subj_id == "https://news.example.org/briefs/soil")
    dated = [e for e in events if e is not undated]
    assert [(e.subj_id, e.obj_value, e.occurred_at.isoformat()) for e in dated] == [
        ("https://news.example.org/2026/10/coral-reefs", REEF, "2026-10-06T07:30:00+00:00"),
        ("https://news.example.org/ar/2026/10/reefs", LANDING, "2026-10-07T12:00:00+00:00"),
        ("https://news.example.org/2026/10/reefs-again", REEF, "2026-10-09T08:00:00+00:00"),
    ]
    assert {(e.source_id, e.relation_type_id) for e in events} == {("news", "discusses")}
    # An entry without a date is dated when it was first seen, and says so.
    assert undated.obj_value == SOIL
    assert undated.occurred_at == undated.collected_at
    assert undated.subj is not None
    assert undated.subj["date_unknown"] is True
    first = dated[0]
    assert first.subj_author == "Jane Reporter"
    assert first.subj is not None
    assert first.subj["author"] == {"name": "Jane Reporter"}
    # HTML in a title is kept as text (data, escaped wherever it is shown); scripts in the
    # content are not kept at all.
    assert first.subj["title"] == "New study: <b>coral reefs</b> recover faster"
    assert first.subj["summary"] == "Reefs recover faster than thought, says the paper ."
    assert first.subj["feed"] == {"url": NEWS, "title": "Example Science News"}
    rtl = dated[1]
    assert rtl.subj is not None
    assert rtl.subj["title"] == "دراسة جديدة عن الشعاب المرجانية 🐠🌊"
    assert rtl.subj["summary"] == "نشرت المجلة المقال اليوم 🎉"
    assert rtl.subj_author == "desk@news.example.org (מערכת החדשות)"
    assert not any("script" in str(e.subj) or "onerror" in str(e.subj) for e in events)
    with store.session() as session:
        evidence = session.scalars(select(Evidence)).one()
        assert evidence.source_id == "feeds"
        assert evidence.request_url == NEWS
        assert session.scalar(select(func.count()).select_from(Observation)) == 0
    assert summary.matched == 4  # the run linked them to the outputs


def test_a_second_run_adds_nothing(store: Store) -> None:
    _news_outputs(store)
    _feeds(store, {"url": NEWS, "kind": "news"})
    body = _fixture("news.rss")
    run_source(store, "feeds", http=replay_client(_replay((NEWS, body, RSS))))
    again = run_source(store, "feeds", http=replay_client(_replay((NEWS, body, RSS))))
    assert again.status == "ok"
    assert (again.stored, again.duplicates) == (0, 4)
    assert _count(store, Event) == 4


def test_the_etag_and_last_modified_are_the_cursor_and_304_costs_nothing(store: Store) -> None:
    _news_outputs(store)
    _feeds(store, {"url": NEWS, "kind": "news"})
    modified = "Fri, 09 Oct 2026 08:00:00 GMT"
    headers = {**RSS, "etag": '"v1"', "last-modified": modified}
    replay = _replay((NEWS, _fixture("news.rss"), headers))
    replay.add(NEWS, b"", status=304)
    client = replay_client(replay)
    run_source(store, "feeds", http=client)
    second = run_source(store, "feeds", http=client)
    assert (second.status, second.fetched, second.stored) == ("ok", 0, 0)
    assert replay.requests[0].headers.get("if-none-match") is None
    assert replay.requests[1].headers["if-none-match"] == '"v1"'
    assert replay.requests[1].headers["if-modified-since"] == modified
    with store.session() as session:
        cursor = session.get(SourceCursor, ("feeds", f"feed:{NEWS}"))
    assert cursor is not None
    assert '"etag":"\\"v1\\""' in cursor.value
    # A new tracked output may be named by entries already read: the feed is read whole.
    _track(store, Identifier("doi", "10.9999/untracked.1"))
    fresh = _replay((NEWS, _fixture("news.rss"), headers))
    third = run_source(store, "feeds", http=replay_client(fresh))
    assert fresh.requests[0].headers.get("if-none-match") is None
    assert third.stored == 1
    [opinion] = [e for e in _events(store) if e.obj_value == "10.9999/untracked.1"]
    assert opinion.subj_id == "https://news.example.org/opinion/1"


def _ada(store: Store) -> int:
    _track(store, Identifier("doi", REEF), Identifier("doi", SOIL), Identifier("arxiv", ARXIV))
    with store.session() as session:
        person, _created = upsert_person(session, name="Ada Example")
        add_feed(session, BLOG, kind="blog", owner=person)
        return person.id


def test_an_owned_blog_counts_for_its_owners_blogging_regularity(store: Store) -> None:
    person_id = _ada(store)
    with store.session() as session:
        account = session.scalars(select(Account)).one()
        assert (account.platform, account.handle, account.owner_person_id) == (
            "blog",
            BLOG,
            person_id,
        )
    summary = run_source(
        store, "feeds", http=replay_client(_replay((BLOG, _fixture("blog.atom"), ATOM)))
    )
    assert summary.status == "ok", summary.errors
    with store.session() as session:
        posts = session.scalars(select(Observation).order_by(Observation.period_start)).all()
    assert [(o.metric, o.value, str(o.period_start), o.account_id) for o in posts] == [
        ("posts", 1.0, "2026-06-15", account.id),
        ("posts", 1.0, "2026-08-03", account.id),
        ("posts", 1.0, "2026-10-20", account.id),
    ]
    events = _events(store)
    assert [(e.source_id, e.obj_value) for e in events] == [("blogs", REEF), ("blogs", ARXIV)]
    # The owner's own entries carry the account as author (self-mentions can be told apart);
    # the entry's author is kept in subj (here the feed's author, as the entries name none).
    assert {e.subj_author for e in events} == {BLOG}
    assert events[0].subj is not None
    assert events[0].subj["author"] == {"name": "Ada Example"}
    assert summary.matched == 2  # the run linked them to the outputs
    report = reach_report(store, "default", dt.date(2026, 11, 5), person_id=person_id)
    # Posts in June, August and October: 3 of the last 12 months.
    assert report["components"]["blogging_regularity"]["value"] == 25.0
    assert report["components"]["posting_regularity"]["value"] is None


def test_an_edited_entry_is_not_stored_twice_and_a_dropped_entry_stays(store: Store) -> None:
    _ada(store)
    replay = _replay(
        (BLOG, _fixture("blog.atom"), ATOM), (BLOG, _fixture("blog-edited.atom"), ATOM)
    )
    client = replay_client(replay)
    run_source(store, "feeds", http=client)
    later = run_source(store, "feeds", http=client)
    # Only the new entry is new: its mention of the soil data, and its post. The edited
    # entry (its mention and post) and the unchanged one (its post) are seen again.
    assert (later.stored, later.duplicates) == (2, 3)
    events = _events(store)
    assert [(e.subj_id, e.obj_value) for e in events] == [
        ("https://ada.example.org/2026/06/reef-paper", REEF),
        ("https://ada.example.org/2026/10/preprint", ARXIV),
        ("https://ada.example.org/2026/11/soil", SOIL),
    ]
    assert events[0].subj is not None
    assert events[0].subj["title"] == "Our reef paper is out"
    assert _count(store, Observation) == 4
    assert _count(store, Correction) == 0


def test_a_linked_landing_page_on_a_chosen_host_is_read_for_its_doi(store: Store) -> None:
    [case] = [
        c
        for c in json.loads(shared_data("landing-pages", "expected.json").read_text())
        if c["file"] == "djw160.full"
    ]
    _track(store, Identifier("doi", case["expected_doi"]))
    url = "https://blog.example.org/rss"
    update_settings(
        store,
        "feeds",
        {
            "feeds": [{"url": url, "kind": "blog"}],
            "landing_hosts": ["oxfordjournals.org"],
        },
    )
    feed = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>B</title><item>'
        "<title>On cancer trials</title><link>https://blog.example.org/1</link>"
        f'<description>&lt;a href="{case["page_url"]}"&gt;the paper&lt;/a&gt; and '
        '&lt;a href="https://elsewhere.example.com/x"&gt;a page not read&lt;/a&gt;</description>'
        "</item></channel></rss>"
    )
    replay = _replay((url, feed.encode(), RSS))
    replay.add(
        case["page_url"],
        shared_data("landing-pages", case["file"]).read_bytes(),
        headers={"content-type": "text/html"},
    )
    summary = run_source(store, "feeds", http=replay_client(replay))
    assert summary.status == "ok", summary.errors
    [event] = _events(store)
    assert (event.subj_id, event.obj_value) == ("https://blog.example.org/1", "10.1093/jnci/djw160")
    assert [str(r.url) for r in replay.requests] == [url, case["page_url"]]


def test_a_latin1_feed_is_read_and_kept_as_readable_evidence(store: Store) -> None:
    _track(store, Identifier("doi", REEF))
    url = "https://cafe.example.org/rss"
    _feeds(store, {"url": url, "kind": "blog"})
    replay = _replay((url, _fixture("latin1.rss"), {"content-type": "application/rss+xml"}))
    summary = run_source(store, "feeds", http=replay_client(replay))
    assert summary.status == "ok", summary.errors
    [event] = _events(store)
    assert event.subj is not None
    assert event.subj["title"] == "Économie des récifs : l'étude à lire"
    assert event.subj["feed"]["title"] == "Le Café de la Recherche"
    with store.session() as session:
        payload = session.scalars(select(Evidence.payload)).one()
    assert payload is not None
    assert "Le Café de la Recherche" in payload


def test_a_json_feed_is_read(store: Store) -> None:
    _track(store, Identifier("doi", SOIL))
    url = "https://json.example.org/feed.json"
    _feeds(store, {"url": url, "kind": "blog"})
    replay = _replay((url, _fixture("feed.json"), {"content-type": "application/feed+json"}))
    run_source(store, "feeds", http=replay_client(replay))
    [event] = _events(store)
    assert (event.subj_id, event.obj_value, event.subj_author) == (
        "https://json.example.org/posts/1",
        SOIL,
        "Sam Writer",
    )
    assert event.occurred_at.isoformat() == "2026-09-01T08:00:00+00:00"


def test_a_malformed_feed_is_skipped_with_the_reason_and_the_others_go_on(store: Store) -> None:
    _news_outputs(store)
    broken = "https://broken.example.org/rss"
    _feeds(store, {"url": broken, "kind": "blog"}, {"url": NEWS, "kind": "news"})
    replay = _replay((broken, _fixture("malformed.rss"), RSS), (NEWS, _fixture("news.rss"), RSS))
    summary = run_source(store, "feeds", http=replay_client(replay))
    assert summary.status == "partial"
    assert summary.errors == [f"{broken}: not a well-formed feed: <unknown>:12:0: no element found"]
    assert {e.source_id for e in _events(store)} == {"news"}
    assert _count(store, Event) == 4
    with store.session() as session:
        assert session.get(SourceRow, "feeds").consecutive_failures == 0  # type: ignore[union-attr]


def test_a_run_where_every_feed_is_unreadable_fails_and_stores_nothing(store: Store) -> None:
    _news_outputs(store)
    broken = "https://broken.example.org/rss"
    _feeds(store, {"url": broken, "kind": "blog"})
    summary = run_source(
        store, "feeds", http=replay_client(_replay((broken, _fixture("malformed.rss"), RSS)))
    )
    assert summary.status == "failed"
    assert "not a well-formed feed" in summary.errors[-1]
    assert (_count(store, Event), _count(store, Evidence), _count(store, SourceCursor)) == (
        0,
        0,
        0,
    )
    with store.session() as session:
        run = session.scalars(select(Run).where(Run.source_id == "feeds")).one()
    assert run.status == "failed"


def test_a_feed_on_a_private_address_is_never_fetched(store: Store) -> None:
    _feeds(store, {"url": "http://127.0.0.1:8080/feed", "kind": "blog"})
    replay = Replay()
    summary = run_source(store, "feeds", http=replay_client(replay))
    assert summary.status == "failed"
    assert "non-public address" in summary.errors[0]
    assert replay.requests == []


def test_a_feed_behind_a_login_says_what_to_do(store: Store) -> None:
    _feeds(store, {"url": NEWS, "kind": "news"})
    replay = Replay()
    replay.fallback = lambda request: httpx.Response(401)
    summary = run_source(store, "feeds", http=replay_client(replay))
    assert "feeds are read without a login" in summary.errors[0]


def test_html_entities_that_xml_does_not_define_are_read() -> None:
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>Caf&eacute;&nbsp;news</title>'
        b"<item><title>R&eacute;cifs &amp; co</title><link>https://e.example.org/1</link>"
        b"</item></channel></rss>"
    )
    document = parse_feed(body, "https://e.example.org/rss")
    assert document.title == "Caf\u00e9\u00a0news"
    assert [entry.title for entry in document.entries] == ["R\u00e9cifs & co"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty body"),
        (b"<!DOCTYPE html><html><body>Log in</body></html>", "HTML page instead of a feed"),
        (b'{"items": []}', "JSON that is neither a JSON Feed nor a list of blog search results"),
        (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><rss><channel/></rss>',
            "XML with an ENTITY declaration is not read",
        ),
    ],
)
def test_what_is_not_a_feed_is_refused_with_the_reason(body: bytes, reason: str) -> None:
    with pytest.raises(FeedError) as raised:
        parse_feed(body, "https://example.org/feed")
    assert str(raised.value) == reason


# -- real answers of blog-search services (Lagotto's recordings) --------------------------


def _search(store: Store, template: str, answers: dict[str, str]) -> Any:
    """Track the DOIs of ``answers`` and run one search feed answered by those files."""
    _track(store, *(Identifier("doi", doi) for doi in answers))
    _feeds(store, {"url": template, "kind": "blog"})
    replay = Replay()
    for doi, name in answers.items():
        path = shared_data("lagotto", name)
        replay.add(_search_url(template, doi), path.read_bytes())
    return run_source(store, "feeds", http=replay_client(replay))


def test_scienceseeker_search_answers_give_one_mention_per_post(store: Store) -> None:
    summary = _search(store, SCIENCESEEKER, {"10.1371/journal.pone.0035869": "science_seeker.xml"})
    assert summary.status == "ok", summary.errors
    events = _events(store)
    assert [(e.subj_id, e.occurred_at.isoformat(), e.subj_author) for e in events] == [
        ("http://duncan.hull.name/2012/05/11/journal-fire/", "2012-05-11T12:15:56+00:00", "Duncan"),
        (
            "http://feedproxy.google.com/~r/TheNeurocritic/~3/93yLg0gGe2g/"
            "orgy-of-self-referential-blogging.html",
            "2012-05-12T21:24:00+00:00",
            "The Neurocritic",
        ),
        ("http://duncan.hull.name/2012/05/18/two-ton/", "2012-05-18T07:58:34+00:00", "Duncan"),
    ]
    assert {(e.source_id, e.obj_value) for e in events} == {
        ("blogs", "10.1371/journal.pone.0035869")
    }
    assert events[2].subj is not None
    assert events[2].subj["title"] == "Web analytics: Numbers speak louder than words"


@pytest.mark.parametrize(
    ("name", "expected"), [("science_seeker_one.xml", 1), ("science_seeker_nil.xml", 0)]
)
def test_scienceseeker_one_and_empty_answers(store: Store, name: str, expected: int) -> None:
    summary = _search(store, SCIENCESEEKER, {"10.1371/journal.pone.0035869": name})
    assert summary.status == "ok"
    assert _count(store, Event) == expected


def test_an_incomplete_scienceseeker_answer_is_an_error_and_stores_nothing(store: Store) -> None:
    summary = _search(
        store, SCIENCESEEKER, {"10.1371/journal.pmed.0020124": "science_seeker_incomplete.xml"}
    )
    assert summary.status == "failed"
    assert summary.errors[0].endswith(
        "not an RSS, Atom or JSON feed (its root element is <subjectseeker>)"
    )
    assert (_count(store, Event), _count(store, Evidence)) == (0, 0)


def test_scienceseeker_posts_read_as_a_plain_feed_mention_every_doi_they_link(
    store: Store,
) -> None:
    _track(
        store,
        Identifier("doi", "10.1371/journal.pone.0035869"),
        Identifier("doi", "10.1016/j.tree.2011.11.007"),
    )
    url = "http://scienceseeker.org/scripts/feed.php"
    _feeds(store, {"url": url, "kind": "blog"})
    replay = Replay().add(url, shared_data("lagotto", "science_seeker.xml").read_bytes())
    run_source(store, "feeds", http=replay_client(replay))
    # Three posts link the PLOS ONE paper; "Journal Fire" also links the TREE paper.
    assert sorted((e.subj_id.rsplit("/", 2)[-2], e.obj_value) for e in _events(store)) == [
        ("93yLg0gGe2g", "10.1371/journal.pone.0035869"),
        ("journal-fire", "10.1016/j.tree.2011.11.007"),
        ("journal-fire", "10.1371/journal.pone.0035869"),
        ("two-ton", "10.1371/journal.pone.0035869"),
    ]


def test_wordpress_search_results_are_mentions_of_the_doi_searched(store: Store) -> None:
    summary = _search(store, WORDPRESS, {"10.1371/journal.pone.0008776": "wordpress.json"})
    assert summary.status == "ok", summary.errors
    events = _events(store)
    # Ten results, one of them listed twice: nine posts.
    assert len(events) == 9
    assert len({e.occurred_at.date() for e in events}) == 6
    first = events[0]
    assert (first.subj_id, first.occurred_at.isoformat(), first.subj_author) == (
        "http://researchremix.wordpress.com/2007/07/12/presentation-on-citation-rate-for-shared-data/",
        "2007-07-12T15:36:38+00:00",
        "Heather Piwowar",
    )
    assert first.subj is not None
    assert first.subj["title"] == "Presentation on Citation Rate for Shared Data"
    assert {e.obj_value for e in events} == {"10.1371/journal.pone.0008776"}


def test_an_empty_wordpress_answer_stores_nothing(store: Store) -> None:
    summary = _search(store, WORDPRESS, {"10.1371/journal.pone.0044294": "wordpress_nil.json"})
    assert (summary.status, summary.fetched, summary.stored) == ("ok", 1, 0)


def test_researchblogging_posts_mention_the_doi_searched_and_the_works_they_cite(
    store: Store,
) -> None:
    summary = _search(
        store,
        RESEARCHBLOGGING,
        {
            "10.1371/journal.pone.0035869": "researchblogging.xml",
            "10.1371/journal.pmed.0020124": "researchblogging_nil.xml",
        },
    )
    assert summary.status == "ok", summary.errors
    events = _events(store)
    by_doi: dict[str, int] = {}
    for event in events:
        by_doi[event.obj_value] = by_doi.get(event.obj_value, 0) + 1
    # Eight posts, one listed twice: seven posts about the DOI searched, and all seven cite
    # "Why Most Published Research Findings Are False" (10.1371/journal.pmed.0020124).
    assert by_doi == {"10.1371/journal.pone.0035869": 7, "10.1371/journal.pmed.0020124": 7}
    laika = next(
        e
        for e in events
        if e.subj_id.startswith("http://laikaspoetnik.wordpress.com/2012/10/27/")
        and e.obj_value == "10.1371/journal.pone.0035869"
    )
    assert laika.occurred_at.isoformat() == "2012-10-27T11:32:09+00:00"
    assert laika.subj_author == "Laika Spoetnik"
    assert laika.subj is not None
    assert laika.subj["title"] == (
        "Why Publishing in the NEJM is not the Best Guarantee that Something is True: "
        "a Response to Katan"
    )
    # The service escaped its titles twice; they are stored as the text they stand for.
    titles = {e.subj["title"] for e in events if e.subj}
    assert "Replicação e publicação: A atual tentativa de auto-correção na psicologia" in titles


def test_researchblogging_one_answer(store: Store) -> None:
    _search(store, RESEARCHBLOGGING, {"10.1371/journal.pone.0035869": "researchblogging_one.xml"})
    [event] = _events(store)
    assert event.subj_id == (
        "http://laikaspoetnik.wordpress.com/2012/10/27/"
        "why-publishing-in-the-nejm-is-not-the-best-guarantee-that-something-is-true-a-response-to-katan/"
    )
    # The run linked the mention to the tracked output.
    with store.session() as session:
        assert len(session.scalars(select(EventMatch)).all()) == 1
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(EventMatch)) == 1
