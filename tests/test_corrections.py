"""Reported wrong matches, reviewed: an accepted report stops the mention counting for good."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from reachmeter.cli import app
from reachmeter.matching.match import match_events
from reachmeter.scoring import compute_scores, load_profile, read_score, update_scores
from reachmeter.store import Store
from reachmeter.store.corrections import (
    ReviewError,
    accept_request,
    list_requests,
    reject_request,
)
from reachmeter.store.schema import Correction, EventMatch, OutputIdentifier
from reachmeter.store.schema_web import CorrectionRequest
from tests.fixtures.scoring.builder import Builder, at

runner = CliRunner()
DAY = dt.date(2025, 6, 30)


def _setup(store: Store) -> tuple[int, int, int]:
    b = Builder(store)
    output_id = b.output("10.5555/placeholder")
    with store.session() as session:  # the events' DOI, so matching would link them again
        session.execute(
            update(OutputIdentifier)
            .where(OutputIdentifier.output_id == output_id)
            .values(value=f"10.5555/{output_id}")
        )
    wrong, _ = b.event(output_id, "newsfeed", "https://outlet.example/", at("2025-03-01"))
    right, _ = b.event(output_id, "newsfeed", "https://other.example/", at("2025-03-02"))
    with store.session() as session:
        session.add_all(
            [
                CorrectionRequest(output_id=output_id, event_id=wrong, reason="not about it"),
                CorrectionRequest(output_id=output_id, event_id=right, reason="unsure"),
            ]
        )
    return output_id, wrong, right


def test_an_accepted_report_removes_the_match_for_good_and_rescores(store: Store) -> None:
    output_id, wrong, right = _setup(store)
    profile = load_profile("default")
    compute_scores(store, profile, DAY)
    before = read_score(store, output_id, "default", DAY)
    assert before is not None
    assert before["breakdown"]["sources"]["news"]["count"] == 2
    first, second = (r["id"] for r in list_requests(store))
    review = accept_request(store, first, "editor@example.org", "a namesake")
    assert (review.status, review.matches_removed) == ("accepted", 1)
    with store.session() as session:
        correction = session.scalars(select(Correction)).one()
        assert (correction.target_kind, correction.target_key, correction.action) == (
            "match",
            f"event:{wrong}->output:{output_id}",
            "wrong_match",
        )
        assert "editor@example.org" in correction.reason
        assert "a namesake" in correction.reason
    with store.begin() as connection:  # matching everything again never links it again
        match_events(connection)
    with store.session() as session:
        linked = set(session.scalars(select(EventMatch.event_id)))
    assert linked == {right}
    run = update_scores(store, profile, DAY)
    assert run.scored == 1
    after = read_score(store, output_id, "default", DAY)
    assert after is not None
    assert after["breakdown"]["sources"]["news"]["count"] == 1
    assert reject_request(store, second).status == "rejected"
    assert [r["status"] for r in list_requests(store, None)] == ["accepted", "rejected"]
    assert list_requests(store) == []
    with pytest.raises(ReviewError, match="already accepted"):
        accept_request(store, first, "editor@example.org")
    with pytest.raises(ReviewError, match="no correction request with id 99"):
        reject_request(store, 99)


def test_the_corrections_commands(sqlite_store: Store) -> None:
    _setup(sqlite_store)
    db = str(sqlite_store.engine.url.database)
    listed = runner.invoke(app, ["corrections", "list", "--json", "--db", db])
    assert listed.exit_code == 0, listed.output
    assert '"reason": "not about it"' in listed.output
    accepted = runner.invoke(app, ["corrections", "accept", "1", "--reviewer", "ed", "--db", db])
    assert accepted.exit_code == 0, accepted.output
    assert "request 1 accepted: correction 1, 1 match removed" in accepted.output
    again = runner.invoke(app, ["corrections", "accept", "1", "--db", db])
    assert again.exit_code == 2
    assert "already accepted" in again.output
    rejected = runner.invoke(app, ["corrections", "reject", "2", "--db", db])
    assert rejected.exit_code == 0
    assert "request 2 rejected" in rejected.output
