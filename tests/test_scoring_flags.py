"""Data-quality and gaming flags, on hand-made rows and on a hand-built store."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from reachmeter.scoring import compute_scores, load_profile, read_score, update_scores
from reachmeter.scoring.flags import (
    AuthorActivity,
    EventRow,
    ObservationRow,
    account_key,
    find_bots,
    find_bursts,
    find_count_jumps,
    find_repeated_texts,
    find_self_promotion,
)
from reachmeter.scoring.profiles import FlagRules
from reachmeter.store import Store
from reachmeter.store.schema import ScoreFlag
from tests.fixtures.scoring.builder import Builder, at

RULES = FlagRules(burst_posts=3, burst_minutes=60, bot_outputs=3, repeat_copies=3)


def _event(number: int, when: dt.datetime, author: str = "a", text: str = "", output: int = 1):
    return EventRow(number, output, "twitter", author, when, text)


def test_a_burst_from_one_account_is_flagged_whole() -> None:
    events = [
        _event(1, at("2025-01-01", 10, 0)),
        _event(2, at("2025-01-01", 10, 20)),
        _event(3, at("2025-01-01", 10, 50)),
        _event(4, at("2025-01-01", 13, 0)),  # two hours later: not part of it
        _event(5, at("2025-01-01", 10, 30), author="b"),  # someone else
    ]
    flagged = find_bursts(events, RULES)
    assert sorted(f.event_id for f in flagged) == [1, 2, 3]
    assert {f.kind for f in flagged} == {"burst"}
    assert flagged[0].detail["posts"] == 3


def test_repeated_texts_flag_the_copies_but_not_share_buttons() -> None:
    title = "A study of sleep in students"
    custom = "Coordinated campaign message about this great research paper!"
    events = [
        _event(1, at("2025-01-01", 9), "a", f"{custom} https://doi.org/10.5555/x"),
        _event(2, at("2025-01-01", 10), "b", f"{custom} https://doi.org/10.5555/x"),
        _event(3, at("2025-01-01", 11), "c", f"  {custom.upper()}  "),
        _event(4, at("2025-01-01", 9), "d", f"{title} https://doi.org/10.5555/x"),
        _event(5, at("2025-01-01", 9), "e", f"{title} https://doi.org/10.5555/x"),
        _event(6, at("2025-01-01", 9), "f", f"{title[:20]}... https://doi.org/10.5555/x"),
    ]
    flagged = find_repeated_texts(events, RULES, {1: title})
    assert sorted(f.event_id for f in flagged) == [2, 3]
    assert flagged[0].detail == {"copies": 3, "first_event_id": 1}


def test_bots_post_about_many_outputs_fast_or_always_at_once() -> None:
    start = at("2025-01-01")
    rows = [
        AuthorActivity("twitter", "feed", 10, 10, start, start + dt.timedelta(days=100), 10),
        AuthorActivity("twitter", "spammer", 100, 50, start, start + dt.timedelta(days=2), 0),
        AuthorActivity("twitter", "reader", 20, 20, start, start + dt.timedelta(days=100), 5),
        AuthorActivity("twitter", "fan", 2, 2, start, start, 2),  # too few outputs
    ]
    bots = find_bots(rows, FlagRules(bot_outputs=3, bot_posts_per_day=20, bot_fresh_share=0.9))
    assert sorted(author for _, author in bots) == ["feed", "spammer"]
    assert bots[("twitter", "spammer")]["posts_per_day"] == 50.0


def test_counts_that_fall_or_jump_are_flagged() -> None:
    points = [
        ObservationRow(1, 1, "citations", "crossref", 10, at("2025-01-01")),
        ObservationRow(2, 1, "citations", "crossref", 12, at("2025-02-01")),
        ObservationRow(3, 1, "citations", "crossref", 5, at("2025-03-01")),  # fell
        ObservationRow(4, 1, "citations", "crossref", 5000, at("2025-03-02")),  # jumped
        ObservationRow(5, 1, "citations", "openalex", 3, at("2025-03-01")),
    ]
    flagged = find_count_jumps(points, FlagRules(jump_rise_per_day=1000))
    assert [(f.observation_id, f.detail["direction"]) for f in flagged] == [
        (3, "fall"),
        (4, "rise"),
    ]


def test_self_promotion_is_an_authors_own_account_or_the_organisations() -> None:
    assert account_key("https://x.com/Ada/") == account_key("http://www.twitter.com/ada")
    events = [
        _event(1, at("2025-01-01"), "https://twitter.com/ada"),
        _event(2, at("2025-01-01"), "https://twitter.com/ada", output=2),  # not her output
        _event(3, at("2025-01-01"), "https://twitter.com/ourlibrary", output=2),
        _event(4, at("2025-01-01"), "https://twitter.com/someone"),
    ]
    accounts = {
        account_key("https://x.com/ada"): (7, False),
        account_key("https://x.com/ourlibrary"): (None, True),
    }
    flagged = find_self_promotion(events, {1: {7}, 2: {8}}, accounts)
    assert [(f.event_id, f.detail) for f in flagged] == [
        (1, {"owner_person_id": 7}),
        (3, {"owner": "organisation"}),
    ]


def test_flags_are_stored_and_a_bot_stops_counting_under_the_default_profile(
    store: Store,
) -> None:
    b = Builder(store)
    outputs = [b.output(f"10.5555/bot{n}", published="2025-01-01") for n in range(20)]
    for output in outputs:
        b.event(output, "twitter", "https://twitter.com/newpapers", at("2025-01-01", 15))
    b.event(outputs[0], "twitter", "https://twitter.com/reader", at("2025-02-01"))
    compute_scores(store, load_profile("default"), dt.date(2025, 6, 30))
    with store.engine.connect() as connection:
        kinds = connection.execute(select(ScoreFlag.kind, ScoreFlag.subj_author)).all()
    assert len(kinds) == 20
    assert {kind for kind, _ in kinds} == {"bot"}
    first = read_score(store, outputs[0], "default")
    other = read_score(store, outputs[1], "default")
    assert first is not None
    assert other is not None
    assert first["score"] == 0.25  # the reader only
    assert first["flags"] == 1
    assert other["score"] == 0
    assert other["context"]["all"]["reason"].startswith("no mentions")


def _bursts(store: Store) -> list[tuple[int | None, int]]:
    """The stored burst flags: each flagged event with the burst's number of posts."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(ScoreFlag.event_id, ScoreFlag.detail).where(ScoreFlag.kind == "burst")
        ).all()
    return sorted((event_id, detail["posts"]) for event_id, detail in rows)


def test_an_incremental_run_flags_the_burst_a_new_post_completes(store: Store) -> None:
    """Four posts within the hour are no burst under the default profile (five are); the
    fifth, arriving later, makes one: the incremental run flags the five, not the same
    account's post two days later nor its post about another output, as a full run does."""
    b = Builder(store)
    output = b.output("10.5555/burst", published="2024-12-01")
    other = b.output("10.5555/calm", published="2024-12-01")
    author = "https://twitter.com/eager"
    burst = [
        b.event(output, "twitter", author, at("2025-01-01", 10, m))[0] for m in (0, 10, 20, 30)
    ]
    b.event(output, "twitter", author, at("2025-01-03", 10))
    b.event(other, "twitter", author, at("2025-01-01", 10, 35))
    b.event(output, "twitter", "https://twitter.com/reader", at("2025-01-01", 10, 5))
    profile = load_profile("default")
    day = dt.date(2025, 6, 30)
    compute_scores(store, profile, day)

    assert _bursts(store) == []
    burst.append(b.event(output, "twitter", author, at("2025-01-01", 10, 40))[0])
    run = update_scores(store, profile, day)
    assert (run.scored, run.flags) == (1, 5)
    assert _bursts(store) == [(event_id, 5) for event_id in sorted(burst)]
    incremental = read_score(store, output, "default", day)
    compute_scores(store, profile, day)
    assert _bursts(store) == [(event_id, 5) for event_id in sorted(burst)]
    full = read_score(store, output, "default", day)
    assert incremental is not None
    assert full is not None
    assert (incremental["score"], incremental["flags"]) == (full["score"], full["flags"])


def test_an_incremental_run_leaves_deleted_posts_out_of_bursts(store: Store) -> None:
    """Five posts within the hour, but one of the earlier four deleted: the fifth makes no
    burst. A sixth then does, and the deleted post stays unflagged; a deleted new post is
    never flagged either."""
    b = Builder(store)
    output = b.output("10.5555/burst-deleted", published="2024-12-01")
    author = "https://twitter.com/eager"
    earlier = [b.event(output, "twitter", author, at("2025-01-01", 10, m)) for m in (0, 10, 20, 30)]
    b.delete_event(earlier[1][1])
    profile = load_profile("default")
    day = dt.date(2025, 6, 30)
    compute_scores(store, profile, day)

    fifth = b.event(output, "twitter", author, at("2025-01-01", 10, 40))[0]
    assert update_scores(store, profile, day).flags == 0
    assert _bursts(store) == []
    gone_id, gone_key = b.event(output, "twitter", author, at("2025-01-01", 10, 45))
    b.delete_event(gone_key)
    sixth = b.event(output, "twitter", author, at("2025-01-01", 10, 50))[0]
    assert update_scores(store, profile, day).flags == 5
    expected = sorted([earlier[0][0], earlier[2][0], earlier[3][0], fifth, sixth])
    assert gone_id not in expected
    assert _bursts(store) == [(event_id, 5) for event_id in expected]
