"""Importing catalogue files: outputs (CSV, BibTeX, RIS) and people (CSV).

An import reads every record of a file; each good record is stored (merged with what is
already there, so re-running an import changes nothing), and each bad one is quarantined
with its line and a reason, while the rest of the file still goes in. Every import writes a
``Run`` row with its counts. The file formats are described in ``docs/import-formats.md``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from reachmeter.matching.identifiers import IdentifierError
from reachmeter.store import Store
from reachmeter.store.catalog import CatalogError
from reachmeter.store.schema import QuarantinedRecord, Run

__all__ = [
    "ImportFileError",
    "ImportSummary",
    "import_outputs",
    "import_people",
]

T = TypeVar("T")


class ImportFileError(ValueError):
    """A whole file cannot be imported (unreadable, not UTF-8, unknown format, no usable
    header); the message names the file."""


@dataclass
class ImportSummary:
    """What one import did. ``read`` counts records; the ones neither created, updated nor
    quarantined were already in the store as given."""

    origin: str = ""
    read: int = 0
    created: int = 0
    updated: int = 0
    merged: int = 0
    quarantined: int = 0
    problems: list[str] = field(default_factory=list)
    run_id: int | None = None

    @property
    def unchanged(self) -> int:
        """Records that matched the store exactly."""
        return self.read - self.created - self.updated - self.quarantined


@dataclass(frozen=True)
class SourceRecord:
    """Where a record came from: its first line (1-based), raw text, and a label for
    messages such as ``line 7 ('A study of things')``."""

    line: int
    raw: str
    label: str


@dataclass(frozen=True)
class Parsed(Generic[T]):
    """A record read from a file: its value, or why it cannot be used."""

    record: SourceRecord
    value: T | None = None
    error: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What storing one record did."""

    created: bool = False
    changed: bool = False
    merged: int = 0


def read_text(path: Path) -> str:
    """The text of a UTF-8 file (a byte-order mark is dropped).

    Raises ``ImportFileError`` naming the file and the byte position when it is not UTF-8.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read the file: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        raise ImportFileError(
            f"{path}: not UTF-8 text (invalid byte 0x{bad} at byte position {exc.start}); "
            "save the file as UTF-8 and import it again"
        ) from exc


def record_label(line: int, title: str | None, what: str = "line") -> str:
    """How messages name a record: ``line 7 ('A study of things')``."""
    if title:
        short = title if len(title) <= 60 else f"{title[:57]}..."
        return f"{what} {line} ({short!r})"
    return f"{what} {line}"


def csv_rows(text: str) -> Iterator[tuple[int, str, list[str] | None, str | None]]:
    """``(first line, raw text, cells or None, error)`` for each non-blank CSV row."""
    lines = text.splitlines()
    reader = csv.reader(text.splitlines(keepends=True))
    end = 0
    while True:
        start = end + 1
        try:
            row = next(reader)
            error = None
        except StopIteration:
            return
        except csv.Error as exc:
            row, error = None, f"malformed CSV: {exc}"
        end = reader.line_num
        if row is not None and not any(cell.strip() for cell in row):
            continue
        yield start, "\n".join(lines[start - 1 : end]), row, error


def read_csv_table(
    path: Path, text: str, known: Sequence[str]
) -> tuple[list[str], Iterator[tuple[int, str, dict[str, str] | None, str | None]], list[str]]:
    """The lower-case header, the rows as dicts, and the header's unknown columns."""
    rows = csv_rows(text)
    first = next(rows, None)
    if first is None or first[2] is None:
        raise ImportFileError(f"{path}: no header row (expected columns such as {known[0]})")
    header = [cell.strip().lower() for cell in first[2]]
    duplicated = sorted({name for name in header if name and header.count(name) > 1})
    if duplicated:
        raise ImportFileError(f"{path}: duplicated columns: {', '.join(duplicated)}")

    def records() -> Iterator[tuple[int, str, dict[str, str] | None, str | None]]:
        for line, raw, cells, error in rows:
            if cells is None:
                yield line, raw, None, error
            elif len(cells) > len(header):
                message = f"{len(cells)} cells but the header has {len(header)} columns"
                yield line, raw, None, message
            else:
                values = {name: cell.strip() for name, cell in zip(header, cells, strict=False)}
                yield line, raw, values, None

    unknown = [name for name in header if name and name not in known]
    return header, records(), unknown


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _quarantine(session: Session, origin: str, record: SourceRecord, reason: str, run: Run) -> None:
    digest = hashlib.sha256(record.raw.encode()).hexdigest()
    exists = session.scalar(
        select(QuarantinedRecord.id).where(
            QuarantinedRecord.origin == origin,
            QuarantinedRecord.line == record.line,
            QuarantinedRecord.raw_sha256 == digest,
        )
    )
    if exists is None:
        session.add(
            QuarantinedRecord(
                origin=origin,
                line=record.line,
                reason=reason,
                raw=record.raw,
                raw_sha256=digest,
                run_id=run.id,
            )
        )


def _failed_run(store: Store, kind: str, origin: str, started_at: dt.datetime, error: str) -> None:
    with store.session() as session:
        session.add(
            Run(
                kind=kind,
                started_at=started_at,
                finished_at=_now(),
                status="failed",
                errors=1,
                detail={"file": origin, "error": error},
            )
        )


def run_import(
    store: Store,
    path: str | os.PathLike[str],
    kind: str,
    parse: Callable[[Path], Iterable[Parsed[T]]],
    apply: Callable[[Session, T], Outcome],
) -> ImportSummary:
    """Read ``path`` with ``parse`` and store each record with ``apply``, in one transaction
    with a savepoint per record; quarantine bad records and write the ``Run``.

    ``parse`` raises ``ImportFileError`` for a file that cannot be read at all (recorded as
    a failed run, then raised again); ``apply`` raises ``CatalogError`` for a bad record.
    """
    file = Path(path)
    origin = str(file.resolve())
    started_at = _now()
    summary = ImportSummary(origin=str(path))
    try:
        records = parse(file)
    except ImportFileError as exc:
        _failed_run(store, kind, origin, started_at, str(exc))
        raise
    with store.session() as session:
        run = Run(kind=kind, started_at=started_at, status="running", detail={"file": origin})
        session.add(run)
        session.flush()
        for item in records:
            summary.read += 1
            reason = item.error
            if reason is None and item.value is not None:
                try:
                    with session.begin_nested():
                        outcome = apply(session, item.value)
                except (CatalogError, IdentifierError) as exc:
                    reason = str(exc)
                except DBAPIError as exc:
                    reason = f"the database refused it: {exc.orig or exc}"
                else:
                    summary.created += outcome.created
                    summary.updated += outcome.changed and not outcome.created
                    summary.merged += outcome.merged
                    continue
            reason = f"{item.record.label}: {reason or 'nothing to import'}"
            summary.quarantined += 1
            summary.problems.append(reason)
            _quarantine(session, origin, item.record, reason, run)
        stored = summary.read - summary.quarantined
        run.finished_at = _now()
        run.status = "ok" if not summary.quarantined else "partial" if stored else "failed"
        run.read = summary.read
        run.stored = stored
        run.quarantined = summary.quarantined
        run.detail = {
            "file": origin,
            "created": summary.created,
            "updated": summary.updated,
            "merged": summary.merged,
        }
        session.flush()
        summary.run_id = run.id
    return summary


# The format modules use the helpers above, so they are imported last.
from reachmeter.imports.outputs import import_outputs  # noqa: E402
from reachmeter.imports.people import import_people  # noqa: E402
