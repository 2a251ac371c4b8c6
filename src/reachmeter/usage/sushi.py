"""A COUNTER_SUSHI client: fetch R5 / R5.1 reports from a provider's SUSHI server.

R5.1 paths carry the release (``{base}/r51/reports/tr_j1``); R5 paths do not
(``{base}/reports/tr_j1``). Credentials are ``customer_id``, ``requestor_id`` and/or
``api_key``, sent as query parameters over HTTPS as the standard asks; they are secrets and
appear in no log, error or evidence record (the URLs shown have them ``REDACTED``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from reachmeter.http import HttpClient
from reachmeter.usage.counter import REPORT_IDS, CounterReport, read_report_bytes

__all__ = ["SushiEndpoint", "fetch_report", "report_url"]


class SushiEndpoint(BaseModel):
    """One provider's SUSHI server and this library's credentials there."""

    model_config = ConfigDict(extra="forbid")

    name: str
    base_url: str
    release: str = Field(default="5.1", pattern=r"^5(\.1)?$")
    customer_id: str = ""
    requestor_id: str = ""
    api_key: str = ""
    platform: str = ""
    reports: list[str] = Field(default_factory=lambda: ["TR_J1"])
    #: The first month to harvest (``yyyy-mm``) on a first run.
    start: str = Field(default="", pattern=r"^(\d{4}-\d{2})?$")

    def secrets(self) -> list[str]:
        return [s for s in (self.customer_id, self.requestor_id, self.api_key) if s]


def report_url(endpoint: SushiEndpoint, report_id: str) -> str:
    if report_id.upper() not in REPORT_IDS:
        raise ValueError(f"{report_id!r} is not a COUNTER report id")
    base = endpoint.base_url.rstrip("/")
    if endpoint.release == "5.1" and not base.endswith("/r51"):
        base = f"{base}/r51"
    return f"{base}/reports/{report_id.lower()}"


def _params(endpoint: SushiEndpoint, begin: dt.date, end: dt.date) -> dict[str, Any]:
    params: dict[str, Any] = {"begin_date": begin.isoformat()[:7], "end_date": end.isoformat()[:7]}
    for name in ("customer_id", "requestor_id", "api_key", "platform"):
        value = getattr(endpoint, name)
        if value:
            params[name] = value
    return params


def fetch_report(
    client: HttpClient,
    endpoint: SushiEndpoint,
    report_id: str,
    begin: dt.date,
    end: dt.date,
    *,
    shown_url: str = "",
) -> tuple[CounterReport, bytes]:
    """Fetch and read one report; raises ``SushiException`` for a SUSHI exception."""
    response = client.get(report_url(endpoint, report_id), params=_params(endpoint, begin, end))
    payload = response.content
    return read_report_bytes(payload, shown_url or report_url(endpoint, report_id)), payload
