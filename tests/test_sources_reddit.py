"""The Reddit source against recorded Reddit API answers: praw's recordings in
../shared/data/reddit (the OAuth token and ``/api/info?url=``) and Lagotto's Reddit
listings in ../shared/data/lagotto (``reddit.json`` and its empty twin)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from reachmeter.matching.identifiers import Identifier
from reachmeter.sources.runner import run_source, update_settings
from reachmeter.sources.testing import Replay, replay_client
from reachmeter.store import Store
from reachmeter.store.catalog import upsert_output
from reachmeter.store.schema import Correction, Event, Evidence, Observation, QuarantinedRecord
from tests.conftest import shared_data

SECRET = "reddit-app-secret-42"  # noqa: S105 (a made-up secret the test looks for)
DOI = "10.1371/journal.pone.0033693"
LOGIN_URL = "https://www.reddit.com/api/v1/access_token"
INFO = "https://oauth.reddit.com/api/info?url={url}&raw_json=1&limit=100"
SETTINGS = {"enabled": True, "client_id": "app-id", "client_secret": SECRET, "username": "lib"}


def _recording(name: str) -> list[dict[str, Any]]:
    document = json.loads(shared_data("reddit", name).read_text())
    return list(document["interactions"])


def _token(replay: Replay) -> Replay:
    login = _recording("TestReddit.test_info_url.json")[0]
    assert login["request"]["uri"] == LOGIN_URL
    return replay.add(LOGIN_URL, login["response"]["body"]["string"], method="POST")


def _info_body() -> str:
    answer = _recording("TestReddit.test_info_url.json")[1]
    assert "/api/info/?url=youtube.com" in answer["request"]["uri"]
    return str(answer["response"]["body"]["string"])


def _track(store: Store, identifier: Identifier) -> None:
    with store.session() as session:
        upsert_output(session, identifiers=[identifier])


def test_reddit_is_off_by_default_and_asks_nothing(store: Store) -> None:
    _track(store, Identifier("doi", DOI))
    replay = Replay()
    summary = run_source(store, "reddit", http=replay_client(replay))
    assert (summary.status, summary.stored, replay.requests) == ("ok", 0, [])


def test_submissions_linking_to_a_tracked_url_with_score_and_comments(store: Store) -> None:
    _track(store, Identifier("url", "http://www.youtube.com/"))
    update_settings(store, "reddit", SETTINGS)
    body = _info_body()
    replay = _token(Replay())
    replay.add(INFO.format(url="http://www.youtube.com/"), body)
    replay.add(INFO.format(url="http://www.youtube.com"), body)
    summary = run_source(store, "reddit", http=replay_client(replay))
    assert summary.status == "ok", summary.errors
    # 25 submissions, each an event with its score and comment count; the second spelling
    # of the URL finds the same 25 again, not stored twice.
    assert (summary.stored, summary.duplicates) == (75, 75)
    token_request, first, _ = replay.requests
    assert token_request.headers["authorization"].startswith("Basic ")
    assert first.headers["authorization"] == "bearer <ACCESS_TOKEN>"
    assert first.headers["user-agent"].startswith("python:reachmeter:")
    assert first.headers["user-agent"].endswith("(by /u/lib)")
    with store.session() as session:
        events = {e.subj_id: e for e in session.scalars(select(Event))}
        figures = {(o.obj_value, o.metric): o.value for o in session.scalars(select(Observation))}
        evidence = " ".join(e.payload or "" for e in session.scalars(select(Evidence)))
    assert len(events) == 25
    tifl = events[
        "https://www.reddit.com/r/TIFL/comments/68vj98/"
        "tifl_that_no_one_has_posted_anything_for_12_months/"
    ]
    assert (tifl.obj_scheme, tifl.obj_value) == ("url", "http://www.youtube.com/")
    assert tifl.subj_author == "https://www.reddit.com/user/CoolCow247"
    assert tifl.occurred_at.isoformat() == "2017-05-02T20:02:23+00:00"
    assert tifl.subj is not None
    assert tifl.subj["subreddit"] == "TIFL"
    assert figures[(tifl.subj_id, "score")] == 15.0
    assert figures[(tifl.subj_id, "comments")] == 9.0
    # A title in Cyrillic is kept as written.
    cyrillic = [e for e in events.values() if e.subj and e.subj["title"] == "бла бла бла"]
    assert len(cyrillic) == 1
    assert SECRET not in evidence


def test_a_deleted_submission_is_a_correction_once_and_its_text_is_not_kept(
    store: Store,
) -> None:
    _track(store, Identifier("doi", DOI))
    update_settings(store, "reddit", {**SETTINGS, "track_urls": False})
    listing = json.loads(shared_data("lagotto", "reddit.json").read_text())
    gone = listing["data"]["children"][1]["data"]
    gone.update({"author": "[deleted]", "selftext": "[deleted]"})
    empty = shared_data("lagotto", "reddit_nil.json")

    def replay() -> Replay:
        answers = _token(Replay())
        answers.add(INFO.format(url=f"https://doi.org/{DOI}"), listing)
        answers.add_file(INFO.format(url=f"http://dx.doi.org/{DOI}"), empty)
        return answers

    summary = run_source(store, "reddit", http=replay_client(replay()))
    assert summary.status == "ok", summary.errors
    # Three events, figures of the two still there, one deletion.
    assert summary.stored == 3 + 4 + 1
    with store.session() as session:
        correction = session.scalars(select(Correction)).one()
        event = session.scalars(select(Event).where(Event.event_key == correction.target_key)).one()
    assert correction.reason == "submission t3_1dw0uy was deleted or removed"
    assert event.subj == {
        "pid": event.subj_id,
        "type": "submission",
        "deleted": True,
        "link": "http://www.reddit.com/r/Genealogy/comments/1dw0uy/"
        "a_population_genomic_look_at_genealogical/",
    }
    assert event.subj_author is None
    again = run_source(store, "reddit", http=replay_client(replay()))
    assert (again.status, again.stored) == ("ok", 0)


def test_a_malformed_listing_item_is_quarantined_with_the_reason(store: Store) -> None:
    _track(store, Identifier("doi", DOI))
    update_settings(store, "reddit", {**SETTINGS, "track_urls": False})
    listing = json.loads(shared_data("lagotto", "reddit.json").read_text())
    del listing["data"]["children"][0]["data"]["permalink"]
    listing["data"]["children"].append({"kind": "t1", "data": {}})
    replay = _token(Replay())
    replay.add(INFO.format(url=f"https://doi.org/{DOI}"), listing)
    replay.add_file(
        INFO.format(url=f"http://dx.doi.org/{DOI}"), shared_data("lagotto", "reddit_nil.json")
    )
    summary = run_source(store, "reddit", http=replay_client(replay))
    assert (summary.status, summary.stored, summary.quarantined) == ("ok", 6, 2)
    with store.session() as session:
        reasons = sorted(session.scalars(select(QuarantinedRecord.reason)))
    assert reasons == [
        "Reddit listing item #1: submission 't3_1ee560' has no permalink",
        "Reddit listing item #4: listing child is not a submission (kind 't1')",
    ]


def test_refused_credentials_fail_the_run_saying_what_to_set(store: Store) -> None:
    _track(store, Identifier("doi", DOI))
    update_settings(store, "reddit", SETTINGS)
    replay = Replay().add(
        LOGIN_URL, {"error": 401, "message": "Unauthorized"}, status=401, method="POST"
    )
    summary = run_source(store, "reddit", http=replay_client(replay))
    assert summary.status == "failed"
    assert "check client_id and client_secret" in summary.errors[0]
    assert SECRET not in " ".join(summary.errors)


def test_enabled_without_credentials_fails_saying_what_to_set(store: Store) -> None:
    _track(store, Identifier("doi", DOI))
    update_settings(store, "reddit", {"enabled": True})
    summary = run_source(store, "reddit", http=replay_client(Replay()))
    assert summary.status == "failed"
    assert "set client_id and client_secret" in summary.errors[0]
