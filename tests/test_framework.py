"""The framework: aims, objectives measured from a hand-built store, staffing, bad input."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import re
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from typer.testing import CliRunner

from reachmeter.cli import app
from reachmeter.cli.app import console
from reachmeter.demo import DEFAULT_AS_OF, generate_demo
from reachmeter.demo.load import FRAMEWORK_FILE, load_demo
from reachmeter.framework import (
    KPIS,
    FrameworkError,
    ObjectiveProgress,
    add_aim,
    add_objective,
    add_staffing,
    list_aims,
    list_staffing,
    load_framework,
    objectives_progress,
)
from reachmeter.monitor.alerts import list_alerts, raise_alerts
from reachmeter.settings import Settings
from reachmeter.store import Store, open_store
from reachmeter.store.schema import Account, Group, Observation, Person, PersonGroup, Run
from reachmeter.web import auth, create_app, monitor_pages
from tests.fixtures.scoring.builder import Builder, at
from tests.webdemo import TestClient

runner = CliRunner()
_keys = itertools.count(1)

START, DEADLINE = dt.date(2025, 1, 1), dt.date(2025, 12, 31)  # 365 days
AS_OF = dt.date(2025, 3, 31)  # day 90 of the objective


def _account_observation(
    store: Store, builder: Builder, account_id: int, metric: str, value: float, day: str
) -> None:
    when = at(day)
    with store.session() as session:
        session.add(
            Observation(
                observation_key=f"account-obs-{next(_keys)}",
                account_id=account_id,
                metric=metric,
                value=value,
                cumulative=metric == "followers",
                period_start=None if metric == "followers" else when.date(),
                period_end=None if metric == "followers" else when.date(),
                observed_at=when,
                source_id="x-analytics",
                evidence_id=builder.evidence_id,
            )
        )


def build(store: Store) -> dict[str, int]:
    """Two outputs (one by a person in the Law school), an organisation account."""
    b = Builder(store)
    first = b.output("10.5555/one")
    second = b.output("10.5555/two")
    for day in ("2025-01-10", "2025-02-10", "2025-03-10", "2025-03-30"):
        b.event(first, "twitter", f"https://twitter.com/u{day}", at(day))
    _, deleted = b.event(first, "twitter", "https://twitter.com/gone", at("2025-03-11"))
    b.delete_event(deleted)
    b.event(first, "twitter", "https://twitter.com/early", at("2024-12-30"))  # before start
    b.event(first, "twitter", "https://twitter.com/late", at("2025-04-02"))  # after as_of
    b.event(second, "newsfeed", "https://news.example/", at("2025-02-01"))
    b.event(second, "bluesky", "https://bsky.app/profile/a", at("2025-02-02"))
    author = b.author(second, "Ada Lawyer")
    with store.session() as session:
        law = Group(name="School of Law", kind="faculty")
        session.add(law)
        session.flush()
        clinic = Group(name="Legal Clinic", kind="department", parent_id=law.id)
        session.add(clinic)
        session.flush()
        session.add(PersonGroup(person_id=author, group_id=clinic.id))
        account = Account(platform="x", handle="ourlibrary", owned_by_org=True)
        session.add(account)
        session.flush()
        account_id = account.id
        staff = Person(name="Sam Social")
        session.add(staff)
        session.flush()
        staff_id = staff.id
    for value, day in ((1000, "2024-12-25"), (1100, "2025-02-01"), (1200, "2025-03-30")):
        _account_observation(store, b, account_id, "followers", value, day)
    _account_observation(store, b, account_id, "impressions", 600, "2025-01-15")
    _account_observation(store, b, account_id, "impressions", 400, "2025-02-15")
    _account_observation(store, b, account_id, "engagements", 30, "2025-02-15")
    _account_observation(store, b, account_id, "posts", 12, "2025-03-01")
    _account_observation(store, b, account_id, "posts", 50, "2024-12-01")  # before start
    return {"first": first, "second": second, "account": account_id, "staff": staff_id}


def _objective(store: Store, kpi: str, over: str, target: float, **kw: object) -> int:
    values: dict[str, object] = {
        "title": f"{kpi} {over} {target:g}",
        "kpi": kpi,
        "over": over,
        "target": target,
        "start": START,
        "deadline": DEADLINE,
        "today": START,
    }
    values.update(kw)
    return add_objective(store, **values)  # type: ignore[arg-type]


def _progress(store: Store, day: dt.date = AS_OF) -> dict[str, ObjectiveProgress]:
    return {p.title: p for p in objectives_progress(store, day)}


def test_progress_has_the_agreed_fields() -> None:
    names = [f.name for f in dataclasses.fields(ObjectiveProgress)]
    assert names == [
        "id", "aim", "title", "kpi", "scope", "target", "start", "deadline", "current",
        "projected", "status", "owner",
    ]  # fmt: skip
    assert ObjectiveProgress.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_a_flow_is_counted_from_the_start_and_projected_at_its_daily_rate(store: Store) -> None:
    build(store)
    aim = add_aim(store, "Be the library people quote", "More attention for our research")
    _objective(store, "mentions", "outputs", 20, aim=str(aim), owner="Sam Social")
    _objective(store, "mentions", "outputs", 30)
    _objective(store, "mentions", "outputs", 100)
    found = _progress(store)
    on_track = found["mentions outputs 20"]
    # 4 tweets + 2 of the second output in the period; the deleted one and those outside not.
    assert on_track.current == 6
    assert on_track.projected == pytest.approx(6 * 365 / 90, abs=1e-3)
    assert on_track.status == "on track"
    assert on_track.aim == "Be the library people quote"
    assert on_track.owner == "Sam Social"
    assert on_track.scope == "outputs"
    assert found["mentions outputs 30"].status == "at risk"  # 24.3 is 81% of 30
    assert found["mentions outputs 100"].status == "behind"
    assert list_aims(store)[0]["objectives"] == 1


def test_a_level_counts_progress_from_its_value_at_the_start(store: Store) -> None:
    build(store)
    _objective(store, "followers", "accounts", 1500)
    _objective(store, "followers", "accounts", 2000)
    _objective(store, "followers", "accounts:x:ourlibrary", 1150)
    found = _progress(store)
    # 1000 before the start, 1200 on day 90: +200 in 90 days, projected over 365.
    assert found["followers accounts 1500"].current == 1200
    assert found["followers accounts 1500"].projected == pytest.approx(1000 + 200 * 365 / 90)
    assert found["followers accounts 1500"].status == "on track"
    assert found["followers accounts 2000"].status == "at risk"  # 811 of the 1000 needed
    assert found["followers accounts:x:ourlibrary 1150"].status == "achieved"


def test_a_ratio_is_projected_as_it_stands(store: Store) -> None:
    build(store)
    _objective(store, "engagement_rate", "accounts", 5)
    _objective(store, "posts", "accounts", 12)
    found = _progress(store)
    rate = found["engagement_rate accounts 5"]
    assert rate.current == 3.0  # 30 engagements / 1000 impressions
    assert rate.projected == 3.0
    assert rate.status == "behind"  # 60% of the way
    assert found["posts accounts 12"].current == 12  # December's posts are before the start
    assert found["posts accounts 12"].status == "achieved"


def test_people_and_groups_scope_their_outputs_with_subgroups(store: Store) -> None:
    build(store)
    _objective(store, "mentions", "groups:School of Law", 10)
    _objective(store, "outputs_mentioned", "people:Ada Lawyer", 1)
    found = _progress(store)
    assert found["mentions groups:School of Law 10"].current == 2
    assert found["outputs_mentioned people:Ada Lawyer 1"].status == "achieved"


def test_status_before_the_start_and_after_a_missed_deadline(store: Store) -> None:
    build(store)
    _objective(store, "mentions", "outputs", 50)
    before = _progress(store, dt.date(2024, 12, 1))["mentions outputs 50"]
    assert (before.status, before.current, before.projected) == ("not started", None, None)
    after = _progress(store, dt.date(2026, 2, 1))["mentions outputs 50"]
    assert after.status == "behind"
    assert after.current == 7  # counted up to the deadline: the April tweet too
    assert after.projected == 7


def test_an_unknown_metric_lists_the_valid_ones(store: Store) -> None:
    with pytest.raises(FrameworkError) as caught:
        _objective(store, "likes", "outputs", 10)
    message = str(caught.value)
    assert "unknown metric 'likes'" in message
    for name in KPIS:
        assert name in message


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"deadline": dt.date(2024, 12, 31), "start": dt.date(2024, 1, 1)}, "in the past"),
        ({"start": dt.date(2026, 1, 1)}, "the start 2026-01-01 is after the deadline 2025-12-31"),
        ({"target": -5.0}, "the target must be a positive number"),
        ({"over": "groups:Nowhere"}, "no group 'Nowhere' in the store"),
        ({"over": "tweets"}, "unknown scope 'tweets'"),
        ({"kpi": "followers", "over": "outputs"}, "measured over accounts, people or groups"),
        ({"kpi": "citations", "over": "accounts"}, "measured over outputs, people or groups"),
        ({"aim": "No such aim"}, "no aim 'No such aim'"),
    ],
)
def test_bad_objectives_are_refused_with_the_reason(
    store: Store, changes: dict[str, object], words: str
) -> None:
    build(store)
    values: dict[str, object] = {"kpi": "mentions", "over": "outputs", "target": 10.0}
    values.update(changes)
    kpi, over, target = values.pop("kpi"), values.pop("over"), values.pop("target")
    with pytest.raises(FrameworkError, match=words):
        _objective(store, str(kpi), str(over), float(target), **values)  # type: ignore[arg-type]
    assert objectives_progress(store, AS_OF) == []


def test_staffing_records_and_updates_hours(store: Store) -> None:
    build(store)
    add_staffing(store, account="x:ourlibrary", person="Sam Social", role="editor", hours=4)
    add_staffing(store, account="x:@OurLibrary", person="Sam Social", role="editor", hours=6)
    rows = list_staffing(store)
    assert [(r.account, r.person, r.role, r.hours_per_week) for r in rows] == [
        ("x:ourlibrary", "Sam Social", "editor", 6.0)
    ]
    with pytest.raises(FrameworkError, match="no account 'x:nobody'"):
        add_staffing(store, account="x:nobody", person="Sam Social", role="editor", hours=4)
    with pytest.raises(FrameworkError, match="between 0 and 168"):
        add_staffing(store, account="x:ourlibrary", person="Sam Social", role="editor", hours=200)


def test_the_cli_manages_the_framework(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store_ = open_store(store_url)
    build(store_)
    store_.close()
    db = ["--db", store_url]
    result = runner.invoke(app, ["aims", "add", "Reach practitioners", *db])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        ["objectives", "add", "Grow followers", "--kpi", "followers", "--over", "accounts",
         "--target", "5000", "--start", "2025-01-01", "--deadline", "2027-06-30",
         "--owner", "Sam Social", "--aim", "Reach practitioners", *db],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["objectives", "progress", "--as-of", "2026-12-31", *db])
    assert result.exit_code == 0, result.output
    monkeypatch.setattr(console, "width", 160)
    listed = runner.invoke(app, ["objectives", "list", *db])
    assert "Grow followers" in listed.output
    assert "aim: Reach practitioners" in listed.output
    # The progress table, then each objective at risk or behind called out in full.
    assert "behind: objective 1 'Grow followers': 1,200 of 5,000 followers" in result.output
    result = runner.invoke(
        app,
        ["objectives", "add", "Likes", "--kpi", "likes", "--over", "outputs", "--target", "5",
         "--start", "2025-01-01", "--deadline", "2099-12-31", *db],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "valid metrics: attention, citations" in result.output
    result = runner.invoke(
        app,
        ["objectives", "add", "Old", "--kpi", "mentions", "--over", "outputs", "--target", "5",
         "--start", "2020-01-01", "--deadline", "2020-12-31", *db],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "deadline 2020-12-31 is in the past" in result.output
    result = runner.invoke(
        app,
        ["staffing", "add", "x:ourlibrary", "Sam Social", "--role", "editor", "--hours", "5", *db],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["staffing", "list", *db])
    assert "Sam Social" in result.output
    assert "5 hours a week in all" in result.output


def test_the_demo_ships_a_framework_loaded_with_it(tmp_path: Path) -> None:
    data, files = generate_demo(tmp_path / "files", scale=0.1)
    demo = open_store(tmp_path / "demo.db")
    try:
        summary = load_demo(demo, files, score_as_of=DEFAULT_AS_OF.date())
        assert summary.people == len(data.people)  # the staff are people of the demo
        # The demo comes with the alerts its day would have raised, objectives among them.
        raised = list_alerts(demo, limit=500)
        assert "objective" in {a["kind"] for a in raised}
        assert all(a["raised_at"].date() == DEFAULT_AS_OF.date() for a in raised)
        rows = objectives_progress(demo, DEFAULT_AS_OF.date())
        assert len(rows) == 7
        assert {r.aim for r in rows} == {
            "Make our research visible where researchers and the public talk",
            "Show funders and partners the difference our research makes",
        }
        assert all(r.current is not None for r in rows[:6])
        assert rows[6].status == "not started"
        assert rows[2].kpi == "engagement_rate"
        assert len(list_staffing(demo)) == 10
        assert sum(r.hours_per_week for r in list_staffing(demo)) == 29
        # Loading it again adds nothing.
        again = load_framework(demo, FRAMEWORK_FILE)
        assert (again["aims"], again["objectives"]) == (0, 0)
        assert len(objectives_progress(demo, DEFAULT_AS_OF.date())) == 7
    finally:
        demo.close()


def test_a_framework_file_with_a_bad_entry_names_it(store: Store, tmp_path: Path) -> None:
    bad = tmp_path / "framework.toml"
    bad.write_text('[[objectives]]\ntitle = "x"\nkpi = "likes"\nover = "outputs"\n'
                   'target = 1\nstart = 2025-01-01\ndeadline = 2025-02-01\n')  # fmt: skip
    with pytest.raises(FrameworkError, match=r"framework.toml: unknown metric 'likes'"):
        load_framework(store, bad)
    bad.write_text('[[aims]]\ndescription = "no title"\n')
    with pytest.raises(FrameworkError, match="an entry lacks the key 'title'"):
        load_framework(store, bad)


# -- the dashboard ----------------------------------------------------------------------------

PASSWORD = "correct horse battery"  # noqa: S105  (a test password)


def _client(store: Store) -> TestClient:
    web = create_app(store, Settings(secret_key="k" * 32))
    web.include_router(monitor_pages.router)
    return TestClient(web)


def _log_in(client: TestClient, email: str) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    response = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token.group(1), "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = client.get("/objectives").text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found
    return found.group(1)


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated")
def test_the_dashboard_shows_progress_and_lets_editors_add_objectives(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=8192))
    build(store)
    hostile = "<script>alert(1)</script> reach"
    _objective(store, "mentions", "outputs", 20, title=hostile, owner="Sam Social")
    auth.create_user(store, "ed@library.example", PASSWORD, "editor")
    auth.create_user(store, "viv@library.example", PASSWORD, "viewer")
    client = _client(store)
    assert client.get("/objectives", follow_redirects=False).status_code == 303  # log in first
    token = _log_in(client, "ed@library.example")
    page = client.get("/objectives?as_of=2025-03-31").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; reach" in page
    assert "<script>alert(1)" not in page
    assert "on track" in page
    assert 'action="/objectives#add"' in page
    form = {
        "title": "Twice the mentions", "kpi": "likes", "over": "outputs", "target": "40",
        "start": "2025-01-01", "deadline": "2099-12-31", "owner": "", "aim": "",
        "csrf_token": token,
    }  # fmt: skip
    refused = client.post("/objectives", data=form)
    assert refused.status_code == 400
    assert "unknown metric &#39;likes&#39;; valid metrics: attention, citations" in refused.text
    assert 'value="Twice the mentions"' in refused.text  # the form keeps what was typed
    assert len(objectives_progress(store, AS_OF)) == 1
    forged = client.post("/objectives", data={**form, "kpi": "mentions", "csrf_token": ""})
    assert forged.status_code == 403
    added = client.post("/objectives", data={**form, "kpi": "mentions"}, follow_redirects=False)
    assert added.status_code == 303
    assert added.headers["location"] == "/objectives?added=2"
    assert [p.title for p in objectives_progress(store, AS_OF)][1] == "Twice the mentions"
    viewer = _client(store)
    viewer_token = _log_in(viewer, "viv@library.example")
    assert 'action="/objectives#add"' not in viewer.get("/objectives").text
    assert viewer.post("/objectives", data={**form, "csrf_token": viewer_token}).status_code == 403


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated")
def test_the_dashboard_lists_alerts_escaped(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=8192))
    b = Builder(store)
    b.output("10.5555/x", title="<img src=x onerror=alert(2)> paper")
    with store.session() as session:
        session.add(
            Run(kind="collect", source_id="crossref", status="failed", errors=1,
                started_at=dt.datetime.now(dt.UTC), detail={"errors": ["HTTP 503"]})
        )  # fmt: skip
    raise_alerts(store)
    auth.create_user(store, "ed@library.example", PASSWORD, "editor")
    client = _client(store)
    _log_in(client, "ed@library.example")
    page = client.get("/alerts").text
    assert "Source crossref failed (run 1," in page
    assert "not sent to anyone" in page
    assert client.get("/alerts?kind=data-quality").status_code == 200
    assert client.get("/alerts?kind=gossip").status_code == 404
