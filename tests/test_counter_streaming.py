"""COUNTER import of large reports: streamed, one transaction, rolled back on any problem;
and Excel reports read like their TSV twins."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, text

from reachmeter import reading
from reachmeter.settings import Settings
from reachmeter.store import Store, open_store
from reachmeter.store.engine import SQLITE_CACHE_KIB
from reachmeter.store.schema import Evidence, Observation
from reachmeter.usage import counter, importer
from reachmeter.usage.counter import scan_report
from reachmeter.usage.importer import import_counter
from tests.conftest import shared_data
from tests.test_counter import _tsv


def _count(store: Store, table: type) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def _total(store: Store) -> float:
    with store.session() as session:
        return float(session.scalar(select(func.sum(Observation.value))) or 0)


def _expected_total(name: str) -> int:
    data = json.loads(shared_data("counter", "cop5", "expected_grand_totals.json").read_text())
    return int(data["reports"][name]["grand_total_all_metrics"])


def _excel_cell(value: str) -> str | int:
    return int(value) if value.isdigit() else value


def test_an_excel_twin_of_a_tsv_sample_gives_the_same_grand_total(
    store: Store, tmp_path: Path
) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    tsv = shared_data("counter", "cop5", "r51", "TRJ1_sample_r51.tsv")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    with tsv.open(encoding="utf-8-sig", newline="") as handle:
        for cells in csv.reader(handle, delimiter="\t"):
            sheet.append([_excel_cell(cell) for cell in cells])
    xlsx = tmp_path / "TRJ1_sample_r51.xlsx"
    workbook.save(xlsx)

    summary = import_counter(store, [xlsx])
    result = summary.files[0]
    assert (result.status, result.problems) == ("imported", [])
    assert result.grand_total == _expected_total("r51/TRJ1_sample_r51.tsv") == 12636
    excel_total = _total(store)
    assert excel_total == result.grand_total
    # The TSV itself then adds nothing: the same figures, stored once.
    again = import_counter(store, [tsv])
    assert again.files[0].grand_total == result.grand_total
    assert again.stored == 0
    assert _total(store) == excel_total


def _row(number: int, total: int = 3) -> str:
    return (
        f"Journal {number}\tP\t\tPl\t10.1234/j{number}\t\t\t\t\tTotal_Item_Requests\t{total}\t1\t2"
    )


def test_a_problem_late_in_a_report_rolls_back_what_was_already_written(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One observation per batch: the good rows reach the database before the bad one.
    monkeypatch.setattr(importer, "_BATCH_ROWS", 1)
    path = _tsv(tmp_path, [_row(1), _row(2), _row(3), _row(4, total=9)])
    result = import_counter(store, [path]).files[0]
    assert result.status == "rejected"
    assert result.problems == ["line 19: Reporting_Period_Total 9 is not the sum of its months (3)"]
    assert (result.rows, result.stored) == (4, 0)
    assert _count(store, Observation) == 0
    assert _count(store, Evidence) == 0


def test_the_same_report_when_clean_is_stored_whole(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "_BATCH_ROWS", 1)
    path = _tsv(tmp_path, [_row(1), _row(2), _row(3), _row(4)])
    result = import_counter(store, [path]).files[0]
    assert (result.status, result.rows, result.stored, result.grand_total) == (
        "imported", 4, 8, 12,
    )  # fmt: skip
    assert _count(store, Observation) == 8
    assert _count(store, Evidence) == 1


def test_a_report_broken_further_on_is_an_error_and_stores_nothing(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Streamed item by item (as a large report is), cut off in its last item.
    monkeypatch.setattr(counter, "_STREAM_JSON_BYTES", 0)
    monkeypatch.setattr(importer, "_BATCH_ROWS", 1)
    whole = shared_data("counter", "cop5", "r51", "TRJ1_sample_r51.json").read_bytes()
    path = tmp_path / "cut.json"
    path.write_bytes(whole[: whole.rindex(b'"Metric_Type"')])
    result = import_counter(store, [path]).files[0]
    assert result.status == "error"
    assert result.problems[0].startswith("cannot be read: not valid JSON")
    assert _count(store, Observation) == 0
    assert _count(store, Evidence) == 0


def test_rows_are_streamed_after_the_header(tmp_path: Path) -> None:
    report, rows = scan_report(_tsv(tmp_path, [_row(1), _row(2)]))
    assert (report.report_id, report.begin, report.end, report.rows) == (
        "TR_J1", "2022-01-01", "2022-02-28", [],
    )  # fmt: skip
    assert next(rows).name == "Journal 1"
    assert [row.line for row in rows] == [17]


def test_a_bulk_load_keeps_the_indexes_and_gives_its_connection_back_as_it_was(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "BULK_THRESHOLD", 1)
    monkeypatch.setattr(importer, "_BATCH_ROWS", 7)
    path = shared_data("counter", "cop5", "r51", "TRJ1_sample_r51.tsv")
    first = import_counter(sqlite_store, [path]).files[0]
    assert first.status == "imported"
    assert first.stored == _count(sqlite_store, Observation) > 0
    indexes = {i["name"] for i in inspect(sqlite_store.engine).get_indexes("observations")}
    assert {"ix_observations_obj", "ix_observations_account_id"} <= indexes
    with sqlite_store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA cache_size")).scalar() == -SQLITE_CACHE_KIB
    again = import_counter(sqlite_store, [path]).files[0]
    assert (again.status, again.stored, again.duplicates) == ("imported", 0, first.stored)


# -- a large file: read and checked in a second process -------------------------------------

IN_CHILD = Settings(counter_parallel_bytes=0)  # every file counts as large


def _figures(store: Store) -> list[tuple[object, ...]]:
    with store.session() as session:
        return sorted(
            session.execute(
                select(
                    Observation.observation_key, Observation.obj_id, Observation.qualifier,
                    Observation.value, Observation.period_start, Observation.period_end,
                )
            ).all()
        )  # fmt: skip


def test_a_report_read_in_a_second_process_is_stored_as_in_one(
    store: Store, tmp_path: Path
) -> None:
    # An item, a platform and a title report (a spawned process takes a second to start).
    paths = [
        shared_data("counter", "cop5", "r51", f"{name}_sample_r51.tsv")
        for name in ("IR", "PR", "TRJ1")
    ]
    alone = import_counter(store, paths, settings=IN_CHILD)
    assert [f.status for f in alone.files] == ["imported"] * len(paths)
    assert [f.grand_total for f in alone.files] == [_expected_total(f"r51/{p.name}") for p in paths]
    from_child = _figures(store)
    assert len(from_child) == alone.stored > 0
    # The same files in this process, into a second store: the same rows, key for key.
    other = open_store(tmp_path / "other.db")
    try:
        here = import_counter(other, paths)
        assert [f.stored for f in here.files] == [f.stored for f in alone.files]
        assert _figures(other) == from_child
    finally:
        other.close()
    # Their JSON twins, read in a second process too, add nothing.
    twins = import_counter(store, [p.with_suffix(".json") for p in paths], settings=IN_CHILD)
    assert [f.status for f in twins.files] == ["imported"] * len(paths)
    assert (twins.stored, _figures(store)) == (0, from_child)


def test_a_rejected_report_read_in_a_second_process_stores_nothing(
    store: Store, tmp_path: Path
) -> None:
    path = _tsv(tmp_path, [_row(1), _row(2), _row(3), _row(4, total=9)])
    result = import_counter(store, [path], settings=IN_CHILD).files[0]
    assert result.status == "rejected"
    assert result.problems == ["line 19: Reporting_Period_Total 9 is not the sum of its months (3)"]
    assert (result.rows, result.stored, result.grand_total) == (4, 0, 18)
    assert _count(store, Observation) == 0
    assert _count(store, Evidence) == 0


def test_errors_in_the_second_process_are_the_errors_of_the_file(
    store: Store, tmp_path: Path
) -> None:
    whole = shared_data("counter", "cop5", "r51", "TRJ1_sample_r51.json").read_bytes()
    cut = tmp_path / "cut.json"
    cut.write_bytes(whole[: whole.rindex(b'"Metric_Type"')])
    refused = shared_data("counter", "pycounter5", "not_authorized.json")
    summary = import_counter(store, [cut, refused], settings=IN_CHILD)
    assert [f.status for f in summary.files] == ["error", "error"]
    assert summary.files[0].problems[0].startswith("cannot be read: not valid JSON")
    assert summary.files[1].problems == [
        "SUSHI exception 2000: Requestor Not Authorized to Access Service"
    ]
    assert _count(store, Observation) == 0
    assert _count(store, Evidence) == 0


def _reader_that_dies(*_: object) -> None:
    os._exit(3)  # as a reading process killed mid-way would


def test_a_reading_process_that_dies_is_an_error_of_its_file_and_stores_nothing(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawn = multiprocessing.get_context("spawn")

    class Dying:
        Pipe = spawn.Pipe

        def Process(self, target: object, args: tuple[object, ...], daemon: bool) -> object:
            return spawn.Process(target=_reader_that_dies, args=args, daemon=daemon)

    monkeypatch.setattr(reading.multiprocessing, "get_context", lambda _method: Dying())
    path = _tsv(tmp_path, [_row(1), _row(2)])
    summary = import_counter(store, [path], settings=IN_CHILD)
    assert [(f.status, f.problems) for f in summary.files] == [
        ("error", ["cannot be read: the reading process ended without finishing"])
    ]
    assert _count(store, Observation) == 0
    assert _count(store, Evidence) == 0
