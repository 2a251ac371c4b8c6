"""The Bluesky source: AT Protocol payloads from ../shared/data/bluesky (MarshalX/atproto's
test data) and project fixtures written from the documented lexicons where no recording
exists (searchPosts, createSession, getProfile, getPosts: tests/fixtures/sources/bluesky)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select

from reachmeter.matching.identifiers import Identifier
from reachmeter.matching.match import match_new_events
from reachmeter.sources._social import daily_posts
from reachmeter.sources.bluesky import (
    at_uri_to_url,
    embed_links,
    facet_links,
    url_to_at_uri,
)
from reachmeter.sources.runner import run_source, update_settings
from reachmeter.sources.testing import Replay, replay_client
from reachmeter.store import Store
from reachmeter.store.catalog import upsert_output
from reachmeter.store.schema import (
    Account,
    Correction,
    Event,
    EventMatch,
    Evidence,
    Observation,
    QuarantinedRecord,
    Run,
)
from tests.conftest import shared_data

FIXTURES = Path(__file__).parent / "fixtures" / "sources" / "bluesky"
DOI = "10.1371/journal.pone.0033693"
PASSWORD = "abcd-efgh-ijkl-mnop"  # noqa: S105 (a made-up app password the test looks for)
SERVICE = "https://bsky.social/xrpc"
PUBLIC = "https://public.api.bsky.app/xrpc"
SEARCH = f"{SERVICE}/app.bsky.feed.searchPosts?q=*&url=https://doi.org/{DOI}&limit=100&sort=latest"
TOKEN = json.loads((FIXTURES / "create_session.json").read_text())["accessJwt"]


def _real(name: str) -> Any:
    return json.loads(shared_data("bluesky", name).read_text())


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _get_posts_url(uris: list[str]) -> str:
    return f"{PUBLIC}/app.bsky.feed.getPosts?" + urlencode([("uris", u) for u in sorted(uris)])


def _search_replay() -> Replay:
    return Replay().add_file(SEARCH, FIXTURES / "search_posts.json")


def _login_method(replay: Replay) -> Replay:
    # createSession is a POST: re-register the recording under that method.
    body = (FIXTURES / "create_session.json").read_bytes()
    replay.add(f"{SERVICE}/com.atproto.server.createSession", body, method="POST")
    return replay


def _track_and_login(store: Store) -> None:
    with store.session() as session:
        upsert_output(session, identifiers=[Identifier("doi", DOI)])
    update_settings(store, "bluesky", {"handle": "alice.bsky.social", "app_password": PASSWORD})


# -- conversions -------------------------------------------------------------------------


def test_at_uris_and_bsky_app_urls_convert_both_ways() -> None:
    post = _real("thread_view_post_with_embed_media.json")["thread"]["post"]["uri"]
    feed = _real("feed_record.json")["uri"]
    assert at_uri_to_url(post) == (
        "https://bsky.app/profile/did:plc:kvwvcn5iqfooopmyzvb4qzba/post/3kaheyt6vpc22"
    )
    assert url_to_at_uri(at_uri_to_url(post)) == post
    assert at_uri_to_url(feed) == (
        "https://bsky.app/profile/did:plc:s6jnht6koorxz7trghirytmf/feed/atproto"
    )
    assert url_to_at_uri("https://bsky.app/profile/test.marshal.dev/post/3kaheyt6vpc22") == (
        "at://test.marshal.dev/app.bsky.feed.post/3kaheyt6vpc22"
    )
    with pytest.raises(ValueError, match="post, feed or list"):
        at_uri_to_url(_real("like_record.json")["uri"])
    with pytest.raises(ValueError, match=r"bsky\.app URL"):
        url_to_at_uri("https://example.org/profile/x/post/y")


def test_facet_links_slice_the_text_by_utf8_bytes_not_characters() -> None:
    record = _fixture("search_posts.json")["posts"][0]["record"]
    start = record["facets"][0]["index"]["byteStart"]
    assert start == 24  # two 4-byte emoji: 19 characters, 24 bytes
    assert facet_links(record) == [
        ("https://doi.org/10.1371/journal.pone.0033693", "doi.org/10.1371/journ…")
    ]
    assert record["text"][start : start + 5] != "doi.o"  # slicing characters would be wrong


def test_real_records_without_links_give_no_links() -> None:
    thread = _real("thread_view_post_with_embed_media.json")["thread"]["post"]
    assert facet_links(_real("post_record.json")["value"]) == []
    assert embed_links(thread["record"]["embed"]) == []  # images and a quoted post
    assert embed_links(thread["embed"]) == []
    card = _fixture("search_posts.json")["posts"][1]
    assert embed_links(card["record"]["embed"]) == [
        (
            "https://doi.org/10.1371/journal.pone.0033693",
            "Methylphenidate Exposure during Pregnancy",
        )
    ]
    assert embed_links(
        {"$type": "app.bsky.embed.recordWithMedia", "media": card["record"]["embed"]}
    ) == embed_links(card["record"]["embed"])


# -- search --------------------------------------------------------------------------------


def test_search_stores_one_mention_per_linking_post_and_quarantines_a_malformed_one(
    store: Store,
) -> None:
    _track_and_login(store)
    replay = _login_method(_search_replay())
    summary = run_source(store, "bluesky", http=replay_client(replay))
    assert summary.status == "ok", summary.errors
    assert (summary.stored, summary.quarantined) == (3, 1)
    login, search = replay.requests
    assert login.method == "POST"
    assert json.loads(login.content) == {"identifier": "alice.bsky.social", "password": PASSWORD}
    assert search.headers["authorization"] == f"Bearer {TOKEN}"
    with store.begin() as connection:
        match_new_events(connection)
    with store.session() as session:
        events = {e.subj_id: e for e in session.scalars(select(Event))}
        matched = session.scalars(select(EventMatch.event_id)).all()
        problem = session.scalars(select(QuarantinedRecord)).one()
        evidence = session.scalars(select(Evidence)).all()
        run = session.scalars(select(Run)).one()
    assert sorted(events) == [
        "https://bsky.app/profile/did:plc:4qsyxmnsblo4luuycm5572bq/post/3l6pa2bq7fk2x",
        "https://bsky.app/profile/did:plc:ewvi7nxzyoun6zhxrhs64oiz/post/3l6oveex3ii2l",
        "https://bsky.app/profile/did:plc:yk4dd2qkboz2yv6tpubpc6co/post/3l6qzz7lsw22c",
    ]
    assert len(matched) == 3
    emoji = events["https://bsky.app/profile/did:plc:ewvi7nxzyoun6zhxrhs64oiz/post/3l6oveex3ii2l"]
    assert (emoji.relation_type_id, emoji.obj_scheme, emoji.obj_value) == ("discusses", "doi", DOI)
    assert emoji.occurred_at == dt.datetime(2024, 10, 1, 9, 30, tzinfo=dt.UTC)
    # The author as accounts are stored (by handle), so own posts are recognised.
    assert emoji.subj_author == "https://bsky.app/profile/alice.bsky.social"
    assert emoji.subj is not None
    assert emoji.subj["text"] == "🎉🧬 New paper out: doi.org/10.1371/journ… 🚀"
    assert emoji.subj["author"]["name"] == "Alice 🧪"
    rtl = events["https://bsky.app/profile/did:plc:4qsyxmnsblo4luuycm5572bq/post/3l6pa2bq7fk2x"]
    assert rtl.subj is not None
    assert rtl.subj["text"] == "ورقة جديدة عن الميثيلفينيديت والحمل"
    assert rtl.subj["lang"] == ["ar"]
    html = events["https://bsky.app/profile/did:plc:yk4dd2qkboz2yv6tpubpc6co/post/3l6qzz7lsw22c"]
    assert html.subj is not None
    # HTML in a post is its text, kept exactly as data (templates escape it when shown).
    assert html.subj["text"].startswith("<script>alert('x')</script><b>Read this</b>")
    assert html.subj["author"]["name"] == "<b>Mallory</b>"
    assert html.obj_value == DOI  # the DOI inside the publisher's article URL
    # The cat picture links to no output and nowhere tracked: nothing stored for it.
    assert "3l6r2jxk5gs2a" not in " ".join(events)
    assert problem.reason == (
        "Bluesky post #5: post 'at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/"
        "app.bsky.feed.post/3l6r3brokn32b' has no uri or no record"
    )
    assert "3l6r3brokn32b" in problem.raw
    text = " ".join([*(e.payload or "" for e in evidence), *(e.request_url for e in evidence)])
    text += json.dumps(run.detail)
    assert PASSWORD not in text
    assert TOKEN not in text


def test_deleted_and_edited_posts_become_corrections_and_stop_counting(store: Store) -> None:
    _track_and_login(store)
    run_source(store, "bluesky", http=replay_client(_login_method(_search_replay())))
    posts = _fixture("search_posts.json")["posts"]
    seen = [p["uri"] for p in posts[:3]]
    since = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)).isoformat()
    # The second run: the first post is gone (getPosts leaves it out), the third now has
    # no link (its record was rewritten), and the search finds nothing new.
    rewritten = {**posts[2], "record": {**posts[2]["record"], "facets": []}}
    again = (
        _login_method(Replay())
        .add(_get_posts_url(seen), {"posts": [posts[1], rewritten]})
        .add(f"{SEARCH}&since={since}", {"posts": []})
    )
    summary = run_source(store, "bluesky", http=replay_client(again))
    assert summary.status == "ok", summary.errors
    assert summary.stored == 2
    with store.session() as session:
        corrections = {
            session.scalars(select(Event.subj_id).where(Event.event_key == c.target_key))
            .one()
            .rsplit("/", 1)[-1]: (c.action, c.reason)
            for c in session.scalars(select(Correction))
        }
    assert corrections == {
        "3l6oveex3ii2l": (
            "deleted",
            "post https://bsky.app/profile/did:plc:ewvi7nxzyoun6zhxrhs64oiz/post/3l6oveex3ii2l "
            "was deleted (getPosts no longer returns it)",
        ),
        "3l6qzz7lsw22c": (
            "deleted",
            "post https://bsky.app/profile/did:plc:yk4dd2qkboz2yv6tpubpc6co/post/3l6qzz7lsw22c "
            "was edited and no longer links to this output",
        ),
    }
    # A third run asks only about the post that still mentions the output.
    third = (
        _login_method(Replay())
        .add_file(_get_posts_url(seen[1:2]), FIXTURES / "get_posts.json")
        .add(f"{SEARCH}&since={since}", {"posts": []})
    )
    summary = run_source(store, "bluesky", http=replay_client(third))
    assert (summary.status, summary.stored) == ("ok", 0)


def test_a_refused_login_fails_the_run_saying_what_to_set(store: Store) -> None:
    _track_and_login(store)
    replay = Replay().add(
        f"{SERVICE}/com.atproto.server.createSession",
        {"error": "AuthenticationRequired", "message": "Invalid identifier or password"},
        status=401,
        method="POST",
    )
    summary = run_source(store, "bluesky", http=replay_client(replay))
    assert summary.status == "failed"
    assert "check the handle and app_password settings" in summary.errors[0]
    assert PASSWORD not in " ".join(summary.errors)


def test_search_without_a_login_is_skipped_with_a_message(store: Store) -> None:
    with store.session() as session:
        upsert_output(session, identifiers=[Identifier("doi", DOI)])
    summary = run_source(store, "bluesky", http=replay_client(Replay()))
    assert summary.status == "partial"
    assert summary.skipped == 1
    assert "needs a login: set handle and app_password" in summary.errors[0]


# -- tracked accounts ----------------------------------------------------------------------


def _account_replay() -> Replay:
    real = _real("thread_view_post_with_embed_media.json")["thread"]["post"]
    posts = _fixture("author_feed_posts.json")
    feed = {
        "feed": [
            {"post": posts["own_post"]},
            {"post": real},
            {
                "post": posts["reposted_post"],
                "reason": {
                    "$type": "app.bsky.feed.defs#reasonRepost",
                    "by": real["author"],
                    "indexedAt": "2024-11-06T10:00:00.000Z",
                },
            },
        ],
    }
    return (
        Replay()
        .add_file(
            f"{PUBLIC}/app.bsky.actor.getProfile?actor=test.marshal.dev",
            FIXTURES / "get_profile.json",
        )
        .add(
            f"{PUBLIC}/app.bsky.feed.getAuthorFeed?actor=test.marshal.dev&limit=100"
            "&filter=posts_no_replies",
            feed,
        )
    )


def test_a_tracked_account_gives_followers_and_each_own_posts_figures(store: Store) -> None:
    with store.session() as session:
        session.add(Account(platform="bluesky", handle="test.marshal.dev", owned_by_org=True))
    update_settings(store, "bluesky", {"search": False})
    summary = run_source(store, "bluesky", http=replay_client(_account_replay()))
    assert summary.status == "ok", summary.errors
    with store.session() as session:
        account_id = session.scalars(select(Account.id)).one()
        by_account = sorted(
            (o.metric, o.value, o.cumulative, o.period_start and o.period_start.isoformat())
            for o in session.scalars(select(Observation).where(Observation.account_id.is_not(None)))
        )
        accounts = set(session.scalars(select(Observation.account_id)).all())
        by_post = sorted(
            (o.obj_value.rsplit("/", 1)[-1], o.metric, o.value)
            for o in session.scalars(select(Observation).where(Observation.obj_id.is_not(None)))
        )
        events = session.scalars(select(Event)).all()
    # Profile totals as they stood, and own posts per day on the days the feed covered.
    assert by_account == [
        ("followers", 31.0, True, None),
        ("following", 6.0, True, None),
        ("posts", 1.0, False, "2023-09-28"),
        ("posts", 1.0, False, "2024-11-05"),
        ("posts_total", 134.0, True, None),
    ]
    assert account_id in accounts
    # The recorded post has no quoteCount; the repost of someone else's post gives nothing.
    assert by_post == [
        ("3kaheyt6vpc22", "likes", 0.0),
        ("3kaheyt6vpc22", "replies", 0.0),
        ("3kaheyt6vpc22", "reposts", 0.0),
        ("3l7a4kq2yzs2d", "likes", 27.0),
        ("3l7a4kq2yzs2d", "quotes", 2.0),
        ("3l7a4kq2yzs2d", "replies", 4.0),
        ("3l7a4kq2yzs2d", "reposts", 9.0),
    ]
    assert [(e.obj_scheme, e.obj_value) for e in events] == [("arxiv", "2401.01234")]


def test_an_unknown_account_is_skipped_and_the_run_goes_on(store: Store) -> None:
    with store.session() as session:
        session.add(Account(platform="bluesky", handle="gone.example.com", owned_by_org=True))
    update_settings(store, "bluesky", {"search": False})
    replay = Replay()
    replay.fallback = lambda request: httpx.Response(
        400, json={"error": "InvalidRequest", "message": "Profile not found"}
    )
    summary = run_source(store, "bluesky", http=replay_client(replay))
    assert (summary.status, summary.skipped) == ("partial", 1)
    assert "HTTP 400" in summary.errors[0]


def test_posts_per_day_count_only_days_the_feed_covered_wholly() -> None:
    now = dt.datetime(2024, 11, 6, 12, 0, tzinfo=dt.UTC)
    created = [
        dt.datetime(2024, 11, 3, 23, 0, tzinfo=dt.UTC),  # the oldest day read: maybe partial
        dt.datetime(2024, 11, 4, 8, 0, tzinfo=dt.UTC),
        dt.datetime(2024, 11, 4, 9, 0, tzinfo=dt.UTC),
        dt.datetime(2024, 11, 6, 7, 0, tzinfo=dt.UTC),  # today: more may come
    ]
    partial = daily_posts(
        "bluesky", "bluesky", "a.bsky.social", created, complete=False, observed_at=now
    )
    assert [(o.period_start, o.value) for o in partial] == [(dt.date(2024, 11, 4), 2.0)]
    whole = daily_posts(
        "bluesky", "bluesky", "a.bsky.social", created, complete=True, observed_at=now
    )
    assert [(o.period_start, o.value) for o in whole] == [
        (dt.date(2024, 11, 3), 1.0),
        (dt.date(2024, 11, 4), 2.0),
    ]
    assert whole[1].account == ("bluesky", "a.bsky.social")
    assert whole[1].observation_key == partial[0].observation_key  # one figure per day


def test_facets_with_bad_offsets_or_shapes_still_give_their_links() -> None:
    text = "🧬 https://doi.org/10.1/x"
    record = {
        "text": text,
        "facets": [
            # Offsets inside the emoji's bytes, and past the end: the link is still read.
            {
                "index": {"byteStart": 1, "byteEnd": 3},
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://a.org/1"}],
            },
            {
                "index": {"byteStart": 5, "byteEnd": 500},
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://a.org/2"}],
            },
            {"index": "nonsense", "features": [{"$type": "app.bsky.richtext.facet#tag"}]},
            "not a facet",
        ],
    }
    links = facet_links(record)
    assert [link.uri for link in links] == ["https://a.org/1", "https://a.org/2"]
    assert links[0].text == "\ufffd\ufffd"
    assert links[1].text == "https://doi.org/10.1/x"
    assert facet_links({"text": "x", "facets": "not a list"}) == []
