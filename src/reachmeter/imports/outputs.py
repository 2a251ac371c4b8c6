"""Importing outputs from CSV, BibTeX (bibtexparser) and RIS (rispy) files."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import rispy
from bibtexparser import middlewares
from bibtexparser.entrypoint import parse_string
from bibtexparser.model import Entry, ParsingFailedBlock
from sqlalchemy import select
from sqlalchemy.orm import Session

from reachmeter.imports import (
    ImportFileError,
    ImportSummary,
    Outcome,
    Parsed,
    SourceRecord,
    read_csv_table,
    read_text,
    record_label,
    run_import,
)
from reachmeter.matching.identifiers import Identifier, IdentifierError, normalize
from reachmeter.store import Store
from reachmeter.store.catalog import (
    AuthorRef,
    CatalogError,
    find_outputs,
    normalize_orcid,
    normalize_output_type,
    output_identifiers,
    upsert_output,
)
from reachmeter.store.schema import Authorship, Output

__all__ = [
    "FORMATS",
    "IDENTIFIER_COLUMNS",
    "OutputRecord",
    "import_outputs",
    "parse_author",
    "parse_authors",
    "parse_published",
    "read_bibtex",
    "read_outputs_csv",
    "read_ris",
]

S = TypeVar("S")

FORMATS = ("csv", "bibtex", "ris")
_EXTENSIONS = {".csv": "csv", ".bib": "bibtex", ".bibtex": "bibtex", ".ris": "ris"}
IDENTIFIER_COLUMNS = ("doi", "pmid", "pmcid", "arxiv", "isbn", "handle", "urn", "ssrn", "url")
_CSV_COLUMNS = ("title", "type", "venue", "published_on", "identifiers", "authors")

_BIBTEX_TYPES = {
    "article": "article",
    "book": "book",
    "booklet": "book",
    "inbook": "chapter",
    "incollection": "chapter",
    "inproceedings": "conference-paper",
    "conference": "conference-paper",
    "proceedings": "book",
    "techreport": "report",
    "report": "report",
    "manual": "report",
    "phdthesis": "thesis",
    "mastersthesis": "thesis",
    "thesis": "thesis",
    "unpublished": "preprint",
    "dataset": "dataset",
    "software": "software",
    "online": "web-page",
    "electronic": "web-page",
    "www": "web-page",
    "video": "video",
}
_RIS_TYPES = {
    "JOUR": "article",
    "JFULL": "article",
    "EJOUR": "article",
    "MGZN": "article",
    "NEWS": "article",
    "BOOK": "book",
    "EBOOK": "book",
    "EDBOOK": "book",
    "CHAP": "chapter",
    "ECHAP": "chapter",
    "CONF": "conference-paper",
    "CPAPER": "conference-paper",
    "RPRT": "report",
    "GOVDOC": "report",
    "THES": "thesis",
    "DATA": "dataset",
    "DBASE": "dataset",
    "COMP": "software",
    "BLOG": "blog-post",
    "ELEC": "web-page",
    "WEB": "web-page",
    "VIDEO": "video",
    "MPCT": "video",
    "UNPB": "preprint",
}
_PRECISION = {"year": 1, "month": 2, "day": 3}
_YEAR = re.compile(r"^(\d{4})$")
_YEAR_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_ORCID_SHAPE = re.compile(r"\d{4}-?\d{4}-?\d{4}-?\d{3}[\dXx]|orcid\.org", re.IGNORECASE)
_NAME_AND_ORCID = re.compile(r"^(.*?)\s*\(([^()]*)\)\s*$")
_RIS_START = re.compile(r"^TY  -")
_RIS_END = re.compile(r"^ER  -")


@dataclass
class OutputRecord:
    """One output as a file describes it, identifiers already normalised."""

    identifiers: list[Identifier]
    title: str | None = None
    type: str | None = None
    venue: str | None = None
    published_on: dt.date | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    authors: list[AuthorRef] | None = None


class _BadRecord(ValueError):
    pass


# -- field parsers -------------------------------------------------------------------------


def parse_published(text: str) -> tuple[dt.date, str]:
    """A publication date and its precision (``day``, ``month`` or ``year``) from an ISO date
    (``2021-03-15``), a year and month (``2021-03``) or a year (``2021``); the missing parts
    are the first day or month. Raises ``ValueError`` for anything else."""
    value = text.strip()
    try:
        if match := _YEAR.match(value):
            return dt.date(int(match.group(1)), 1, 1), "year"
        if match := _YEAR_MONTH.match(value):
            return dt.date(int(match.group(1)), int(match.group(2)), 1), "month"
        return dt.date.fromisoformat(value), "day"
    except ValueError as exc:
        raise ValueError(f"unparseable date {text!r} (use YYYY-MM-DD, YYYY-MM or YYYY)") from exc


def parse_author(text: str) -> AuthorRef:
    """An author from ``Name``, an ORCID, or ``Name (ORCID)``; ``CatalogError`` when what
    looks like an ORCID is not a valid one."""
    value = text.strip()
    match = _NAME_AND_ORCID.match(value)
    if match and _ORCID_SHAPE.search(match.group(2)):
        return AuthorRef(match.group(1).strip(), normalize_orcid(match.group(2)))
    if _ORCID_SHAPE.fullmatch(value) or value.lower().startswith(("https://orcid", "orcid")):
        return AuthorRef("", normalize_orcid(value))
    return AuthorRef(value, None)


def parse_authors(text: str) -> list[AuthorRef]:
    """Authors from a ``;``-separated list of ``parse_author`` entries."""
    return [parse_author(part) for part in text.split(";") if part.strip()]


def _identifier(value: str, scheme: str | None, where: str) -> Identifier:
    try:
        return normalize(value, scheme)
    except IdentifierError as exc:
        raise _BadRecord(f"{where}: {exc}") from exc


def _date_fields(published: str, where: str) -> tuple[dt.date, dict[str, Any]]:
    try:
        date, precision = parse_published(published)
    except ValueError as exc:
        raise _BadRecord(f"{where}: {exc}") from exc
    return date, {"published_precision": precision}


def _output_type(value: str) -> str:
    try:
        return normalize_output_type(value)
    except CatalogError as exc:
        raise _BadRecord(str(exc)) from exc


def _parsed(
    record: SourceRecord, build: Callable[[S], OutputRecord], source: S
) -> Parsed[OutputRecord]:
    try:
        value = build(source)
    except (_BadRecord, CatalogError) as exc:
        return Parsed(record, error=str(exc))
    if not value.identifiers:
        return Parsed(record, error="no usable identifier (DOI, PMID, arXiv, ISBN, URL, ...)")
    return Parsed(record, value=value)


# -- CSV -----------------------------------------------------------------------------------


def read_outputs_csv(path: Path, text: str) -> tuple[list[Parsed[OutputRecord]], list[str]]:
    """The records of an outputs CSV file, and notes about its header (ignored columns)."""
    known = (*_CSV_COLUMNS, *IDENTIFIER_COLUMNS)
    header, rows, unknown = read_csv_table(path, text, known)
    if not {*IDENTIFIER_COLUMNS, "identifiers"} & set(header):
        raise ImportFileError(
            f"{path}: no identifier column; give one of {', '.join(IDENTIFIER_COLUMNS)} "
            "or identifiers"
        )
    notes = [f"{path}: ignored unknown columns: {', '.join(unknown)}"] if unknown else []
    parsed: list[Parsed[OutputRecord]] = []
    for line, raw, values, error in rows:
        title = values.get("title") if values else None
        record = SourceRecord(line=line, raw=raw, label=record_label(line, title))
        if values is None:
            parsed.append(Parsed(record, error=error))
            continue
        parsed.append(_parsed(record, _csv_output, values))
    return parsed, notes


def _csv_output(values: dict[str, str]) -> OutputRecord:
    identifiers = [
        _identifier(value, scheme, f"column {scheme}")
        for scheme in IDENTIFIER_COLUMNS
        for value in (values.get(scheme) or "").split(";")
        if value.strip()
    ]
    identifiers += [
        _identifier(value, None, "column identifiers")
        for value in re.split(r"[;\s]+", values.get("identifiers") or "")
        if value
    ]
    record = OutputRecord(
        identifiers=identifiers,
        title=values.get("title") or None,
        venue=values.get("venue") or None,
    )
    if values.get("type"):
        record.type = _output_type(values["type"])
    if values.get("published_on"):
        record.published_on, record.extra = _date_fields(values["published_on"], "published_on")
    if values.get("authors"):
        record.authors = parse_authors(values["authors"])
    return record


# -- BibTeX --------------------------------------------------------------------------------


def _bibtex_output(entry: Entry) -> OutputRecord:
    fields = {key.lower(): value.value for key, value in entry.fields_dict.items()}

    def text(name: str) -> str:
        value = fields.get(name)
        return " ".join(str(value).split()) if value not in (None, "") else ""

    identifiers: list[Identifier] = []
    if text("doi"):
        identifiers.append(_identifier(text("doi"), "doi", "field doi"))
    for scheme in ("pmid", "pmcid"):
        if text(scheme):
            identifiers.append(_identifier(text(scheme), scheme, f"field {scheme}"))
    for isbn in re.split(r"[;,]", text("isbn")):
        if isbn.strip():
            identifiers.append(_identifier(isbn, "isbn", "field isbn"))
    prefix = (text("archiveprefix") or text("eprinttype")).lower()
    if text("eprint"):
        eprint_scheme = {"arxiv": "arxiv", "pubmed": "pmid", "hdl": "handle", "handle": "handle"}
        if prefix in eprint_scheme:
            identifiers.append(_identifier(text("eprint"), eprint_scheme[prefix], "field eprint"))
        elif not prefix:
            identifiers.append(_identifier(text("eprint"), None, "field eprint"))
    if text("url"):
        identifiers.append(_identifier(text("url"), None, "field url"))

    entry_type = entry.entry_type.lower()
    output_type = _BIBTEX_TYPES.get(entry_type, "other")
    if entry_type == "misc" and any(identifier.scheme == "arxiv" for identifier in identifiers):
        output_type = "preprint"
    venue = text("journal") or text("journaltitle") or text("booktitle")
    record = OutputRecord(
        identifiers=identifiers,
        title=text("title") or None,
        type=output_type,
        venue=venue or text("publisher") or None,
        extra={"bibtex_key": entry.key},
    )
    if venue and text("publisher"):
        record.extra["publisher"] = text("publisher")
    published = text("date")
    if not published and text("year"):
        published = text("year")
        if text("month"):
            published += f"-{int(text('month')):02d}" if text("month").isdigit() else ""
    if published:
        record.published_on, date_extra = _date_fields(published, "field year/month/date")
        record.extra.update(date_extra)
    authors = fields.get("author")
    if authors:
        names = authors if isinstance(authors, list) else [str(authors)]
        record.authors = [AuthorRef(" ".join(str(name).split()), None) for name in names]
    return record


def read_bibtex(path: Path, text: str) -> list[Parsed[OutputRecord]]:
    """The entries of a BibTeX file (line numbers are each entry's first line); blocks that
    do not parse are returned as errors."""
    library = parse_string(
        text,
        append_middleware=[
            middlewares.LatexDecodingMiddleware(),
            middlewares.MonthIntMiddleware(True),
            middlewares.SeparateCoAuthors(),
            middlewares.SplitNameParts(),
            middlewares.MergeNameParts(style="first"),
        ],
    )
    parsed: list[Parsed[OutputRecord]] = []
    for block in library.blocks:
        line = (block.start_line or 0) + 1
        if isinstance(block, ParsingFailedBlock):
            record = SourceRecord(
                line=line, raw=block.raw or "", label=record_label(line, None, "entry at line")
            )
            parsed.append(Parsed(record, error=f"unreadable BibTeX: {block.error}"))
        elif isinstance(block, Entry):
            title = block.fields_dict.get("title")
            label = record_label(
                line, str(title.value) if title else None, f"entry {block.key!r} at line"
            )
            record = SourceRecord(line=line, raw=block.raw or "", label=label)
            parsed.append(_parsed(record, _bibtex_output, block))
    return parsed


# -- RIS -----------------------------------------------------------------------------------


def _ris_chunks(text: str) -> Iterator[tuple[int, str, bool]]:
    """``(first line, raw text, closed)`` for each ``TY`` ... ``ER`` record."""
    start: int | None = None
    lines: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if _RIS_START.match(line):
            if start is not None:
                yield start, "\n".join(lines), False
            start, lines = number, [line]
        elif start is not None:
            lines.append(line)
            if _RIS_END.match(line):
                yield start, "\n".join(lines), True
                start, lines = None, []
    if start is not None:
        yield start, "\n".join(lines), False


def _ris_date(value: str) -> str:
    parts = [part for part in value.strip().split("/") if part.strip()]
    if not parts:
        return ""
    if len(parts) == 1:
        return parts[0].strip()
    return "-".join(
        [parts[0].strip(), *(f"{int(part):02d}" if part.isdigit() else part for part in parts[1:3])]
    )


def _ris_name(name: str) -> str:
    last, comma, first = name.partition(",")
    return " ".join(f"{first} {last}".split()) if comma else " ".join(name.split())


def _ris_output(entry: dict[str, Any]) -> OutputRecord:
    def text(name: str) -> str:
        value = entry.get(name)
        return " ".join(str(value).split()) if isinstance(value, str) else ""

    identifiers: list[Identifier] = []
    if text("doi"):
        identifiers.append(_identifier(text("doi"), "doi", "DO"))
    for isbn in re.split(r"[;,]", text("issn")):
        # SN holds an ISSN for journals: not an identifier of the output.
        with contextlib.suppress(IdentifierError):
            identifiers.append(normalize(isbn, "isbn"))
    for url in entry.get("urls") or []:
        identifiers.append(_identifier(str(url), None, "UR"))
    ris_type = text("type_of_reference").upper()
    record = OutputRecord(
        identifiers=identifiers,
        title=text("primary_title") or text("title") or None,
        type=_RIS_TYPES.get(ris_type, "other"),
        venue=text("journal_name") or text("secondary_title") or None,
        extra={"ris_type": ris_type} if ris_type else {},
    )
    if text("issn") and not any(identifier.scheme == "isbn" for identifier in identifiers):
        record.extra["issn"] = text("issn")
    published = max(
        (_ris_date(text(tag)) for tag in ("date", "year")),
        key=lambda value: value.count("-"),
    )
    if published:
        record.published_on, date_extra = _date_fields(published, "PY/DA")
        record.extra.update(date_extra)
    names = [*(entry.get("authors") or []), *(entry.get("first_authors") or [])]
    if names:
        record.authors = [AuthorRef(_ris_name(str(name)), None) for name in names]
    return record


def read_ris(path: Path, text: str) -> list[Parsed[OutputRecord]]:
    """The records of a RIS file, each parsed by rispy on its own so that one bad record
    does not hide the others."""
    parsed: list[Parsed[OutputRecord]] = []
    for line, raw, closed in _ris_chunks(text):
        entries: list[dict[str, Any]] = []
        error = None if closed else "RIS record not closed by an ER line"
        if closed:
            try:
                entries = rispy.loads(raw + "\n")
            except (ValueError, KeyError, IndexError) as exc:
                error = f"unreadable RIS: {exc}"
        title = entries[0].get("primary_title") or entries[0].get("title") if entries else None
        record = SourceRecord(line=line, raw=raw, label=record_label(line, title))
        if error or len(entries) != 1:
            parsed.append(Parsed(record, error=error or "unreadable RIS record"))
        else:
            parsed.append(_parsed(record, _ris_output, entries[0]))
    return parsed


# -- storing -------------------------------------------------------------------------------


def _snapshot(session: Session, output: Output) -> tuple[Any, ...]:
    authorships = session.execute(
        select(Authorship.person_id, Authorship.position).where(Authorship.output_id == output.id)
    ).all()
    return (
        output.type,
        output.title,
        output.venue,
        output.published_on,
        json.dumps(output.extra or {}, sort_keys=True, default=str),
        sorted(output_identifiers(session, output)),
        sorted(tuple(row) for row in authorships),
    )


def _store_output(session: Session, record: OutputRecord) -> Outcome:
    found = find_outputs(session, record.identifiers)
    before = _snapshot(session, found[0]) if len(found) == 1 else None
    published_on, extra = record.published_on, dict(record.extra)
    if found and published_on is not None:
        # A coarser date (a year) does not overwrite a finer one (a day) of the same year.
        stored = found[0]
        stored_rank = _PRECISION.get(str((stored.extra or {}).get("published_precision")), 3)
        new_rank = _PRECISION.get(str(extra.get("published_precision")), 3)
        if (
            stored.published_on is not None
            and stored.published_on.year == published_on.year
            and stored_rank > new_rank
        ):
            published_on = None
            extra.pop("published_precision", None)
    output, created = upsert_output(
        session,
        identifiers=record.identifiers,
        title=record.title,
        type=record.type,
        venue=record.venue,
        published_on=published_on,
        extra=extra,
        authors=record.authors,
    )
    changed = created or before != _snapshot(session, output)
    return Outcome(created=created, changed=changed, merged=max(0, len(found) - 1))


def detect_format(path: Path, fmt: str | None = None) -> str:
    """``csv``, ``bibtex`` or ``ris``: ``fmt`` when given, else from the file's extension."""
    if fmt is not None:
        name = fmt.strip().lower()
        name = "bibtex" if name == "bib" else name
        if name not in FORMATS:
            raise ImportFileError(f"{path}: unknown format {fmt!r}; use {', '.join(FORMATS)}")
        return name
    name = _EXTENSIONS.get(path.suffix.lower(), "")
    if not name:
        raise ImportFileError(
            f"{path}: cannot tell the format from the extension {path.suffix!r}; "
            f"name it .csv, .bib or .ris, or give the format ({', '.join(FORMATS)})"
        )
    return name


def import_outputs(
    store: Store, path: str | os.PathLike[str], *, fmt: str | None = None
) -> ImportSummary:
    """Import the outputs in a CSV, BibTeX or RIS file (``fmt`` overrides the extension).

    Records are merged with the outputs already known by any of their identifiers; bad
    records are quarantined and the rest still go in. Raises ``ImportFileError`` when the
    file cannot be read at all (not UTF-8, unknown format, no identifier column).
    """
    notes: list[str] = []

    def parse(file: Path) -> Iterable[Parsed[OutputRecord]]:
        name = detect_format(file, fmt)
        text = read_text(file)
        if name == "csv":
            records, header_notes = read_outputs_csv(file, text)
            notes.extend(header_notes)
            return records
        if name == "bibtex":
            return read_bibtex(file, text)
        return read_ris(file, text)

    summary = run_import(store, path, "import-outputs", parse, _store_output)
    summary.problems[:0] = notes
    return summary
