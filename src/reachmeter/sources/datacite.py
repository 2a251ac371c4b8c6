"""DataCite: events (references, citations) and usage of dataset DOIs, and usage reports.

Events come from the Event Data API (``/events?doi=...``) in its JSON:API form and are
mapped by the shared record mapping; usage events become monthly observations, where views
are unique investigations and downloads unique requests. Make Data Count usage reports
(``/reports/{id}``) are read by the same code as ``reachmeter ingest`` reads report files.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, cast

from pydantic import Field

from reachmeter.http import UpstreamError
from reachmeter.ingest.readers import Problem, _usage_report_records
from reachmeter.records import ObservationRecord, RecordError, map_record
from reachmeter.sources.base import (
    BadPayloadError,
    Fetched,
    Page,
    Skipped,
    Source,
    SourceContext,
    SourceSettings,
)

__all__ = ["DataCiteSettings", "DataCiteSource"]

API = "https://api.datacite.org"
# COUNTER for research data: views are unique investigations, downloads unique requests.
USAGE_NAMES = {"unique-dataset-investigations": "views", "unique-dataset-requests": "downloads"}


class DataCiteSettings(SourceSettings):
    track_dois: bool = True
    #: Make Data Count usage report ids to read (``/reports/{id}``).
    report_ids: list[str] = Field(default_factory=list)
    page_size: int = Field(default=1000, ge=1, le=1000)


def _event_attributes(item: Any) -> Any:
    """An event in JSON:API form (``{"id", "attributes": {...}}``) or plain form."""
    if isinstance(item, Mapping) and isinstance(item.get("attributes"), Mapping):
        return {"id": item.get("id"), **item["attributes"]}
    return item


def _rename_usage(record: Any) -> Any:
    if isinstance(record, ObservationRecord) and record.metric in USAGE_NAMES:
        return record._replace(metric=USAGE_NAMES[record.metric])
    return record


class DataCiteSource(Source):
    id = "datacite"
    name = "DataCite"
    version = "1"
    description = "Events (citations, references) and usage (views, downloads) of datasets."
    settings_model = DataCiteSettings
    rate_limits: ClassVar[dict[str, float]] = {"api.datacite.org": 5.0}

    def records_page(self, ctx: SourceContext, fetched: Fetched, events: list[Any]) -> Page:
        page = ctx.page(fetched)
        for raw in events:
            event = _event_attributes(raw)
            if not isinstance(event, Mapping):
                page.problems.append(("event is not an object", str(raw)[:500]))
                continue
            try:
                mapped = map_record(event, collected_at=ctx.collected_at, default_source=self.id)
            except RecordError as exc:
                page.problems.append((str(exc), str(raw)[:2000]))
                continue
            page.facts.extend(_rename_usage(record) for record in mapped)
        return page

    def collect(self, ctx: SourceContext) -> Iterator[Page | Skipped]:
        settings = cast(DataCiteSettings, self.settings)
        for report_id in settings.report_ids:
            yield from self._report(ctx, report_id)
        if settings.track_dois:
            yield from self._events(ctx, settings)

    def _report(self, ctx: SourceContext, report_id: str) -> Iterator[Page | Skipped]:
        url = f"{API}/reports/{report_id}"
        fetched = ctx.get_json(url)
        report = (
            fetched.data.get("report", fetched.data) if isinstance(fetched.data, Mapping) else None
        )
        if not isinstance(report, Mapping) or "report-header" not in report:
            raise BadPayloadError(fetched.url, "not a usage report (no report-header)")
        page = ctx.page(
            fetched, cursors={f"report:{report_id}": ctx.collected_at.date().isoformat()}
        )
        for line, item in _usage_report_records(report, 1):
            if isinstance(item, Problem):
                page.problems.append((item.reason, item.raw))
                continue
            try:
                mapped = map_record(item, collected_at=ctx.collected_at, default_source=self.id)
            except RecordError as exc:
                page.problems.append((f"dataset {line}: {exc}", str(item)[:2000]))
                continue
            page.facts.extend(_rename_usage(record) for record in mapped)
        yield page

    def _events(self, ctx: SourceContext, settings: DataCiteSettings) -> Iterator[Page | Skipped]:
        dois = ctx.targets("doi")
        after = ctx.cursors.get("dois", "")
        todo = [doi for doi in dois if doi > after] if after else dois
        for number, doi in enumerate(todo, start=1):
            url: str | None = f"{API}/events"
            params: dict[str, Any] | None = {"doi": doi, "page[size]": settings.page_size}
            while url:
                try:
                    fetched = ctx.get_json(url, params=params)
                except UpstreamError as exc:
                    if exc.retriable or exc.status in (None, 401, 403, 429):
                        raise
                    yield ctx.skip(url, exc)
                    break
                data = fetched.data
                events = data.get("data") if isinstance(data, Mapping) else data
                if not isinstance(events, list):
                    raise BadPayloadError(fetched.url, "events response has no data list")
                links = data.get("links") if isinstance(data, Mapping) else None
                url = links.get("next") if isinstance(links, Mapping) else None
                params = None
                page = self.records_page(ctx, fetched, events)
                if not url:
                    page.cursors = {"dois": "" if number == len(todo) else doi}
                yield page
