"""COUNTER R5 / R5.1 import against the official sample reports and pycounter's files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from reachmeter.scoring import compute_scores, load_profile, read_score
from reachmeter.store import Store
from reachmeter.store.schema import Observation
from reachmeter.usage.counter import SushiException, check_report, read_report
from reachmeter.usage.importer import import_counter
from tests.conftest import shared_data
from tests.fixtures.scoring.builder import Builder


def _cop5_pairs() -> list[tuple[str, str]]:
    root = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "counter" / "cop5"
    return sorted(
        (str(p.relative_to(root)), str(p.with_suffix(".json").relative_to(root)))
        for p in root.glob("r5*/*.tsv")
    )


def _expected() -> dict[str, int]:
    data = json.loads(shared_data("counter", "cop5", "expected_grand_totals.json").read_text())
    return {name: entry["grand_total_all_metrics"] for name, entry in data["reports"].items()}


@pytest.mark.parametrize(("tsv", "twin"), _cop5_pairs() or [("missing", "missing")])
def test_tsv_and_json_twins_give_the_expected_grand_total(tsv: str, twin: str) -> None:
    expected = _expected()[tsv]
    for name in (tsv, twin):
        report = read_report(shared_data("counter", "cop5", name))
        assert check_report(report) == []
        assert report.grand_total == expected


@pytest.mark.parametrize(("tsv", "twin"), _cop5_pairs() or [("missing", "missing")])
def test_every_row_period_total_is_the_sum_of_its_months(tsv: str, twin: str) -> None:
    report = read_report(shared_data("counter", "cop5", tsv))
    assert report.rows
    for row in report.rows:
        assert row.total == sum(row.months.values())


def test_every_sample_report_imports_and_twins_store_each_figure_once(store: Store) -> None:
    # Item reports too: a JSON item without a parent is the TSV row with empty parent cells.
    root = shared_data("counter", "cop5")
    summary = import_counter(store, sorted(root.glob("r5*/*.tsv")))
    assert {f.status for f in summary.files} == {"imported"}
    stored = summary.stored
    assert stored > 0
    twins = import_counter(store, sorted(root.glob("r5*/*.json")))
    assert {f.status for f in twins.files} == {"imported"}
    assert twins.stored == 0
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Observation)) == stored


def test_all_official_samples_import(sqlite_store: Store) -> None:
    root = shared_data("counter", "cop5")
    summary = import_counter(sqlite_store, sorted(root.glob("r5*/*.*[nv]")))
    assert summary.files
    assert all(f.status == "imported" for f in summary.files), [
        (f.origin, f.problems[:2]) for f in summary.files if f.status != "imported"
    ]


def test_observations_are_per_item_and_month(sqlite_store: Store) -> None:
    import_counter(sqlite_store, [shared_data("counter", "cop5", "r51", "TRJ1_sample_r51.tsv")])
    with sqlite_store.session() as session:
        rows = session.execute(
            select(Observation.obj_value, Observation.metric, Observation.value).where(
                Observation.period_start == "2022-01-01"
            )
        ).all()
    assert ("10.9999/xxxxt03", "total-item-requests", 526.0) in rows


def test_pycounter_sushi_json_imports(sqlite_store: Store) -> None:
    summary = import_counter(
        sqlite_store,
        [
            shared_data("counter", "pycounter5", "sushi_simple.json"),
            shared_data("counter", "pycounter5", "sushi_book.json"),
        ],
    )
    assert [f.status for f in summary.files] == ["imported", "imported"]


def test_a_sushi_exception_is_a_clear_error_and_stores_nothing(store: Store) -> None:
    path = shared_data("counter", "pycounter5", "not_authorized.json")
    with pytest.raises(SushiException, match="2000: Requestor Not Authorized"):
        read_report(path)
    summary = import_counter(store, [path])
    assert summary.files[0].status == "error"
    assert "Requestor Not Authorized" in summary.files[0].problems[0]
    assert summary.nothing_imported
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Observation)) == 0


def test_a_report_breaking_the_rules_is_rejected_whole_with_each_problem(store: Store) -> None:
    # pycounter's TR_J1 test file: malformed ISSNs, empty counts, a non-R5 period.
    summary = import_counter(store, [shared_data("counter", "pycounter5", "tr_j1.tsv")])
    result = summary.files[0]
    assert result.status == "rejected"
    text = "\n".join(result.problems)
    assert "Print_ISSN '1111-22222' is not an ISSN" in text
    assert "Reporting_Period" in text
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Observation)) == 0


def _tsv(
    tmp_path: Path, rows: list[str], period: str = "2022-01-01", end: str = "2022-02-28"
) -> Path:
    header = [
        "Report_Name\tJournal Requests (Controlled)",
        "Report_ID\tTR_J1",
        "Release\t5.1",
        "Institution_Name\tTest Library",
        "Institution_ID\t",
        "Metric_Types\tTotal_Item_Requests",
        "Report_Filters\t",
        "Report_Attributes\t",
        "Exceptions\t",
        f"Reporting_Period\tBegin_Date={period}; End_Date={end}",
        "Created\t2023-02-15T09:11:12Z",
        "Created_By\tTest",
        "Registry_Record\t",
        "",
        "Title\tPublisher\tPublisher_ID\tPlatform\tDOI\tProprietary_ID\tPrint_ISSN\tOnline_ISSN\t"
        "URI\tMetric_Type\tReporting_Period_Total\tJan-2022\tFeb-2022",
    ]
    path = tmp_path / "report.tsv"
    path.write_text("\ufeff" + "\n".join(header + rows) + "\n", encoding="utf-8")
    return path


GOOD = "J A\tP\t\tPl\t10.1234/a\t\t1234-5678\t\t\tTotal_Item_Requests\t3\t1\t2"


def test_duplicates_bad_totals_dates_and_issns_are_each_listed(tmp_path: Path) -> None:
    path = _tsv(
        tmp_path,
        [
            GOOD,
            GOOD,
            "J B\tP\t\tPl\t10.1234/b\t\t12345678\t\t\tTotal_Item_Requests\t9\t1\t2",
        ],
        end="2022-13-01",
    )
    problems = check_report(read_report(path))
    text = "\n".join(problems)
    assert "line 17: duplicate of line 16" in text
    assert "line 18: Print_ISSN '12345678' is not an ISSN" in text
    assert "line 18: Reporting_Period_Total 9 is not the sum of its months (3)" in text
    assert "is not valid dates" in text


def test_item_usage_counts_in_the_score_and_a_corrected_reissue_replaces_it(
    store: Store, tmp_path: Path
) -> None:
    output_id = Builder(store).output("10.1234/a")
    unique = "J A\tP\t\tPl\t10.1234/a\t\t1234-5678\t\t\tUnique_Item_Requests\t3\t1\t2"
    total = "J A\tP\t\tPl\t10.1234/a\t\t1234-5678\t\t\tTotal_Item_Requests\t9\t4\t5"
    first = _tsv(tmp_path, [unique, total])
    assert import_counter(store, [first]).files[0].status == "imported"
    day = dt.date(2023, 12, 31)
    profile = load_profile("default")
    compute_scores(store, profile, day)
    score = read_score(store, output_id, "default", day)
    assert score is not None
    assert score["breakdown"]["sources"]["usage"]["count"] == 3  # unique requests only
    # The publisher re-issues the report with corrected figures (a later Created date).
    corrected = tmp_path / "corrected.tsv"
    corrected.write_text(
        first.read_text(encoding="utf-8")
        .replace("2023-02-15T09:11:12Z", "2023-03-01T08:00:00Z")
        .replace("Unique_Item_Requests\t3\t1\t2", "Unique_Item_Requests\t6\t4\t2"),
        encoding="utf-8",
    )
    assert import_counter(store, [corrected]).files[0].status == "imported"
    compute_scores(store, profile, day)
    score = read_score(store, output_id, "default", day)
    assert score is not None
    assert score["breakdown"]["sources"]["usage"]["count"] == 6  # not 3 + 6
