"""Reading export files into tables: CSV (any delimiter, UTF-8 or UTF-16, with or without a
byte-order mark), Excel workbooks (python-calamine, one table per sheet) and ZIP files of
CSVs (Google Search Console). Reading never guesses an encoding: text that is not UTF-8 (or
UTF-16 with its mark) is a clear error unless the encoding is given."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import python_calamine

__all__ = ["ExportFileError", "Table", "decode", "read_tables"]

# A ZIP member larger than this (uncompressed) is refused: no export is near it.
MAX_MEMBER_BYTES = 200 * 1024 * 1024
_EXCEL = {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"}
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


class ExportFileError(ValueError):
    """A whole export file cannot be imported; the message names the file and why."""


@dataclass
class Table:
    """The rows of one CSV file, workbook sheet or ZIP member, with 1-based line numbers."""

    origin: str
    rows: list[tuple[int, list[Any]]]
    decimal_comma: bool = False

    def raw(self, line: int, cells: list[Any]) -> str:
        """A row as text, for the quarantine."""
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow(
            ["" if cell is None else str(cell) for cell in cells]
        )
        return buffer.getvalue()


def decode(data: bytes, where: str, encoding: str | None = None) -> str:
    """The text of a file: ``encoding`` when given, else by its byte-order mark, else UTF-8.

    Raises ``ExportFileError`` naming the byte position when the text is not in the encoding.
    """
    if encoding:
        try:
            text = data.decode(encoding)
        except LookupError as exc:
            raise ExportFileError(f"{where}: unknown encoding {encoding!r}") from exc
        except UnicodeDecodeError as exc:
            bad = data[exc.start : exc.start + 1].hex()
            raise ExportFileError(
                f"{where}: not {encoding} text (invalid byte 0x{bad} at byte position {exc.start})"
            ) from exc
        return text.removeprefix("\ufeff")
    chosen = next((name for mark, name in _BOMS if data.startswith(mark)), "utf-8")
    try:
        return data.decode(chosen).removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        raise ExportFileError(
            f"{where}: not {chosen.upper().removesuffix('-SIG')} text (invalid byte 0x{bad} at "
            f"byte position {exc.start}); give its encoding with --encoding (for example "
            "cp1252 or latin-1), or save it as UTF-8"
        ) from exc


def _delimiter(text: str) -> str:
    first = next(iter(text.splitlines()), "")
    counts = {sep: first.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _csv_table(origin: str, text: str) -> Table:
    delimiter = _delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, list[Any]]] = []
    line = 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                rows.append((line, list(cells)))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise ExportFileError(f"{origin}: malformed CSV near line {line}: {exc}") from exc
    return Table(origin=origin, rows=rows, decimal_comma=delimiter == ";")


def _excel_tables(path: Path) -> Iterator[Table]:
    try:
        workbook = python_calamine.CalamineWorkbook.from_path(str(path))
    except (python_calamine.CalamineError, OSError, ValueError) as exc:
        raise ExportFileError(f"{path}: not a readable Excel workbook: {exc}") from exc
    try:
        for name in workbook.sheet_names:
            sheet = workbook.get_sheet_by_name(name)
            cells = sheet.to_python(skip_empty_area=False)
            rows = [
                (number, list(row))
                for number, row in enumerate(cells, start=1)
                if any(cell not in (None, "") for cell in row)
            ]
            yield Table(origin=f"{path} [sheet {name}]", rows=rows)
    finally:
        workbook.close()


def _zip_tables(path: Path, encoding: str | None) -> Iterator[Table]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ExportFileError(f"{path}: not a readable ZIP file: {exc}") from exc
    with archive:
        members = [
            info
            for info in archive.infolist()
            if not info.is_dir() and info.filename.lower().endswith(".csv")
        ]
        if not members:
            raise ExportFileError(f"{path}: the ZIP file holds no CSV file")
        for info in sorted(members, key=lambda item: item.filename):
            origin = f"{path} [{info.filename}]"
            if info.file_size > MAX_MEMBER_BYTES:
                raise ExportFileError(f"{origin}: {info.file_size:,} bytes is too large")
            yield _csv_table(origin, decode(archive.read(info), origin, encoding))


def read_tables(path: Path, encoding: str | None = None) -> list[Table]:
    """The tables of an export file: a CSV, an Excel workbook's sheets, or a ZIP's CSVs."""
    if not path.is_file():
        raise ExportFileError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ExportFileError(f"{path}: the file is empty")
    with path.open("rb") as handle:
        head = handle.read(8)
    suffix = path.suffix.lower()
    if head.startswith(b"PK\x03\x04") and suffix not in _EXCEL:
        return list(_zip_tables(path, encoding))
    if suffix in _EXCEL or head.startswith(b"\xd0\xcf\x11\xe0"):
        return list(_excel_tables(path))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExportFileError(f"{path}: cannot read the file: {exc.strerror or exc}") from exc
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ExportFileError(f"{path}: a binary file, not a CSV, Excel or ZIP export")
    return [_csv_table(str(path), decode(data, str(path), encoding))]
