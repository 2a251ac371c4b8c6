"""Account KPIs and the reach of people and groups, on numbers worked out by hand."""

from __future__ import annotations

import datetime as dt

import pytest
from typer.testing import CliRunner

from reachmeter.cli import app
from reachmeter.scoring import compute_scores, load_profile
from reachmeter.scoring.accounts import AccountPoint, account_kpis, account_report, months
from reachmeter.scoring.explain import explain_account, explain_person
from reachmeter.scoring.reach import h_index, percentile_of, reach_report
from reachmeter.store import Store
from reachmeter.store.schema import Account, Group, Observation, PersonGroup
from tests.fixtures.scoring.builder import Builder, at

runner = CliRunner()
JAN = (dt.date(2025, 1, 1), dt.date(2025, 1, 31))


def _point(number: int, metric: str, value: float, day: str, cumulative: bool = False):
    when = at(day)
    start = when.date().replace(day=1) if not cumulative else None
    return AccountPoint(number, metric, value, cumulative, start, None, when)


def test_account_kpis_follow_the_industry_definitions() -> None:
    points = [
        _point(1, "followers", 200, "2024-12-31", cumulative=True),
        _point(2, "followers", 210, "2025-01-31", cumulative=True),
        _point(3, "engagements", 21, "2025-01-15"),
        _point(4, "impressions", 1050, "2025-01-15"),
        _point(5, "reach", 700, "2025-01-15"),
        _point(6, "posts", 31, "2025-01-15"),
    ]
    [kpis] = account_kpis(points, [JAN], {JAN[0]: 3}, {JAN[0]: 12})
    assert kpis["engagement_rate_impr"] == 2.0  # 21 / 1050
    assert kpis["engagement_rate_reach"] == 3.0  # 21 / 700
    assert kpis["engagement_rate_followers"] == 10.0  # 21 / 210
    assert kpis["follower_growth_rate"] == 5.0  # (210 - 200) / 200
    assert kpis["posting_frequency"] == 1.0  # 31 posts in 31 days
    assert kpis["posts_per_week"] == 7.0
    assert kpis["average_reach_per_post"] == round(700 / 31, 4)
    assert kpis["share_of_voice"] == 25.0  # 3 of 12
    assert "missing" not in kpis


def test_a_running_post_count_gives_the_posts_of_each_period_not_its_total() -> None:
    feb = (dt.date(2025, 2, 1), dt.date(2025, 2, 28))
    points = [
        _point(1, "posts", 1200, "2024-12-31", cumulative=True),  # a profile's post count
        _point(2, "posts", 1231, "2025-01-31", cumulative=True),
        _point(3, "posts", 1290, "2025-02-28", cumulative=True),
        _point(4, "posts", 5, "2025-02-10"),  # a per-day figure wins where there is one
    ]
    jan_kpis, feb_kpis = account_kpis(points, [JAN, feb])
    assert jan_kpis["posts"] == 31
    assert jan_kpis["posting_frequency"] == 1.0
    assert feb_kpis["posts"] == 5


def test_missing_inputs_give_none_with_a_reason_not_a_division_by_zero() -> None:
    [kpis] = account_kpis([_point(1, "posts", 0, "2025-01-10")], [JAN])
    assert kpis["engagement_rate_impr"] is None
    assert kpis["average_reach_per_post"] is None
    assert kpis["share_of_voice"] is None
    assert "engagement_rate_impr" in kpis["missing"]


def test_months_cover_the_range() -> None:
    assert months(dt.date(2024, 12, 15), dt.date(2025, 2, 1)) == [
        (dt.date(2024, 12, 1), dt.date(2024, 12, 31)),
        (dt.date(2025, 1, 1), dt.date(2025, 1, 31)),
        (dt.date(2025, 2, 1), dt.date(2025, 2, 28)),
    ]


def test_h_index_and_percentiles() -> None:
    assert h_index([10, 8, 5, 4, 3]) == 4
    assert h_index([0.25, 0.5]) == 0
    assert h_index([]) == 0
    assert percentile_of(5, [1, 5, 5, 9]) == pytest.approx(66.67)
    assert percentile_of(5, [5]) is None
    assert percentile_of(None, [1, 2]) is None


def test_reach_of_a_person_and_a_group(store: Store) -> None:
    b = Builder(store)
    first = b.output("10.5555/r1")
    second = b.output("10.5555/r2")
    ada = b.author(first, "Ada", "https://x.com/ada")
    bob = b.author(second, "Bob")
    for n in range(3):
        b.event(first, "newsfeed", f"https://outlet{n}.example/", at("2025-03-01"))
    b.event(second, "twitter", "https://twitter.com/reader", at("2025-03-01"))
    b.event(second, "twitter", "https://twitter.com/ada", at("2025-04-01"))  # Ada posts
    with store.session() as session:
        account = session.query(Account).filter_by(owner_person_id=ada).one()
        session.add(
            Observation(
                observation_key="ada-followers",
                account_id=account.id,
                metric="followers",
                value=150,
                cumulative=True,
                observed_at=at("2025-05-01"),
                source_id="twitter",
                evidence_id=b.evidence_id,
            )
        )
        group = Group(name="Lab")
        session.add(group)
        session.flush()
        session.add_all(
            [
                PersonGroup(person_id=ada, group_id=group.id),
                PersonGroup(person_id=bob, group_id=group.id),
            ]
        )
        group_id = group.id
    day = dt.date(2025, 6, 30)
    compute_scores(store, load_profile("default"), day)
    report = reach_report(store, "default", day, person_id=ada)
    parts = report["components"]
    assert parts["attention_total"]["value"] == 24
    assert parts["attention_h_index"]["value"] == 1
    assert parts["audience"]["value"] == 150
    assert parts["posting_regularity"]["value"] == round(100 / 12, 2)  # April only
    assert parts["blogging_regularity"] == {
        "value": None,
        "reason": "no blog of their own",
        "pct_organisation": None,
        f"pct_group_{group_id}": None,
    }
    assert parts["attention_total"]["pct_organisation"] == 100.0
    assert parts["attention_total"][f"pct_group_{group_id}"] == 100.0
    bob_report = reach_report(store, "default", day, person_id=bob)
    # Ada sharing a colleague's work is not self-promotion: it counts for Bob's output.
    assert bob_report["components"]["attention_total"]["value"] == 0.5
    assert bob_report["components"]["attention_total"]["pct_organisation"] == 0.0
    group_report = reach_report(store, "default", day, group_id=group_id)
    assert group_report["components"]["attention_total"]["value"] == 24.5
    assert group_report["components"]["attention_h_index"]["value"] == 1
    assert group_report["outputs"] == sorted([first, second])
    explained = explain_person(store, ada, "default", day)
    assert explained["components"] == parts
    # Down to each observation and event, with its evidence.
    (followers,) = explained["inputs"]["audience"]
    assert followers["observation_key"] == "ada-followers"
    assert followers["value"] == 150
    assert followers["evidence"]["id"] == b.evidence_id
    (posted,) = explained["inputs"]["posting_events"]
    assert posted["author"] == "https://twitter.com/ada"
    assert posted["occurred_at"] == "2025-04-01T12:00:00+00:00"
    assert posted["evidence"]["id"] == b.evidence_id
    assert [o["explain"] for o in explained["outputs"]] == [f"reachmeter explain output:{first}"]
    if store.dialect == "sqlite":  # the CLI opens the same file
        db = str(store.engine.url.database)
        result = runner.invoke(app, ["explain", f"person:{ada}", "--db", db])
        assert result.exit_code == 0, result.output
        assert "attention_total" in result.output
        assert "obs" in result.output
        assert f"event {posted['event_id']}" in result.output


def test_account_report_counts_share_of_voice_from_events(store: Store) -> None:
    b = Builder(store)
    output = b.output("10.5555/sov")
    ada = b.author(output, "Ada", "https://x.com/ada")
    b.event(output, "twitter", "https://twitter.com/ada", at("2025-01-05"))
    b.event(output, "twitter", "https://twitter.com/other", at("2025-01-06"))
    b.event(output, "twitter", "https://twitter.com/third", at("2025-01-07"))
    b.event(output, "twitter", "https://twitter.com/fourth", at("2025-01-08"))
    with store.session() as session:
        account_id = session.query(Account).filter_by(owner_person_id=ada).one().id
    report = account_report(store, account_id, JAN[0], JAN[1])
    assert report["kpis"][0]["mentions_of_outputs"] == 1
    assert report["kpis"][0]["share_of_voice"] == 25.0
    explained = explain_account(store, account_id, JAN[0], JAN[1])
    assert [m["author"] for m in explained["own_mentions"]] == ["https://twitter.com/ada"]
    assert explained["own_mentions"][0]["evidence"]["id"] == b.evidence_id
    with pytest.raises(LookupError):
        account_report(store, 999, JAN[0], JAN[1])
