"""Scoring over small hand-built stores whose scores are worked out by hand."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from typer.testing import CliRunner

from reachmeter.cli import app
from reachmeter.scoring import (
    ProfileError,
    attention,
    builtin_profiles,
    compute,
    compute_scores,
    context,
    load_profile,
    methods_log,
    parse_profile,
    read_score,
    update_scores,
)
from reachmeter.scoring.compute import (
    NO_DATE,
    NO_MENTIONS,
    NO_VENUE,
    ContextInput,
    ObservationPoint,
    observation_totals,
)
from reachmeter.scoring.explain import explain_output
from reachmeter.store import Store
from reachmeter.store.schema import Score
from tests.fixtures.scoring.builder import Builder, at

FIXTURES = Path(__file__).parent / "fixtures" / "scoring"
AS_OF = dt.date(2025, 6, 30)
runner = CliRunner()

# --- profiles -------------------------------------------------------------------------------


def test_shipped_profiles_load_with_name_and_version() -> None:
    assert builtin_profiles() == ["altmetric-like", "default"]
    for name in builtin_profiles():
        profile = load_profile(name)
        assert profile.name == name
        assert profile.version
        assert profile.description


def test_altmetric_like_has_the_published_weights() -> None:
    profile = load_profile("altmetric-like")
    expected = {
        "news": 8,
        "blog": 5,
        "policy": 3,
        "patent": 3,
        "wikipedia": 3,
        "peer-review": 1,
        "weibo": 1,
        "syllabus": 1,
        "linkedin": 0.5,
        "twitter": 0.25,
        "facebook": 0.25,
        "reddit": 0.25,
        "pinterest": 0.25,
        "youtube": 0.25,
        "qna": 0.25,
        "readers": 0,
        "citations": 0,
    }
    assert {kind: profile.weight(kind) for kind in expected} == expected
    assert profile.caps == {"wikipedia": 3}
    assert profile.kind_of_source("newsfeed") == "news"
    assert profile.kind_of_source("x") == "twitter"


@pytest.mark.parametrize(
    ("fixture", "line", "words"),
    [
        ("unknown_source.toml", 7, "unknown source 'myspace'"),
        ("negative_weight.toml", 6, "must not be negative"),
        ("syntax_error.toml", 6, "TOML syntax error"),
    ],
)
def test_a_bad_profile_is_an_error_naming_the_line(fixture: str, line: int, words: str) -> None:
    path = FIXTURES / fixture
    with pytest.raises(ProfileError) as raised:
        load_profile(path)
    assert f"{path}, line {line}:" in str(raised.value)
    assert words in str(raised.value)


def test_profile_settings_are_checked() -> None:
    base = 'name = "p"\nversion = "1"\n'
    for text, words in [
        ('name = "P Q"\nversion = "1"\n', "lower-case slug"),
        ('name = "p"\n', "version"),
        (base + '[flags]\nexclude = ["spam"]\n', "unknown flag kind 'spam'"),
        (base + "[flags]\nburst-posts = 0\n", "positive number"),
        (base + '[sources]\nmyblog = "diary"\n', "unknown kind 'diary'"),
        (base + 'colour = "red"\n', "unknown setting 'colour'"),
    ]:
        with pytest.raises(ProfileError, match=words):
            parse_profile(text, "p.toml")


def test_an_unknown_profile_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ProfileError, match="altmetric-like, default"):
        load_profile("nonesuch")


# --- attention, pure ------------------------------------------------------------------------


def test_attention_weighs_distinct_authors_and_caps_wikipedia() -> None:
    profile = load_profile("altmetric-like")
    t = at("2025-01-01")
    first_seen = {"news": [t], "twitter": [t, t, t], "wikipedia": [t, t], "policy": [t, t]}
    result = attention(first_seen, {"readers": 10.0}, profile)
    assert result.score == 8 + 0.75 + 3 + 6
    assert result.mentions == 8
    assert result.sources["wikipedia"] == {
        "count": 2,
        "weight": 3.0,
        "points": 3.0,
        "capped": True,
        "category": "mentions",
    }
    assert result.sources["readers"]["points"] == 0
    assert result.categories == {
        "usage": 0.0,
        "captures": 10.0,
        "mentions": 3.0,
        "social-media": 3.0,
        "citations": 2.0,
    }


def test_usage_figures_reissued_or_in_two_reports_count_once() -> None:
    jan, feb = dt.date(2025, 1, 1), dt.date(2025, 2, 1)
    first, reissue = at("2025-03-01"), at("2025-04-01")
    points = [
        ObservationPoint("unique-item-requests", "counter", 10, False, first, jan, "IR"),
        ObservationPoint("unique-item-requests", "counter", 4, False, first, feb, "IR"),
        # A corrected re-issue of the IR replaces January's figure.
        ObservationPoint("unique-item-requests", "counter", 12, False, reissue, jan, "IR"),
        # The same item's February in another report counts once (the larger figure).
        ObservationPoint("unique-item-requests", "counter", 5, False, first, feb, "TR"),
        # Total_ counts are not usage in the score (they repeat the unique ones).
        ObservationPoint("total-item-requests", "counter", 99, False, first, jan, "IR"),
        # Periodic figures without a period are each a period of their own.
        ObservationPoint("downloads", "zenodo", 3, False, first),
        ObservationPoint("downloads", "zenodo", 3, False, first),
    ]
    assert observation_totals(points, at("2025-12-31")) == {"usage": 12 + 5 + 6}
    # Before the re-issue, January's first figure stands.
    assert observation_totals(points, at("2025-03-15")) == {"usage": 10 + 5 + 6}


def test_context_ranks_within_the_four_groups_and_says_why_one_is_missing() -> None:
    rows = [
        ContextInput(1, 23.25, 11, "Journal A", dt.date(2025, 1, 1)),
        ContextInput(2, 8.0, 1, "Journal A", dt.date(2025, 1, 20)),
        ContextInput(3, 5.0, 1, "Journal B", dt.date(2025, 6, 1)),
        ContextInput(4, 0.25, 1, None, None),
        ContextInput(5, 0.0, 0, "Journal A", dt.date(2025, 1, 5)),
    ]
    result = context(rows)
    assert result[1]["all"] == {
        "count": 4,
        "mean": 9.125,
        "rank": 1,
        "higher_than": 3,
        "pct": 100.0,
    }
    assert result[2]["all"]["rank"] == 2
    assert result[2]["all"]["pct"] == 66.67
    assert result[2]["venue"] == {
        "count": 2,
        "mean": 15.625,
        "rank": 2,
        "higher_than": 0,
        "pct": 0.0,
    }
    assert result[1]["similar_age"]["count"] == 2  # 19 days apart; Journal B's is 5 months
    assert result[3]["similar_age"]["pct"] is None
    assert "no other output" in result[3]["similar_age"]["reason"]
    assert result[4]["venue"] == {"reason": NO_VENUE}
    assert result[4]["similar_age"] == {"reason": NO_DATE}
    assert result[5]["all"] == {"reason": NO_MENTIONS}
    for entry in result.values():
        for stats in entry.values():
            for value in stats.values():
                assert not (isinstance(value, float) and math.isnan(value))


def test_context_age_window_is_six_weeks_either_side() -> None:
    day = dt.date(2025, 3, 1)
    rows = [
        ContextInput(1, 1.0, 1, None, day),
        ContextInput(2, 2.0, 1, None, day + dt.timedelta(days=42)),
        ContextInput(3, 3.0, 1, None, day - dt.timedelta(days=42)),
        ContextInput(4, 4.0, 1, None, day + dt.timedelta(days=43)),
    ]
    result = context(rows)
    assert result[1]["similar_age"]["count"] == 3
    assert result[4]["similar_age"]["count"] == 2


# --- a hand-built store ---------------------------------------------------------------------


def build(store: Store) -> dict[str, int]:
    b = Builder(store)
    a = b.output("10.5555/a", published="2025-01-01")
    c = b.output("10.5555/c", published="2025-01-01")
    d = b.output("10.5555/d", published="2025-01-20")
    e = b.output("10.5555/e", venue="Journal B", published="2025-06-01")
    f = b.output("10.5555/f", venue=None, published=None)
    g = b.output("10.5555/g")
    march = at("2025-03-01")
    b.event(a, "newsfeed", "https://outlet.example/", march)
    b.event(a, "newsfeed", "https://outlet.example/", march)  # same outlet: counted once
    b.event(a, "wordpressdotcom", "https://blog.example/", at("2025-06-01"))
    for author in ("t1", "t2", "t3", "t1"):
        b.event(a, "twitter", f"https://twitter.com/{author}", march)
    b.event(a, "x", "https://twitter.com/t1", march)  # X and Twitter are one source
    b.event(a, "twitter", None, march, subj_id="https://twitter.com/t4/status/1")
    _, deleted = b.event(a, "twitter", "https://twitter.com/t5", march)
    b.delete_event(deleted)
    b.event(a, "wikipedia", "https://en.wikipedia.org/wiki/One", march)
    b.event(a, "wikipedia", "https://en.wikipedia.org/wiki/Two", march)
    b.event(a, "policy", "WHO", march)
    b.event(a, "policy", "WHO", march)  # a second document of the same policy source
    b.event(a, "policy", "NICE", march)
    b.event(a, "twitter", "https://twitter.com/late", at("2025-07-02"))  # after AS_OF
    b.observation("10.5555/a", "readers", 10, at("2025-05-01"), source_id="mendeley")
    b.event(c, "facebook", "https://facebook.com/f1", march)
    b.merge(c, a)
    b.event(d, "newsfeed", "https://outlet.example/", march)
    b.event(e, "wordpressdotcom", "https://blog.example/", march)
    b.event(f, "twitter", "https://twitter.com/t1", march)
    return {"a": a, "c": c, "d": d, "e": e, "f": f, "g": g}


# altmetric-like, as of 2025-06-30: news 8 + blog 5 + twitter 4 x 0.25 + wikipedia 3 (capped)
# + policy 2 sources x 3 + facebook (merged output) 0.25
SCORE_A = 8 + 5 + 1.0 + 3 + 6 + 0.25


def test_scores_count_distinct_authors_per_source(store: Store) -> None:
    ids = build(store)
    run = compute_scores(store, load_profile("altmetric-like"), AS_OF)
    assert run.scored == 5  # the merged output has no score of its own
    a = read_score(store, ids["a"], "altmetric-like")
    assert a is not None
    assert a["score"] == SCORE_A
    assert a["mentions"] == 11
    assert a["profile_version"] == "2021.1"
    sources = a["breakdown"]["sources"]
    assert {kind: part["count"] for kind, part in sources.items()} == {
        "news": 1,
        "blog": 1,
        "twitter": 4,
        "wikipedia": 2,
        "policy": 2,
        "facebook": 1,
        "readers": 10,
    }
    assert a["breakdown"]["categories"]["captures"] == 10
    assert read_score(store, ids["c"], "altmetric-like") is None
    g = read_score(store, ids["g"], "altmetric-like")
    assert g is not None
    assert g["score"] == 0
    assert g["context"]["all"] == {"reason": NO_MENTIONS}
    f = read_score(store, ids["f"], "altmetric-like")
    assert f is not None
    assert f["context"]["venue"] == {"reason": NO_VENUE}
    assert f["context"]["similar_age"] == {"reason": NO_DATE}


def test_context_and_history_as_of_a_date(store: Store) -> None:
    ids = build(store)
    profile = load_profile("altmetric-like")
    compute_scores(store, profile, AS_OF)
    a = read_score(store, ids["a"], "altmetric-like", AS_OF)
    assert a is not None
    assert a["context"]["all"] == {
        "count": 4,
        "mean": (SCORE_A + 8 + 5 + 0.25) / 4,
        "rank": 1,
        "higher_than": 3,
        "pct": 100.0,
    }
    assert a["context"]["venue"]["count"] == 2  # a and d; c is merged into a
    assert a["context"]["similar_age"]["count"] == 2
    # The blog post came on 1 June: within the last month; all else in March.
    assert a["history"] == {
        "1d": 0.0,
        "1w": 0.0,
        "1m": 5.0,
        "3m": 5.0,
        "6m": SCORE_A,
        "1y": SCORE_A,
        "at": SCORE_A,
    }
    compute_scores(store, profile, dt.date(2025, 5, 1))
    earlier = read_score(store, ids["a"], "altmetric-like", dt.date(2025, 5, 1))
    assert earlier is not None
    assert earlier["score"] == SCORE_A - 5
    again = read_score(store, ids["a"], "altmetric-like", AS_OF)
    assert again is not None
    assert again["score"] == SCORE_A  # the past report is still there, unchanged


def test_recomputing_replaces_scores_and_logs_changed_profiles(store: Store) -> None:
    build(store)
    profile = load_profile("default")
    first = compute_scores(store, profile, AS_OF)
    second = compute_scores(store, profile, AS_OF)
    assert first.new_method
    assert not second.new_method
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Score)).scalar() == 5
    changed = parse_profile(profile.text.replace("news = 8", "news = 10"), "edited.toml")
    assert compute_scores(store, changed, AS_OF).new_method
    log = methods_log(store, "default")
    assert len(log) == 2
    assert log[0]["sha256"] != log[1]["sha256"]
    assert log[1]["changed_at"] >= log[0]["changed_at"]


def test_incremental_update_matches_a_full_recompute(store: Store) -> None:
    ids = build(store)
    profile = load_profile("altmetric-like")
    compute_scores(store, profile, AS_OF)
    b = Builder(store)
    b.event(ids["d"], "wordpressdotcom", "https://blog.example/", at("2025-04-01"))
    run = update_scores(store, profile, AS_OF)
    assert run.scored == 1
    d = read_score(store, ids["d"], "altmetric-like", AS_OF)
    assert d is not None
    assert d["score"] == 13
    compute_scores(store, profile, AS_OF)
    full = read_score(store, ids["d"], "altmetric-like", AS_OF)
    assert full is not None
    assert (full["score"], full["history"], full["context"]) == (
        d["score"],
        d["history"],
        d["context"],
    )


def test_explain_lists_every_event_and_agrees_with_the_stored_score(store: Store) -> None:
    ids = build(store)
    profile = load_profile("altmetric-like")
    compute_scores(store, profile, AS_OF)
    result = explain_output(store, ids["a"], profile)
    assert result["score"] == result["stored"]["score"] == SCORE_A
    assert result["output"]["merged_from"] == [ids["c"]]
    events = result["events"]
    assert len(events) == 17
    # per event, before the Wikipedia cap takes 3 of the 6 points off
    assert sum(e["points"] for e in events if e["counted"]) == SCORE_A + 3
    reasons = {reason for e in events for reason in e["why_not"]}
    assert "deleted (a correction says so)" in reasons
    assert "occurred after 2025-06-30" in reasons
    assert "this author was already counted for this source" in reasons
    assert all(e["evidence"]["request_url"] == "file:///test" for e in events)
    assert all(e["match"]["method"] == "doi-literal" for e in events)
    assert result["observations"][0]["metric"] == "readers"


def test_flagged_mentions_count_only_when_the_profile_says_so(store: Store) -> None:
    b = Builder(store)
    output = b.output("10.5555/self")
    b.author(output, "Ada Author", "https://x.com/ada")
    b.event(output, "twitter", "https://twitter.com/ada", at("2025-03-01"))  # her own account
    b.event(output, "twitter", "https://twitter.com/reader", at("2025-03-01"))
    compute_scores(store, load_profile("default"), AS_OF)
    compute_scores(store, load_profile("altmetric-like"), AS_OF)
    own = read_score(store, output, "default", AS_OF)
    counted_all = read_score(store, output, "altmetric-like", AS_OF)
    assert own is not None
    assert counted_all is not None
    assert own["score"] == 0.25
    assert counted_all["score"] == 0.5
    assert own["flags"] == counted_all["flags"] == 1
    explained = explain_output(store, output, load_profile("default"), AS_OF)
    assert explained["flags"][0]["kind"] == "self-promotion"
    assert explained["flags"][0]["applied"] is True


# --- the command line -----------------------------------------------------------------------


def test_score_command_stores_and_prints_the_top_outputs(store_url: str) -> None:
    from reachmeter.store import open_store

    opened = open_store(store_url)
    try:
        build(opened)
    finally:
        opened.close()
    result = runner.invoke(
        app, ["score", "--db", store_url, "--profile", "altmetric-like", "--as-of", "2025-06-30"]
    )
    assert result.exit_code == 0, result.output
    assert "scored 5 outputs with altmetric-like 2021.1 as of 2025-06-30" in result.output
    assert f"{SCORE_A:g}" in result.output
    csv_out = runner.invoke(
        app, ["scores", "export", "--db", store_url, "--profile", "altmetric-like"]
    )
    assert csv_out.exit_code == 0, csv_out.output
    lines = csv_out.stdout.splitlines()
    assert lines[0].startswith("output_id,profile,profile_version,as_of,score")
    assert len(lines) == 6
    jsonl = runner.invoke(
        app,
        ["scores", "export", "--db", store_url, "--profile", "altmetric-like", "--format", "jsonl"],
    )
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert max(row["score"] for row in rows) == SCORE_A
    explained = runner.invoke(
        app,
        ["explain", "10.5555/a", "--db", store_url, "--profile", "altmetric-like", "--json"],
    )
    assert explained.exit_code == 0, explained.output
    assert json.loads(explained.stdout)["score"] == SCORE_A
    methods = runner.invoke(app, ["scores", "methods", "--db", store_url, "--json"])
    assert json.loads(methods.stdout.splitlines()[0])["profile"] == "altmetric-like"


def test_a_bad_profile_recomputes_nothing(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    path = FIXTURES / "negative_weight.toml"
    result = runner.invoke(app, ["score", "--db", db, "--profile", str(path)])
    assert result.exit_code == 2
    assert "line 6" in result.output
    assert "nothing was recomputed" in result.output
    assert not (tmp_path / "s.db").exists()


def test_export_without_scores_says_what_to_do(tmp_path: Path) -> None:
    result = runner.invoke(app, ["scores", "export", "--db", str(tmp_path / "s.db")])
    assert result.exit_code == 2
    assert "reachmeter score" in result.output


def test_incremental_update_follows_deletions_and_flags_new_self_promotion(store: Store) -> None:
    ids = build(store)
    profile = load_profile("default")
    compute_scores(store, profile, AS_OF)
    b = Builder(store)
    b.author(ids["e"], "Eve", "https://x.com/eve")
    b.event(ids["e"], "twitter", "https://twitter.com/eve", at("2025-04-01"))  # her own post
    _, key = b.event(ids["d"], "twitter", "https://twitter.com/gone", at("2025-04-01"))
    update_scores(store, profile, AS_OF)
    d = read_score(store, ids["d"], "default", AS_OF)
    e = read_score(store, ids["e"], "default", AS_OF)
    assert d is not None
    assert e is not None
    assert (d["score"], e["score"], e["flags"]) == (8.25, 5, 1)
    b.delete_event(key)
    run = update_scores(store, profile, AS_OF)
    assert run.scored == 1
    d = read_score(store, ids["d"], "default", AS_OF)
    assert d is not None
    assert d["score"] == 8


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 400),  # day offset
            st.integers(0, 3000),  # score in hundredths
            st.integers(0, 3),  # mentions
            st.sampled_from([None, "A", "B"]),
            st.booleans(),  # dated
        ),
        min_size=1,
        max_size=300,
    ),
    picks=st.lists(st.integers(0, 299), max_size=20),
)
def test_context_of_a_few_outputs_is_their_context_among_all(
    rows: list[tuple[int, int, int, str | None, bool]], picks: list[int]
) -> None:
    """An incremental run works out the context of the changed outputs alone (windows found
    by date, counted block by block); it must give exactly what the full run gives them."""
    start = dt.date(2020, 1, 1)
    inputs = [
        ContextInput(
            number,
            round(score / 100, 6),
            mentions,
            venue,
            start + dt.timedelta(days=offset) if dated else None,
        )
        for number, (offset, score, mentions, venue, dated) in enumerate(rows)
    ]
    wanted = {pick for pick in picks if pick < len(inputs)}
    everything = context(inputs)
    expected = {n: everything[n] for n in wanted}
    assert context(inputs, only=wanted) == expected
    block = compute._BLOCK
    compute._BLOCK = 4  # many small blocks: whole blocks and ends in most windows
    try:
        assert context(inputs, only=wanted) == expected
    finally:
        compute._BLOCK = block


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_context_of_a_few_among_thousands_is_their_full_context(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311  (test data, not secrets)
    start = dt.date(2020, 1, 1)
    inputs = [
        ContextInput(
            number,
            round(rng.randrange(0, 5000) / 4, 6),  # many ties
            rng.choice([0, 1, 1, 2]),
            rng.choice([None, "A", "B", "C"]),
            start + dt.timedelta(days=rng.randrange(1500)) if rng.random() > 0.05 else None,
        )
        for number in range(3000)
    ]
    wanted = set(rng.sample(range(3000), 60))
    everything = context(inputs)
    expected = {n: everything[n] for n in wanted}
    block = compute._BLOCK
    for size in (block, 16):
        compute._BLOCK = size
        try:
            assert context(inputs, only=wanted) == expected
        finally:
            compute._BLOCK = block
