"""The demo organisation: deterministic, realistic in size and skew, and loaded end to end."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections import Counter
from pathlib import Path

import idutils
import orjson
import pytest
from typer.testing import CliRunner

from reachmeter.cli import app
from reachmeter.demo import DemoData, build_demo, generate_demo
from reachmeter.demo.generate import orcid_check_digit
from reachmeter.store.catalog import normalize_account, normalize_output_type

POST_SHAPES = {
    "twitter": r"^https://twitter\.com/[A-Za-z0-9_]+/status/\d+$",
    "bluesky": r"^https://bsky\.app/profile/[a-z0-9.-]+/post/[2-7a-z]{13}$",
    "mastodon": r"^https://[a-z0-9.-]+/@[a-z0-9_.]+/\d+$",
    "reddit": r"^https://www\.reddit\.com/r/\w+/comments/[0-9a-z]{7}/[a-z0-9-]+/$",
    "hackernews": r"^https://news\.ycombinator\.com/item\?id=\d+$",
    "wikipedia": r"^https://en\.wikipedia\.org/wiki/\w+$",
    "newsfeed": r"^https://www\.[a-z0-9.-]+\.example/",
    "policy": r"^https://www\.[a-z0-9.-]+\.example/publications/",
    "wordpressdotcom": r"^https://[a-z0-9.-]+\.example/\d{4}/\d{2}/\d{2}/",
    "linkedin": r"^https://www\.linkedin\.com/posts/",
    "facebook": r"^https://www\.facebook\.com/[a-z0-9]+/posts/\d+$",
    "youtube": r"^https://www\.youtube\.com/watch\?v=[\w-]{11}$",
    "stackexchange": r"^https://stats\.stackexchange\.com/questions/\d+/",
}


@pytest.fixture(scope="module")
def full_demo() -> DemoData:
    return build_demo()


@pytest.fixture(scope="module")
def small_demo() -> DemoData:
    return build_demo(scale=0.1)


def _files(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_same_seed_writes_byte_identical_files(tmp_path: Path) -> None:
    generate_demo(tmp_path / "one", scale=0.3)
    generate_demo(tmp_path / "two", scale=0.3)
    one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert set(one) == {
        "people.csv",
        "outputs.csv",
        "organisation-accounts.csv",
        "mentions.jsonl",
        "observations.jsonl",
    }
    assert one == two


def test_another_seed_gives_another_organisation(tmp_path: Path) -> None:
    generate_demo(tmp_path / "one", scale=0.2, seed=1)
    generate_demo(tmp_path / "two", scale=0.2, seed=2)
    assert _files(tmp_path / "one")["mentions.jsonl"] != _files(tmp_path / "two")["mentions.jsonl"]


def test_full_demo_has_the_advertised_size(full_demo: DemoData) -> None:
    assert 550 <= len(full_demo.outputs) <= 650
    assert 13_000 <= len(full_demo.mentions) <= 17_000
    assert len(full_demo.people) >= 100
    assert len(full_demo.observations) > 20_000


def test_attention_is_heavy_tailed(full_demo: DemoData) -> None:
    by_output = full_demo.mentions_by_output()
    counts = sorted((by_output.get(o.key, 0) for o in full_demo.outputs), reverse=True)
    top = len(counts) // 20
    assert sum(counts[:top]) > 0.4 * sum(counts)
    assert sum(1 for c in counts if c <= 3) > 0.45 * len(counts)
    assert counts[0] >= 200


def test_sources_are_weighted_like_real_attention(full_demo: DemoData) -> None:
    by_source = full_demo.mentions_by_source()
    total = sum(by_source.values())
    assert {s for s, _ in by_source.most_common(2)} == {"twitter", "bluesky"}
    assert by_source["mastodon"] > by_source["reddit"] > by_source["newsfeed"]
    for rare in ("wikipedia", "policy"):
        assert 0 < by_source[rare] < 0.02 * total


@pytest.mark.parametrize("scale", [0.1, 1.0])
def test_every_kind_of_output_is_present(scale: float, full_demo: DemoData) -> None:
    data = full_demo if scale == 1.0 else build_demo(scale=scale)
    types = data.outputs_by_type()
    for kind in ("article", "preprint", "dataset", "report", "briefing", "book"):
        assert types[kind] >= 1, kind
    assert all(normalize_output_type(kind) == kind for kind in types)


def test_briefings_are_known_only_by_url(full_demo: DemoData) -> None:
    briefings = [o for o in full_demo.outputs if o.type == "briefing"]
    assert briefings
    for output in briefings:
        assert output.obj_ids == [output.url]
        assert output.url
        assert output.url.startswith("https://law.demo-university.example/briefings/")


def test_identifiers_are_fictional_and_well_formed(full_demo: DemoData) -> None:
    outputs = full_demo.outputs
    assert all(o.doi.startswith("10.5555/") for o in outputs if o.doi)
    assert any(o.arxiv for o in outputs)
    assert any(o.pmid for o in outputs if o.discipline == "health")
    assert all(idutils.is_isbn(o.isbn) for o in outputs if o.isbn)


def test_orcid_check_digit_matches_the_published_example() -> None:
    # ORCID's documented example: 0000-0002-1825-0097.
    assert orcid_check_digit("000000021825009") == "7"


def test_generated_orcids_have_valid_check_digits(full_demo: DemoData) -> None:
    orcids = [p.orcid for p in full_demo.people if p.orcid]
    assert len(orcids) > len(full_demo.people) // 2
    assert len(set(orcids)) == len(orcids)
    for orcid in orcids:
        digits = orcid.replace("-", "")
        assert orcid_check_digit(digits[:15]) == digits[15]
        assert idutils.is_orcid(orcid)


def test_every_mention_refers_to_a_generated_output(full_demo: DemoData) -> None:
    outputs = {o.key: o for o in full_demo.outputs}
    known = {obj_id for o in full_demo.outputs for obj_id in o.obj_ids}
    start = full_demo.as_of - dt.timedelta(days=730)
    for mention in full_demo.mentions:
        assert mention.obj_id in known
        assert mention.obj_id in outputs[mention.output_key].obj_ids
        assert start <= mention.occurred_at < full_demo.as_of
        published = outputs[mention.output_key].published_on
        assert mention.occurred_at.date() >= published


def test_mentions_are_event_data_events_on_real_url_shapes(tmp_path: Path) -> None:
    _, files = generate_demo(tmp_path, scale=0.3)
    events = [orjson.loads(line) for line in files.mentions.read_bytes().splitlines()]
    assert len({e["id"] for e in events}) == len(events)
    for event in events:
        assert re.match(POST_SHAPES[event["source_id"]], event["subj_id"]), event["subj_id"]
        assert event["subj"]["pid"] == event["subj_id"]
        assert event["subj"]["author"]["url"].startswith("https://")
        assert event["occurred_at"].endswith("Z")
        expected = {"wikipedia": "references", "newsfeed": "mentions", "policy": "mentions"}
        assert event["relation_type_id"] == expected.get(event["source_id"], "discusses")


def test_self_promotion_and_bots_are_present(full_demo: DemoData) -> None:
    own = {a.url for a in full_demo.accounts if a.owner is not None}
    authors = Counter(m.author_url for m in full_demo.mentions)
    assert sum(authors[url] for url in own) > 50
    busiest = authors.most_common(1)[0][1]
    assert busiest > 50  # a bot-like account posts about many outputs


def test_accounts_are_written_as_the_store_spells_them(full_demo: DemoData) -> None:
    for account in full_demo.accounts:
        assert normalize_account(account.platform, account.handle) == (
            account.platform,
            account.handle,
        )


def test_observations_are_consistent(full_demo: DemoData) -> None:
    keys = [o.id for o in full_demo.observations]
    assert len(set(keys)) == len(keys)
    metrics = Counter(o.metric for o in full_demo.observations)
    expected = {"citations", "views", "downloads", "followers", "impressions", "engagements"}
    assert expected <= set(metrics)
    citations: dict[str, list[int]] = {}
    for observation in full_demo.observations:
        assert observation.period_start <= observation.period_end
        assert observation.observed_at <= full_demo.as_of
        assert (observation.obj_id is None) != (observation.account is None)
        if observation.metric == "citations":
            assert observation.obj_id is not None
            citations.setdefault(observation.obj_id, []).append(observation.value)
    assert citations
    assert all(values == sorted(values) for values in citations.values())


# ---- end to end, through the CLI, the importers and the ingest


def _count(db: Path, sql: str) -> int:
    connection = sqlite3.connect(db)
    try:
        return int(connection.execute(sql).fetchone()[0])
    finally:
        connection.close()


def _stored(db: Path) -> dict[str, int]:
    return {
        "outputs": _count(db, "SELECT count(*) FROM outputs WHERE merged_into_id IS NULL"),
        "people": _count(db, "SELECT count(*) FROM people"),
        "groups": _count(db, "SELECT count(*) FROM groups"),
        "accounts": _count(db, "SELECT count(*) FROM accounts"),
        "mentions": _count(db, "SELECT count(*) FROM events"),
        "observations": _count(db, "SELECT count(*) FROM observations"),
        "quarantined": _count(db, "SELECT count(*) FROM quarantine"),
        "not demo": _count(
            db,
            "SELECT (SELECT count(*) FROM outputs WHERE NOT is_demo)"
            " + (SELECT count(*) FROM people WHERE NOT is_demo)"
            " + (SELECT count(*) FROM groups WHERE NOT is_demo)"
            " + (SELECT count(*) FROM accounts WHERE NOT is_demo)",
        ),
    }


@pytest.mark.slow
def test_cli_demo_stores_what_was_generated_and_replaces_it(
    tmp_path: Path, small_demo: DemoData
) -> None:
    db = tmp_path / "demo.db"
    runner = CliRunner()
    result = runner.invoke(app, ["demo", "--db", str(db), "--scale", "0.1", "--no-serve"])
    assert result.exit_code == 0, result.output
    assert "DEMO DATA" in result.output
    expected = {
        "outputs": len(small_demo.outputs),
        "people": len(small_demo.people),
        "groups": len(small_demo.groups),
        "accounts": len(small_demo.accounts),
        "mentions": len(small_demo.mentions),
        "observations": len(small_demo.observations),
        "quarantined": 0,
        "not demo": 0,
    }
    assert _stored(db) == expected
    assert _count(db, "SELECT count(*) FROM meta WHERE key = 'demo' AND value = 'true'") == 1

    again = runner.invoke(app, ["demo", "--db", str(db), "--scale", "0.1", "--no-serve"])
    assert again.exit_code == 0, again.output
    assert _stored(db) == expected


def test_cli_demo_refuses_to_replace_a_store_that_is_not_a_demo(tmp_path: Path) -> None:
    db = tmp_path / "real.db"
    db.write_bytes(b"precious data")
    result = CliRunner().invoke(app, ["demo", "--db", str(db), "--scale", "0.05", "--no-serve"])
    assert result.exit_code == 2
    assert db.read_bytes() == b"precious data"


@pytest.mark.slow
def test_cli_demo_force_replaces_any_file(tmp_path: Path) -> None:
    db = tmp_path / "real.db"
    db.write_bytes(b"precious data")
    args = ["demo", "--db", str(db), "--scale", "0.05", "--no-serve", "--force"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert _count(db, "SELECT count(*) FROM meta WHERE key = 'demo' AND value = 'true'") == 1
