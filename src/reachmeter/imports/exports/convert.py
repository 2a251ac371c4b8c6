"""From the tables of an export to observations and mentions (pure: no database).

* ``daily`` rows are the account's figures for one day (a per-period observation).
* ``posts`` rows are one post each: its figures as of the export (cumulative observations
  of the post's URL), its links to outputs (``discusses`` events from the post to each
  identifier or URL it links to), and, for the metrics the layout lists in
  ``account_metrics``, the post's share of the account's figures on the day it was published
  (``posts`` counts 1 per post).
* ``pages`` rows are a web page's figures over the export's period (observations of the
  page's URL); ``breakdown`` rows are the account's figures per query, country, device, ...
  over that period, stored as ``<metric>_by_<dimension>`` with the value as qualifier.

Keys are derived from what the figure is about (never from when it was imported), so a
re-import stores nothing twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reachmeter.matching.extract import extract
from reachmeter.matching.identifiers import Identifier, IdentifierError, normalize, to_uri
from reachmeter.matching.urls import host_of
from reachmeter.records import KEY_NAMESPACE, EventRecord, ObservationRecord, RecordError
from reachmeter.store.catalog import CatalogError, account_url, normalize_account
from reachmeter.store.writer import Quarantine

from .mapping import Layout, PlatformMapping, column_key
from .readers import ExportFileError, Table

__all__ = [
    "Converted",
    "Recognised",
    "as_of_date",
    "check_platform",
    "convert",
    "file_account",
    "parse_number",
    "parse_time",
    "recognise",
]

Record = EventRecord | ObservationRecord
_HEADER_ROWS = 5
_MISSING = {"", "-", "\u2013", "\u2014", "n/a", "na", "none", "null"}  # en and em dashes
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+(?:[ .\u00a0\u202f]\d{3})*,\d+$")
_FILE_DATES = re.compile(r"(?<![\d-])(\d{4}-?\d{2}-?\d{2})_(\d{4}-?\d{2}-?\d{2})(?![\d-])")
_QUALIFIER_CHARS = 200


@dataclass
class Recognised:
    """A table whose header matched a layout: where the header is and where each column is."""

    table: Table
    layout: Layout
    header_line: int
    columns: dict[str, int]
    header: list[str]


@dataclass
class Converted:
    """What an export file gives, ready for the writer."""

    items: list[tuple[str, int, Record]] = field(default_factory=list)
    problems: list[Quarantine] = field(default_factory=list)
    rows: int = 0


def parse_number(value: Any, decimal_comma: bool = False) -> float | None:
    """A figure from a cell: ``"89.0"``, ``"1,234"``, ``"3.2%"`` (3.2), ``"10,00 %"`` with
    decimal commas; ``None`` for a placeholder (blank, ``-``). Raises ``ValueError``."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
        if math.isfinite(number):
            return number
        raise ValueError(f"{value!r} is not a number")
    text = str(value).strip()
    if text.casefold() in _MISSING:
        return None
    text = text.removesuffix("%").strip()
    if decimal_comma and _DECIMAL_COMMA.match(text):
        text = re.sub(r"[ .\u00a0\u202f]", "", text).replace(",", ".")
    elif _THOUSANDS.match(text):
        text = text.replace(",", "")
    text = text.replace("\u00a0", "").replace("\u202f", "")
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a number")
    return number


def parse_time(value: Any, formats: Sequence[str]) -> dt.datetime:
    """A cell as an aware UTC time, by the layout's formats, then ISO 8601; naive is UTC."""
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime.combine(value, dt.time())
    else:
        text = " ".join(str(value or "").split())
        if not text:
            raise ValueError("no date")
        for form in formats:
            try:
                parsed = dt.datetime.strptime(text, form)  # noqa: DTZ007  (made UTC below)
                break
            except ValueError:
                continue
        else:
            try:
                parsed = dt.datetime.fromisoformat(text)
            except ValueError:
                expected = f" (expected {', '.join(formats)})" if formats else ""
                raise ValueError(f"{text!r} is not a date{expected}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _columns(layout: Layout, header: list[str]) -> dict[str, int]:
    where = {name: index for index, name in reversed(list(enumerate(header))) if name}
    found: dict[str, int] = {}
    for role, names in [*layout.fields.items(), *layout.metrics.items()]:
        for name in names:
            index = where.get(column_key(name))
            if index is not None:
                found[role] = index
                break
    return found


def recognise(table: Table, mappings: Sequence[PlatformMapping]) -> list[Recognised]:
    """The layouts (most specific first) that the first header-like row of ``table`` fits."""
    for line, cells in table.rows[:_HEADER_ROWS]:
        header = [column_key(cell) if cell is not None else "" for cell in cells]
        keys = set(header)
        fits = [
            layout for mapping in mappings for layout in mapping.layouts if layout.matches(keys)
        ]
        if fits:
            fits.sort(key=lambda layout: -len(layout.detect))
            names = ["" if cell is None else str(cell).strip() for cell in cells]
            return [
                Recognised(table, layout, line, _columns(layout, header), names) for layout in fits
            ]
    return []


def _key(*parts: object) -> str:
    return str(uuid.uuid5(KEY_NAMESPACE, "|".join(str(part) for part in parts)))


def _qualifier(value: str) -> str:
    text = " ".join(value.split())
    if len(text) <= _QUALIFIER_CHARS:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return f"{text[: _QUALIFIER_CHARS - 14]}~{digest}"


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def as_of_date(path: Path, times: Sequence[dt.datetime]) -> dt.date | None:
    """When per-post figures were taken: the end date in the export's file name
    (``..._20210101_20210201...``, ``..._2026-07-01_2026-07-31...``), else the newest time
    in the file."""
    found = _FILE_DATES.findall(path.name)
    if found:
        try:
            return dt.datetime.strptime(found[-1][1].replace("-", ""), "%Y%m%d").date()  # noqa: DTZ007
        except ValueError:
            pass
    return max(times).date() if times else None


@dataclass
class _Context:
    mapping: PlatformMapping
    account: tuple[str, str]
    account_url: str | None
    as_of: dt.date | None
    period: tuple[dt.date, dt.date] | None
    collected_at: dt.datetime


class _Row:
    """One data row, read through its layout's columns; a bad cell is a ``RecordError``."""

    def __init__(self, found: Recognised, cells: list[Any]) -> None:
        width = len(found.header)
        if len(cells) > width and any(cell not in (None, "") for cell in cells[width:]):
            raise RecordError(f"{len(cells)} cells but the header has {width} columns")
        needed = max(found.columns.values(), default=-1)
        if len(cells) <= needed:
            raise RecordError(
                f"{len(cells)} cells but the header has {width} columns (the row is cut short)"
            )
        self.found = found
        self.cells = cells

    def text(self, role: str) -> str:
        index = self.found.columns.get(role)
        if index is None or index >= len(self.cells) or self.cells[index] is None:
            return ""
        value = self.cells[index]
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value).strip()

    def raw(self, role: str) -> Any:
        index = self.found.columns.get(role)
        if index is None or index >= len(self.cells):
            return None
        return self.cells[index]

    def column(self, role: str) -> str:
        """The header of the column that holds ``role``, as the file writes it."""
        index = self.found.columns.get(role)
        if index is not None:
            return self.found.header[index].removeprefix("\ufeff")
        layout = self.found.layout
        return (layout.fields.get(role) or layout.metrics.get(role) or (role,))[0]

    def metrics(self) -> dict[str, float]:
        layout = self.found.layout
        values: dict[str, float] = {}
        for metric in layout.metrics:
            if metric not in self.found.columns:
                continue
            try:
                number = parse_number(self.raw(metric), self.found.table.decimal_comma)
            except ValueError as exc:
                raise RecordError(f"column {self.column(metric)!r}: {exc}") from None
            if number is None or (number == 0 and metric in layout.zero_is_missing):
                continue
            values[metric] = number
        for metric, parts in layout.derived.items():
            if metric not in values and any(part in values for part in parts):
                values[metric] = sum(values.get(part, 0.0) for part in parts)
        return values

    def time(self, role: str) -> dt.datetime:
        try:
            return parse_time(self.raw(role), self.found.layout.time_formats)
        except ValueError as exc:
            raise RecordError(f"column {self.column(role)!r}: {exc}") from None


def _account_observation(
    ctx: _Context,
    metric: str,
    value: float,
    day: dt.date,
    *,
    qualifier: str = "",
    period: tuple[dt.date, dt.date] | None = None,
) -> ObservationRecord:
    start, end = period or (day, day)
    source = ctx.mapping.source_id
    platform, handle = ctx.account
    return ObservationRecord(
        observation_key=f"{source}:{_key(source, platform, handle, metric, qualifier, start, end)}",
        metric=metric,
        value=value,
        observed_at=_midnight(end),
        source_id=source,
        account=ctx.account,
        qualifier=qualifier,
        cumulative=False,
        period_start=start,
        period_end=end,
    )


def _object_observation(
    ctx: _Context,
    obj: Identifier,
    metric: str,
    value: float,
    *,
    cumulative: bool,
    when: dt.date,
    period: tuple[dt.date, dt.date] | None = None,
) -> ObservationRecord:
    source = ctx.mapping.source_id
    subject = f"{obj.scheme}:{obj.value}"
    stamp = when if cumulative else ""
    return ObservationRecord(
        observation_key=f"{source}:{_key(source, subject, metric, period or '', stamp)}",
        metric=metric,
        value=value,
        observed_at=_midnight(when),
        source_id=source,
        obj_id=to_uri(obj),
        obj_scheme=obj.scheme,
        obj_value=obj.value,
        cumulative=cumulative,
        period_start=period[0] if period else None,
        period_end=period[1] if period else None,
    )


def _own_link(url: str, own_hosts: Sequence[str]) -> bool:
    host = host_of(url).removeprefix("www.")
    return any(host == own or host.endswith("." + own) for own in own_hosts)


def _mentions(ctx: _Context, row: _Row, post: Identifier, when: dt.datetime) -> list[EventRecord]:
    layout = row.found.layout
    source = layout.event_source
    if not source:
        return []
    text = row.text("text")
    found: list[Identifier] = []
    for identifier in extract(text):
        if identifier.scheme == "url" and _own_link(identifier.value, ctx.mapping.own_hosts):
            continue
        if identifier != post and identifier not in found:
            found.append(identifier)
    post_url = to_uri(post)
    subj = {"pid": post_url, "type": "post", "text": text, "via": ctx.mapping.source_id}
    events = []
    for identifier in found:
        obj_id = to_uri(identifier)
        events.append(
            EventRecord(
                event_key=_key(source, post_url, "discusses", obj_id),
                subj_id=post_url,
                relation_type_id="discusses",
                obj_id=obj_id,
                obj_scheme=identifier.scheme,
                obj_value=identifier.value,
                source_id=source,
                occurred_at=when,
                collected_at=ctx.collected_at,
                subj_author=ctx.account_url,
                subj=subj,
                evidence_url=None,
                license=None,
            )
        )
    return events


def _post_records(ctx: _Context, row: _Row) -> list[Record]:
    layout = row.found.layout
    link = row.text("url")
    if not link:
        raise RecordError(f"no post link in column {row.column('url')!r}")
    try:
        post = normalize(link, "url")
    except IdentifierError as exc:
        raise RecordError(f"column {row.column('url')!r}: {exc}") from None
    when = row.time("time")
    values = row.metrics()
    if row.text("account"):
        try:
            owner = normalize_account(ctx.account[0], row.text("account"))
        except CatalogError as exc:
            raise RecordError(f"column {row.column('account')!r}: {exc}") from None
        if owner != ctx.account:
            raise RecordError(
                f"a post of {owner[0]}:{owner[1]}, not of {ctx.account[0]}:{ctx.account[1]}"
            )
    records: list[Record] = []
    as_of = ctx.as_of or when.date()
    for metric, value in values.items():
        records.append(_object_observation(ctx, post, metric, value, cumulative=True, when=as_of))
    qualifier = _qualifier(f"post:{row.text('post_id') or post.value}")
    for metric in layout.account_metrics:
        share = 1.0 if metric == "posts" else values.get(metric)
        if share is not None:
            records.append(
                _account_observation(ctx, metric, share, when.date(), qualifier=qualifier)
            )
    records.extend(_mentions(ctx, row, post, when))
    return records


def _daily_records(ctx: _Context, row: _Row) -> list[Record]:
    day = row.time("date").date()
    return [
        _account_observation(ctx, metric, value, day) for metric, value in row.metrics().items()
    ]


def _period_records(ctx: _Context, row: _Row) -> list[Record]:
    layout = row.found.layout
    key = row.text("key")
    if not key:
        raise RecordError(f"no value in column {row.column('key')!r}")
    if ctx.period is None:
        raise RecordError(
            "the export's period is unknown: the file has no per-day table (Dates.csv or "
            "Chart.csv) to give it"
        )
    values = row.metrics()
    if layout.kind == "pages":
        try:
            page = normalize(key, "url")
        except IdentifierError as exc:
            raise RecordError(f"column {row.column('key')!r}: {exc}") from None
        return [
            _object_observation(
                ctx, page, metric, value, cumulative=False, when=ctx.period[1], period=ctx.period
            )
            for metric, value in values.items()
        ]
    qualifier = _qualifier(key)
    return [
        _account_observation(
            ctx,
            f"{metric}_by_{layout.dimension}",
            value,
            ctx.period[1],
            qualifier=qualifier,
            period=ctx.period,
        )
        for metric, value in values.items()
    ]


_BUILDERS: dict[str, Callable[[_Context, _Row], list[Record]]] = {
    "posts": _post_records,
    "daily": _daily_records,
    "pages": _period_records,
    "breakdown": _period_records,
}


def _data_rows(found: Recognised) -> list[tuple[int, list[Any]]]:
    return [(line, cells) for line, cells in found.table.rows if line > found.header_line]


def _cells_of(found: Recognised, role: str) -> Iterator[str]:
    """The non-empty values of one column in the rows that can be read."""
    for _line, cells in _data_rows(found):
        try:
            value = _Row(found, cells).text(role)
        except RecordError:
            continue
        if value:
            yield value


def file_account(path: Path, tables: Sequence[Recognised]) -> str | None:
    """The account an export names itself: a column, the file name, or a post link."""
    for found in tables:
        if "account" in found.columns:
            for value in _cells_of(found, "account"):
                return value
    for found in tables:
        if found.layout.file_account:
            match = re.search(found.layout.file_account, path.name)
            if match:
                return match.group("account")
    for found in tables:
        if found.layout.url_account:
            for value in _cells_of(found, "url"):
                match = re.search(found.layout.url_account, value)
                if match:
                    return match.group("account")
    return None


def convert(
    path: Path,
    mapping: PlatformMapping,
    tables: Sequence[Recognised],
    account: tuple[str, str],
    *,
    collected_at: dt.datetime,
) -> Converted:
    """Every record of an export's recognised tables; bad rows become quarantine entries."""
    result = Converted()
    days: list[dt.date] = []
    post_times: list[dt.datetime] = []
    for found in tables:
        role = {"daily": "date", "posts": "time"}.get(found.layout.kind)
        if role is None:
            continue
        for _line, cells in _data_rows(found):
            try:
                moment = _Row(found, cells).time(role)
            except RecordError:
                continue
            if role == "date":
                days.append(moment.date())
            else:
                post_times.append(moment)
    ctx = _Context(
        mapping=mapping,
        account=account,
        account_url=account_url(*account),
        as_of=as_of_date(path, post_times),
        period=(min(days), max(days)) if days else None,
        collected_at=collected_at,
    )
    for found in tables:
        build = _BUILDERS.get(found.layout.kind)
        if build is None:
            continue
        origin = found.table.origin
        for line, cells in _data_rows(found):
            result.rows += 1
            try:
                records = build(ctx, _Row(found, cells))
            except RecordError as exc:
                result.problems.append(
                    Quarantine(origin, line, f"line {line}: {exc}", found.table.raw(line, cells))
                )
                continue
            result.items.extend((origin, line, record) for record in records)
    return result


def check_platform(
    path: Path,
    tables: Sequence[Table],
    mappings: dict[str, PlatformMapping],
    platform: str | None,
) -> tuple[PlatformMapping, list[Recognised], list[str]]:
    """The platform of an export and its recognised tables, and notes on skipped tables.

    Raises ``ExportFileError`` when the file is another platform's export than declared, or
    when nothing in it fits a known layout.
    """
    everything = list(mappings.values())
    chosen: PlatformMapping | None = mappings[platform] if platform else None
    recognised: list[Recognised] = []
    notes: list[str] = []
    for table in tables:
        fits = recognise(table, everything)
        if chosen is not None:
            own = [fit for fit in fits if fit.layout.platform == chosen.platform]
            if not own and fits:
                other = mappings[fits[0].layout.platform]
                raise ExportFileError(
                    f"{table.origin}: its columns are those of an export from {other.title} "
                    f"({fits[0].layout.title}), not from {chosen.title} as declared; "
                    f"use --platform {other.platform}"
                )
            fits = own
        if not fits:
            first = table.rows[0][1] if table.rows else []
            header = [str(cell) for cell in first if cell not in (None, "")]
            notes.append(
                f"{table.origin}: skipped, its columns fit no layout "
                f"(first row: {', '.join(header[:8])}{', ...' if len(header) > 8 else ''})"
            )
            continue
        best = fits[0]
        if chosen is None:
            chosen = mappings[best.layout.platform]
        elif best.layout.platform != chosen.platform:
            raise ExportFileError(
                f"{table.origin}: a {mappings[best.layout.platform].title} table in a "
                f"{chosen.title} export; import the files of each platform separately"
            )
        recognised.append(best)
    if chosen is None or all(found.layout.kind == "ignore" for found in recognised):
        candidates = [chosen] if chosen is not None else everything
        expected = "; ".join(
            f"{layout.label}: {', '.join(layout.detect)}"
            for mapping in candidates
            for layout in mapping.layouts
            if layout.kind != "ignore"
        )
        raise ExportFileError(
            f"{path}: not a recognised analytics export (no table has the columns of a known "
            f"layout). Expected one of: {expected}. If the platform renamed its columns, "
            "give a mapping file with --mapping"
        )
    return chosen, recognised, notes
