"""The YouTube source against project fixtures written from the Data API v3's documented
shapes (tests/fixtures/sources/youtube; no real recording exists)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from reachmeter.matching.identifiers import Identifier
from reachmeter.sources.runner import PAUSE_AFTER, run_source, update_settings
from reachmeter.sources.testing import Replay, replay_client
from reachmeter.sources.youtube import channel_query
from reachmeter.store import Store
from reachmeter.store.catalog import add_account, upsert_output
from reachmeter.store.schema import (
    Account,
    Correction,
    Event,
    Evidence,
    Observation,
    QuarantinedRecord,
    Run,
)
from reachmeter.store.schema import Source as SourceRow

FIXTURES = Path(__file__).parent / "fixtures" / "sources" / "youtube"
API = "https://www.googleapis.com/youtube/v3"
KEY = "AIzaSy-test-key-0000000000000000000"
UPLOADS = "UUq9rHkZl0vX3dJcM5nT7sAw"
VIDEOS = "aaaaaaaaaa1,bbbbbbbbbb2,cccccccccc3,dddddddddd4"


def _prepare(store: Store, *, key: str = KEY) -> None:
    with store.session() as session:
        add_account(session, "youtube", "@ReachMeterLab", owner=None, org=True)
        upsert_output(session, identifiers=[Identifier("doi", "10.5281/zenodo.1234567")])
        upsert_output(
            session, identifiers=[Identifier("url", "https://example.org/reports/open-data-2024")]
        )
    update_settings(store, "youtube", {"api_key": key})


def _replay() -> Replay:
    replay = Replay()
    replay.add_file(
        f"{API}/channels?part=snippet,statistics,contentDetails&forHandle=@reachmeterlab&key={KEY}",
        FIXTURES / "channels_handle.json",
    )
    listing = (
        f"{API}/playlistItems?part=contentDetails&playlistId={UPLOADS}&maxResults=50&key={KEY}"
    )
    replay.add_file(listing, FIXTURES / "playlist_page1.json")
    replay.add_file(f"{listing}&pageToken=EAAaBlBUOkNBSQ", FIXTURES / "playlist_page2.json")
    replay.add_file(
        f"{API}/videos?part=snippet,statistics&id={VIDEOS}&key={KEY}", FIXTURES / "videos.json"
    )
    return replay


def _observations(store: Store) -> dict[tuple[str, str], float]:
    with store.session() as session:
        rows = session.execute(
            select(
                Observation.obj_value,
                Observation.account_id,
                Observation.metric,
                Observation.value,
                Observation.period_start,
            )
        ).all()
    found: dict[tuple[str, str], float] = {}
    for obj, account, metric, value, start in rows:
        subject = obj or f"account {account} {start or ''}".strip()
        found[(subject, metric)] = found.get((subject, metric), 0) + value
    return found


def test_channel_videos_give_followers_video_figures_posts_and_mentions(store: Store) -> None:
    _prepare(store)
    replay = _replay()
    summary = run_source(store, "youtube", http=replay_client(replay))
    assert summary.status == "ok", summary.errors
    assert summary.fetched == 4
    assert summary.quarantined == 2
    figures = _observations(store)
    with store.session() as session:
        account_id = session.scalars(select(Account.id)).one()
        events = session.scalars(select(Event).order_by(Event.obj_value)).all()
        reasons = sorted(session.scalars(select(QuarantinedRecord.reason)))
    assert figures[(f"account {account_id}", "followers")] == 2310
    assert figures[(f"account {account_id}", "views")] == 184302
    assert figures[(f"account {account_id}", "videos")] == 4
    assert figures[("https://www.youtube.com/watch?v=aaaaaaaaaa1", "views")] == 1520
    assert figures[("https://www.youtube.com/watch?v=aaaaaaaaaa1", "likes")] == 87
    assert figures[("https://www.youtube.com/watch?v=aaaaaaaaaa1", "comments")] == 12
    # A hidden like count is not a zero.
    assert ("https://www.youtube.com/watch?v=bbbbbbbbbb2", "likes") not in figures
    # Two videos on 14 February, one on 1 March: posts per day add up.
    assert figures[(f"account {account_id} 2024-02-14", "posts")] == 2
    assert figures[(f"account {account_id} 2024-03-01", "posts")] == 1
    assert len(figures) == 3 + 3 + 2 + 3 + 2
    assert summary.stored == 3 + 3 + 2 + 3 + 3 + len(events)
    assert [(e.obj_scheme, e.obj_value) for e in events] == [
        ("doi", "10.5281/zenodo.1234567"),
        ("doi", "10.9999/not-tracked"),
        ("url", "https://example.org/reports/open-data-2024"),
        ("url", "https://example.org/slides"),
    ]
    arabic = next(e for e in events if e.subj_id.endswith("bbbbbbbbbb2"))
    # Right-to-left text, emoji and HTML are kept exactly, as data.
    assert arabic.subj["title"] == 'لماذا البيانات المفتوحة مهمة 🔬📊 <i onmouseover="x()">live</i>'
    assert arabic.relation_type_id == "discusses"
    assert arabic.subj_author == "https://www.youtube.com/channel/UCq9rHkZl0vX3dJcM5nT7sAw"
    assert reasons == ["playlist item without a video id", "video dddddddddd4 has no snippet"]


def test_rerun_the_same_day_adds_nothing(store: Store) -> None:
    _prepare(store)
    run_source(store, "youtube", http=replay_client(_replay()))
    with store.session() as session:
        before = session.scalar(select(func.count()).select_from(Observation))
    again = run_source(store, "youtube", http=replay_client(_replay()))
    assert again.stored == 0
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Observation)) == before


def _later_replay() -> Replay:
    listing = (
        f"{API}/playlistItems?part=contentDetails&playlistId={UPLOADS}&maxResults=50&key={KEY}"
    )
    return (
        Replay()
        .add_file(
            f"{API}/channels?part=snippet,statistics,contentDetails&forHandle=@reachmeterlab"
            f"&key={KEY}",
            FIXTURES / "channels_handle.json",
        )
        .add_file(listing, FIXTURES / "playlist_later.json")
        .add_file(
            f"{API}/videos?part=snippet,statistics&id=aaaaaaaaaa1,cccccccccc3,dddddddddd4"
            f"&key={KEY}",
            FIXTURES / "videos_later.json",
        )
    )


def test_an_edited_description_and_a_deleted_video_withdraw_their_mentions(
    store: Store,
) -> None:
    _prepare(store)
    run_source(store, "youtube", http=replay_client(_replay()))
    later = run_source(store, "youtube", http=replay_client(_later_replay()))
    assert later.status == "ok", later.errors
    with store.session() as session:
        keys = {e.event_key: e for e in session.scalars(select(Event))}
        corrections = session.scalars(select(Correction)).all()
    withdrawn = sorted(
        (keys[c.target_key].subj_id[-11:], keys[c.target_key].obj_value, c.action, c.reason)
        for c in corrections
    )
    assert withdrawn == [
        (
            "aaaaaaaaaa1",
            "10.5281/zenodo.1234567",
            "deleted",
            "video aaaaaaaaaa1 no longer links to the output (edited)",
        ),
        (
            "aaaaaaaaaa1",
            "10.9999/not-tracked",
            "deleted",
            "video aaaaaaaaaa1 no longer links to the output (edited)",
        ),
        (
            "bbbbbbbbbb2",
            "https://example.org/reports/open-data-2024",
            "deleted",
            "video bbbbbbbbbb2 is no longer public (deleted or made private)",
        ),
    ]
    # The withdrawals are recorded once: the next run finds nothing more to withdraw.
    again = run_source(store, "youtube", http=replay_client(_later_replay()))
    assert again.stored == 0


def test_the_api_key_never_reaches_evidence_or_the_run_log(store: Store) -> None:
    _prepare(store)
    run_source(store, "youtube", http=replay_client(_replay()))
    with store.session() as session:
        text = " ".join(
            [
                *(e.request_url + (e.payload or "") for e in session.scalars(select(Evidence))),
                *(json.dumps(r.detail) for r in session.scalars(select(Run))),
            ]
        )
    assert KEY not in text
    assert "key=REDACTED" in text


def test_used_up_quota_fails_the_run_saying_what_to_set_and_pauses_the_source(
    store: Store,
) -> None:
    _prepare(store)
    body = (FIXTURES / "quota_exceeded.json").read_bytes()
    for _ in range(PAUSE_AFTER):
        replay = Replay()
        replay.fallback = lambda request: httpx.Response(403, content=body)
        summary = run_source(store, "youtube", http=replay_client(replay))
        assert summary.status == "failed"
    message = summary.errors[-1]
    assert "HTTP 403" in message
    assert "daily quota" in message
    assert "reachmeter sources set youtube api_key" in message
    assert KEY not in message
    with store.session() as session:
        row = session.get(SourceRow, "youtube")
    assert row is not None
    assert not row.enabled
    assert "daily quota" in (row.paused_reason or "")


def test_a_channel_to_collect_without_a_key_is_a_clear_error(store: Store) -> None:
    _prepare(store, key="")
    summary = run_source(store, "youtube", http=replay_client(Replay()))
    assert summary.status == "failed"
    assert "YouTube needs an API key" in summary.errors[0]


def test_no_channels_means_no_requests_and_no_key_needed(store: Store) -> None:
    replay = Replay()
    summary = run_source(store, "youtube", http=replay_client(replay))
    assert (summary.status, summary.fetched) == ("ok", 0)
    assert replay.requests == []


def test_an_unknown_handle_is_skipped_with_its_name(store: Store) -> None:
    _prepare(store)
    replay = Replay().add_file(
        f"{API}/channels?part=snippet,statistics,contentDetails&forHandle=@reachmeterlab&key={KEY}",
        FIXTURES / "channels_unknown.json",
    )
    summary = run_source(store, "youtube", http=replay_client(replay))
    assert (summary.status, summary.skipped) == ("partial", 1)
    assert "YouTube has no channel @reachmeterlab" in summary.errors[0]


@pytest.mark.parametrize(
    ("handle", "query"),
    [
        ("@reachmeterlab", {"forHandle": "@reachmeterlab"}),
        ("UCq9rHkZl0vX3dJcM5nT7sAw", {"id": "UCq9rHkZl0vX3dJcM5nT7sAw"}),
        (
            "https://www.youtube.com/channel/UCq9rHkZl0vX3dJcM5nT7sAw",
            {"id": "UCq9rHkZl0vX3dJcM5nT7sAw"},
        ),
        ("https://youtube.com/@reachmeterlab", {"forHandle": "@reachmeterlab"}),
        ("https://www.youtube.com/user/oldname", {"forUsername": "oldname"}),
        ("https://www.youtube.com/watch?v=aaaaaaaaaa1", None),
        ("not a channel", None),
    ],
)
def test_channel_query_reads_each_form_of_account(
    handle: str, query: dict[str, str] | None
) -> None:
    assert channel_query(handle) == query
