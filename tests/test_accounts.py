"""Accounts: added by hand or with people, handles in one spelling, followers over time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from reachmeter.cli import app
from reachmeter.imports import import_people
from reachmeter.imports.accounts import account_rows, observe_account
from reachmeter.scoring.accounts import account_report
from reachmeter.store import Store, open_store
from reachmeter.store.catalog import CatalogError, add_account

runner = CliRunner()


def _listed(db: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["accounts", "list", "--json", "--db", db])
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = orjson.loads(result.stdout)
    return rows


@pytest.mark.parametrize(
    ("platform", "handle", "stored"),
    [
        ("x", "@ReachLib", ("x", "reachlib")),
        ("twitter", "https://twitter.com/ReachLib/", ("x", "reachlib")),
        ("mastodon", "@Alice@Example.Social", ("mastodon", "alice@example.social")),
        ("mastodon", "https://example.social/@bob", ("mastodon", "bob@example.social")),
        ("bluesky", "@Alice.bsky.social", ("bluesky", "alice.bsky.social")),
        ("bsky", "https://bsky.app/profile/alice.bsky.social", ("bluesky", "alice.bsky.social")),
    ],
)
def test_handles_are_stored_in_one_spelling_per_platform(
    tmp_path: Path, platform: str, handle: str, stored: tuple[str, str]
) -> None:
    db = str(tmp_path / "s.db")
    added = runner.invoke(app, ["accounts", "add", platform, handle, "--owner", "org", "--db", db])
    assert added.exit_code == 0, added.output
    (row,) = _listed(db)
    assert (row["platform"], row["handle"], row["owner"]) == (*stored, "org")


def test_a_bad_handle_is_refused_with_the_reason(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    result = runner.invoke(
        app, ["accounts", "add", "mastodon", "alice", "--owner", "org", "--db", db]
    )
    assert result.exit_code == 2
    assert "Mastodon handles are user@instance" in result.output
    assert _listed(db) == []


def test_people_import_and_accounts_add_meet_on_one_account(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    people = tmp_path / "people.csv"
    people.write_text(
        "name,orcid,x,accounts\n"
        "Ana Reyes,,@AnaReyes,mastodon:@ana@Example.Social;bluesky:@Ana.bsky.social\n"
    )
    store = open_store(db)
    try:
        summary = import_people(store, people)
        assert summary.quarantined == 0
    finally:
        store.close()
    # The same account in another spelling is the person's, not a second account.
    again = runner.invoke(
        app,
        ["accounts", "add", "x", "https://x.com/anareyes", "--owner", "Ana Reyes", "--db", str(db)],
    )
    assert again.exit_code == 0, again.output
    taken = runner.invoke(
        app, ["accounts", "add", "x", "@ANAREYES", "--owner", "org", "--db", str(db)]
    )
    assert taken.exit_code == 1
    assert "already owned by Ana Reyes" in taken.output
    rows = _listed(str(db))
    assert [(row["platform"], row["handle"], row["owner"]) for row in rows] == [
        ("bluesky", "ana.bsky.social", "Ana Reyes"),
        ("mastodon", "ana@example.social", "Ana Reyes"),
        ("x", "anareyes", "Ana Reyes"),
    ]


def test_followers_observed_over_time_give_the_growth_rate(store: Store) -> None:
    with store.session() as session:
        account_id = add_account(session, "x", "ReachLib", owner=None, org=True).id
    observe_account(store, "x", "@reachlib", {"followers": 1000.0}, dt.date(2026, 6, 30))
    observe_account(store, "x", "ReachLib", {"followers": 1100.0}, dt.date(2026, 7, 31))
    observe_account(store, "x", "ReachLib", {"followers": 1155.0}, dt.date(2026, 8, 31))
    report = account_report(store, account_id, dt.date(2026, 7, 1), dt.date(2026, 8, 31))
    july, august = report["kpis"]
    assert (july["followers_start"], july["followers_end"]) == (1000.0, 1100.0)
    assert july["follower_growth_rate"] == 10.0
    assert august["follower_growth_rate"] == 5.0
    (row,) = account_rows(store)
    assert (row["followers"], row["followers_at"]) == (1155.0, "2026-08-31T00:00:00+00:00")
    assert row["observations"] == 3


def test_one_count_per_day_and_only_for_known_accounts(store: Store) -> None:
    with store.session() as session:
        add_account(session, "bluesky", "reach.bsky.social", owner=None, org=True)
    day = dt.date(2026, 7, 1)
    _, stored = observe_account(store, "bluesky", "reach.bsky.social", {"followers": 50.0}, day)
    assert stored == 1
    _, stored = observe_account(store, "bluesky", "reach.bsky.social", {"followers": 50.0}, day)
    assert stored == 0
    with pytest.raises(CatalogError, match="already recorded as 50"):
        observe_account(store, "bluesky", "reach.bsky.social", {"followers": 51.0}, day)
    with pytest.raises(CatalogError, match=r"bluesky:other\.bsky\.social is not known"):
        observe_account(store, "bluesky", "other.bsky.social", {"followers": 1.0}, day)


def test_the_observe_command(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    runner.invoke(app, ["accounts", "add", "x", "ReachLib", "--owner", "org", "--db", db])
    base = ["accounts", "observe", "x", "@ReachLib", "--db", db]
    done = runner.invoke(app, [*base, "--followers", "1200", "--on", "2026-07-01"])
    assert done.exit_code == 0, done.output
    assert "x:reachlib on 2026-07-01: followers 1,200 (recorded)" in done.stdout
    clash = runner.invoke(app, [*base, "--followers", "1300", "--on", "2026-07-01"])
    assert clash.exit_code == 1
    assert "already recorded as 1200" in clash.output
    nothing = runner.invoke(app, base)
    assert nothing.exit_code == 2
    (row,) = _listed(db)
    assert row["followers"] == 1200.0
