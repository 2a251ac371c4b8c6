"""Importing the Twitter, Facebook and Wikipedia payloads a Lagotto (PLOS ALM) instance kept,
against Lagotto's own recorded payloads (../shared/data/lagotto)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from reachmeter.cli import app
from reachmeter.imports.lagotto import LagottoError, LagottoPayload, import_lagotto, read_lagotto
from reachmeter.matching.identifiers import Identifier
from reachmeter.records import EventRecord, ObservationRecord
from reachmeter.store import Store
from reachmeter.store.catalog import upsert_output
from reachmeter.store.schema import Event, EventMatch, Observation, QuarantinedRecord, Run
from tests.conftest import shared_data

runner = CliRunner()
PMED = "10.1371/journal.pmed.0020124"
WIKI_DOI = "10.1371/journal.pone.0008776"
READ_ON = dt.datetime(2014, 1, 12, tzinfo=dt.UTC)


def _events(result: LagottoPayload) -> list[EventRecord]:
    return [f for f in result.facts if isinstance(f, EventRecord)]


def _figures(result: LagottoPayload) -> dict[str, float]:
    return {f.metric: f.value for f in result.facts if isinstance(f, ObservationRecord)}


def _read(name: str, doi: str | None = None) -> tuple[str, str | None, int, int]:
    result = read_lagotto(shared_data("lagotto", name).read_bytes(), doi=doi)
    return (
        result.kind,
        str(result.doi) if result.doi else None,
        len(result.facts),
        len(result.problems),
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("twitter_search.json", ("twitter_search", f"doi:{PMED}", 8, 0)),
        (
            "twitter_search_paged.json",
            ("twitter_search", "doi:10.1371/journal.pone.0061981", 15, 0),
        ),
        ("twitter_search_nil.json", ("twitter_search", "doi:10.1371/journal.pone.0000000", 0, 0)),
        ("twitter.json", ("twitter_couchdb", f"doi:{PMED}", 2, 0)),
        ("twitter_nil.json", ("twitter_couchdb", None, 0, 0)),
        ("facebook.json", ("facebook_graph", f"doi:{PMED}", 2, 0)),
        ("facebook_nil.json", ("facebook_graph", "doi:10.1371/journal.pone.0000001", 2, 0)),
    ],
)
def test_each_payload_is_read_with_its_exact_count(
    name: str, expected: tuple[str, str | None, int, int]
) -> None:
    assert _read(name) == expected


def test_facebook_link_stats_keep_the_largest_url_form() -> None:
    stats = read_lagotto(
        shared_data("lagotto", "facebook_linkstat.json").read_bytes(), observed_at=READ_ON
    )
    assert _figures(stats) == {
        "shares": 3120,
        "likes": 1715,
        "comments": 1910,
        "clicks": 2,
    }
    mismatch = read_lagotto(
        shared_data("lagotto", "facebook_mismatch.json").read_bytes(), observed_at=READ_ON
    )
    assert str(mismatch.doi) == "doi:10.1371/journal.pone.0000001"
    assert _figures(mismatch) == {
        "shares": 6510,
        "likes": 9226,
        "comments": 4648,
        "clicks": 0,
    }
    empty = read_lagotto(
        shared_data("lagotto", "facebook_linkstat_nil.json").read_bytes(), observed_at=READ_ON
    )
    assert set(_figures(empty).values()) == {0}


def test_link_stats_without_a_date_are_refused() -> None:
    with pytest.raises(LagottoError, match="carry no date"):
        read_lagotto(shared_data("lagotto", "facebook_linkstat.json").read_bytes())


def test_tweets_keep_the_string_id_text_and_retweet_origin() -> None:
    result = read_lagotto(shared_data("lagotto", "twitter.json").read_bytes())
    old, _new = _events(result)
    assert old.subj_id == "https://twitter.com/regrum/status/204270013081849857"
    assert old.occurred_at == dt.datetime(2012, 5, 20, 17, 59, tzinfo=dt.UTC)
    search = read_lagotto(shared_data("lagotto", "twitter_search.json").read_bytes())
    first = _events(search)[0]
    assert first.occurred_at == dt.datetime(2014, 1, 11, 16, 17, 43, tzinfo=dt.UTC)
    assert first.subj is not None
    assert first.subj["title"].startswith("A bit technical but worth a read")
    retweets = [f for f in _events(search) if "original-tweet-url" in (f.subj or {})]
    assert len(retweets) == 3
    paged = read_lagotto(shared_data("lagotto", "twitter_search_paged.json").read_bytes())
    assert paged.note is not None
    assert "more results" in paged.note


def test_wikipedia_result_needs_the_work_and_gives_one_mention_per_page() -> None:
    with pytest.raises(LagottoError, match="does not name its work"):
        read_lagotto(shared_data("lagotto", "wikipedia.json").read_bytes())
    assert _read("wikipedia.json", doi=WIKI_DOI) == ("wikipedia", f"doi:{WIKI_DOI}", 637, 0)
    commons = read_lagotto(
        shared_data("lagotto", "wikipedia_commons.json").read_bytes(),
        doi="10.1371/journal.pone.0044271",
    )
    hosts = sorted({f.subj_id.split("/")[2] for f in _events(commons)})
    assert hosts == ["commons.wikimedia.org", "en.wikipedia.org"]
    assert len(commons.facts) == 10


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("facebook_error.json", "OAuthException 190: Error validating application"),
        ("wikipedia_error.json", "srsearch-text-disabled: text search is disabled"),
        ("twitter_auth.json", "OAuth token response"),
        ("reddit.json", "not a Lagotto payload of Twitter search, Facebook or Wikipedia"),
        ("works_not_utf8.txt", "not JSON"),
    ],
)
def test_error_bodies_and_other_payloads_are_clear_errors(name: str, message: str) -> None:
    with pytest.raises(LagottoError, match=message):
        read_lagotto(shared_data("lagotto", name).read_bytes())


def test_a_declared_doi_that_differs_from_the_payload_is_refused() -> None:
    with pytest.raises(LagottoError, match=r"is about doi:10\.1371/journal\.pmed\.0020124"):
        read_lagotto(
            shared_data("lagotto", "twitter_search.json").read_bytes(), doi="10.1000/other"
        )


def test_import_stores_matches_and_rerun_adds_nothing(store: Store, tmp_path: Path) -> None:
    with store.session() as session:
        upsert_output(session, identifiers=[Identifier("doi", PMED)])
    files = [
        shared_data("lagotto", name)
        for name in ("twitter_search.json", "twitter.json", "facebook_linkstat.json")
    ]
    broken = tmp_path / "broken.json"
    broken.write_text(
        json.dumps({"statuses": [{"text": "no id"}], "search_metadata": {"query": PMED}})
    )
    summary = import_lagotto(store, [*files, broken], observed_at=READ_ON)
    assert summary.errors == []
    assert (summary.events, summary.observations, summary.quarantined) == (10, 4, 1)
    with store.session() as session:
        matched = session.scalar(select(func.count()).select_from(EventMatch))
        sources = dict(
            session.execute(select(Event.source_id, func.count()).group_by(Event.source_id)).all()
        )
        reason = session.scalars(select(QuarantinedRecord.reason)).one()
        run = session.scalars(select(Run).where(Run.source_id == "lagotto")).one()
    assert matched == 10
    assert sources == {"twitter": 10}
    assert reason == "tweet without id_str"
    assert (run.status, run.read, run.stored) == ("ok", 4, 14)
    again = import_lagotto(store, files, observed_at=READ_ON)
    assert (again.events, again.observations) == (0, 0)
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Observation)) == 4


def test_import_of_an_error_payload_names_the_file_and_stores_nothing(store: Store) -> None:
    path = shared_data("lagotto", "facebook_error.json")
    summary = import_lagotto(store, [path])
    assert summary.files == 0
    assert summary.errors[0].startswith(f"{path}: the payload is an error")
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Observation)) == 0
        run = session.scalars(select(Run)).one()
    assert run.status == "failed"


def test_the_import_lagotto_command(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    files = [str(shared_data("lagotto", n)) for n in ("twitter_search.json", "facebook_error.json")]
    result = runner.invoke(
        app, ["import", "lagotto", *files, "--observed-at", "2014-01-12", "--db", db]
    )
    assert result.exit_code == 0, result.output
    assert "1 files: 8 mentions, 0 observations, 0 already stored, 0 quarantined" in result.output
    assert "the payload is an error" in result.output
    only_error = runner.invoke(app, ["import", "lagotto", files[1], "--db", db])
    assert only_error.exit_code == 1
