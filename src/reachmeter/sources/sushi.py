"""SUSHI: COUNTER reports harvested from providers' SUSHI servers on a schedule.

Each endpoint and report is a stream whose cursor is the last whole month harvested; a run
asks for the months since (less ``lag_months``, as providers revise recent months) up to
the last whole month. A report that breaks COUNTER's rules or a SUSHI exception stops that
report and stores nothing of it; credentials never leave the request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import cast

from pydantic import Field

from reachmeter.sources.base import (
    BadPayloadError,
    Page,
    Skipped,
    Source,
    SourceContext,
    SourceSettings,
)
from reachmeter.usage.counter import CounterError, check_report, read_report_bytes
from reachmeter.usage.importer import report_observations
from reachmeter.usage.sushi import SushiEndpoint, _params, report_url

__all__ = ["SushiSettings", "SushiSource"]


class SushiSettings(SourceSettings):
    endpoints: list[SushiEndpoint] = Field(default_factory=list)
    lag_months: int = Field(default=1, ge=0, le=24)


def _month_start(value: str) -> dt.date:
    return dt.date(int(value[:4]), int(value[5:7]), 1)


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


class SushiSource(Source):
    id = "sushi"
    name = "COUNTER SUSHI"
    version = "1"
    kind = "usage"
    description = "COUNTER R5 / R5.1 usage reports from SUSHI servers."
    settings_model = SushiSettings

    def secrets(self) -> list[str]:
        settings = cast(SushiSettings, self.settings)
        return [secret for endpoint in settings.endpoints for secret in endpoint.secrets()]

    def collect(self, ctx: SourceContext) -> Iterator[Page | Skipped]:
        settings = cast(SushiSettings, self.settings)
        this_month = ctx.collected_at.date().replace(day=1)
        last_whole = _add_months(this_month, -1)
        for endpoint in settings.endpoints:
            for report_id in endpoint.reports:
                stream = f"{endpoint.name}:{report_id.upper()}"
                saved = ctx.cursors.get(stream)
                if saved:
                    begin = _add_months(_month_start(saved), 1 - settings.lag_months)
                elif endpoint.start:
                    begin = _month_start(endpoint.start)
                else:
                    begin = _add_months(last_whole, -11)
                if begin > last_whole:
                    continue
                end_day = _add_months(last_whole, 1) - dt.timedelta(days=1)
                url = report_url(endpoint, report_id)
                response = ctx.http.get(url, params=_params(endpoint, begin, end_day))
                shown = ctx.redact(str(response.request.url) if response.request else url)
                if response.content.lstrip()[:1] == b"<":
                    raise BadPayloadError(shown, "HTML page instead of JSON")
                try:
                    report = read_report_bytes(response.content, shown)
                except CounterError as exc:
                    raise BadPayloadError(shown, str(exc)) from None
                problems = check_report(report)
                if problems:
                    raise BadPayloadError(
                        shown, f"report breaks COUNTER rules: {'; '.join(problems[:20])}"
                    )
                page = Page(request_url=shown, payload=response.content)
                page.facts.extend(
                    record for _, record in report_observations(report, source_id=self.id)
                )
                page.cursors = {stream: last_whole.isoformat()[:7]}
                yield page
