"""X Analytics exports: the real 2021 exports import exactly, and the current layouts too."""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from reachmeter.cli import app
from reachmeter.imports.exports import ExportFileError, import_export
from reachmeter.matching.identifiers import normalize
from reachmeter.scoring.accounts import account_report
from reachmeter.store import Store
from reachmeter.store.catalog import add_account, upsert_output
from reachmeter.store.schema import (
    Account,
    Event,
    EventMatch,
    Evidence,
    Observation,
    QuarantinedRecord,
    Run,
)
from tests.conftest import shared_data

FIXTURES = Path(__file__).parent / "fixtures" / "exports" / "x"
NEW_POSTS = FIXTURES / "account_analytics_content_2026-07-01_2026-07-31.csv"
NEW_DAILY = FIXTURES / "account_overview_analytics_2026-07-01_2026-07-31.csv"
runner = CliRunner()

# The columns of the legacy exports that are stored, and as which metric.
LEGACY_METRICS = {
    "impressions": "impressions",
    "engagements": "engagements",
    "retweets": "reposts",
    "replies": "replies",
    "likes": "likes",
    "user profile clicks": "profile_clicks",
    "url clicks": "url_clicks",
    "hashtag clicks": "hashtag_clicks",
    "detail expands": "detail_expands",
    "permalink clicks": "permalink_clicks",
    "app opens": "app_opens",
    "app installs": "app_installs",
    "follows": "new_followers",
    "email tweet": "email_tweet",
    "dial phone": "dial_phone",
    "media views": "media_views",
    "media engagements": "media_engagements",
    "promoted impressions": "promoted_impressions",
    "promoted engagements": "promoted_engagements",
    "promoted retweets": "promoted_reposts",
    "promoted replies": "promoted_replies",
    "promoted likes": "promoted_likes",
    "promoted url clicks": "promoted_url_clicks",
    "promoted follows": "promoted_new_followers",
    "promoted media views": "promoted_media_views",
}


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _figures(rows: list[dict[str, str]], extra: dict[str, str]) -> dict[str, float]:
    """Per metric, the sum of the file's cells that hold a figure (``-`` holds none)."""
    sums: dict[str, float] = {}
    for row in rows:
        for column, metric in {**LEGACY_METRICS, **extra}.items():
            if row[column] != "-":
                sums[metric] = sums.get(metric, 0.0) + float(row[column])
    return sums


def _cells(rows: list[dict[str, str]], extra: dict[str, str]) -> int:
    columns = {**LEGACY_METRICS, **extra}
    return sum(1 for row in rows for column in columns if row[column] != "-")


def _links(text: str) -> set[str]:
    found = re.findall(r"https?://[^\s\"]+", text)
    return {url for url in found if not re.match(r"https?://(www\.)?(twitter|x)\.com/", url)}


def _org_account(store: Store, platform: str, handle: str) -> int:
    with store.session() as session:
        return add_account(session, platform, handle, owner=None, org=True).id


def _stored_sums(store: Store, path: Path) -> dict[str, float]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(Observation.metric, func.sum(Observation.value))
            .join(Evidence, Evidence.id == Observation.evidence_id)
            .where(Evidence.request_url == path.resolve().as_uri())
            .group_by(Observation.metric)
        )
        return {metric: float(total) for metric, total in rows}


def test_the_twelve_real_exports_import_exactly(store: Store) -> None:
    folder = shared_data("x-analytics")
    files = sorted(folder.glob("*.csv"))
    assert len(files) == 12
    account_id = _org_account(store, "x", "LisaDeBruine")
    events = 0
    for path in files:
        rows = _csv(path)
        summary = import_export(store, path)
        assert summary.platform == "x"
        assert summary.account == "x:lisadebruine"
        assert summary.rows == len(rows)
        assert summary.quarantined == 0, summary.problems
        stored = _stored_sums(store, path)
        if path.name.startswith("daily_"):
            extra = {"Tweets published": "posts"}
            assert summary.layouts == [f"{path}: x/daily-legacy"]
            assert summary.events == 0
        else:
            extra = {}
            assert summary.layouts == [f"{path}: x/posts-legacy"]
            links = sum(len(_links(row["Tweet text"])) for row in rows)
            assert summary.events == links
            events += links
        assert summary.observations == _cells(rows, extra)
        assert stored == pytest.approx(_figures(rows, extra), abs=1e-6)
        # The impressions of each file, added up independently from the CSV.
        assert stored["impressions"] == sum(float(row["impressions"]) for row in rows)
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Event)).scalar() == events
        per_account = connection.execute(
            select(func.count()).where(Observation.account_id == account_id)
        ).scalar()
        daily = [_csv(path) for path in files if path.name.startswith("daily_")]
        assert per_account == sum(_cells(rows, {"Tweets published": "posts"}) for rows in daily)


def test_per_post_figures_are_observations_of_the_post_and_links_are_mentions(
    store: Store,
) -> None:
    path = shared_data(
        "x-analytics", "tweet_activity_metrics_LisaDeBruine_20210101_20210201_en.csv"
    )
    _org_account(store, "x", "lisadebruine")
    import_export(store, path, platform="x")
    first = _csv(path)[0]
    with store.engine.connect() as connection:
        post = connection.execute(
            select(Observation.value, Observation.observed_at, Observation.cumulative).where(
                Observation.obj_value == normalize(first["Tweet permalink"], "url").value,
                Observation.metric == "impressions",
            )
        ).one()
        assert post.value == float(first["impressions"]) == 215.0
        assert post.cumulative is True
        # Figures as of the export's end date, from the file name.
        assert post.observed_at == dt.datetime(2021, 2, 1, tzinfo=dt.UTC)
        with_link = next(row for row in _csv(path) if _links(row["Tweet text"]))
        event = connection.execute(
            select(Event).where(Event.subj_id.contains(with_link["Tweet id"]))
        ).first()
    assert event is not None
    assert event.source_id == "twitter"
    assert event.relation_type_id == "discusses"
    assert event.subj_author == "https://x.com/lisadebruine"
    assert event.obj_value in _links(with_link["Tweet text"])
    assert event.subj["text"] == with_link["Tweet text"]


def test_reimporting_adds_nothing(store: Store) -> None:
    _org_account(store, "x", "lisadebruine")
    paths = [
        shared_data(
            "x-analytics", "daily_tweet_activity_metrics_LisaDeBruine_20210301_20210401_en.csv"
        ),
        shared_data("x-analytics", "tweet_activity_metrics_LisaDeBruine_20210301_20210401_en.csv"),
    ]
    first = [import_export(store, path) for path in paths]
    with store.engine.connect() as connection:
        counts = (
            connection.execute(select(func.count()).select_from(Observation)).scalar(),
            connection.execute(select(func.count()).select_from(Event)).scalar(),
        )
    again = [import_export(store, path) for path in paths]
    for before, after in zip(first, again, strict=True):
        assert (after.observations, after.events, after.quarantined) == (0, 0, 0)
        assert after.duplicates == before.observations + before.events
    with store.engine.connect() as connection:
        assert counts == (
            connection.execute(select(func.count()).select_from(Observation)).scalar(),
            connection.execute(select(func.count()).select_from(Event)).scalar(),
        )
        statuses = connection.execute(select(Run.kind, Run.status)).all()
    assert statuses == [("import-export", "ok")] * 4


def test_kpis_of_imported_daily_exports(store: Store) -> None:
    account_id = _org_account(store, "x", "lisadebruine")
    path = shared_data(
        "x-analytics", "daily_tweet_activity_metrics_LisaDeBruine_20210101_20210201_en.csv"
    )
    import_export(store, path)
    rows = _csv(path)
    impressions = sum(float(row["impressions"]) for row in rows)
    engagements = sum(float(row["engagements"]) for row in rows)
    posts = sum(float(row["Tweets published"]) for row in rows)
    report = account_report(store, account_id, dt.date(2021, 1, 1), dt.date(2021, 1, 31))
    (january,) = report["kpis"]
    assert january["impressions"] == impressions
    assert january["engagements"] == engagements
    assert january["posts"] == posts == 189
    assert january["engagement_rate_impr"] == round(100 * engagements / impressions, 4)
    assert january["posting_frequency"] == round(posts / 31, 4)


def test_the_current_layouts_with_placeholders_bad_rows_and_mentions(store: Store) -> None:
    _org_account(store, "x", "ReachLib")
    with store.session() as session:
        output, _ = upsert_output(session, identifiers=[normalize("10.5555/reach.2026.001")])
        output_id = output.id
    posts = import_export(store, NEW_POSTS)
    assert (posts.platform, posts.account, posts.rows) == ("x", "x:reachlib", 4)
    assert posts.quarantined == 1
    assert posts.problems == [f"{NEW_POSTS}: line 5: column 'Impressions': 'abc' is not a number"]
    # 13 figures for each of two posts, 12 for the one with a "-" for its likes.
    assert posts.observations == 13 + 13 + 12
    # A DOI and a page; the link to the account's own post is not a mention.
    assert posts.events == 2
    assert posts.matched == 1
    daily = import_export(store, NEW_DAILY, account="@ReachLib")
    assert (daily.rows, daily.observations, daily.quarantined) == (4, 4 * 13, 0)
    with store.engine.connect() as connection:
        impressions = connection.execute(
            select(Observation.value).where(
                Observation.obj_value == "https://x.com/ReachLib/status/1944100000000000001",
                Observation.metric == "impressions",
            )
        ).scalar()
        assert impressions == 1234.0
        day = connection.execute(
            select(Observation.value, Observation.period_start)
            .where(Observation.account_id.is_not(None), Observation.metric == "impressions")
            .order_by(Observation.period_start)
        ).first()
        assert tuple(day) == (2050.0, dt.date(2026, 7, 14))
        arabic = connection.execute(
            select(Event.subj, Event.obj_value, Event.occurred_at).where(Event.obj_scheme == "url")
        ).one()
        matched = connection.execute(select(EventMatch.output_id)).scalars().all()
        bad = connection.execute(select(QuarantinedRecord.origin, QuarantinedRecord.line)).all()
    # Text in other scripts and HTML is kept as data, exactly as written.
    assert arabic.subj["text"] == (
        "مقالة جديدة عن القراءة <b>bold</b> https://example.org/briefings/open-data"
    )
    assert arabic.obj_value == "https://example.org/briefings/open-data"
    assert arabic.occurred_at == dt.datetime(2026, 7, 15, tzinfo=dt.UTC)
    assert matched == [output_id]
    assert bad == [(str(NEW_POSTS), 5)]


def test_an_export_of_another_platform_than_declared_is_refused(store: Store) -> None:
    _org_account(store, "x", "lisadebruine")
    path = shared_data(
        "x-analytics", "daily_tweet_activity_metrics_LisaDeBruine_20210101_20210201_en.csv"
    )
    with pytest.raises(
        ExportFileError,
        match=r"an export from X Analytics .* not from Meta Business Suite as declared",
    ):
        import_export(store, path, platform="meta", account="someone")
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Observation)).scalar() == 0
        assert connection.execute(select(Run.status)).scalars().all() == ["failed"]


def test_an_export_of_another_account_than_declared_is_refused(store: Store) -> None:
    _org_account(store, "x", "lisadebruine")
    _org_account(store, "x", "someoneelse")
    path = shared_data(
        "x-analytics", "daily_tweet_activity_metrics_LisaDeBruine_20210101_20210201_en.csv"
    )
    with pytest.raises(
        ExportFileError, match="export of x:lisadebruine, not of the declared x:someoneelse"
    ):
        import_export(store, path, account="someoneelse")


def test_an_unknown_account_says_how_to_add_it(store: Store) -> None:
    path = shared_data(
        "x-analytics", "daily_tweet_activity_metrics_LisaDeBruine_20210101_20210201_en.csv"
    )
    with pytest.raises(ExportFileError, match="reachmeter accounts add x lisadebruine"):
        import_export(store, path)
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Account)).scalar() == 0


def test_the_command_imports_files_and_reports_errors(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    daily = shared_data(
        "x-analytics", "daily_tweet_activity_metrics_LisaDeBruine_20210101_20210201_en.csv"
    )
    added = runner.invoke(
        app, ["accounts", "add", "x", "@LisaDeBruine", "--owner", "org", "--db", db]
    )
    assert added.exit_code == 0, added.output
    result = runner.invoke(app, ["import", "export", str(daily), "--platform", "x", "--db", db])
    assert result.exit_code == 0, result.output
    assert "558" in result.stdout
    wrong = runner.invoke(
        app, ["import", "export", str(NEW_DAILY), "--platform", "gsc", "--db", db]
    )
    assert wrong.exit_code == 1
    assert "not from Google Search Console as declared" in wrong.output
    listed = runner.invoke(app, ["accounts", "list", "--json", "--db", db])
    (account,) = orjson.loads(listed.stdout)
    assert account["handle"] == "lisadebruine"
    assert account["observations"] == 558
    mapping = runner.invoke(app, ["import", "export-mapping", "x"])
    assert "[layouts.posts-legacy]" in mapping.stdout
