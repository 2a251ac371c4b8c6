"""Reading input files: format detection and one reader per format.

A reader yields ``(line, item)`` pairs where ``item`` is a record (a mapping) or a
``Problem`` (a record that could not even be read: bad JSON, bad encoding, a line too
long). Readers stream: a JSON Lines or CSV file of any size is read line by line.

Formats (``--format``):

``jsonl``
    One JSON object per line: Event Data events or generic mentions and observations.
``json``
    One JSON document: a single event, a list of events, an Event Data API page
    (``{"message": {"events": [...]}}``) or ``{"events": [...]}``.
``usage-report``
    A Make Data Count / DataCite usage or resolution report (``data.report``), including
    gzip-compressed ``report-datasets``.
``csv``
    The generic mention CSV (see docs/ingest.md).
``vcr``
    A VCR cassette (YAML) of Event Data API responses; each response body is read as ``json``.
"""

from __future__ import annotations

import base64
import codecs
import csv
import gzip
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import yaml

__all__ = ["FORMATS", "Problem", "Span", "detect_format", "line_start", "read_records"]

FORMATS = ("jsonl", "json", "usage-report", "csv", "vcr")


@dataclass(frozen=True, slots=True)
class Problem:
    """A record that could not be read, with the reason and the raw text."""

    reason: str
    raw: str


Item = tuple[int, Mapping[str, Any] | Problem]


def _preview(raw: bytes, limit: int = 4096) -> str:
    return raw[:limit].decode("utf-8", errors="replace")


def _json_error(exc: orjson.JSONDecodeError) -> str:
    message = str(exc)
    if "utf-8" in message.lower():
        return f"not valid UTF-8: {message}"
    return f"malformed JSON: {message}"


def detect_format(path: Path) -> str:
    """Guess the format of a file from its name and first bytes."""
    suffix = path.suffix.lower()
    if suffix in {".yml", ".yaml"}:
        return "vcr"
    if suffix == ".csv":
        return "csv"
    if suffix in {".jsonl", ".ndjson"}:
        return "jsonl"
    with path.open("rb") as handle:
        head = handle.read(65536)
    text = head.lstrip(codecs.BOM_UTF8).lstrip()
    if not text:
        return "jsonl"
    if text[:1] == b"[":
        return "json"
    if text[:1] == b"{":
        first_line = text.split(b"\n", 1)[0].strip()
        try:
            orjson.loads(first_line)
        except orjson.JSONDecodeError:
            return "usage-report" if b'"report' in head else "json"
        return "jsonl"
    if head.startswith(b"---") or b"http_interactions:" in head:
        return "vcr"
    first_line = text.split(b"\n", 1)[0]
    if b"," in first_line and (b"subj_id" in first_line or b"metric" in first_line):
        return "csv"
    return "unknown"


@dataclass(slots=True)
class Span:
    """A part of a JSON Lines file: the lines that start at byte ``start`` or later and
    before ``end``. Reading it sets ``lines`` to the number of lines it holds."""

    start: int
    end: int
    lines: int = 0


def line_start(handle: BinaryIO, offset: int) -> int:
    """The offset of the first line that starts at ``offset`` or later (the file's size
    when none does)."""
    if offset <= 0:
        return 0
    handle.seek(offset - 1)
    position = offset - 1
    while chunk := handle.read(1 << 16):
        found = chunk.find(b"\n")
        if found >= 0:
            return position + found + 1
        position += len(chunk)
    return position


def _read_jsonl(path: Path, max_line_bytes: int, span: Span | None = None) -> Iterator[Item]:
    loads = orjson.loads
    limit = max_line_bytes + 1
    with path.open("rb") as handle:
        readline = handle.readline
        position, end = 0, None
        if span is not None:
            handle.seek(span.start)
            position, end = span.start, span.end
        line_no = 0
        while end is None or position < end:
            raw = readline(limit)
            if not raw:
                break
            line_no += 1
            position += len(raw)
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                rest = 0
                while chunk := handle.readline(1 << 20):
                    rest += len(chunk)
                    if chunk.endswith(b"\n"):
                        break
                position += rest
                yield (
                    line_no,
                    Problem(
                        f"line is {len(raw) + rest} bytes, over the limit of {max_line_bytes}",
                        _preview(raw),
                    ),
                )
                continue
            if line_no == 1 and position == len(raw) and raw.startswith(codecs.BOM_UTF8):
                raw = raw[3:]
            try:
                value = loads(raw)
            except orjson.JSONDecodeError as exc:
                # A blank line is no record (checked only here: most lines parse).
                if raw.strip():
                    yield line_no, Problem(_json_error(exc), _preview(raw))
                continue
            if type(value) is dict:
                yield line_no, value
            else:
                yield (
                    line_no,
                    Problem(f"expected a JSON object, found {type(value).__name__}", _preview(raw)),
                )
        if span is not None:
            span.lines = line_no


def _events_in(document: Any) -> list[Any] | None:
    """The list of records in a JSON document, or None when it is not a known shape."""
    if isinstance(document, list):
        return document
    if not isinstance(document, dict):
        return None
    message = document.get("message")
    if isinstance(message, dict) and isinstance(message.get("events"), list):
        return list(message["events"])
    for key in ("events", "data"):
        if isinstance(document.get(key), list):
            return list(document[key])
    if "subj_id" in document or "subj-id" in document or "metric" in document:
        return [document]
    return None


def _read_json_document(data: bytes) -> Iterator[Item]:
    """The records of one JSON document, numbered by their place in it."""
    try:
        document = orjson.loads(data.removeprefix(codecs.BOM_UTF8))
    except orjson.JSONDecodeError as exc:
        yield 1, Problem(_json_error(exc), _preview(data))
        return
    if isinstance(document, dict) and isinstance(document.get("data"), dict):
        report = document["data"].get("report")
        if isinstance(report, dict):
            yield from _usage_report_records(report, 1)
            return
    records = _events_in(document)
    if records is None:
        yield (
            1,
            Problem(
                "JSON document is not an event, a list of events or an Event Data page",
                _preview(data),
            ),
        )
        return
    for index, record in enumerate(records, start=1):
        if isinstance(record, dict):
            yield index, record
        else:
            yield (
                index,
                Problem(
                    f"item {index} is {type(record).__name__}, not an event object",
                    orjson.dumps(record).decode()[:4096],
                ),
            )


def _read_json(path: Path) -> Iterator[Item]:
    # A usage report is one JSON document too: the same reader tells the shapes apart.
    yield from _read_json_document(path.read_bytes())


def _report_period(performance: Mapping[str, Any], header: Mapping[str, Any]) -> tuple[str, str]:
    period = performance.get("period") or {}
    begin = str(period.get("begin-date") or "")
    end = str(period.get("end-date") or "")
    if not begin or not end:
        fallback = header.get("reporting-period") or {}
        begin = begin or str(fallback.get("begin-date") or "")
        end = end or str(fallback.get("end-date") or "")
    return begin, end


def _usage_report_records(report: Mapping[str, Any], line: int) -> Iterator[Item]:
    """Observations from a Make Data Count (Code of Practice for Research Data) report."""
    header = report.get("report-header") or {}
    report_id = str(report.get("id") or header.get("report-id") or "")
    created = str(header.get("created") or "")
    source_id = (
        "datacite-usage"
        if "resolution" not in str(header.get("report-name", ""))
        else ("datacite-resolutions")
    )
    datasets = report.get("report-datasets") or []
    if (
        isinstance(datasets, list)
        and len(datasets) == 1
        and isinstance(datasets[0], dict)
        and "gzip" in datasets[0]
    ):
        try:
            unpacked = orjson.loads(gzip.decompress(base64.b64decode(datasets[0]["gzip"])))
        except (ValueError, OSError, orjson.JSONDecodeError) as exc:
            yield line, Problem(f"compressed report-datasets cannot be read: {exc}", "")
            return
        # The compressed payload is either the datasets or a whole report of its own.
        if isinstance(unpacked, dict) and "report-datasets" in unpacked:
            header = unpacked.get("report-header") or header
            datasets = unpacked["report-datasets"]
        else:
            datasets = unpacked
    if not isinstance(datasets, list):
        yield line, Problem("report-datasets is not a list", "")
        return
    for index, dataset in enumerate(datasets, start=1):
        if not isinstance(dataset, dict):
            yield index, Problem(f"dataset {index} is not an object", str(dataset)[:4096])
            continue
        raw = orjson.dumps(dataset).decode()[:4096]
        doi = next(
            (
                str(item.get("value"))
                for item in dataset.get("dataset-id") or []
                if isinstance(item, dict) and str(item.get("type", "")).lower() == "doi"
            ),
            "",
        )
        if not doi:
            yield index, Problem(f"dataset {index} has no DOI in dataset-id", raw)
            continue
        for performance in dataset.get("performance") or []:
            begin, end = _report_period(performance, header)
            for instance in performance.get("instance") or []:
                metric = str(instance.get("metric-type", "")).lower()
                access = str(instance.get("access-method", "")).lower()
                yield (
                    index,
                    {
                        "id": f"usage-report:{report_id}:{doi.lower()}:{metric}:{access}:{begin}",
                        "metric": metric,
                        "qualifier": access,
                        "value": instance.get("count"),
                        "obj_id": doi,
                        "period_start": begin,
                        "period_end": end,
                        "observed_at": end or created,
                        "source_id": source_id,
                    },
                )


def _decoded_lines(path: Path, problems: list[Item]) -> Iterator[str]:
    """The lines of a file as text; a line that is not UTF-8 becomes a problem instead."""
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if line_no == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.append((line_no, Problem(f"not valid UTF-8: {exc}", _preview(raw))))
                yield "\n"


def _read_csv(path: Path) -> Iterator[Item]:
    problems: list[Item] = []
    reader = csv.DictReader(_decoded_lines(path, problems))
    try:
        for row in reader:
            yield from problems
            problems.clear()
            if None in row:
                yield (
                    reader.line_num,
                    Problem(
                        f"{len(reader.fieldnames or [])} columns expected, found more",
                        ",".join(str(value) for value in row.values())[:4096],
                    ),
                )
                continue
            if not any(row.values()):
                continue
            yield (
                reader.line_num,
                {(key or "").strip().lower(): value for key, value in row.items() if value != ""},
            )
    except csv.Error as exc:
        yield reader.line_num, Problem(f"malformed CSV: {exc}", "")
    yield from problems


def _read_vcr(path: Path) -> Iterator[Item]:
    try:
        cassette = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        yield 1, Problem(f"not a readable YAML cassette: {exc}", "")
        return
    interactions = cassette.get("http_interactions") if isinstance(cassette, dict) else None
    if not isinstance(interactions, list):
        yield 1, Problem("YAML file has no http_interactions (not a VCR cassette)", "")
        return
    for index, interaction in enumerate(interactions, start=1):
        body = ((interaction or {}).get("response") or {}).get("body") or {}
        text = body.get("string") if isinstance(body, dict) else None
        if not isinstance(text, str | bytes):
            yield index, Problem(f"interaction {index} has no response body", "")
            continue
        data = text.encode() if isinstance(text, str) else text
        for _, item in _read_json_document(data):
            yield index, item


def read_records(
    path: Path, fmt: str, *, max_line_bytes: int, span: Span | None = None
) -> Iterator[Item]:
    """The records of a file in the given format (see ``FORMATS``); with ``span``, of that
    part of a JSON Lines file only, their lines numbered from the span's first."""
    if span is not None and fmt != "jsonl":
        raise ValueError(f"only a JSON Lines file is read in spans, not {fmt!r}")
    if fmt == "jsonl":
        return _read_jsonl(path, max_line_bytes, span)
    if fmt == "json":
        return _read_json(path)
    if fmt == "usage-report":
        return _read_json(path)
    if fmt == "csv":
        return _read_csv(path)
    if fmt == "vcr":
        return _read_vcr(path)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
