"""Counting distinct authors for scores: the first mentions kept as matches come and go, the
counts from them against the same counts worked out from the events, and the scorer's
JSON against the scores it stands for."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
from alembic import command
from sqlalchemy import delete, func, select, text

from reachmeter.matching.match import match_events
from reachmeter.records import key_hash
from reachmeter.scoring import compute_scores, load_profile, read_score, run, update_scores
from reachmeter.scoring.compute import HISTORY_PERIODS, CountScorer, as_of_end
from reachmeter.scoring.kinds import EVENT_KINDS
from reachmeter.scoring.load import load_counts, load_merged, members_of, roots
from reachmeter.scoring.profiles import Profile
from reachmeter.store import Store, open_store
from reachmeter.store.corrections import accept_request
from reachmeter.store.engine import alembic_config, make_engine
from reachmeter.store.schema import (
    Correction,
    Event,
    EventMatch,
    Evidence,
    FirstMention,
    MentionTotal,
    Score,
    ScoreFlag,
    ScoreSnapshot,
)
from reachmeter.store.schema_web import CorrectionRequest
from tests.fixtures.scoring.builder import Builder, at

AS_OF = dt.date(2025, 6, 30)
_numbers = itertools.count(1)


def _event(
    store: Store, doi: str, source_id: str, author: str | None, when: dt.datetime
) -> tuple[int, str]:
    """An event about ``doi``, stored unmatched (as ingest leaves it): its id and subject."""
    number = next(_numbers)
    key = f"counts-{number}"
    subject = f"https://{source_id}.example/post/{number}"
    with store.session() as session:
        evidence = session.scalars(select(Evidence.id).where(Evidence.source_id == "test")).one()
        event = Event(
            key_hash=key_hash(key),
            event_key=key,
            subj_id=subject,
            relation_type_id="discusses",
            obj_id=f"https://doi.org/{doi}",
            obj_scheme="doi",
            obj_value=doi,
            source_id=source_id,
            occurred_at=when,
            collected_at=when,
            subj_author=author,
            evidence_id=evidence,
        )
        session.add(event)
        session.flush()
        return event.id, subject


def _first_mentions(store: Store) -> list[tuple[int, str, str, dt.datetime]]:
    with store.session() as session:
        rows = session.execute(
            select(
                FirstMention.output_id,
                FirstMention.source_id,
                FirstMention.author,
                FirstMention.first_at,
            ).order_by(FirstMention.source_id, FirstMention.author)
        ).all()
    return [(o, s, a, t) for o, s, a, t in rows]


def _totals(store: Store) -> list[tuple[int, str, int]]:
    """The stored mention totals, after checking that they count the first mentions."""
    with store.session() as session:
        stored = session.execute(
            select(MentionTotal.output_id, MentionTotal.source_id, MentionTotal.authors).order_by(
                MentionTotal.output_id, MentionTotal.source_id
            )
        ).all()
        counted = session.execute(
            select(FirstMention.output_id, FirstMention.source_id, func.count())
            .group_by(FirstMention.output_id, FirstMention.source_id)
            .order_by(FirstMention.output_id, FirstMention.source_id)
        ).all()
    assert [tuple(row) for row in stored] == [tuple(row) for row in counted]
    return [(o, s, n) for o, s, n in stored]


def _reject_match(store: Store, event_id: int, output_id: int) -> None:
    with store.session() as session:
        request = CorrectionRequest(output_id=output_id, event_id=event_id, reason="not it")
        session.add(request)
        session.flush()
        number = request.id
    assert accept_request(store, number, "editor@example.org").matches_removed == 1


def test_first_mentions_follow_matching_and_removed_matches(store: Store) -> None:
    b = Builder(store)
    doi = "10.5555/first"
    output = b.output(doi)
    _event(store, doi, "twitter", "https://twitter.com/u1", at("2025-03-05"))
    _event(store, doi, "twitter", "https://twitter.com/u1", at("2025-03-01"))
    news, _ = _event(store, doi, "newsfeed", "https://outlet.example/", at("2025-04-01"))
    _, nameless = _event(store, doi, "twitter", None, at("2025-04-02"))
    with store.begin() as connection:
        assert match_events(connection).new_matches == 4
    expected = [
        (output, "newsfeed", "https://outlet.example/", at("2025-04-01")),
        (output, "twitter", "https://twitter.com/u1", at("2025-03-01")),
        (output, "twitter", nameless, at("2025-04-02")),
    ]
    assert _first_mentions(store) == expected
    assert _totals(store) == [(output, "newsfeed", 1), (output, "twitter", 2)]

    # A later match of an earlier post moves the first mention back; matching again
    # changes nothing.
    earliest, _ = _event(store, doi, "twitter", "https://twitter.com/u1", at("2025-02-01"))
    with store.begin() as connection:
        assert match_events(connection).new_matches == 1
        assert match_events(connection).new_matches == 0
    expected[1] = (output, "twitter", "https://twitter.com/u1", at("2025-02-01"))
    assert _first_mentions(store) == expected
    assert _totals(store) == [(output, "newsfeed", 1), (output, "twitter", 2)]

    # A removed match that was the first leaves the next one first; the only one, nothing.
    _reject_match(store, earliest, output)
    expected[1] = (output, "twitter", "https://twitter.com/u1", at("2025-03-01"))
    assert _first_mentions(store) == expected
    assert _totals(store) == [(output, "newsfeed", 1), (output, "twitter", 2)]
    _reject_match(store, news, output)
    assert _first_mentions(store) == expected[1:]
    assert _totals(store) == [(output, "twitter", 2)]


def _expected_counts(
    store: Store, profile: Profile, cutoffs: list[dt.datetime]
) -> dict[int, dict[str, list[int]]]:
    """Worked out from every matched event, the plain way: per kept output, kind and author
    the first counted mention, then how many are before each cutoff."""
    mapping = {**EVENT_KINDS, **profile.sources}
    with store.begin() as connection:
        root = roots(load_merged(connection))
        deleted = set(
            connection.scalars(select(Correction.target_key).where(Correction.action == "deleted"))
        )
        flagged = set(
            connection.scalars(
                select(ScoreFlag.event_id).where(ScoreFlag.kind.in_(profile.flags.exclude))
            )
        )
        rows = connection.execute(
            select(
                EventMatch.output_id,
                Event.id,
                Event.event_key,
                Event.source_id,
                Event.subj_author,
                Event.subj_id,
                Event.occurred_at,
            ).join(Event, Event.id == EventMatch.event_id)
        ).all()
    firsts: dict[tuple[int, str, str], dt.datetime] = {}
    for output_id, event_id, key, source_id, author, subject, occurred in rows:
        if key in deleted or event_id in flagged or occurred >= cutoffs[0]:
            continue
        slot = (root.get(output_id, output_id), mapping.get(source_id, "other"), author or subject)
        firsts[slot] = min(firsts.get(slot, occurred), occurred)
    counts: dict[int, dict[str, list[int]]] = defaultdict(dict)
    for (kept, kind, _author), first in firsts.items():
        numbers = counts[kept].setdefault(kind, [0] * len(cutoffs))
        for index, cut in enumerate(cutoffs):
            numbers[index] += first < cut
    return dict(counts)


@pytest.mark.parametrize("seed", [3, 17])
def test_counts_from_first_mentions_are_the_counts_from_the_events(store: Store, seed: int) -> None:
    """Random mentions, with what makes counting from first mentions alone wrong: two
    sources of one kind (twitter and x, wordpressdotcom and blogs) and one author on both,
    merged outputs (one a chain), deleted mentions, and mentions flagged as a bot's."""
    rng = random.Random(seed)  # noqa: S311
    b = Builder(store)
    outputs = [b.output(f"10.5555/counts-{seed}-{n}") for n in range(12)]
    sources = ["twitter", "x", "newsfeed", "wordpressdotcom", "blogs", "wikipedia", "zzz"]
    authors = [f"https://social.example/u{n}" for n in range(8)] + [None]
    start = at("2024-06-01")
    events: list[tuple[int, str]] = []
    for _ in range(160):
        when = start + dt.timedelta(minutes=rng.randrange(420 * 24 * 60))  # past AS_OF too
        events.append(b.event(rng.choice(outputs), rng.choice(sources), rng.choice(authors), when))
    b.merge(outputs[1], outputs[0])
    b.merge(outputs[3], outputs[4])
    b.merge(outputs[4], outputs[5])
    for _, key in rng.sample(events, 12):
        b.delete_event(key)
    with store.session() as session:
        for event_id, _ in rng.sample(events, 10):
            session.add(ScoreFlag(kind="bot", event_id=event_id, detail={}))
        for event_id, _ in rng.sample(events, 10):
            session.add(ScoreFlag(kind="burst", event_id=event_id, detail={}))
    profile = load_profile("default")  # excludes bots, not bursts
    end = as_of_end(AS_OF)
    cutoffs = [end] + [end - length for length in HISTORY_PERIODS.values() if length]
    expected = _expected_counts(store, profile, cutoffs)
    assert len(expected) == 9  # 12 outputs, 3 merged into others
    assert sum(n for _, _, n in _totals(store)) == len(_first_mentions(store))
    with store.begin() as connection:
        root = roots(load_merged(connection))
        assert load_counts(connection, profile, cutoffs, root) == expected
        # As an incremental run asks: the changed outputs and all merged with them.
        some = members_of(load_merged(connection), [outputs[0], outputs[3], outputs[6]])
        assert set(some) == {outputs[0], outputs[1], outputs[3], outputs[4], outputs[5], outputs[6]}
        counted = load_counts(connection, profile, cutoffs, root, set(some))
    wanted = set(some.values())
    assert counted == {kept: kinds for kept, kinds in expected.items() if kept in wanted}


@pytest.mark.parametrize("seed", range(4))
def test_the_scorer_writes_the_json_of_the_scores_it_works_out(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311
    profile = load_profile(rng.choice(["default", "altmetric-like"]))
    scorer = CountScorer(profile)
    kinds = ["twitter", "news", "blog", "wikipedia", "policy", "other", "readers", "zz"]
    for _ in range(300):
        counts: dict[str, list[int]] = {}
        for kind in rng.sample(kinds, rng.randrange(len(kinds) + 1)):
            numbers = sorted((rng.randrange(6) for _ in range(7)), reverse=True)
            counts[kind] = numbers
        result, changes = scorer.score(counts, {})
        assert scorer.texts(counts) == (
            result.score,
            result.mentions,
            orjson.dumps(result.breakdown()).decode(),
            orjson.dumps(changes).decode(),
        )
        assert CountScorer(profile).score(counts, {}) == (result, changes)


def _parts(store: Store) -> list[int]:
    with store.session() as session:
        return list(session.scalars(select(ScoreSnapshot.part).order_by(ScoreSnapshot.part)))


def test_an_incremental_run_compares_with_the_kept_table_or_else_the_stored_scores(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each incremental run adds the rows it changed to the kept table as a part; past
    ``_TABLE_PARTS`` parts the table is kept whole again. A store scored before the table
    was kept: the incremental run reads the stored scores instead, with the same result."""
    monkeypatch.setattr(run, "_TABLE_PARTS", 3)
    b = Builder(store)
    ids = [b.output(f"10.5555/kept-{n}", venue="Journal", published="2025-01-01") for n in range(6)]
    for n, output in enumerate(ids):
        for author in range(n + 1):
            b.event(output, "twitter", f"https://twitter.com/a{author}", at("2025-03-01"))
    profile = load_profile("default")
    compute_scores(store, profile, AS_OF)
    assert _parts(store) == [0]
    for number, output in enumerate(ids[:3]):  # 8 + (n + 1) x 0.25: each the highest
        b.event(output, "newsfeed", "https://outlet.example/", at("2025-04-01"))
        update_scores(store, profile, AS_OF)
        scored = read_score(store, output, "default", AS_OF)
        assert scored is not None
        assert scored["context"]["all"]["rank"] == 1
        assert scored["context"]["all"]["count"] == 6
        assert _parts(store) == [[0, 1], [0, 1, 2], [0]][number]
    b.event(ids[4], "newsfeed", "https://outlet.example/", at("2025-04-02"))
    with store.begin() as connection:
        connection.execute(delete(ScoreSnapshot))
    update_scores(store, profile, AS_OF)
    fallback = read_score(store, ids[4], "default", AS_OF)
    assert fallback is not None
    assert fallback["context"]["all"]["rank"] == 1  # 8 + 5 x 0.25
    assert fallback["context"]["venue"]["mean"] == round((8 * 4 + 0.25 * 21) / 6, 6)
    compute_scores(store, profile, AS_OF)
    full = read_score(store, ids[4], "default", AS_OF)
    assert full is not None
    assert fallback["context"] == full["context"]
    assert _parts(store) == [0]


def test_migrating_a_store_fills_in_the_matches_and_first_mentions(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = make_engine(path)
    with engine.begin() as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.upgrade(config, "0008")
        for statement in (
            "INSERT INTO outputs (id, type, title, extra, is_demo, created_at, updated_at)"
            " VALUES (1, 'article', 'A', '{}', 0, '2025-01-01 00:00:00', '2025-01-01 00:00:00')",
            "INSERT INTO evidence (id, source_id, source_version, request_url, payload_sha256,"
            " collected_at) VALUES (1, 'test', '1', 'file:///', '0', '2025-01-01 00:00:00')",
            *(
                "INSERT INTO events (id, key_hash, event_key, subj_id, relation_type_id, obj_id,"
                " obj_scheme, obj_value, source_id, occurred_at, collected_at, subj_author,"
                f" evidence_id) VALUES ({n}, {n}, 'k{n}', 'https://t.example/{n}', 'discusses',"
                f" 'https://doi.org/10.5555/a', 'doi', '10.5555/a', 'twitter', '{when}',"
                f" '{when}', {author}, 1)"
                for n, when, author in (
                    (1, "2025-03-02 10:00:00.000000", "'https://twitter.com/u1'"),
                    (2, "2025-03-01 10:00:00.000000", "'https://twitter.com/u1'"),
                    (3, "2025-03-03 10:00:00.000000", "NULL"),
                )
            ),
            *(
                "INSERT INTO event_matches (event_id, output_id, identifier, method,"
                f" verification, matched_at) VALUES ({n}, 1, 'doi:10.5555/a', 'doi-literal',"
                " 'literal', '2025-04-01 00:00:00')"
                for n in (1, 2, 3)
            ),
        ):
            connection.execute(text(statement))
    engine.dispose()
    store = open_store(path)
    try:
        with store.session() as session:
            copied = session.execute(
                select(EventMatch.event_id, EventMatch.source_id, EventMatch.author).order_by(
                    EventMatch.event_id
                )
            ).all()
        assert [tuple(row) for row in copied] == [
            (1, "twitter", "https://twitter.com/u1"),
            (2, "twitter", "https://twitter.com/u1"),
            (3, "twitter", "https://t.example/3"),
        ]
        assert _first_mentions(store) == [
            (1, "twitter", "https://t.example/3", at("2025-03-03", 10)),
            (1, "twitter", "https://twitter.com/u1", at("2025-03-01", 10)),
        ]
        assert _totals(store) == [(1, "twitter", 2)]
    finally:
        store.close()


def test_a_full_run_split_over_two_processes_stores_the_same_scores(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large store is counted and scored half in a second process: the same scores,
    history and context as in one process, on every kind of output (merged, with a
    mention that does not count, with observations, on two sources of one kind)."""
    rng = random.Random(5)  # noqa: S311
    b = Builder(store)
    outputs = [
        b.output(f"10.5555/split-{n}", venue=f"J{n % 3}", published=f"2025-0{1 + n % 5}-01")
        for n in range(30)
    ]
    sources = ["twitter", "x", "newsfeed", "wordpressdotcom", "wikipedia"]
    events = [
        b.event(
            rng.choice(outputs),
            rng.choice(sources),
            f"https://social.example/u{rng.randrange(12)}",
            at("2024-07-01") + dt.timedelta(hours=rng.randrange(365 * 24)),
        )
        for _ in range(300)
    ]
    b.merge(outputs[20], outputs[2])
    b.delete_event(events[0][1])
    b.observation("10.5555/split-25", "readers", 7, at("2025-05-01"), source_id="mendeley")
    profile = load_profile("default")

    def stored() -> list[tuple[object, ...]]:
        with store.session() as session:
            rows = session.execute(
                select(Score.output_id, Score.score, Score.breakdown, Score.history, Score.context)
                .where(Score.as_of == AS_OF)
                .order_by(Score.output_id)
            ).all()
        return [tuple(row) for row in rows]

    compute_scores(store, profile, AS_OF)
    alone = stored()
    assert len(alone) == 29
    monkeypatch.setattr(run, "SPLIT_OUTPUTS", 0)
    monkeypatch.setattr(run.os, "cpu_count", lambda: 2)
    calls: list[int] = []
    split = run._counted_in_two
    monkeypatch.setattr(run, "_counted_in_two", lambda *args: calls.append(1) or split(*args))
    compute_scores(store, profile, AS_OF)
    assert calls == [1]
    assert stored() == alone
    # A daemonic process may not start another: it counts everything itself.
    monkeypatch.setattr(run.multiprocessing.current_process(), "daemon", True)
    compute_scores(store, profile, AS_OF)
    assert calls == [1]
    assert stored() == alone


def test_a_full_run_keeps_the_tables_of_the_last_week_only(store: Store) -> None:
    b = Builder(store)
    output = b.output("10.5555/days")
    b.event(output, "twitter", "https://twitter.com/a", at("2025-03-01"))
    profile = load_profile("default")
    days = [AS_OF - dt.timedelta(days=n) for n in (10, 7, 0)]
    for day in days:
        compute_scores(store, profile, day)
    with store.session() as session:
        kept = session.scalars(select(ScoreSnapshot.as_of).order_by(ScoreSnapshot.as_of))
        assert list(kept) == days[1:]
