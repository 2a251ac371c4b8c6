"""The Mastodon source against statuses and accounts recorded from real instances
(Mastodon.py's VCR cassettes in ../shared/data/mastodon), served as the timeline and
account answers, and project-written statuses in the same shape that link to a DOI
(tests/fixtures/sources/mastodon)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from reachmeter.matching.identifiers import Identifier
from reachmeter.sources.mastodon import read_content
from reachmeter.sources.runner import run_source, update_settings
from reachmeter.sources.testing import Replay, replay_client
from reachmeter.store import Store
from reachmeter.store.catalog import upsert_output
from reachmeter.store.schema import (
    Account,
    Correction,
    Event,
    Observation,
    QuarantinedRecord,
    SourceCursor,
)
from tests.conftest import shared_data

FIXTURES = Path(__file__).parent / "fixtures" / "sources" / "mastodon"
DOI = "10.1371/journal.pone.0033693"
TAG = "https://mastodon.social/api/v1/timelines/tag/openscience?limit=40"


def _recorded(cassette: str, index: int) -> Any:
    document = yaml.safe_load(shared_data("mastodon", cassette).read_text())
    return json.loads(document["interactions"][index]["response"]["body"]["string"])


def _real_statuses() -> list[Any]:
    return [
        _recorded("test_status_card.yaml", 1),  # links example.org, with its card
        _recorded("test_entity_previewcard.yaml", 2),  # links SoundCloud, with its card
        _recorded("test_entity_searchv2.yaml", 2)["statuses"][0],  # a reply: a mention link
    ]


def _project_statuses() -> list[Any]:
    return list(json.loads((FIXTURES / "tag_statuses.json").read_text()))


def test_content_gives_links_but_not_mentions_and_its_text_as_plain_text() -> None:
    card, soundcloud, reply = _real_statuses()
    assert read_content(card["content"]) == (["http://example.org/"], "http://example.org/")
    links, text = read_content(soundcloud["content"])
    assert links == [
        "https://soundcloud.com/wakarangirl/popstars-dj-wakaran-girl-khard-bass-flex-1"
    ]
    assert text == (
        "https://soundcloud.com/wakarangirl/popstars-dj-wakaran-girl-khard-bass-flex-1 "
        "link to soundcloud that should generate a card"
    )
    links, text = read_content(reply["content"])
    assert links == []
    assert text.startswith("@halcy yeah those look similar")
    _, text = read_content(_project_statuses()[2]["content"])
    assert text == f"<script>alert('x')</script> bold claim, doi:{DOI}"


def test_a_tag_timeline_gives_one_mention_per_linking_status(store: Store) -> None:
    with store.session() as session:
        upsert_output(session, identifiers=[Identifier("doi", DOI)])
    update_settings(
        store,
        "mastodon",
        {"instances": ["mastodon.social"], "tags": ["#openscience"], "domains": ["example.org"]},
    )
    replay = Replay().add(TAG, [*_real_statuses(), *_project_statuses()])
    summary = run_source(store, "mastodon", http=replay_client(replay))
    assert summary.status == "ok", summary.errors
    assert (summary.stored, summary.quarantined) == (4, 1)
    with store.session() as session:
        events = {e.subj_id: e for e in session.scalars(select(Event))}
        problem = session.scalars(select(QuarantinedRecord)).one()
        cursors = dict(session.execute(select(SourceCursor.stream, SourceCursor.value)).all())
        observations = session.scalars(select(Observation)).all()
    assert {url: (e.obj_scheme, e.obj_value) for url, e in events.items()} == {
        "http://localhost:3000/@mastodonpy_test/117440852049121722": ("url", "http://example.org/"),
        "https://scholar.social/@rosa/113300000000000001": ("doi", DOI),
        "https://scholar.social/@noa/113300000000000002": ("doi", DOI),
        "https://scholar.social/@mallory/113300000000000003": ("doi", DOI),
    }
    assert observations == []  # figures are kept for tracked accounts' own statuses only
    emoji = events["https://scholar.social/@rosa/113300000000000001"]
    assert emoji.subj is not None
    assert emoji.subj["text"] == f"🧪🎉 Our study is out! https://doi.org/{DOI} #openscience"
    assert emoji.subj_author == "https://scholar.social/@rosa"
    assert emoji.occurred_at.isoformat() == "2024-10-01T09:30:00+00:00"
    edited = events["https://scholar.social/@noa/113300000000000002"]
    assert edited.subj is not None
    assert edited.subj["edited_at"] == "2024-10-02T11:20:00.000Z"
    assert edited.subj["text"].startswith("מאמר חדש על תרופות בהריון")
    assert edited.subj["lang"] == "he"
    html = events["https://scholar.social/@mallory/113300000000000003"]
    assert html.subj is not None
    assert html.subj["text"].startswith("<script>alert('x')</script>")
    assert html.subj["author"]["name"] == "<i>Mallory</i>"
    assert problem.reason == (
        "Mastodon status #7: status https://scholar.social/@rosa/113300000000000004: "
        "created_at 'yesterday' is not a time"
    )
    assert cursors["tag:mastodon.social:openscience"] == "117445253100011594"
    assert sorted(json.loads(cursors["recent"])) == sorted(events)


def test_deleted_and_edited_statuses_are_corrected_on_the_next_run(store: Store) -> None:
    with store.session() as session:
        upsert_output(session, identifiers=[Identifier("doi", DOI)])
    update_settings(store, "mastodon", {"instances": ["mastodon.social"], "tags": ["science"]})
    rosa, noa, mallory, _ = _project_statuses()
    tag = "https://mastodon.social/api/v1/timelines/tag/science?limit=40"
    first = run_source(
        store, "mastodon", http=replay_client(Replay().add(tag, [rosa, noa, mallory]))
    )
    assert (first.status, first.stored) == ("ok", 3)
    # Rosa deleted hers; Noa edited hers again and dropped the link; Mallory's is as it was.
    status = "https://mastodon.social/api/v1/statuses/"
    rewritten = {**noa, "content": "<p>מאמר חדש</p>", "edited_at": "2024-10-05T09:00:00.000Z"}
    replay = (
        Replay()
        .add(f"{status}{rosa['id']}", {"error": "Record not found"}, status=404)
        .add(f"{status}{noa['id']}", rewritten)
        .add(f"{status}{mallory['id']}", mallory)
        .add(f"{tag}&min_id={mallory['id']}", [])
    )
    summary = run_source(store, "mastodon", http=replay_client(replay))
    assert (summary.status, summary.stored) == ("ok", 2)
    with store.session() as session:
        reasons = {
            session.scalars(select(Event.subj_id).where(Event.event_key == c.target_key)).one(): (
                c.action,
                c.reason,
            )
            for c in session.scalars(select(Correction))
        }
    assert reasons == {
        rosa["url"]: ("deleted", f"post {rosa['url']} was deleted (HTTP 404 from its instance)"),
        noa["url"]: (
            "deleted",
            f"post {noa['url']} was edited and no longer links to this output",
        ),
    }
    # Only Mallory's status is still looked at, and nothing more is recorded.
    third = (
        Replay().add(f"{status}{mallory['id']}", mallory).add(f"{tag}&min_id={mallory['id']}", [])
    )
    summary = run_source(store, "mastodon", http=replay_client(third))
    assert (summary.status, summary.stored) == ("ok", 0)


def test_a_tracked_account_gives_followers_and_each_own_statuses_figures(store: Store) -> None:
    with store.session() as session:
        session.add(Account(platform="mastodon", handle="halcy@mastodon.social"))
    update_settings(store, "mastodon", {"domains": ["example.org"]})
    soundcloud = _recorded("test_entity_previewcard.yaml", 2)
    card = _recorded("test_status_card.yaml", 1)
    replay = (
        Replay()
        .add("https://mastodon.social/api/v1/accounts/lookup?acct=halcy", soundcloud["account"])
        .add(
            "https://mastodon.social/api/v1/accounts/43/statuses?limit=40&exclude_reblogs=true",
            [soundcloud, card],
        )
    )
    summary = run_source(store, "mastodon", http=replay_client(replay))
    assert summary.status == "ok", summary.errors
    with store.session() as session:
        by_account = sorted(
            (o.metric, o.value, o.cumulative, o.period_start and o.period_start.isoformat())
            for o in session.scalars(select(Observation).where(Observation.account_id.is_not(None)))
        )
        by_status = sorted(
            (o.obj_value.rsplit("/", 1)[-1], o.metric, o.value)
            for o in session.scalars(select(Observation).where(Observation.obj_id.is_not(None)))
        )
        events = session.scalars(select(Event)).all()
    assert by_account == [
        ("followers", 126.0, True, None),
        ("following", 35.0, True, None),
        ("posts", 1.0, False, "2023-05-28"),
        ("posts", 1.0, False, "2026-10-14"),
        ("posts_total", 1003.0, True, None),
    ]
    assert by_status == [
        (status, metric, 0.0)
        for status in ("110447098625216345", "117440852049121722")
        for metric in ("boosts", "favourites", "quotes", "replies")
    ]
    assert [e.obj_value for e in events] == ["http://example.org/"]


def test_an_account_handle_without_an_instance_is_skipped_with_the_reason(store: Store) -> None:
    with store.session() as session:
        session.add(Account(platform="mastodon", handle="halcy"))
    summary = run_source(store, "mastodon", http=replay_client(Replay()))
    assert (summary.status, summary.skipped) == ("partial", 1)
    assert summary.errors == ["halcy: account 'halcy' is not user@instance"]


def test_a_closed_timeline_fails_the_run_saying_what_to_set(store: Store) -> None:
    update_settings(store, "mastodon", {"instances": ["mastodon.social"], "tags": ["science"]})
    replay = Replay().add(
        "https://mastodon.social/api/v1/timelines/tag/science?limit=40",
        {"error": "This API requires an authenticated user"},
        status=401,
    )
    summary = run_source(store, "mastodon", http=replay_client(replay))
    assert summary.status == "failed"
    assert "set access_token" in summary.errors[0]
