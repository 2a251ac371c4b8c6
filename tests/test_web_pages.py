"""The dashboard pages show the numbers the CLI and the scoring functions give, export every
table as CSV, label demo data, and show untrusted text as text."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from reachmeter.cli import app as cli
from reachmeter.demo import generate_demo
from reachmeter.demo.load import load_demo
from reachmeter.scoring import latest_as_of, methods_log, read_score, top_scores
from reachmeter.scoring.accounts import account_report
from reachmeter.scoring.explain import explain_output
from reachmeter.scoring.profiles import load_profile
from reachmeter.scoring.reach import reach_report
from reachmeter.settings import Settings
from reachmeter.store import Store, open_store
from reachmeter.store.schema import Account, Authorship, Group, Output, Person
from reachmeter.store.stats import store_counts
from reachmeter.web import create_app
from reachmeter.web.pages import _number, _safe_url
from tests.webdemo import HOSTILE_AUTHOR, IMG_TEXT, SCRIPT_TEXT, TestClient, demo_store_path

pytestmark = pytest.mark.filterwarnings(
    "ignore:Using `httpx` with `starlette.testclient` is deprecated"
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, int]]:
    path, hostile_output = demo_store_path(tmp_path_factory.getbasetemp())
    store = open_store(path)
    yield store, hostile_output
    store.close()


@pytest.fixture(scope="module")
def client(demo: tuple[Store, int]) -> Iterator[TestClient]:
    app = create_app(demo[0], Settings(public_dashboard=True))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def day(demo: tuple[Store, int]) -> dt.date:
    found = latest_as_of(demo[0], "default")
    assert found is not None
    return found


def _csv(client: TestClient, url: str) -> list[dict[str, str]]:
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<td><a href="/outputs/(\d+)">', html)]


def test_overview_totals_and_top_outputs_are_the_stores(
    client: TestClient, demo: tuple[Store, int], day: dt.date
) -> None:
    store = demo[0]
    response = client.get("/")
    assert response.status_code == 200
    html = response.text
    assert "DEMO DATA" in html
    counts = store_counts(store)["tables"]
    for name in ("outputs", "people", "events", "observations"):
        assert f'data-total="{name}">{counts[name]:,}<' in html
    totals = {row["what"]: int(row["count"]) for row in _csv(client, "/?format=csv&table=totals")}
    assert totals["events matched"] == counts["events_matched"]
    assert totals["outputs"] == counts["outputs"]
    top = top_scores(store, "default", day, 10)
    rows = _csv(client, "/?format=csv&table=top")
    assert [int(r["output_id"]) for r in rows] == [t["output_id"] for t in top]
    assert [float(r["score"]) for r in rows] == [t["score"] for t in top]
    assert 'id="chart-attention"' in html
    assert "Sources' health" in html


def test_overview_attention_series_counts_every_matched_mention(
    client: TestClient, demo: tuple[Store, int]
) -> None:
    rows = _csv(client, "/?format=csv&table=attention")
    # The demo spans under 24 months, so every matched mention is in the series.
    assert sum(int(r["value"]) for r in rows) == store_counts(demo[0])["tables"]["events_matched"]


def test_outputs_sorted_by_score_page_by_page(
    client: TestClient, demo: tuple[Store, int], day: dt.date
) -> None:
    store = demo[0]
    first = client.get("/outputs")
    assert first.status_code == 200
    top = top_scores(store, "default", day, 50)
    assert _ids(first.text) == [t["output_id"] for t in top]
    total = store_counts(store)["tables"]["outputs"]
    assert f"{total:,} outputs" in first.text
    second = client.get("/outputs?page=2")
    assert (
        _ids(second.text) == [t["output_id"] for t in top_scores(store, "default", day, 100)][50:]
    )
    ascending = client.get("/outputs?sort=title&dir=asc")
    with store.engine.connect() as connection:
        titles = [
            int(i)
            for (i,) in connection.execute(
                select(Output.id)
                .where(Output.merged_into_id.is_(None))
                .order_by(Output.title, Output.id)
                .limit(50)
            )
        ]
    assert _ids(ascending.text) == titles


def test_outputs_filters_select_what_the_catalogue_says(
    client: TestClient, demo: tuple[Store, int], day: dt.date
) -> None:
    store = demo[0]
    with store.engine.connect() as connection:
        articles = {
            int(i)
            for (i,) in connection.execute(
                select(Output.id).where(Output.type == "article", Output.merged_into_id.is_(None))
            )
        }
        person = connection.execute(
            select(Authorship.person_id)
            .group_by(Authorship.person_id)
            .order_by(func.count().desc(), Authorship.person_id)
            .limit(1)
        ).scalar_one()
        theirs = {
            int(i)
            for (i,) in connection.execute(
                select(Authorship.output_id).where(Authorship.person_id == person)
            )
        }
    rows = _csv(client, "/outputs?format=csv&type=article")
    assert {int(r["output_id"]) for r in rows} == articles
    rows = _csv(client, f"/outputs?format=csv&person={person}")
    assert {int(r["output_id"]) for r in rows} == theirs
    rows = _csv(client, "/outputs?format=csv&min_score=10&max_score=50")
    expected = {
        s["output_id"] for s in top_scores(store, "default", day, 10_000) if 10 <= s["score"] <= 50
    }
    assert {int(r["output_id"]) for r in rows} == expected
    assert all(10 <= float(r["score"]) <= 50 for r in rows)
    rows = _csv(client, "/outputs?format=csv&from=2025-01-01&to=2025-06-30")
    assert rows
    assert all("2025-01-01" <= r["published_on"] <= "2025-06-30" for r in rows)


def test_outputs_source_and_group_filters(
    client: TestClient, demo: tuple[Store, int], day: dt.date
) -> None:
    rows = _csv(client, "/outputs?format=csv&source=policy")
    explained_ids = {int(r["output_id"]) for r in rows}
    assert explained_ids
    profile = load_profile("default")
    for output_id in sorted(explained_ids)[:3]:
        sources = {e["source_id"] for e in explain_output(demo[0], output_id, profile)["events"]}
        assert "policy" in sources
    with demo[0].engine.connect() as connection:
        group = connection.execute(select(Group.id).where(Group.parent_id.is_(None))).scalar()
    report = reach_report(demo[0], "default", day, group_id=group)
    rows = _csv(client, f"/outputs?format=csv&group={group}")
    assert {int(r["output_id"]) for r in rows} == set(report["outputs"])


def test_outputs_bad_filters_are_clear_400s(client: TestClient) -> None:
    response = client.get("/outputs?min_score=lots")
    assert response.status_code == 400
    assert "min_score must be a number" in response.text
    assert client.get("/outputs?sort=colour").status_code == 400
    assert client.get("/outputs?from=yesterday").status_code == 400


def test_output_page_shows_the_stored_score_and_every_mention(
    client: TestClient, demo: tuple[Store, int]
) -> None:
    store, output_id = demo
    stored = read_score(store, output_id)
    assert stored is not None
    explained = explain_output(store, output_id, load_profile("default"))
    response = client.get(f"/outputs/{output_id}")
    assert response.status_code == 200
    html = response.text
    assert f'data-score="{stored["score"]}"' in html
    breakdown = _csv(client, f"/outputs/{output_id}?format=csv&table=breakdown")
    assert {r["source"]: float(r["points"]) for r in breakdown} == {
        name: part["points"] for name, part in stored["breakdown"]["sources"].items()
    }
    newest = [
        e["event_id"]
        for e in sorted(explained["events"], key=lambda e: (e["occurred_at"], e["event_id"]))
    ][::-1]
    mentions = _csv(client, f"/outputs/{output_id}?format=csv&table=mentions")
    assert [int(r["event_id"]) for r in mentions] == newest
    assert len(newest) > 200
    shown = [int(i) for i in re.findall(r'<tr id="mention-(\d+)">', html)]
    assert shown == newest[:200]
    assert f"Mentions ({len(newest):,})" in html
    every = client.get(f"/outputs/{output_id}?mentions=all").text
    assert [int(i) for i in re.findall(r'<tr id="mention-(\d+)">', every)] == newest
    flagged = {f["event_id"] for f in explained["flags"] if f["event_id"] is not None}
    assert {int(r["event_id"]) for r in mentions if r["flags"]} == flagged & set(newest)
    context = _csv(client, f"/outputs/{output_id}?format=csv&table=context")
    assert {r["group"]: r["pct"] for r in context} == {
        name: "" if value.get("pct") is None else str(value["pct"])
        for name, value in stored["context"].items()
    }
    assert 'id="chart-donut"' in html
    assert 'id="chart-timeline"' in html
    assert "Log in</a> to report a mention" in html


def test_explain_page_is_reachmeter_explain(client: TestClient, demo: tuple[Store, int]) -> None:
    store, output_id = demo
    explained = explain_output(store, output_id, load_profile("default"))
    page = client.get(f"/outputs/{output_id}/explain")
    assert page.status_code == 200
    assert f'id="explained-score">{_number(explained["score"])}<' in page.text
    rows = _csv(client, f"/outputs/{output_id}/explain?format=csv&table=events")
    assert [(int(r["event_id"]), r["counted"], float(r["points"])) for r in rows] == [
        (e["event_id"], str(e["counted"]), e["points"]) for e in explained["events"]
    ]
    assert sum(float(r["points"]) for r in rows if r["counted"] == "True") > 0
    assert client.get("/outputs/999999/explain").status_code == 404


def test_untrusted_mention_text_is_escaped(client: TestClient, demo: tuple[Store, int]) -> None:
    html = client.get(f"/outputs/{demo[1]}").text
    assert SCRIPT_TEXT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt; image" in html
    assert HOSTILE_AUTHOR not in html
    assert "script-src 'self'" in client.get("/").headers["content-security-policy"]
    # A formula-looking cell is neutralised in the CSV too.
    rows = _csv(client, f"/outputs/{demo[1]}?format=csv&table=mentions")
    assert SCRIPT_TEXT in {r["text"] for r in rows}
    assert IMG_TEXT in {r["text"] for r in rows}


def test_only_http_links_become_hrefs() -> None:
    assert _safe_url("https://example.org/a") == "https://example.org/a"
    assert _safe_url("javascript:alert(1)") is None
    assert _safe_url(" JAVASCRIPT:alert(1)") is None
    assert _safe_url("data:text/html,hi") is None
    assert _safe_url(None) is None


def test_csv_cells_that_look_like_formulas_are_quoted() -> None:
    from reachmeter.web.pages import csv_response

    body = csv_response("x", ["a"], [{"a": "=HYPERLINK(1)"}, {"a": "plain"}]).body
    assert bytes(body).decode().splitlines() == ["a", "'=HYPERLINK(1)", "plain"]


def test_missing_things_are_404_pages(client: TestClient) -> None:
    for path in ("/outputs/999999", "/people/999999", "/groups/999999", "/accounts/999999"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "Not found" in response.text


def test_person_page_shows_reach_components_with_percentiles(
    client: TestClient, demo: tuple[Store, int], day: dt.date
) -> None:
    store = demo[0]
    with store.engine.connect() as connection:
        person = connection.execute(select(Person.id).order_by(Person.id).limit(1)).scalar_one()
    report = reach_report(store, "default", day, person_id=person)
    rows = _csv(client, f"/people/{person}?format=csv&table=components")
    assert [r["component"] for r in rows] == list(report["components"])
    for row in rows:
        entry = report["components"][row["component"]]
        assert row["value"] == ("" if entry["value"] is None else str(entry["value"]))
        assert row["pct_organisation"] == (
            "" if entry["pct_organisation"] is None else str(entry["pct_organisation"])
        )
    outputs = _csv(client, f"/people/{person}?format=csv&table=outputs")
    assert {int(r["output_id"]) for r in outputs} == {o["output_id"] for o in report["outputs"]}
    html = client.get(f"/people/{person}").text
    assert 'id="chart-person-timeline"' in html
    people = _csv(client, "/people?format=csv")
    assert len(people) == store_counts(store)["tables"]["people"]


def test_group_page_benchmarks_its_subgroups(
    client: TestClient, demo: tuple[Store, int], day: dt.date
) -> None:
    store = demo[0]
    with store.engine.connect() as connection:
        parent = connection.execute(
            select(Group.parent_id)
            .where(Group.parent_id.is_not(None))
            .group_by(Group.parent_id)
            .order_by(func.count().desc(), Group.parent_id)
            .limit(1)
        ).scalar_one()
        children = [
            int(i) for (i,) in connection.execute(select(Group.id).where(Group.parent_id == parent))
        ]
    rows = _csv(client, f"/groups/{parent}?format=csv&table=subgroups")
    assert {int(r["group_id"]) for r in rows} == set(children)
    for row in rows:
        sub = reach_report(store, "default", day, group_id=int(row["group_id"]))
        assert float(row["attention_total"]) == sub["components"]["attention_total"]["value"]
        assert int(row["outputs"]) == len(sub["outputs"])
    components = _csv(client, f"/groups/{parent}?format=csv&table=components")
    report = reach_report(store, "default", day, group_id=parent)
    assert {r["component"]: r["pct_groups"] for r in components} == {
        name: "" if c["pct_groups"] is None else str(c["pct_groups"])
        for name, c in report["components"].items()
    }
    assert len(_csv(client, "/groups?format=csv")) == store_counts(store)["tables"]["groups"]


def test_account_page_shows_the_kpis_of_the_cli(
    client: TestClient, demo: tuple[Store, int]
) -> None:
    store = demo[0]
    with store.engine.connect() as connection:
        account = connection.execute(
            select(Account.id).where(Account.owned_by_org.is_(True)).limit(1)
        ).scalar_one()
    start, end = dt.date(2025, 11, 1), dt.date(2026, 10, 31)
    report = account_report(store, account, start, end)
    rows = _csv(client, f"/accounts/{account}?format=csv&from={start}&to={end}")
    assert len(rows) == len(report["kpis"]) == 12
    for row, kpis in zip(rows, report["kpis"], strict=True):
        assert row["period"] == kpis["period"][0][:7]
        for name in ("engagement_rate_followers", "posting_frequency", "share_of_voice"):
            assert row[name] == ("" if kpis[name] is None else str(kpis[name]))
    assert len(_csv(client, "/accounts?format=csv")) == store_counts(store)["tables"]["accounts"]
    html = client.get(f"/accounts/{account}?kpi=posting_frequency").text
    assert 'id="chart-kpi"' in html


def test_sources_and_methods_pages(client: TestClient, demo: tuple[Store, int]) -> None:
    sources = client.get("/sources")
    assert sources.status_code == 200
    assert "Last runs" in sources.text
    runs = _csv(client, "/sources?format=csv&table=runs")
    assert runs
    assert {r["kind"] for r in runs} >= {"ingest"}
    log = methods_log(demo[0])
    rows = _csv(client, "/methods?format=csv")
    assert [(r["profile"], r["sha256"]) for r in rows] == [(m["profile"], m["sha256"]) for m in log]


def test_every_page_labels_the_demo_and_exports_csv(client: TestClient) -> None:
    for path in ("/", "/outputs", "/people", "/groups", "/accounts", "/sources", "/methods"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "DEMO DATA" in response.text, path
        assert "format=csv" in response.text, path
        assert 'href="#main"' in response.text
    response = client.get("/outputs?format=csv")
    assert 'filename="demo-outputs.csv"' in response.headers["content-disposition"]


def test_reading_sets_no_cookie(client: TestClient) -> None:
    client.cookies.clear()
    for path in ("/", "/outputs", "/methods"):
        assert "set-cookie" not in client.get(path).headers, path
    assert "reachmeter_session=" in client.get("/login").headers["set-cookie"]


def test_unknown_csv_table_is_404(client: TestClient) -> None:
    assert client.get("/?format=csv&table=nope").status_code == 404


def test_static_assets_are_served_without_a_cdn(client: TestClient) -> None:
    vega = client.get("/static/vega.js")
    assert vega.status_code == 200
    assert "vegaEmbed" in vega.text
    assert "max-age" in vega.headers["cache-control"]
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/static/htmx.min.js").status_code == 200
    assert "https://cdn" not in client.get("/").text


def test_templates_and_static_files_are_package_data() -> None:
    text = (Path(__file__).parent.parent / "pyproject.toml").read_text()
    assert '"web/templates/**/*"' in text
    assert '"web/static/**/*"' in text


def _capture_uvicorn(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace ``uvicorn.run`` by one that requests the overview of the app it is given."""
    import uvicorn

    calls: list[dict[str, Any]] = []

    def run(app: Any, host: str, port: int, **_: Any) -> None:
        with TestClient(app) as client:
            overview = client.get("/", follow_redirects=False)
        calls.append(
            {"host": host, "port": port, "status": overview.status_code, "html": overview.text}
        )

    monkeypatch.setattr(uvicorn, "run", run)
    return calls


def test_demo_builds_then_serves_its_dashboard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _capture_uvicorn(monkeypatch)
    db = tmp_path / "demo.db"
    result = CliRunner().invoke(cli, ["demo", "--db", str(db), "--scale", "0.05", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert "dashboard: http://127.0.0.1:8123/" in result.output
    assert [(c["host"], c["port"], c["status"]) for c in calls] == [("127.0.0.1", 8123, 200)]
    assert "DEMO DATA" in calls[0]["html"]


def test_serve_needs_a_login_unless_public(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _capture_uvicorn(monkeypatch)
    db = str(sqlite_store.engine.url.database)
    result = CliRunner().invoke(cli, ["serve", "--db", db, "--port", "8124"])
    assert result.exit_code == 0, result.output
    assert "there are no users" in result.output
    assert calls[0]["status"] == 303
    monkeypatch.setenv("REACHMETER_PUBLIC_DASHBOARD", "true")
    result = CliRunner().invoke(cli, ["serve", "--db", db, "--port", "8124"])
    assert result.exit_code == 0, result.output
    assert calls[1]["status"] == 200


def test_pages_render_on_every_backend(store: Store, tmp_path: Path) -> None:
    data, files = generate_demo(tmp_path / "files", scale=0.05)
    load_demo(store, files, score_as_of=data.as_of.date())
    day = latest_as_of(store, "default")
    assert day is not None
    top = top_scores(store, "default", day, 1)[0]
    with TestClient(create_app(store, Settings(public_dashboard=True))) as client:
        series = _csv(client, "/?format=csv&table=attention")
        assert (
            sum(int(r["value"]) for r in series) == store_counts(store)["tables"]["events_matched"]
        )
        assert all(re.fullmatch(r"\d{4}-\d{2}-01", r["period"]) for r in series)
        rows = _csv(client, "/outputs?format=csv&sort=score&dir=desc")
        assert int(rows[0]["output_id"]) == top["output_id"]
        assert float(rows[0]["score"]) == top["score"]
        assert _csv(client, "/outputs?format=csv&q=zzzz-no-such-title") == []
        for path in (f"/outputs/{top['output_id']}", "/people", "/groups", "/sources"):
            assert client.get(path).status_code == 200, path


def test_kept_reach_basis_gives_reach_report_exactly(
    client: TestClient, demo: tuple[Store, int], day: dt.date
) -> None:
    from starlette.requests import Request

    from reachmeter.web.pages import group_reach, person_reach

    store = demo[0]
    request = Request({"type": "http", "app": client.app, "headers": []})
    with store.engine.connect() as connection:
        people = [int(i) for (i,) in connection.execute(select(Person.id).limit(5))]
        groups = [int(i) for (i,) in connection.execute(select(Group.id))]
    for person in people:
        assert person_reach(request, "default", day, person) == reach_report(
            store, "default", day, person_id=person
        )
    kept = group_reach(request, "default", day, groups)
    for group in groups:
        assert kept[group] == reach_report(store, "default", day, group_id=group)
    with pytest.raises(LookupError):
        person_reach(request, "default", day, 999_999)


def test_the_outputs_count_is_the_number_of_matching_outputs(client: TestClient) -> None:
    for filters in ("", "type=article", "type=dataset&sort=title&dir=asc", "min_score=10"):
        expected = len(_csv(client, f"/outputs?format=csv&{filters}"))
        for page in ("", "&page=2"):
            html = client.get(f"/outputs?{filters}{page}").text
            shown = re.search(r'id="result-count"[^>]*>([\d,]+)(\+?) output', html)
            assert shown is not None, filters
            assert (int(shown.group(1).replace(",", "")), shown.group(2)) == (expected, "")
