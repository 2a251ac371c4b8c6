"""COUNTER Release 5 and 5.1 reports: reading (JSON, TSV / CSV, Excel) and checking.

A report is its header (``CounterReport``) and one ``CounterRow`` per item (or title,
database, platform), attribute set and metric, with a count per month. Both releases and
both formats land in the same rows, so a TSV and its JSON twin give the same figures.
``scan_report`` reads the header and streams the rows (a large report is never held in
memory); ``read_report`` collects them. ``ReportChecker`` lists every way a report breaks
COUNTER's rules as its rows go by (``check_report`` for a report read whole); a report
with any problem is rejected whole by the importer, never half-imported.

Reading needs no store and no network: SUSHI responses are read by the same code.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import ijson
import orjson

from reachmeter.matching.identifiers import IdentifierError, normalize, to_uri

__all__ = [
    "METRIC_TYPES",
    "REPORT_IDS",
    "CounterError",
    "CounterReport",
    "CounterRow",
    "ReportChecker",
    "SushiException",
    "check_report",
    "read_report",
    "read_report_bytes",
    "scan_report",
]

REPORT_IDS = (
    "PR",
    "PR_P1",
    "DR",
    "DR_D1",
    "DR_D2",
    "TR",
    "TR_B1",
    "TR_B2",
    "TR_B3",
    "TR_J1",
    "TR_J2",
    "TR_J3",
    "TR_J4",
    "IR",
    "IR_A1",
    "IR_M1",
)
METRIC_TYPES = frozenset(
    {
        "Searches_Regular",
        "Searches_Automated",
        "Searches_Federated",
        "Searches_Platform",
        "Total_Item_Investigations",
        "Unique_Item_Investigations",
        "Unique_Title_Investigations",
        "Total_Item_Requests",
        "Unique_Item_Requests",
        "Unique_Title_Requests",
        "No_License",
        "Limit_Exceeded",
    }
)
# The attributes that split one item's usage into rows (a row is unique by these).
ROW_ATTRIBUTES = ("Data_Type", "Section_Type", "YOP", "Access_Type", "Access_Method")
_ID_COLUMNS = {
    "DOI": "DOI",
    "Proprietary_ID": "Proprietary",
    "Proprietary": "Proprietary",
    "ISBN": "ISBN",
    "Print_ISSN": "Print_ISSN",
    "Online_ISSN": "Online_ISSN",
    "URI": "URI",
}
_NAME_COLUMNS = ("Title", "Item", "Database", "Platform")
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}
_MONTH_COLUMN = re.compile(r"^([A-Za-z]{3})-(\d{4})$")
_ISSN = re.compile(r"^\d{4}-\d{3}[\dX]$")
_YEAR_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
# Above this size a JSON report is streamed item by item instead of parsed whole.
_STREAM_JSON_BYTES = 16 * 1024 * 1024
# SUSHI exception codes that are only warnings: the report still carries usage.
_WARNING_CODES = frozenset({0, 3040, 3050, 3060, 3061, 3062, 3063, 3070, 3071})
EXCEL_SUFFIXES = frozenset({".xlsx", ".xls", ".xlsm", ".xlsb", ".ods"})


class CounterError(ValueError):
    """A file is not a COUNTER report at all (the message says why)."""


class SushiException(CounterError):
    """The report is a SUSHI exception (not authorised, no usage, ...), not usage."""

    def __init__(self, code: int, message: str, data: str = "") -> None:
        self.code = code
        self.message = message
        self.data = data
        detail = f" ({data})" if data else ""
        super().__init__(f"SUSHI exception {code}: {message}{detail}")

    def __reduce__(self) -> tuple[type[SushiException], tuple[int, str, str]]:
        # Sent whole from a reading process to the importing one.
        return (type(self), (self.code, self.message, self.data))


@dataclass(slots=True)
class CounterRow:
    """One report row: an item's counts for one metric under one set of attributes."""

    line: int
    name: str
    platform: str
    ids: dict[str, str]
    attributes: tuple[tuple[str, str], ...]
    parent: str
    metric: str
    months: dict[str, int]
    total: int | None = None
    problems: list[str] = field(default_factory=list)
    _identity: str = field(default="", init=False, repr=False, compare=False)

    @property
    def period_total(self) -> int:
        """The row's total: the stated Reporting_Period_Total, else the sum of its months."""
        return self.total if self.total is not None else sum(self.months.values())

    def identity(self) -> str:
        """What makes the row unique within its report (duplicates share it)."""
        if not self._identity:  # read by the checker and again for the observation keys
            ids = ";".join(f"{k}={v}" for k, v in sorted(self.ids.items()) if k != "URI")
            attrs = ";".join(f"{k}={v}" for k, v in self.attributes)
            self._identity = (
                f"{self.platform}|{self.name}|{ids}|{self.parent}|{attrs}|{self.metric}"
            )
        return self._identity


@dataclass(slots=True)
class CounterReport:
    """A whole COUNTER report: header facts and rows."""

    origin: str
    fmt: str
    release: str
    report_id: str
    report_name: str
    institution: str
    created: str
    begin: str
    end: str
    rows: list[CounterRow] = field(default_factory=list)
    exceptions: list[tuple[int, str]] = field(default_factory=list)
    header_problems: list[str] = field(default_factory=list)

    @property
    def grand_total(self) -> int:
        return sum(row.period_total for row in self.rows)


# -- values ---------------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    """A count as an int; None when it is not a whole, non-negative number."""
    kind = type(value)
    if kind is str and value.isdecimal():  # the usual cell, first
        return int(value)
    if kind is int:
        return value if value >= 0 else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and value >= 0 else None
    text = str(value).strip()
    if text.isdecimal():
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() and number >= 0 else None


def _month_key(value: Any) -> str | None:
    """``yyyy-mm`` for a month column heading (``Jan-2022``, or a date cell in Excel)."""
    if isinstance(value, dt.date):
        return f"{value.year:04d}-{value.month:02d}"
    match = _MONTH_COLUMN.match(str(value).strip())
    if not match or match.group(1).title() not in _MONTHS:
        return None
    return f"{match.group(2)}-{_MONTHS[match.group(1).title()]:02d}"


def _date(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        return None


def _month_of_period(begin: str, end: str) -> str | None:
    """The month a R5.0 JSON ``Period`` covers; None unless it is exactly one whole month."""
    first, last = _date(begin), _date(end)
    if first is None or last is None or first.day != 1:
        return None
    following = (first + dt.timedelta(days=32)).replace(day=1)
    if last != following - dt.timedelta(days=1):
        return None
    return f"{first.year:04d}-{first.month:02d}"


def _parameters(text: str) -> dict[str, str]:
    """``Begin_Date=2022-01-01; End_Date=2022-12-31`` as a mapping."""
    found: dict[str, str] = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            found[key.strip()] = value.strip()
    return found


# -- object identifiers -----------------------------------------------------------------------


@lru_cache(maxsize=65536)
def _doi(value: str) -> str | None:
    try:
        identifier = normalize(value, "doi")
    except IdentifierError:
        return None
    return identifier.value


@lru_cache(maxsize=65536)
def _isbn(value: str) -> str | None:
    try:
        identifier = normalize(value, "isbn")
    except IdentifierError:
        return None
    return identifier.value


def row_object(report_id: str, row: CounterRow) -> tuple[str, str, str]:
    """The ``(obj_id, obj_scheme, obj_value)`` a row's usage is about.

    Platform and database reports are about the platform or database; title and item
    reports about the item: its DOI, else ISBN, ISSN, the platform's proprietary id, and
    last its name on the platform.
    """
    family = report_id[:2]
    if family == "PR":
        return f"counter:platform:{row.platform}", "counter-platform", row.platform
    if family == "DR":
        value = f"{row.platform}/{row.ids.get('Proprietary') or row.name}"
        return f"counter:database:{value}", "counter-database", value
    ids = row.ids
    if (raw := ids.get("DOI")) and (doi := _doi(raw)):
        return to_uri_doi(doi), "doi", doi
    if (raw := ids.get("ISBN")) and (isbn := _isbn(raw)):
        return f"urn:isbn:{isbn}", "isbn", isbn
    for column in ("Online_ISSN", "Print_ISSN"):
        if (issn := ids.get(column)) and _ISSN.match(issn):
            return f"urn:issn:{issn}", "issn", issn
    if proprietary := ids.get("Proprietary"):
        return f"counter:item:{proprietary}", "counter-item", proprietary
    value = f"{row.platform}/{row.name}"
    return f"counter:title:{value}", "counter-title", value


@lru_cache(maxsize=65536)
def to_uri_doi(doi: str) -> str:
    from reachmeter.matching.identifiers import Identifier

    return to_uri(Identifier("doi", doi))


# -- JSON (COUNTER_SUSHI) -------------------------------------------------------------------


def _ids_r5(value: Any) -> dict[str, str]:
    """``Item_ID`` in either release's form: a list of ``{Type, Value}`` or a mapping."""
    found: dict[str, str] = {}
    if isinstance(value, list):
        for entry in value:
            if isinstance(entry, Mapping):
                key = _ID_COLUMNS.get(str(entry.get("Type", "")))
                if key and entry.get("Value") not in (None, ""):
                    found[key] = str(entry["Value"]).strip()
    elif isinstance(value, Mapping):
        for name, item in value.items():
            key = _ID_COLUMNS.get(str(name))
            if key and item not in (None, ""):
                found[key] = str(item[0] if isinstance(item, list) and item else item).strip()
    return found


def _parent_key(parent: Any) -> str:
    if not isinstance(parent, Mapping):
        return ""
    ids = _ids_r5(parent.get("Item_ID"))
    name = str(parent.get("Title") or parent.get("Item_Name") or parent.get("Item") or "")
    doi = ids.get("DOI", "")
    # As in tabular reports: no parent at all when it has neither title nor DOI.
    return f"{name.strip()}|{doi}" if name.strip() or doi else ""


def _header_value(header: Mapping[str, Any], name: str) -> str:
    value = header.get(name)
    return "" if value is None else str(value).strip()


def _filters(header: Mapping[str, Any]) -> dict[str, str]:
    filters = header.get("Report_Filters")
    found: dict[str, str] = {}
    if isinstance(filters, list):
        for entry in filters:
            if isinstance(entry, Mapping) and "Name" in entry:
                found[str(entry["Name"])] = str(entry.get("Value", ""))
    elif isinstance(filters, Mapping):
        for key, value in filters.items():
            found[str(key)] = "|".join(map(str, value)) if isinstance(value, list) else str(value)
    return found


def _exceptions(document: Any) -> list[tuple[int, str]]:
    """The SUSHI exceptions of a response: top-level ones, or those in its header."""
    raw: list[Any] = []
    if isinstance(document, list):
        raw = document
    elif isinstance(document, Mapping):
        if "Code" in document and "Report_Header" not in document:
            raw = [document]
        header = document.get("Report_Header")
        if isinstance(header, Mapping):
            raw.extend(header.get("Exceptions") or [])
        raw.extend(document.get("Exceptions") or [])
    found = []
    for entry in raw:
        if isinstance(entry, Mapping) and "Code" in entry:
            code = _int(entry.get("Code"))
            message = str(entry.get("Message") or "").strip()
            data = str(entry.get("Data") or "").strip()
            found.append(
                (code if code is not None else -1, f"{message} ({data})" if data else message)
            )
    return found


def _raise_fatal(exceptions: Sequence[tuple[int, str]]) -> None:
    for code, message in exceptions:
        if code not in _WARNING_CODES:
            raise SushiException(code, message)


def _json_rows(items: Iterable[Any], report_id: str) -> Iterator[CounterRow]:
    """Rows from ``Report_Items`` of either release (items may nest under a parent)."""
    for index, item in enumerate(items, start=1):
        if not isinstance(item, Mapping):
            yield CounterRow(index, "", "", {}, (), "", "", {}, problems=["item is not an object"])
            continue
        if isinstance(item.get("Items"), list):
            # R5.1 item reports: a parent with its items.
            parent = _parent_key(item)
            for child in item["Items"]:
                if isinstance(child, Mapping):
                    yield from _json_item(child, index, parent)
            continue
        yield from _json_item(item, index, _parent_key(item.get("Item_Parent")))


@lru_cache(maxsize=1024)
def _is_month(value: Any) -> bool:
    return bool(_YEAR_MONTH.fullmatch(str(value)))


def _json_item(item: Mapping[str, Any], index: int, parent: str) -> Iterator[CounterRow]:
    name = ""
    for column in _NAME_COLUMNS:
        if item.get(column):
            name = str(item[column]).strip()
            break
    platform = str(item.get("Platform") or "").strip()
    ids = _ids_r5(item.get("Item_ID"))
    database = str(item.get("Database") or "")
    if database:
        name = database.strip()
    if "Attribute_Performance" in item:
        for block in item.get("Attribute_Performance") or []:
            if not isinstance(block, Mapping):
                continue
            attributes = tuple(
                (key, str(block[key])) for key in ROW_ATTRIBUTES if block.get(key) not in (None, "")
            )
            performance = block.get("Performance") or {}
            if not isinstance(performance, Mapping):
                yield CounterRow(
                    index, name, platform, ids, attributes, parent, "", {},
                    problems=["Performance is not an object"],
                )  # fmt: skip
                continue
            for metric, months in performance.items():
                row = CounterRow(index, name, platform, ids, attributes, parent, str(metric), {})
                if not isinstance(months, Mapping):
                    row.problems.append(f"{metric}: counts are not a month -> count object")
                else:
                    for month, count in months.items():
                        value = _int(count)
                        if not _is_month(month):
                            row.problems.append(f"{metric}: {month!r} is not a yyyy-mm month")
                        elif value is None:
                            row.problems.append(f"{metric} {month}: count {count!r} is not valid")
                        else:
                            row.months[str(month)] = value
                yield row
        return
    attributes = tuple(
        (key, str(item[key])) for key in ROW_ATTRIBUTES if item.get(key) not in (None, "")
    )
    rows: dict[str, CounterRow] = {}
    problems: list[str] = []
    for performance in item.get("Performance") or []:
        if not isinstance(performance, Mapping):
            problems.append("Performance entry is not an object")
            continue
        period = performance.get("Period") or {}
        begin = str(period.get("Begin_Date", "")) if isinstance(period, Mapping) else ""
        end = str(period.get("End_Date", "")) if isinstance(period, Mapping) else ""
        month = _month_of_period(begin, end)
        if month is None:
            problems.append(f"Period {begin!r} to {end!r} is not one whole month")
            continue
        for instance in performance.get("Instance") or []:
            if not isinstance(instance, Mapping):
                continue
            metric = str(instance.get("Metric_Type", ""))
            found = rows.get(metric)
            if found is None:
                found = rows[metric] = CounterRow(
                    index, name, platform, ids, attributes, parent, metric, {}
                )
            value = _int(instance.get("Count"))
            if value is None:
                found.problems.append(
                    f"{metric} {month}: count {instance.get('Count')!r} is not valid"
                )
            elif month in found.months:
                found.problems.append(f"{metric} {month}: counted twice in one item")
            else:
                found.months[month] = value
    if problems and not rows:
        yield CounterRow(index, name, platform, ids, attributes, parent, "", {}, problems=problems)
    for row in rows.values():
        row.problems[:0] = problems
        yield row


def _report_from_json(
    document: Any, origin: str, items: Iterable[Any] | None
) -> tuple[CounterReport, Iterator[CounterRow]]:
    exceptions = _exceptions(document)
    _raise_fatal(exceptions)
    if not isinstance(document, Mapping) or not isinstance(document.get("Report_Header"), Mapping):
        raise CounterError("not a COUNTER_SUSHI report: no Report_Header")
    header: Mapping[str, Any] = document["Report_Header"]
    filters = _filters(header)
    report_id = _header_value(header, "Report_ID").upper()
    if items is None:
        raw_items = document.get("Report_Items")
        items = raw_items if isinstance(raw_items, list) else []
    report = CounterReport(
        origin=origin,
        fmt="json",
        release=_header_value(header, "Release"),
        report_id=report_id,
        report_name=_header_value(header, "Report_Name"),
        institution=_header_value(header, "Institution_Name"),
        created=_header_value(header, "Created"),
        begin=filters.get("Begin_Date", ""),
        end=filters.get("End_Date", ""),
        exceptions=exceptions,
    )
    return report, _json_rows(items, report_id)


def _scan_bytes(data: bytes, origin: str) -> tuple[CounterReport, Iterator[CounterRow]]:
    try:
        document = orjson.loads(data.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as exc:
        raise CounterError(f"not valid JSON: {exc}") from None
    return _report_from_json(document, origin, None)


def read_report_bytes(data: bytes, origin: str) -> CounterReport:
    """A COUNTER_SUSHI JSON report (or SUSHI exception) from bytes, e.g. a SUSHI response."""
    report, rows = _scan_bytes(data, origin)
    report.rows = list(rows)
    return report


def _streamed_items(path: Path) -> Iterator[Any]:
    with path.open("rb") as handle:
        try:
            yield from ijson.items(handle, "Report_Items.item", use_float=True)
        except ijson.JSONError as exc:
            raise CounterError(f"not valid JSON: {exc}") from None


def _scan_json_file(path: Path) -> tuple[CounterReport, Iterator[CounterRow]]:
    if path.stat().st_size <= _STREAM_JSON_BYTES:
        return _scan_bytes(path.read_bytes(), str(path))
    # A large report is streamed: the header alone is parsed whole, the items one at a time.
    with path.open("rb") as handle:
        try:
            header = next(ijson.items(handle, "Report_Header", use_float=True), None)
        except ijson.JSONError as exc:
            raise CounterError(f"not valid JSON: {exc}") from None
    document = {"Report_Header": header} if header is not None else {}
    return _report_from_json(document, str(path), _streamed_items(path))


# -- tabular (TSV, CSV, Excel) ----------------------------------------------------------------


def _tabular_rows(path: Path) -> Iterator[list[Any]]:
    """The cells of each row, read as they are needed (the file is never read whole)."""
    suffix = path.suffix.lower()
    if suffix in EXCEL_SUFFIXES:
        from python_calamine import CalamineWorkbook

        workbook = CalamineWorkbook.from_path(str(path))
        sheet = workbook.get_sheet_by_index(0)
        yield from sheet.iter_rows()
        return
    with path.open("rb") as binary:
        head = binary.read(4)
    encoding = "utf-16" if head.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    with path.open(encoding=encoding, newline="") as handle:
        first = handle.readline()
        delimiter = "\t" if "\t" in first or suffix == ".tsv" else ","
        yield from csv.reader(_chain_line(first, handle), delimiter=delimiter)


def _chain_line(first: str, rest: Iterable[str]) -> Iterator[str]:
    yield first
    yield from rest


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _scan_tabular(path: Path) -> tuple[CounterReport, Iterator[CounterRow]]:
    rows = _tabular_rows(path)
    header: dict[str, str] = {}
    headings: list[str] | None = None
    line = 0
    for line, cells in enumerate(rows, start=1):
        first = _cell(cells[0]) if cells else ""
        if first in _NAME_COLUMNS and any(
            _cell(c).replace(" ", "") == "Metric_Type" for c in cells
        ):
            headings = [_cell(c).replace(" ", "") for c in cells]
            break
        if first:
            header[first] = _cell(cells[1]) if len(cells) > 1 else ""
        if line > 40:
            break
    if headings is None:
        raise CounterError("not a COUNTER tabular report: no row of column headings found")
    if "Report_ID" not in header:
        raise CounterError("not a COUNTER tabular report: no Report_ID in the header")
    exceptions: list[tuple[int, str]] = []
    for part in re.split(r";\s*(?=\d{1,4}\s*:)", header.get("Exceptions", "")):
        code, sep, message = part.partition(":")
        if sep and code.strip().isdigit():
            exceptions.append((int(code.strip()), message.strip()))
    _raise_fatal(exceptions)
    period = _parameters(header.get("Reporting_Period", ""))
    report = CounterReport(
        origin=str(path),
        fmt="tabular",
        release=header.get("Release", ""),
        report_id=header.get("Report_ID", "").upper(),
        report_name=header.get("Report_Name", ""),
        institution=header.get("Institution_Name", ""),
        created=header.get("Created", ""),
        begin=period.get("Begin_Date", ""),
        end=period.get("End_Date", ""),
        exceptions=exceptions,
    )
    if not period:
        report.header_problems.append(
            f"Reporting_Period {header.get('Reporting_Period', '')!r} is not "
            "'Begin_Date=yyyy-mm-dd; End_Date=yyyy-mm-dd'"
        )
    return report, _table_rows(rows, headings, line, report)


def _table_rows(
    rows: Iterator[list[Any]], headings: list[str], heading_line: int, report: CounterReport
) -> Iterator[CounterRow]:
    index = {name: position for position, name in enumerate(headings) if name}
    months: list[tuple[int, str]] = []
    for position, name in enumerate(headings):
        if key := _month_key(name):
            months.append((position, key))
        elif name and _MONTH_COLUMN.match(name):
            report.header_problems.append(f"column heading {name!r} is not a month")
    name_column = next((index[c] for c in _NAME_COLUMNS if c in index), 0)
    metric_column = index["Metric_Type"]
    total_column = index.get("Reporting_Period_Total")
    if total_column is None:
        report.header_problems.append("no Reporting_Period_Total column")
    id_columns = [(index[c], _ID_COLUMNS[c]) for c in _ID_COLUMNS if c in index]
    attribute_columns = [(index[c], c) for c in ROW_ATTRIBUTES if c in index]
    parent_columns = [index[c] for c in ("Parent_Title", "Parent_DOI") if c in index]
    platform_column = index.get("Platform")
    width = len(headings)
    for line, cells in enumerate(rows, start=heading_line + 1):
        if not any(_cell(c) for c in cells):
            continue
        if len(cells) < width:
            cells = [*cells, *([""] * (width - len(cells)))]
        problems: list[str] = []
        ids = {key: value for position, key in id_columns if (value := _cell(cells[position]))}
        attributes = tuple(
            (name, value)
            for position, name in attribute_columns
            if (value := _cell(cells[position]))
        )
        parent = "|".join(_cell(cells[p]) for p in parent_columns) if parent_columns else ""
        counts: dict[str, int] = {}
        for position, month in months:
            raw = cells[position]
            count = _int(raw)
            if count is None:
                problems.append(f"{month}: count {_cell(raw)!r} is not a whole number >= 0")
            else:
                counts[month] = count
        total: int | None = None
        if total_column is not None:
            total = _int(cells[total_column])
            if total is None:
                problems.append(
                    f"Reporting_Period_Total {_cell(cells[total_column])!r} is not a whole number"
                )
        yield CounterRow(
            line=line,
            name=_cell(cells[name_column]),
            platform=_cell(cells[platform_column]) if platform_column is not None else "",
            ids=ids,
            attributes=attributes,
            parent=parent.strip("|") and parent,
            metric=_cell(cells[metric_column]),
            months=counts,
            total=total,
            problems=problems,
        )


# -- reading and checking ---------------------------------------------------------------------


def scan_report(path: Path) -> tuple[CounterReport, Iterator[CounterRow]]:
    """Read a COUNTER R5 / R5.1 report file's header; its rows come as they are read.

    JSON, TSV, CSV or Excel. Raises ``SushiException`` when the file is a SUSHI exception
    and ``CounterError`` when it is not a COUNTER report (reading the rows may raise it
    too, for a file broken further on). Rule breaches are not raised: see
    ``ReportChecker``. Some header problems are only known once the rows are read.
    """
    if not path.is_file():
        raise CounterError("no such file")
    if path.stat().st_size == 0:
        raise CounterError("file is empty")
    if path.suffix.lower() == ".json":
        return _scan_json_file(path)
    if path.suffix.lower() not in EXCEL_SUFFIXES:
        with path.open("rb") as handle:
            head = handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
        if head.startswith((b"{", b"[")):
            return _scan_json_file(path)
    return _scan_tabular(path)


def read_report(path: Path) -> CounterReport:
    """Read a COUNTER R5 / R5.1 report file whole (see ``scan_report`` to stream it)."""
    report, rows = scan_report(path)
    report.rows = list(rows)
    return report


class ReportChecker:
    """Checks a report's rows as they go by; ``problems()`` lists every rule breach.

    Memory stays small: a row is remembered only by a 16-byte digest of what makes it
    unique (to find duplicates).
    """

    def __init__(self, report: CounterReport) -> None:
        self.report = report
        self.rows = 0
        self.grand_total = 0
        self._row_problems: list[str] = []
        self._seen: dict[bytes, int] = {}
        self._where = "line" if report.fmt == "tabular" else "item"
        begin, end = _date(report.begin), _date(report.end)
        self._period_problem = ""
        if begin is None or end is None:
            self._period_problem = (
                f"reporting period {report.begin!r} to {report.end!r} is not valid dates"
            )
        elif end < begin:
            self._period_problem = f"reporting period ends ({end}) before it begins ({begin})"
        self._first = f"{begin.year:04d}-{begin.month:02d}" if begin else ""
        self._last = f"{end.year:04d}-{end.month:02d}" if end else ""

    @property
    def clean(self) -> bool:
        """True while no problem has been found (header problems included)."""
        return not self._row_problems and not self._header_problems()

    def _header_problems(self) -> list[str]:
        report = self.report
        problems = list(report.header_problems)
        if report.release not in ("5", "5.0", "5.1") and not report.release.startswith("5.0."):
            problems.append(f"Release {report.release!r} is not 5 or 5.1")
        if report.report_id not in REPORT_IDS:
            problems.append(f"Report_ID {report.report_id!r} is not one of the 16 standard reports")
        if self._period_problem:
            problems.append(self._period_problem)
        return problems

    def add(self, row: CounterRow) -> bool:
        """Check one row; True when it breaks no rule."""
        self.rows += 1
        self.grand_total += row.period_total
        label = f"{self._where} {row.line}"
        problems = [f"{label}: {problem}" for problem in row.problems]
        if row.metric:
            if row.metric not in METRIC_TYPES:
                problems.append(f"{label}: Metric_Type {row.metric!r} is not a COUNTER metric")
            if not row.name:
                problems.append(f"{label}: no title, item, database or platform name")
            for column in ("Print_ISSN", "Online_ISSN"):
                value = row.ids.get(column)
                if value and not _ISSN.match(value):
                    problems.append(f"{label}: {column} {value!r} is not an ISSN (nnnn-nnnc)")
            first, last = self._first, self._last
            months = row.months
            if first and last and months and not first <= min(months) <= max(months) <= last:
                outside = sorted(m for m in months if not first <= m <= last)
                if outside:
                    problems.append(
                        f"{label}: months {', '.join(outside)} are outside the reporting period"
                    )
            if row.total is not None and row.months and row.total != sum(row.months.values()):
                problems.append(
                    f"{label}: Reporting_Period_Total {row.total} is not the sum of its months "
                    f"({sum(row.months.values())})"
                )
            identity = hashlib.blake2b(row.identity().encode(), digest_size=16).digest()
            seen = self._seen.get(identity)
            if seen is not None:
                problems.append(f"{label}: duplicate of {self._where} {seen} ({row.metric})")
            else:
                self._seen[identity] = row.line
        if problems:
            self._row_problems.extend(problems)
            return False
        return True

    def problems(self) -> list[str]:
        """Every problem found: the header's first, then the rows' in order."""
        return [*self._header_problems(), *self._row_problems]


def check_report(report: CounterReport) -> list[str]:
    """Every way a report read whole breaks COUNTER's rules, naming the line or item."""
    checker = ReportChecker(report)
    for row in report.rows:
        checker.add(row)
    return checker.problems()
