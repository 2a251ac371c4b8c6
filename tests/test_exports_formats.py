"""LinkedIn, Meta Business Suite and Search Console exports, encodings and column mappings.

The files are project fixtures written from the platforms' documented columns (see
``tests/fixtures/exports/README.md``); LinkedIn workbooks and Search Console ZIPs are built
from them here, as the platforms package them.
"""

from __future__ import annotations

import csv
import datetime as dt
import zipfile
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select

from reachmeter.imports.exports import (
    ExportFileError,
    MappingError,
    import_export,
    load_mappings,
)
from reachmeter.imports.exports.convert import parse_number, parse_time
from reachmeter.scoring.accounts import account_report
from reachmeter.store import Store
from reachmeter.store.catalog import add_account
from reachmeter.store.schema import Event, Observation

FIXTURES = Path(__file__).parent / "fixtures" / "exports"
LINKEDIN = "https://www.linkedin.com/company/reach-library"


def _account(store: Store, platform: str, handle: str) -> int:
    with store.session() as session:
        return add_account(session, platform, handle, owner=None, org=True).id


def _account_figures(store: Store, metric: str) -> dict[dt.date, float]:
    """Per day, the account's figure for ``metric`` (post shares added up)."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(Observation.period_start, func.sum(Observation.value))
            .where(Observation.account_id.is_not(None), Observation.metric == metric)
            .group_by(Observation.period_start)
        )
        return {day: float(total) for day, total in rows}


def _post_figure(store: Store, url: str, metric: str) -> float | None:
    with store.engine.connect() as connection:
        value = connection.execute(
            select(Observation.value).where(
                Observation.obj_value == url, Observation.metric == metric
            )
        ).scalar()
    return float(value) if value is not None else None


def _cell(text: str, dates: bool) -> object:
    """A CSV cell as Excel holds it: numbers as numbers, and (for ``dates``) dates as dates."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        pass
    if dates:
        try:
            return dt.datetime.strptime(text, "%m/%d/%Y")  # noqa: DTZ007
        except ValueError:
            pass
    return text


def _workbook(path: Path, sheets: dict[str, str], dates: bool = False) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for title, name in sheets.items():
        sheet = book.create_sheet(title)
        with (FIXTURES / "linkedin" / name).open(encoding="utf-8", newline="") as handle:
            for row in csv.reader(handle):
                sheet.append([_cell(cell, dates) if cell else None for cell in row])
    book.save(path)
    return path


def _gsc_zip(path: Path, names: list[str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted((FIXTURES / "gsc").glob("*.csv")):
            if names is None or file.name in names:
                archive.write(file, file.name)
    return path


# -- Meta Business Suite ----------------------------------------------------------------


def test_facebook_posts_before_2025_feed_the_page_kpis(store: Store) -> None:
    account_id = _account(store, "facebook", "reachlibrary")
    path = FIXTURES / "meta" / "facebook_posts_impressions.csv"
    summary = import_export(store, path, account="reachlibrary")
    assert (summary.platform, summary.account) == ("meta", "facebook:reachlibrary")
    assert summary.layouts == [f"{path}: meta/facebook-posts-impressions"]
    assert (summary.rows, summary.quarantined, summary.events) == (3, 0, 1)
    # The UTF-8 byte-order mark does not hide the first column.
    assert (
        _post_figure(
            store, "https://www.facebook.com/reachlibrary/posts/200000000000001", "impressions"
        )
        == 1500.0
    )
    assert _account_figures(store, "posts") == {
        dt.date(2026, 7, 1): 1.0,
        dt.date(2026, 7, 3): 2.0,
    }
    assert _account_figures(store, "impressions") == {
        dt.date(2026, 7, 1): 1500.0,
        dt.date(2026, 7, 3): 1000.0,
    }
    (july,) = account_report(store, account_id, dt.date(2026, 7, 1), dt.date(2026, 7, 31))["kpis"]
    assert july["engagement_rate_impr"] == 4.8  # (75 + 40 + 5) / 2,500 x 100
    assert july["engagement_rate_reach"] == round(100 * 120 / 2030, 4)
    assert july["average_reach_per_post"] == round(2030 / 3, 4)
    with store.engine.connect() as connection:
        text = connection.execute(select(Event.subj)).scalar_one()["text"]
    assert text == "New report on open data: https://doi.org/10.5555/reach.2026.002"


def test_an_export_that_does_not_say_whose_it_is_needs_the_account(store: Store) -> None:
    _account(store, "facebook", "reachlibrary")
    path = FIXTURES / "meta" / "facebook_posts_views.csv"
    with pytest.raises(ExportFileError, match="does not say whose it is; give the account"):
        import_export(store, path, platform="meta")


def test_facebook_views_are_not_merged_into_impressions(store: Store) -> None:
    _account(store, "facebook", "reachlibrary")
    path = FIXTURES / "meta" / "facebook_posts_views.csv"
    summary = import_export(store, path, platform="meta", account="reachlibrary")
    assert summary.layouts == [f"{path}: meta/facebook-posts-views"]
    assert _account_figures(store, "impressions") == {}
    assert _account_figures(store, "views") == {
        dt.date(2026, 8, 2): 2400.0,
        dt.date(2026, 8, 4): 5100.0,
    }
    assert _account_figures(store, "engagements") == {
        dt.date(2026, 8, 2): 130.0,
        dt.date(2026, 8, 4): 210.0,
    }


def test_instagram_names_its_account_and_a_row_of_another_is_quarantined(store: Store) -> None:
    _account(store, "instagram", "@ReachLibrary")
    path = FIXTURES / "meta" / "instagram_posts.csv"
    summary = import_export(store, path)
    assert (summary.platform, summary.account) == ("meta", "instagram:reachlibrary")
    assert summary.quarantined == 1
    assert summary.problems == [
        f"{path}: line 4: a post of instagram:otheraccount, not of instagram:reachlibrary"
    ]
    url = "https://www.instagram.com/p/CReach001/"
    assert _post_figure(store, url, "engagements") == 180 + 20 + 12 + 30
    assert _post_figure(store, url, "views") == 3000.0
    assert _account_figures(store, "reach") == {
        dt.date(2026, 8, 5): 2200.0,
        dt.date(2026, 8, 6): 7000.0,
    }
    with store.engine.connect() as connection:
        doi = connection.execute(select(Event.obj_scheme, Event.obj_value)).one()
    assert tuple(doi) == ("doi", "10.5555/reach.2026.001")


# -- LinkedIn -----------------------------------------------------------------------------


def test_linkedin_workbook_headers_on_row_two(store: Store, tmp_path: Path) -> None:
    account_id = _account(store, "linkedin", LINKEDIN)
    book = _workbook(
        tmp_path / "reach-library_content_1751328000000.xlsx",
        {"Metrics": "content_metrics.csv", "All posts": "content_all_posts.csv"},
        dates=True,
    )
    summary = import_export(store, book, platform="linkedin", account=LINKEDIN)
    assert summary.layouts == [
        f"{book} [sheet Metrics]: linkedin/content-daily",
        f"{book} [sheet All posts]: linkedin/posts",
    ]
    assert summary.rows == 3 + 4
    assert summary.quarantined == 1
    assert summary.problems[0].startswith(f"{book} [sheet All posts]: line 6: column 'Created")
    # Dates typed as Excel dates (Metrics) and as text (All posts) both read.
    assert _account_figures(store, "impressions") == {
        dt.date(2026, 7, 1): 500.0,
        dt.date(2026, 7, 2): 2600.0,
        dt.date(2026, 7, 3): 800.0,
    }
    assert _account_figures(store, "engagements")[dt.date(2026, 7, 2)] == 95 + 70 + 11 + 6
    assert _account_figures(store, "posts") == {dt.date(2026, 7, 2): 2.0, dt.date(2026, 7, 9): 1.0}
    post = "https://www.linkedin.com/feed/update/urn:li:activity:7200000000000000001"
    # LinkedIn's engagement counts follows too.
    assert _post_figure(store, post, "engagements") == 80 + 60 + 10 + 5 + 3
    (july,) = account_report(store, account_id, dt.date(2026, 7, 1), dt.date(2026, 7, 31))["kpis"]
    assert july["impressions"] == 3900.0
    assert july["reach"] == 2220.0
    assert july["posts"] == 3.0
    assert summary.events == 1


def test_linkedin_sheets_without_a_layout_are_reported_not_guessed(
    store: Store, tmp_path: Path
) -> None:
    _account(store, "linkedin", LINKEDIN)
    book = _workbook(
        tmp_path / "followers.xlsx",
        {"New followers": "followers_new_followers.csv", "Location": "followers_location.csv"},
    )
    summary = import_export(store, book, account=LINKEDIN)
    assert summary.platform == "linkedin"
    assert summary.notes == [
        f"{book} [sheet Location]: skipped, its columns fit no layout "
        "(first row: Location: Followers by location)"
    ]
    assert _account_figures(store, "new_followers") == {
        dt.date(2026, 7, 1): 4.0,
        dt.date(2026, 7, 2): 10.0,
        dt.date(2026, 7, 3): 2.0,
    }
    assert _account_figures(store, "followers") == {}


# -- Google Search Console ----------------------------------------------------------------


def test_search_console_zip(store: Store, tmp_path: Path) -> None:
    _account(store, "website", "https://example.org/")
    archive = _gsc_zip(tmp_path / "https___example.org-Performance-on-Search-2026-07-04.zip")
    summary = import_export(store, archive, account="example.org")
    assert (summary.platform, summary.account) == ("gsc", "website:https://example.org")
    assert summary.rows == 3 + 2 + 2 + 2 + 2
    assert summary.quarantined == 0
    assert summary.events == 0
    # CTR "3.2%" is 3.2; a blank position is no figure.
    assert _account_figures(store, "search_ctr") == {
        dt.date(2026, 7, 1): 3.0,
        dt.date(2026, 7, 2): 3.2,
        dt.date(2026, 7, 3): 0.0,
    }
    assert set(_account_figures(store, "search_position")) == {
        dt.date(2026, 7, 1),
        dt.date(2026, 7, 2),
    }
    assert sum(_account_figures(store, "search_impressions").values()) == 1075.0
    with store.engine.connect() as connection:
        page = connection.execute(
            select(Observation.value, Observation.period_start, Observation.period_end).where(
                Observation.obj_value == "https://example.org/briefings/open-data",
                Observation.metric == "search_clicks",
            )
        ).one()
        query = connection.execute(
            select(Observation.value).where(
                Observation.metric == "search_clicks_by_query",
                Observation.qualifier == "reading habits, study",
            )
        ).scalar()
    assert tuple(page) == (25.0, dt.date(2026, 7, 1), dt.date(2026, 7, 3))
    assert query == 9.0
    assert _account_figures(store, "search_impressions_by_device") == {dt.date(2026, 7, 1): 1075.0}


def test_search_console_tables_without_dates_are_quarantined(store: Store, tmp_path: Path) -> None:
    _account(store, "website", "https://example.org")
    archive = _gsc_zip(tmp_path / "queries-only.zip", ["Queries.csv", "Filters.csv"])
    summary = import_export(store, archive, platform="gsc", account="https://example.org")
    assert (summary.rows, summary.observations, summary.quarantined) == (2, 0, 2)
    assert "the export's period is unknown" in summary.problems[0]


# -- encodings ----------------------------------------------------------------------------


def test_another_encoding_is_a_clear_error_or_a_correct_import(
    store: Store, tmp_path: Path
) -> None:
    _account(store, "facebook", "reachlibrary")
    text = (FIXTURES / "meta" / "facebook_posts_impressions.csv").read_text(encoding="utf-8-sig")
    latin = tmp_path / "facebook-cp1252.csv"
    latin.write_bytes(text.replace("—", "-").encode("cp1252"))
    with pytest.raises(ExportFileError, match=r"not UTF-8 text \(invalid byte 0xe9 .*--encoding"):
        import_export(store, latin, account="reachlibrary")
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Observation)).scalar() == 0
    summary = import_export(store, latin, account="reachlibrary", encoding="cp1252")
    assert (summary.rows, summary.quarantined) == (3, 0)


def test_utf16_with_tabs_imports_like_utf8(store: Store, tmp_path: Path) -> None:
    _account(store, "x", "ReachLib")
    source = FIXTURES / "x" / "account_overview_analytics_2026-07-01_2026-07-31.csv"
    with source.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    wide = tmp_path / "account_overview_analytics_2026-07-01_2026-07-31.csv"
    wide.write_bytes("\n".join("\t".join(row) for row in rows).encode("utf-16"))
    summary = import_export(store, wide, account="reachlib")
    assert (summary.rows, summary.observations, summary.quarantined) == (4, 52, 0)
    assert _account_figures(store, "impressions")[dt.date(2026, 7, 14)] == 2050.0


def test_binary_and_empty_files_are_refused(store: Store, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(ExportFileError, match="the file is empty"):
        import_export(store, empty)
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"\x00\x01\x02" * 50)
    with pytest.raises(ExportFileError, match="binary file"):
        import_export(store, junk)


# -- mappings -----------------------------------------------------------------------------


def _renamed(tmp_path: Path) -> Path:
    """The X daily fixture after a (hypothetical) renaming of Impressions to Views shown."""
    text = (FIXTURES / "x" / "account_overview_analytics_2026-07-01_2026-07-31.csv").read_text()
    path = tmp_path / "overview.csv"
    path.write_text(text.replace("Date,Impressions,", "Date,Views shown,", 1))
    return path


def test_a_renamed_column_needs_a_mapping_and_works_with_one(store: Store, tmp_path: Path) -> None:
    _account(store, "x", "ReachLib")
    renamed = _renamed(tmp_path)
    with pytest.raises(ExportFileError, match="not a recognised analytics export"):
        import_export(store, renamed, platform="x", account="reachlib")
    toml = tmp_path / "x-mapping.toml"
    toml.write_text(
        'platform = "x"\n'
        "[layouts.daily]\n"
        'detect = ["Date", "Views shown", "Engagements", "Create Post"]\n'
        "[layouts.daily.metrics]\n"
        'impressions = ["Views shown", "Impressions"]\n'
    )
    summary = import_export(store, renamed, account="reachlib", mapping_file=toml)
    assert summary.layouts == [f"{renamed}: x/daily"]
    assert _account_figures(store, "impressions")[dt.date(2026, 7, 15)] == 1100.0
    yaml_file = tmp_path / "x-mapping.yaml"
    yaml_file.write_text(
        "platform: x\nlayouts:\n  daily:\n"
        "    detect: [Date, Views shown, Engagements, Create Post]\n"
        "    metrics:\n      impressions: [Views shown]\n"
    )
    again = import_export(store, renamed, account="reachlib", mapping_file=yaml_file)
    assert (again.observations, again.quarantined) == (0, 0)


def test_bad_mappings_name_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('platform = "x"\n[layouts.daily]\nkind = "weekly"\n')
    with pytest.raises(MappingError, match=r"bad.toml: layouts.daily.kind: 'weekly'"):
        load_mappings(bad)
    bad.write_text('platform = "myspace"\n')
    with pytest.raises(MappingError, match="platform 'myspace' is not one of"):
        load_mappings(bad)
    bad.write_text('platform = "x"\n[layouts.new]\nkind = "daily"\ndetect = ["Day"]\n')
    with pytest.raises(MappingError, match="needs the field 'date'"):
        load_mappings(bad)


def test_a_revised_figure_is_quarantined_and_the_stored_one_kept(
    store: Store, tmp_path: Path
) -> None:
    _account(store, "x", "ReachLib")
    source = FIXTURES / "x" / "account_overview_analytics_2026-07-01_2026-07-31.csv"
    import_export(store, source, account="reachlib")
    revised = tmp_path / "account_overview_analytics_2026-07-01_2026-08-31.csv"
    revised.write_text(source.read_text().replace("1100,52,", "1180,52,"))
    summary = import_export(store, revised, account="reachlib")
    assert (summary.observations, summary.quarantined) == (0, 1)
    assert summary.problems == [
        f"{revised}: line 3: impressions of x:reachlib for 2026-07-15..2026-07-15 is 1180 "
        "here but 1100 is already stored (from an earlier export or row); the stored figure "
        "is kept"
    ]
    assert _account_figures(store, "impressions")[dt.date(2026, 7, 15)] == 1100.0


def test_a_zip_with_nothing_to_import_is_refused(store: Store, tmp_path: Path) -> None:
    archive = _gsc_zip(tmp_path / "filters-only.zip", ["Filters.csv"])
    with pytest.raises(ExportFileError, match="not a recognised analytics export"):
        import_export(store, archive, platform="gsc", account="https://example.org")


# -- cells --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "decimal_comma", "expected"),
    [
        ("89.0", False, 89.0),
        ("1,234", False, 1234.0),
        ("1,234,567.5", False, 1234567.5),
        ("3.2%", False, 3.2),
        ("0%", False, 0.0),
        ("10,00 %", True, 10.0),
        ("1.234,5", True, 1234.5),
        (" 7 ", False, 7.0),
        (12, False, 12.0),
        (0.25, False, 0.25),
        ("-", False, None),
        ("", False, None),
        (None, False, None),
        ("\u2013", False, None),
    ],
)
def test_figures_in_cells(cell: object, decimal_comma: bool, expected: float | None) -> None:
    assert parse_number(cell, decimal_comma) == expected


@pytest.mark.parametrize("cell", ["abc", "nan", "inf", "1,2,3", True, float("nan")])
def test_cells_that_are_not_figures(cell: object) -> None:
    with pytest.raises(ValueError, match="is not a number"):
        parse_number(cell)


@pytest.mark.parametrize(
    ("cell", "formats", "expected"),
    [
        (
            "2021-01-30 12:56 +0000",
            ["%Y-%m-%d %H:%M %z"],
            dt.datetime(2021, 1, 30, 12, 56, tzinfo=dt.UTC),
        ),
        (
            "2021-01-30 14:56 +0200",
            ["%Y-%m-%d %H:%M %z"],
            dt.datetime(2021, 1, 30, 12, 56, tzinfo=dt.UTC),
        ),
        ("Tue, Jul 14, 2026", ["%a, %b %d, %Y"], dt.datetime(2026, 7, 14, tzinfo=dt.UTC)),
        ("07/01/2026 09:30", ["%m/%d/%Y %H:%M"], dt.datetime(2026, 7, 1, 9, 30, tzinfo=dt.UTC)),
        ("2026-07-01", [], dt.datetime(2026, 7, 1, tzinfo=dt.UTC)),
        (dt.date(2026, 7, 1), [], dt.datetime(2026, 7, 1, tzinfo=dt.UTC)),
    ],
)
def test_times_in_cells(cell: object, formats: list[str], expected: dt.datetime) -> None:
    assert parse_time(cell, formats) == expected


def test_a_cell_that_is_no_date_names_the_formats() -> None:
    with pytest.raises(ValueError, match=r"'soon' is not a date \(expected %m/%d/%Y\)"):
        parse_time("soon", ["%m/%d/%Y"])


def test_rows_cut_short_or_too_long_are_quarantined_not_half_read(
    store: Store, tmp_path: Path
) -> None:
    _account(store, "x", "ReachLib")
    text = (FIXTURES / "x" / "account_overview_analytics_2026-07-01_2026-07-31.csv").read_text()
    broken = tmp_path / "overview.csv"
    broken.write_text(
        text + '"Sat, Jul 18, 2026",10,2\n' + '"Sun, Jul 19, 2026",1,1,1,0,0,0,0,0,0,0,1,0,0,99\n'
    )
    summary = import_export(store, broken, account="reachlib")
    assert (summary.rows, summary.observations, summary.quarantined) == (6, 52, 2)
    assert summary.problems == [
        f"{broken}: line 6: 3 cells but the header has 14 columns (the row is cut short)",
        f"{broken}: line 7: 15 cells but the header has 14 columns",
    ]
