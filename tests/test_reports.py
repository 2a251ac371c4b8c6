"""Reports: the figures equal what scoring gives, the PDF has its text and vector charts,
a past period renders to the same bytes, and an empty period says so."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import func, select
from typer.testing import CliRunner

from reachmeter.cli import app
from reachmeter.demo import DemoData, generate_demo
from reachmeter.demo.load import load_demo
from reachmeter.framework import add_objective
from reachmeter.reports import (
    PeriodError,
    Report,
    ScopeError,
    build_report,
    parse_period,
    render_csv,
    render_html,
    render_pdf,
    resolve_scope,
)
from reachmeter.reports.render import format_number
from reachmeter.scoring import iter_scores, load_profile
from reachmeter.scoring.accounts import account_report
from reachmeter.scoring.reach import reach_report
from reachmeter.store import Store, open_store
from reachmeter.store.schema import Group, Score
from tests.fixtures.scoring.builder import Builder, at

Q3 = parse_period("2026-Q3")
TODAY = dt.date(2026, 11, 26)
DEFAULT = load_profile("default")
KPI_KEYS = ("followers_end", "follower_growth_rate", "engagement_rate_impr", "posts",
            "engagements", "share_of_voice", "average_reach_per_post")  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoData]:
    """A small demo store (a fifth of the standard size), scored as `reachmeter demo` does."""
    directory = tmp_path_factory.mktemp("demo")
    data, files = generate_demo(directory / "files", scale=0.2)
    db = directory / "demo.db"
    store = open_store(db)
    try:
        load_demo(
            store, files, meta={"as_of": data.as_of.isoformat()}, score_as_of=data.as_of.date()
        )
    finally:
        store.close()
    return db, data


@pytest.fixture
def demo_store(demo: tuple[Path, DemoData]) -> Iterator[Store]:
    store = open_store(demo[0])
    try:
        yield store
    finally:
        store.close()


def _report(store: Store, scope: str = "org", period: str = "2026-Q3") -> Report:
    return build_report(
        store, resolve_scope(store, scope), parse_period(period), DEFAULT, today=TODAY
    )


def _in(day: dt.datetime, start: dt.date, end: dt.date) -> bool:
    return start <= day.date() <= end


# ---- periods and scopes


@pytest.mark.parametrize(
    ("text", "start", "end", "previous"),
    [
        ("2025-Q3", "2025-07-01", "2025-09-30", ("2025-04-01", "2025-06-30")),
        ("2025-q1", "2025-01-01", "2025-03-31", ("2024-10-01", "2024-12-31")),
        ("2024-02", "2024-02-01", "2024-02-29", ("2024-01-01", "2024-01-31")),
        ("2025-01", "2025-01-01", "2025-01-31", ("2024-12-01", "2024-12-31")),
        ("2025", "2025-01-01", "2025-12-31", ("2024-01-01", "2024-12-31")),
        ("2025-07-10..2025-07-19", "2025-07-10", "2025-07-19", ("2025-06-30", "2025-07-09")),
    ],
)
def test_periods_and_the_period_before_them(
    text: str, start: str, end: str, previous: tuple[str, str]
) -> None:
    period = parse_period(text)
    assert (period.start.isoformat(), period.end.isoformat()) == (start, end)
    before = period.previous()
    assert (before.start.isoformat(), before.end.isoformat()) == previous
    assert before.days == period.days or period.kind != "days"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2025-Q5", "is not one of the forms"),
        ("2025-13", "there is no month 13"),
        ("last quarter", "is not one of the forms"),
        ("2025-09-30..2025-07-01", "ends (2025-07-01) before it starts (2025-09-30)"),
        ("2025-07-01..soon", "START..END must be two dates"),
    ],
)
def test_bad_periods_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(PeriodError, match=re.escape(message)):
        parse_period(text)


def test_bad_scopes_name_what_was_not_found(demo_store: Store) -> None:
    with pytest.raises(ScopeError, match=r"is not one of org, group:NAME or person:ID"):
        resolve_scope(demo_store, "department:Economics")
    with pytest.raises(ScopeError, match=r"no group named 'Economic'; did you mean 'Economics'"):
        resolve_scope(demo_store, "group:Economic")
    with pytest.raises(ScopeError, match=r"no person with id or ORCID '99999'"):
        resolve_scope(demo_store, "person:99999")
    assert resolve_scope(demo_store, "group:economics").name == "Economics"


def test_cli_rejects_bad_input_with_exit_code_2(demo: tuple[Path, DemoData]) -> None:
    runner = CliRunner()
    db = str(demo[0])
    cases = [
        (["--period", "2025-Q5"], "period '2025-Q5' is not one of the forms"),
        (["--period", "2025-Q3", "--scope", "group:Nowhere"], "no group named 'Nowhere'"),
        (["--period", "2025-Q3", "--scope", "person:abc"], "no person with id or ORCID 'abc'"),
        (["--period", "2099"], "period 2099 has not started yet"),
        (["--period", "2025", "--profile", "nonesuch"], "nonesuch"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["report", "--db", db, *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in " ".join(result.output.split()), (args, result.output)


# ---- the figures


def test_org_headline_equals_the_stored_scores_and_the_demo_data(
    demo: tuple[Path, DemoData], demo_store: Store
) -> None:
    data = demo[1]
    report = _report(demo_store)
    assert report.as_of == dt.date(2026, 9, 30)
    assert report.previous_as_of == dt.date(2026, 6, 30)
    now = list(iter_scores(demo_store, "default", dt.date(2026, 9, 30)))
    before = list(iter_scores(demo_store, "default", dt.date(2026, 6, 30)))
    assert len(now) == len(before) == len(data.outputs)
    attention = report.figure("attention")
    assert attention["value"] == pytest.approx(sum(r["score"] for r in now), abs=1e-6)
    assert attention["previous"] == pytest.approx(sum(r["score"] for r in before), abs=1e-6)
    citations = sum(r["breakdown"]["sources"].get("citations", {}).get("count", 0) for r in now)
    assert report.figure("citations")["value"] == citations

    # Mentions by the date they occurred: the generator's own list is the truth.
    q2 = Q3.previous()
    expected = sum(1 for m in data.mentions if _in(m.occurred_at, Q3.start, Q3.end))
    earlier = sum(1 for m in data.mentions if _in(m.occurred_at, q2.start, q2.end))
    mentions = report.figure("mentions")
    assert (mentions["value"], mentions["previous"]) == (expected, earlier)
    assert mentions["change"] == expected - earlier
    assert expected > 100
    published = sum(1 for o in data.outputs if Q3.start <= o.published_on <= Q3.end)
    assert report.figure("outputs_published")["value"] == published
    by_source = sum(row["mentions"] for row in report.sources)
    assert by_source == expected
    assert sum(row["value"] for row in report.series) == expected


def test_group_and_person_figures_equal_their_reach(demo_store: Store) -> None:
    with demo_store.session() as session:
        group_id = session.scalars(select(Group.id).where(Group.name == "Public Health")).one()
    report = _report(demo_store, f"group:{group_id}")
    reach = reach_report(demo_store, "default", Q3.end, group_id=group_id)["components"]
    assert report.figure("attention")["value"] == pytest.approx(reach["attention_total"]["value"])
    assert report.figure("h_index")["value"] == reach["attention_h_index"]["value"]
    assert report.figure("citations")["value"] == reach["citations"]["value"]
    assert report.figure("usage")["value"] == reach["usage"]["value"]
    assert report.figure("attention")["value"] > 0
    first = report.groups[0]
    assert first["name"] == "Public Health"
    assert first["attention"] == pytest.approx(reach["attention_total"]["value"])

    person = report.people[0]
    person_report = _report(demo_store, f"person:{person['person_id']}")
    person_reach = reach_report(demo_store, "default", Q3.end, person_id=person["person_id"])
    components = person_reach["components"]
    assert person_report.figure("attention")["value"] == pytest.approx(
        components["attention_total"]["value"]
    )
    assert person["attention"] == pytest.approx(components["attention_total"]["value"])
    shown = {row["component"]: row["value"] for row in person_report.reach}
    assert shown == {name: entry["value"] for name, entry in components.items()}


def test_account_kpis_equal_the_kpis_command(demo_store: Store) -> None:
    report = _report(demo_store, period="2026-08")
    assert len(report.accounts) == 9  # the demo organisation's own accounts
    for row in report.accounts:
        expected = account_report(
            demo_store, row["account_id"], dt.date(2026, 8, 1), dt.date(2026, 8, 31)
        )["kpis"][0]
        for key in KPI_KEYS:
            assert row["current"][key] == expected[key], (row["handle"], key)
    assert any(row["current"]["followers_end"] for row in report.accounts)


def test_objectives_are_reported_with_their_progress(demo_store: Store) -> None:
    objective = add_objective(
        demo_store,
        title="More mentions of our outputs in Q3",
        kpi="mentions",
        over="outputs",
        target=10_000,
        start=Q3.start,
        deadline=Q3.end,
        owner="Research office",
        today=Q3.start,
    )
    report = _report(demo_store)
    rows = [row for row in report.objectives if row["id"] == objective]
    assert len(rows) == 1
    assert rows[0]["current"] == report.figure("mentions")["value"]
    assert rows[0]["status"] == "behind"
    assert "More mentions of our outputs in Q3" in render_html(report)
    # The demo's own framework: every objective in the organisation's report, and only the
    # objectives over a group in that group's report.
    titles = {row["title"] for row in report.objectives}
    assert "School of Law outputs cited 1,250 times" in titles
    assert "6,000 mentions of Medicine and Health outputs this year" in titles
    law = _report(demo_store, "group:School of Law")
    assert [row["title"] for row in law.objectives] == ["School of Law outputs cited 1,250 times"]


# ---- rendering


def test_html_report_is_labelled_and_has_every_section(demo_store: Store) -> None:
    report = _report(demo_store)
    html = render_html(report)
    assert "DEMO DATA" in html
    for heading in ("1. Headline figures", "2. Attention by source", "3. Top outputs",
                    "4. Top mentions", "5. People and groups compared", "6. Accounts",
                    "7. Objectives", "8. Data quality", "9. Methods"):  # fmt: skip
        assert heading in html, heading
    assert html.count("<svg") == 3  # mentions over time, the donut, groups compared
    assert f"default {DEFAULT.version}" in html
    assert DEFAULT.sha256[:16] in html
    assert format_number(report.figure("attention")["value"]) in html
    assert "<script" not in html


def test_csv_holds_the_report_tables(demo_store: Store) -> None:
    report = _report(demo_store)
    text = render_csv(report)
    assert text.startswith("# DEMO DATA")
    blocks: dict[str, list[list[str]]] = {}
    for block in text.split("\n\n"):
        lines = [line for line in block.splitlines() if line]
        name = next(m[1] for line in lines if (m := re.match(r"# ([a-z_]+): ", line)))
        body = [line for line in lines if not line.startswith("#")]
        blocks[name] = list(csv.reader(io.StringIO("\n".join(body))))
    assert set(blocks) >= {"report", "headline", "sources", "top_outputs", "top_mentions",
                           "groups", "people", "accounts", "objectives", "data_quality",
                           "profile_weights"}  # fmt: skip
    headline = {row[0]: row for row in blocks["headline"][1:]}
    assert int(headline["mentions"][2]) == report.figure("mentions")["value"]
    assert float(headline["attention"][2]) == pytest.approx(report.figure("attention")["value"])
    assert len(blocks["top_outputs"]) == 11  # header and ten outputs


def _page_images(pdf: Path, directory: Path) -> list[Path]:
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(pdf), str(directory / "page")], check=True)
    return sorted(directory.glob("page-*.png"))


def test_pdf_has_the_text_and_vector_charts(demo_store: Store, tmp_path: Path) -> None:
    report = _report(demo_store)
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(render_pdf(report))
    reader = PdfReader(pdf)
    text = " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)
    assert "ReachMeter report: Whole organisation, 2026-Q3" in text
    assert "DEMO DATA" in text
    assert "Headline figures" in text
    assert "Mentions by source, per week" in text  # the chart's title, drawn as text
    assert format_number(report.figure("mentions")["value"]) in text
    # The charts are vector paths: page 1 holds the bar chart, dozens of filled shapes.
    first = reader.pages[0].get_contents()
    assert first is not None
    operators = first.get_data().decode("latin-1")
    assert len(re.findall(r"\bre\b|\bh\b", operators)) > 40
    assert not any("/Image" in str(page.get("/Resources", {})) for page in reader.pages)

    images = _page_images(pdf, tmp_path)
    assert len(images) == len(reader.pages) >= 3
    with Image.open(images[0]) as page:
        colours = {colour: count for count, colour in page.convert("RGB").getcolors(1 << 24)}
    bluesky = colours.get((0x11, 0x85, 0xFE), 0)
    twitter = colours.get((0x2F, 0x90, 0xB9), 0)
    dark = sum(count for colour, count in colours.items() if sum(colour) < 200)
    assert bluesky > 200  # bars in the sources' colours
    assert twitter > 200
    assert dark > 2000  # text


def test_a_past_period_renders_to_the_same_bytes(
    demo: tuple[Path, DemoData], tmp_path: Path
) -> None:
    runner = CliRunner()
    outputs = []
    for number in (1, 2):
        for fmt in ("html", "csv"):
            out = tmp_path / f"{number}.{fmt}"
            args = ["report", "--db", str(demo[0]), "--period", "2025-Q4", "--format", fmt]
            result = runner.invoke(app, [*args, "--scope", "group:School of Law", "-o", str(out)])
            assert result.exit_code == 0, result.output
            outputs.append(out.read_bytes())
    assert outputs[0] == outputs[2]
    assert outputs[1] == outputs[3]
    assert b"2025-Q4" in outputs[0]
    pdfs = []
    for number in (1, 2):
        out = tmp_path / f"{number}.pdf"
        args = ["report", "--db", str(demo[0]), "--period", "2025-Q4", "--format", "pdf"]
        result = runner.invoke(app, [*args, "--scope", "group:School of Law", "-o", str(out)])
        assert result.exit_code == 0, result.output
        pdfs.append(out.read_bytes())
    assert pdfs[0] == pdfs[1]
    assert pdfs[0].startswith(b"%PDF-")
    store = open_store(demo[0])
    try:
        with store.engine.connect() as connection:
            days = connection.execute(
                select(Score.as_of, func.count()).where(Score.profile_name == "default")
                .group_by(Score.as_of).order_by(Score.as_of)
            ).all()  # fmt: skip
    finally:
        store.close()
    # The report scored both ends it needed, once each, and touched no other day.
    assert [d for d, _ in days if d.year == 2025] == [dt.date(2025, 9, 30), dt.date(2025, 12, 31)]


# ---- no data


def test_a_period_with_no_data_gives_a_report_that_says_so(demo_store: Store) -> None:
    report = _report(demo_store, period="2020-Q1")
    assert not report.has_data
    assert report.figure("mentions")["value"] == 0
    assert report.figure("attention")["value"] == 0
    html = render_html(report)
    assert "No data for whole organisation in 2020-Q1" in html
    assert "and the store holds nothing from before its end" in html
    assert "<svg" not in html
    assert "1. Headline figures" in html
    assert "9. Methods" in html
    assert "has_data,no" in render_csv(report)
    with demo_store.engine.connect() as connection:
        stored = connection.execute(
            select(func.count()).select_from(Score).where(Score.as_of == dt.date(2020, 3, 31))
        ).scalar()
    assert stored == 0  # nothing to score: nothing was written


def test_an_empty_store_reports_no_data_through_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "empty.html"
    db = str(tmp_path / "empty.db")
    result = CliRunner().invoke(app, ["report", "--db", db, "--period", "2025-07", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "(no data in the period)" in result.output
    html = out.read_text()
    assert "No data for whole organisation in 2025-07" in html
    assert "DEMO DATA" not in html


def test_a_quiet_period_after_earlier_data_says_so(store: Store) -> None:
    build = Builder(store)
    output = build.output("10.5555/quiet", title="Quiet paper")
    build.event(output, "newsfeed", "https://news.example/", at("2025-03-10"))
    report = build_report(store, resolve_scope(store, "org"), parse_period("2025-Q3"), DEFAULT)
    assert not report.has_data
    assert report.figure("attention")["value"] == 8.0  # one news story, scored as of the end
    assert report.figure("mentions")["value"] == 0
    html = render_html(report)
    assert "No data for whole organisation in 2025-Q3" in html
    assert "holds nothing from before" not in html


# ---- untrusted text


def test_mention_text_is_escaped_and_never_a_formula(store: Store) -> None:
    build = Builder(store)
    output = build.output("10.5555/x", title="A <b>bold</b> title", published="2025-07-02")
    build.event(
        output, "newsfeed", "https://news.example/", at("2025-07-03"),
        text="<script>alert('x')</script> read this", subj_id="javascript:alert(1)",
    )  # fmt: skip
    build.event(
        output, "wordpressdotcom", "https://blog.example/", at("2025-07-04"),
        text="=HYPERLINK(\"https://evil.example\")", subj_id="https://blog.example/post",
    )  # fmt: skip
    report = build_report(store, resolve_scope(store, "org"), parse_period("2025-07"), DEFAULT)
    assert report.has_data
    assert report.figure("mentions")["value"] == 2
    html = render_html(report)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "A &lt;b&gt;bold&lt;/b&gt; title" in html
    assert 'href="javascript:' not in html
    assert 'href="https://blog.example/post"' in html
    text = render_csv(report)
    assert "'=HYPERLINK" in text
    assert ',"=HYPERLINK' not in text
    assert ",=HYPERLINK" not in text


def test_person_report_with_an_account_on_each_backend(store: Store) -> None:
    build = Builder(store)
    output = build.output("10.5555/p", title="Person's paper", published="2025-06-01")
    person = build.author(output, "Ada <Lovelace>", account_url="https://x.com/ada")
    build.event(output, "twitter", "https://x.com/someone", at("2025-07-05"))
    build.event(output, "twitter", "https://x.com/ada", at("2025-07-06"))
    build.event(output, "newsfeed", "https://news.example/", at("2025-06-20"))
    report = build_report(
        store, resolve_scope(store, f"person:{person}"), parse_period("2025-07"), DEFAULT
    )
    assert report.figure("mentions")["value"] == 2
    assert report.figure("mentions")["previous"] == 1
    # As of 2025-07-31: news 8 + two X accounts x 0.25. The author's own post counts: the
    # report keeps the stored flags, and no `reachmeter score` has flagged it yet.
    assert report.figure("attention")["value"] == pytest.approx(8.5)
    assert report.figure("attention")["previous"] == 8.0
    assert [row["handle"] for row in report.accounts] == ["ada"]
    assert report.accounts[0]["current"]["share_of_voice"] == 50.0
    assert {row["component"] for row in report.reach} >= {"attention_total", "audience"}
    html = render_html(report)
    assert "Reach of Ada &lt;Lovelace&gt;" in html
