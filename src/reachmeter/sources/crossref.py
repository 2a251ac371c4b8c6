"""Crossref: metadata of DOIs and ``is-referenced-by-count`` as a citation observation.

Two streams: the tracked outputs' DOIs (``/works/{doi}``, one request each, resuming after
the last DOI done), and optional listings (``/works?query=...``, ``/members/98/works``, ...)
read with deep-paging cursors; a finished listing saves the date, and the next run asks
only for works indexed since then (less the lag window).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, cast
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from reachmeter.http import UpstreamError
from reachmeter.matching.identifiers import Identifier
from reachmeter.sources._common import (
    author,
    date_from_parts,
    first,
    identifier,
    observation,
    output_type,
)
from reachmeter.sources.base import (
    BadPayloadError,
    Fetched,
    OutputRecord,
    Page,
    Skipped,
    Source,
    SourceContext,
    SourceSettings,
    require,
)

__all__ = ["CrossrefList", "CrossrefSettings", "CrossrefSource", "work_records"]

API = "https://api.crossref.org"


class CrossrefList(BaseModel):
    """A listing to page through: an API path and its query parameters."""

    model_config = ConfigDict(extra="forbid")

    path: str = "works"
    params: dict[str, str] = Field(default_factory=dict)
    rows: int | None = Field(default=None, ge=1, le=1000)
    max_pages: int | None = Field(default=None, ge=1)


class CrossrefSettings(SourceSettings):
    track_dois: bool = True
    lists: list[CrossrefList] = Field(default_factory=list)
    #: Sent as ``Crossref-Plus-API-Token`` (Metadata Plus subscribers); a secret.
    plus_token: str = ""


def work_records(
    source_id: str, work: Mapping[str, Any], observed_at: dt.datetime, url: str
) -> tuple[OutputRecord | None, list[Any]]:
    """The catalogue record and the citation observation of one Crossref work."""
    doi = identifier(require(work, "DOI", url), "doi")
    if doi is None:
        return None, []
    authors = []
    for person in work.get("author") or []:
        if not isinstance(person, Mapping):
            continue
        name = " ".join(p for p in (person.get("given"), person.get("family")) if p) or str(
            person.get("name") or ""
        )
        if name or person.get("ORCID"):
            authors.append(author(name, person.get("ORCID")))
    record = OutputRecord(
        identifiers=[doi],
        title=first(work.get("title")),
        type=output_type(work.get("type")),
        venue=first(work.get("container-title")),
        published_on=date_from_parts(work.get("issued")) or date_from_parts(work.get("created")),
        authors=authors,
        extra={"crossref_type": work.get("type"), "publisher": work.get("publisher")},
    )
    facts = []
    count = work.get("is-referenced-by-count")
    if isinstance(count, int) and not isinstance(count, bool):
        facts.append(observation(source_id, doi, "citations", count, observed_at))
    return record, facts


class CrossrefSource(Source):
    id = "crossref"
    name = "Crossref"
    version = "1"
    description = "Metadata and citation counts (is-referenced-by-count) of DOIs."
    settings_model = CrossrefSettings
    rate_limits: ClassVar[dict[str, float]] = {"api.crossref.org": 5.0}
    secret_fields: ClassVar[tuple[str, ...]] = ("plus_token",)

    def _headers(self) -> dict[str, str]:
        token = getattr(self.settings, "plus_token", "")
        return {"Crossref-Plus-API-Token": f"Bearer {token}"} if token else {}

    def _page(self, ctx: SourceContext, fetched: Fetched, works: list[Any]) -> Page:
        page = ctx.page(fetched)
        for work in works:
            if not isinstance(work, Mapping):
                page.problems.append(("work is not an object", str(work)[:500]))
                continue
            record, facts = work_records(self.id, work, ctx.collected_at, fetched.url)
            if record is None:
                page.problems.append((f"DOI {work.get('DOI')!r} is not valid", str(work)[:500]))
                continue
            page.outputs.append(record)
            page.facts.extend(facts)
        return page

    def collect(self, ctx: SourceContext) -> Iterator[Page | Skipped]:
        settings = cast(CrossrefSettings, self.settings)
        for listing in settings.lists:
            yield from self._listing(ctx, listing)
        if settings.track_dois:
            yield from self._dois(ctx)

    def _dois(self, ctx: SourceContext) -> Iterator[Page | Skipped]:
        dois = ctx.targets("doi")
        after = ctx.cursors.get("dois", "")
        todo = [doi for doi in dois if doi > after] if after else dois
        for number, doi in enumerate(todo, start=1):
            url = f"{API}/works/{quote(doi, safe='/:()')}"
            last = number == len(todo)
            # The cursor names the last DOI done; a finished pass starts over next time.
            cursor = {"dois": "" if last else doi}
            try:
                fetched = ctx.get_json(url, headers=self._headers())
            except UpstreamError as exc:
                if exc.retriable or exc.status in (None, 401, 403, 429):
                    raise
                yield ctx.skip(url, exc)
                continue
            message = require(fetched.data, "message", fetched.url)
            if not isinstance(message, Mapping):
                raise BadPayloadError(fetched.url, "message is not a work")
            page = self._page(ctx, fetched, [message])
            page.cursors = cursor
            yield page

    def _listing(self, ctx: SourceContext, listing: CrossrefList) -> Iterator[Page | Skipped]:
        stream = f"list:{listing.path}?" + "&".join(
            f"{k}={v}" for k, v in sorted(listing.params.items())
        )
        params: dict[str, Any] = dict(listing.params)
        since = ctx.since(stream)
        if since is not None:
            extra = f"from-index-date:{since.isoformat()}"
            params["filter"] = f"{params['filter']},{extra}" if params.get("filter") else extra
        if listing.rows:
            params["rows"] = listing.rows
        cursor = "*"
        pages = 0
        while True:
            fetched = ctx.get_json(
                f"{API}/{listing.path.strip('/')}",
                params={**params, "cursor": cursor},
                headers=self._headers(),
            )
            message = require(fetched.data, "message", fetched.url)
            items = require(message, "items", fetched.url)
            if not isinstance(items, list):
                raise BadPayloadError(fetched.url, "message.items is not a list")
            pages += 1
            next_cursor = message.get("next-cursor")
            done = (
                not items
                or not next_cursor
                or (listing.max_pages is not None and pages >= listing.max_pages)
            )
            page = self._page(ctx, fetched, items)
            if done:
                page.cursors = {stream: ctx.collected_at.date().isoformat()}
            yield page
            if done:
                return
            cursor = str(next_cursor)


def doi_identifier(value: str) -> Identifier | None:
    return identifier(value, "doi")
