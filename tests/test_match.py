"""Matching mentions to tracked outputs, recording method and verification, on both stores."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import orjson
from sqlalchemy import select
from typer.testing import CliRunner

from reachmeter.cli import app
from reachmeter.matching.identifiers import Identifier
from reachmeter.matching.landing import LandingPage
from reachmeter.matching.match import (
    LAST_EVENT_KEY,
    Match,
    Matcher,
    OutputIndex,
    match_events,
    match_new_events,
    mentions_of,
    normalize_output_urls,
)
from reachmeter.records import EventRecord, key_hash, map_record
from reachmeter.store import Store
from reachmeter.store.catalog import merge_outputs, upsert_output
from reachmeter.store.schema import Event, EventMatch, Evidence, Meta, Output, OutputIdentifier

NOW = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
_POSTS = itertools.count()
runner = CliRunner()


def _add_events(store: Store, *obj_ids: str) -> list[int]:
    ids: list[int] = []
    with store.session() as session:
        evidence = Evidence(
            source_id="test",
            source_version="1",
            request_url=f"test://{next(_POSTS)}",
            payload_sha256="0" * 64,
            collected_at=NOW,
        )
        session.add(evidence)
        session.flush()
        for obj_id in obj_ids:
            (record,) = map_record(
                {
                    "subj_id": f"https://social.example/post/{next(_POSTS)}",
                    "relation_type_id": "discusses",
                    "obj_id": obj_id,
                    "source_id": "test",
                    "occurred_at": "2025-05-01T00:00:00Z",
                },
                collected_at=NOW,
            )
            assert isinstance(record, EventRecord)
            event = Event(
                key_hash=key_hash(record.event_key),
                evidence_id=evidence.id,
                **{
                    name: getattr(record, name)
                    for name in EventRecord._fields
                    if name not in ("subj",)
                },
            )
            session.add(event)
            session.flush()
            ids.append(event.id)
    return ids


def _outputs(store: Store) -> dict[str, int]:
    with store.session() as session:
        article, _ = upsert_output(
            session,
            identifiers=[
                Identifier("doi", "10.5555/AAA"),
                Identifier("url", "https://www.example.org/briefing/1"),
            ],
            title="Article",
        )
        preprint, _ = upsert_output(
            session, identifiers=[Identifier("arxiv", "arXiv:2101.00001")], type="preprint"
        )
        paper, _ = upsert_output(session, identifiers=[Identifier("pmid", "123456")])
        briefing, _ = upsert_output(
            session,
            identifiers=[Identifier("url", "https://law.example/briefings/tax?utm_source=news")],
            type="briefing",
        )
        return {
            "article": article.id,
            "preprint": preprint.id,
            "paper": paper.id,
            "briefing": briefing.id,
        }


def _matches(store: Store) -> list[tuple[int, int, str, str, str]]:
    with store.session() as session:
        rows = session.execute(
            select(
                EventMatch.event_id,
                EventMatch.output_id,
                EventMatch.identifier,
                EventMatch.method,
                EventMatch.verification,
            ).order_by(EventMatch.event_id, EventMatch.output_id)
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def test_events_are_matched_with_method_and_verification(store: Store) -> None:
    out = _outputs(store)
    events = _add_events(
        store,
        "https://doi.org/10.5555/aaa",
        "http://example.org/briefing/1/?utm_source=x",
        "https://www.tandfonline.com/doi/full/10.5555/AAA?src=recsys",
        "https://arxiv.org/abs/2101.00001v2",
        "https://pubmed.ncbi.nlm.nih.gov/123456/",
        "https://law.example/briefings/tax",
        "https://doi.org/10.5555/not-tracked",
        "https://unrelated.example/page",
    )
    with store.begin() as connection:
        summary = match_events(connection)
    assert (summary.events, summary.matched, summary.new_matches) == (8, 6, 6)
    assert _matches(store) == [
        (events[0], out["article"], "doi:10.5555/aaa", "doi-literal", "literal"),
        (
            events[1],
            out["article"],
            "url:https://www.example.org/briefing/1",
            "landing-page-url",
            "checked-url-basic",
        ),
        (events[2], out["article"], "doi:10.5555/aaa", "landing-page-url", "doi-in-url"),
        (events[3], out["preprint"], "arxiv:2101.00001v2", "identifier-literal", "literal"),
        (events[4], out["paper"], "pmid:123456", "identifier-literal", "literal"),
        (
            events[5],
            out["briefing"],
            "url:https://law.example/briefings/tax",
            "landing-page-url",
            "checked-url-exact",
        ),
    ]
    with store.begin() as connection:
        again = match_events(connection)
    assert (again.events, again.matched, again.new_matches) == (8, 6, 0)


def test_a_newly_tracked_output_picks_up_past_mentions(store: Store) -> None:
    _outputs(store)
    (event,) = _add_events(store, "https://doi.org/10.5555/LATER")
    with store.begin() as connection:
        assert match_events(connection).matched == 0
    with store.session() as session:
        later, _ = upsert_output(session, identifiers=[Identifier("doi", "10.5555/later")])
    with store.begin() as connection:
        assert match_events(connection).new_matches == 1
        assert mentions_of(connection, later.id) == [event]


def test_mentions_of_a_merged_output_count_for_the_kept_one(store: Store) -> None:
    out = _outputs(store)
    first, second = _add_events(store, "https://doi.org/10.5555/aaa", "arXiv:2101.00001")
    with store.begin() as connection:
        match_events(connection)
    with store.session() as session:
        article = session.get(Output, out["article"])
        preprint = session.get(Output, out["preprint"])
        assert article is not None
        assert preprint is not None
        merge_outputs(session, article, preprint)
    with store.begin() as connection:
        assert mentions_of(connection, out["article"]) == [first, second]
        assert mentions_of(connection, out["preprint"]) == [second]
        (third,) = _add_events(store, "https://arxiv.org/pdf/2101.00001v3.pdf")
    with store.begin() as connection:
        match_events(connection)
        assert mentions_of(connection, out["article"]) == [first, second, third]


def test_match_new_events_remembers_where_it_got_to(store: Store) -> None:
    _outputs(store)
    first = _add_events(store, "https://doi.org/10.5555/aaa")
    with store.begin() as connection:
        assert match_new_events(connection).events == 1
    second = _add_events(store, "https://doi.org/10.5555/aaa", "https://doi.org/10.1/none")
    with store.begin() as connection:
        summary = match_new_events(connection)
        assert (summary.events, summary.new_matches) == (2, 1)
        stored = connection.execute(select(Meta.value).where(Meta.key == LAST_EVENT_KEY))
        assert stored.scalar() == str(second[-1])
        assert match_new_events(connection).events == 0
    assert first[0] < second[0]


def test_output_urls_are_rewritten_normalised(store: Store) -> None:
    out = _outputs(store)
    with store.session() as session:
        session.add(
            OutputIdentifier(
                output_id=out["paper"], scheme="url", value="HTTP://Paper.Example:80/a/./b#x"
            )
        )
    with store.begin() as connection:
        changed, problems = normalize_output_urls(connection)
        assert (changed, problems) == (1, [])
        values = connection.execute(
            select(OutputIdentifier.value).where(OutputIdentifier.output_id == out["paper"])
        ).scalars()
        assert sorted(values) == ["123456", "http://paper.example/a/b"]


def test_matcher_on_texts_html_and_landing_pages() -> None:
    index = OutputIndex(
        [
            (1, "doi", "10.5555/aaa"),
            (2, "url", "https://law.example/briefings/tax"),
            (3, "pmcid", "PMC4852986"),
        ]
    )
    matcher = Matcher(index)
    assert matcher.match_text(
        "Great read https://law.example/briefings/tax/?utm_source=tw and doi:10.5555/AAA."
    ) == [
        Match(
            2,
            Identifier("url", "https://law.example/briefings/tax"),
            "landing-page-url",
            "checked-url-basic",
        ),
        Match(1, Identifier("doi", "10.5555/aaa"), "doi-literal", "literal"),
    ]
    assert matcher.match_text("https://www.ncbi.nlm.nih.gov/pmc/articles/PMC4852986/") == [
        Match(3, Identifier("pmcid", "PMC4852986"), "url-pattern", "literal")
    ]
    assert matcher.match_text("nothing 10.5555/aab here https://other.example/x") == []
    assert matcher.match_html('<a href="https://doi.org/10.5555/aaa">x</a>') == [
        Match(1, Identifier("doi", "10.5555/aaa"), "doi-literal", "literal")
    ]
    page = LandingPage(
        "https://pub.example/a", "10.5555/aaa", "citation_doi", "https://pub.example/a", None
    )
    assert matcher.match_landing_page(page) == [
        Match(1, Identifier("doi", "10.5555/aaa"), "landing-page-meta-tag", "checked-url-basic")
    ]
    moved = LandingPage("https://mirror.example/x", None, None, "https://law.example/briefings/tax")
    assert matcher.match_landing_page(moved) == [
        Match(
            2,
            Identifier("url", "https://law.example/briefings/tax"),
            "landing-page-meta-tag",
            "lookup",
        )
    ]


def test_cli_ids_extract_prints_one_object_per_line(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["ids", "extract", "-"], input="See doi:10.1038/NATURE12373.\nnothing\n"
    )
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert lines == [
        {
            "line": 1,
            "identifiers": [
                {
                    "scheme": "doi",
                    "value": "10.1038/nature12373",
                    "found_as": "literal",
                    "raw": "10.1038/NATURE12373.",
                }
            ],
        },
        {"line": 2, "identifiers": []},
    ]
    page = tmp_path / "page.html"
    page.write_text('<meta name="citation_doi" content="10.1000/XYZ"><a href="/b">b</a>')
    result = runner.invoke(
        app, ["ids", "extract", "--html", "--url", "https://pub.example/a", str(page)]
    )
    assert result.exit_code == 0, result.output
    row = orjson.loads(result.stdout)
    assert row["doi"] == "10.1000/xyz"
    assert row["identifiers"] == [
        {
            "scheme": "url",
            "value": "https://pub.example/b",
            "found_as": "url",
            "raw": "https://pub.example/b",
        }
    ]


def test_cli_match_reruns_and_is_idempotent(store_url: str, store: Store) -> None:
    _outputs(store)
    _add_events(store, "https://doi.org/10.5555/aaa", "https://doi.org/10.9999/none")
    first = runner.invoke(app, ["match", "--db", store_url])
    assert first.exit_code == 0, first.output
    assert "2 events read, 1 matched to outputs, 1 new matches" in first.stdout
    second = runner.invoke(app, ["match", "--db", store_url])
    assert "2 events read, 1 matched to outputs, 0 new matches" in second.stdout
