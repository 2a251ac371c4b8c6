"""What a source is: a small plugin that connects to one platform and yields what it saw.

A source subclasses ``Source`` and implements ``collect``: a generator of ``Page`` (one
response's evidence, the facts and catalogue records read from it, and the cursors it
advances) and ``Skipped`` (a request that failed for one item, logged, not fatal). It
never touches the store: the runner (``reachmeter.sources.runner``) stores each page with
its evidence and cursor in one transaction, keeps the run log, and pauses a source that
keeps failing. HTTP goes through ``SourceContext.get_json`` on the shared client.
"""

from __future__ import annotations

import datetime as dt
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

import orjson
from pydantic import BaseModel, ConfigDict

from reachmeter.http import HttpClient, HttpError, UpstreamError
from reachmeter.http import redact_url as _redact_query
from reachmeter.matching.identifiers import Identifier
from reachmeter.records import CorrectionRecord, EventRecord, ObservationRecord
from reachmeter.store.catalog import AuthorRef

__all__ = [
    "BadPayloadError",
    "Fetched",
    "OutputRecord",
    "Page",
    "Skipped",
    "Source",
    "SourceContext",
    "SourceSettings",
    "redact_url",
]

Fact = EventRecord | ObservationRecord | CorrectionRecord

_HTML = re.compile(rb"^\s*(<!doctype html|<html)", re.IGNORECASE)


def redact_url(url: str, secrets: Sequence[str] = ()) -> str:
    """``url`` with secret query values and any of the given secret texts ``REDACTED``."""
    text = _redact_query(url)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "REDACTED").replace(quote(secret, safe=""), "REDACTED")
    return text


class SourceSettings(BaseModel):
    """A source's settings, stored as JSON in ``sources.settings``; subclass to add fields."""

    model_config = ConfigDict(extra="forbid")

    #: How far back to re-read past the saved cursor, so late-arriving data is not missed.
    lag_days: int = 2


@dataclass(frozen=True, slots=True)
class OutputRecord:
    """Catalogue metadata a source saw for an output (stored through ``upsert_output``)."""

    identifiers: list[Identifier]
    title: str | None = None
    type: str | None = None
    venue: str | None = None
    published_on: dt.date | None = None
    authors: list[AuthorRef] = field(default_factory=list)
    extra: dict[str, Any] | None = None
    #: Create people for authors that carry an ORCID (an import by ORCID / ROR does).
    create_people: bool = False


@dataclass(slots=True)
class Page:
    """What one response showed: stored whole, with its evidence, cursors and all."""

    request_url: str
    payload: bytes
    facts: list[Fact] = field(default_factory=list)
    outputs: list[OutputRecord] = field(default_factory=list)
    cursors: dict[str, str] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Skipped:
    """A request that failed for one item (say a 404 for one DOI): logged, the run goes on."""

    request_url: str
    reason: str
    status: int | None = None


class BadPayloadError(HttpError):
    """A response that is not what the API promises: not JSON, an HTML error page, a
    truncated body, or a changed field."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(reason, url=url)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Fetched:
    """A parsed JSON response and the raw bytes it came from (the evidence)."""

    url: str
    status: int
    data: Any
    payload: bytes


class SourceContext:
    """What the runner hands a source: the HTTP client, settings, cursors and targets."""

    def __init__(
        self,
        *,
        http: HttpClient,
        settings: SourceSettings,
        cursors: Mapping[str, str],
        targets: Callable[[str], list[str]],
        collected_at: dt.datetime,
        secrets: Sequence[str] = (),
        accounts: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.http = http
        self._accounts = accounts
        self.settings = settings
        self.cursors = dict(cursors)
        self._targets = targets
        self.collected_at = collected_at
        self.secrets = [s for s in secrets if s]

    def targets(self, scheme: str) -> list[str]:
        """The normalised values of one identifier scheme of every tracked output."""
        return self._targets(scheme)

    def accounts(self, platform: str) -> list[str]:
        """The handles of every tracked account on ``platform`` (demo accounts left out)."""
        return self._accounts(platform) if self._accounts is not None else []

    def since(self, stream: str) -> dt.date | None:
        """The saved date cursor of ``stream`` less the lag window; None on a first run."""
        value = self.cursors.get(stream)
        if not value:
            return None
        try:
            saved = dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
        return saved - dt.timedelta(days=self.settings.lag_days)

    def redact(self, url: str) -> str:
        return redact_url(url, self.secrets)

    def get_json(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Fetched:
        """GET a JSON document through the shared client (retries, rate limits, size cap).

        Raises ``UpstreamError`` for an HTTP error status (after the client's retries),
        ``BadPayloadError`` for a body that is not JSON (an HTML error page, a truncated
        body), and the client's other ``HttpError`` subclasses.
        """
        response = self.http.get(url, params=dict(params or {}), headers=dict(headers or {}))
        shown = self.redact(str(response.request.url) if response.request else url)
        payload = response.content
        if _HTML.match(payload[:200]):
            raise BadPayloadError(shown, f"HTML page instead of JSON (HTTP {response.status_code})")
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise BadPayloadError(shown, f"body is not valid JSON: {exc}") from None
        return Fetched(url=shown, status=response.status_code, data=data, payload=payload)

    def page(self, fetched: Fetched, **fields: Any) -> Page:
        """A ``Page`` for a fetched response."""
        return Page(request_url=fetched.url, payload=fetched.payload, **fields)

    def skip(self, url: str, error: UpstreamError) -> Skipped:
        return Skipped(self.redact(url), str(error), error.status)


def require(mapping: Any, key: str, url: str) -> Any:
    """``mapping[key]``; a ``BadPayloadError`` naming the field when the API changed."""
    if not isinstance(mapping, Mapping) or key not in mapping:
        raise BadPayloadError(url, f"field {key!r} is missing from the response")
    return mapping[key]


class Source(ABC):
    """A source plugin. Register it under the ``reachmeter.sources`` entry point group.

    Class attributes: ``id`` (a slug: module name, ``source_id`` and CLI name in one),
    ``name``, ``version`` (in every evidence record), ``kind``, ``settings_model``,
    ``rate_limits`` (requests per second per host) and ``secret_fields`` (settings that
    are secrets: never logged, shown or stored in evidence).
    """

    id: ClassVar[str]
    name: ClassVar[str]
    version: ClassVar[str] = "1"
    kind: ClassVar[str] = "scholarly"
    description: ClassVar[str] = ""
    settings_model: ClassVar[type[SourceSettings]] = SourceSettings
    rate_limits: ClassVar[dict[str, float]] = {}
    secret_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: SourceSettings) -> None:
        self.settings = settings

    def secrets(self) -> list[str]:
        """The secret values in this source's settings."""
        found = []
        for name in self.secret_fields:
            value = getattr(self.settings, name, None)
            if isinstance(value, str) and value:
                found.append(value)
        return found

    @abstractmethod
    def collect(self, ctx: SourceContext) -> Iterator[Page | Skipped]:
        """Yield what was seen, page by page; raise to stop the run (it resumes later)."""
