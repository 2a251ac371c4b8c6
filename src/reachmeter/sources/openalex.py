"""OpenAlex: a person's (ORCID) or an institution's (ROR) outputs, and citations.

Works listed by ``author.orcid`` or ``institutions.ror`` are imported with their metadata,
identifiers (DOI, PMID, PMCID) and authors; authors with an ORCID become people. Tracked
DOIs are asked about 50 at a time (``filter=doi:A|B|...``). ``cited_by_count`` is stored
as a cumulative citation observation, ``counts_by_year`` as one observation per year.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, cast

from pydantic import Field

from reachmeter.matching.identifiers import Identifier
from reachmeter.sources._common import (
    author,
    chunks,
    identifier,
    iso_date,
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

__all__ = ["OpenAlexSettings", "OpenAlexSource", "work_records"]

API = "https://api.openalex.org"
BATCH = 50


class OpenAlexSettings(SourceSettings):
    orcids: list[str] = Field(default_factory=list)
    rors: list[str] = Field(default_factory=list)
    track_dois: bool = True
    per_page: int = Field(default=100, ge=1, le=200)
    #: Premium key, sent as ``api_key``; a secret.
    api_key: str = ""


def _list(value: Any) -> list[Any]:
    """A list; OpenAlex data converted from R keeps one-element lists as scalars."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def work_records(
    source_id: str, work: Mapping[str, Any], observed_at: dt.datetime, *, create_people: bool
) -> tuple[OutputRecord | None, list[Any]]:
    raw_ids = work.get("ids")
    ids: Mapping[str, Any] = raw_ids if isinstance(raw_ids, Mapping) else {}
    identifiers: list[Identifier] = []
    for scheme, value in (
        ("doi", work.get("doi") or ids.get("doi")),
        ("pmid", ids.get("pmid")),
        ("pmcid", ids.get("pmcid")),
    ):
        found = identifier(value, scheme)
        if found is not None:
            identifiers.append(found)
    if not identifiers:
        openalex_url = identifier(work.get("id"), "url")
        if openalex_url is None:
            return None, []
        identifiers.append(openalex_url)
    authors = []
    for authorship in _list(work.get("authorships")):
        person = authorship.get("author") if isinstance(authorship, Mapping) else None
        if isinstance(person, Mapping) and (person.get("display_name") or person.get("orcid")):
            authors.append(author(str(person.get("display_name") or ""), person.get("orcid")))
    location = work.get("primary_location")
    source = location.get("source") if isinstance(location, Mapping) else None
    record = OutputRecord(
        identifiers=identifiers,
        title=work.get("title") or work.get("display_name") or None,
        type=output_type(work.get("type")),
        venue=source.get("display_name") if isinstance(source, Mapping) else None,
        published_on=iso_date(work.get("publication_date")),
        authors=authors,
        extra={"openalex_id": work.get("id")},
        create_people=create_people,
    )
    obj = identifiers[0]
    facts: list[Any] = []
    cited = work.get("cited_by_count")
    if isinstance(cited, int) and not isinstance(cited, bool):
        facts.append(observation(source_id, obj, "citations", cited, observed_at))
    for entry in _list(work.get("counts_by_year")):
        if not isinstance(entry, Mapping):
            continue
        year, count = entry.get("year"), entry.get("cited_by_count")
        if isinstance(year, int) and isinstance(count, int):
            period = (dt.date(year, 1, 1), dt.date(year, 12, 31))
            facts.append(
                observation(
                    source_id, obj, "citations", count, observed_at, cumulative=False, period=period
                )
            )
    return record, facts


class OpenAlexSource(Source):
    id = "openalex"
    name = "OpenAlex"
    version = "1"
    description = "Outputs of people (ORCID) and institutions (ROR); citations per year."
    settings_model = OpenAlexSettings
    rate_limits: ClassVar[dict[str, float]] = {"api.openalex.org": 10.0}
    secret_fields: ClassVar[tuple[str, ...]] = ("api_key",)

    def _params(self) -> dict[str, Any]:
        key = getattr(self.settings, "api_key", "")
        return {"api_key": key} if key else {}

    def works_page(
        self, ctx: SourceContext, fetched: Fetched, works: list[Any], *, create_people: bool
    ) -> Page:
        page = ctx.page(fetched)
        for work in works:
            if not isinstance(work, Mapping):
                page.problems.append(("work is not an object", str(work)[:500]))
                continue
            record, facts = work_records(
                self.id, work, ctx.collected_at, create_people=create_people
            )
            if record is None:
                page.problems.append(("work has no usable identifier", str(work.get("id"))))
                continue
            page.outputs.append(record)
            page.facts.extend(facts)
        return page

    def collect(self, ctx: SourceContext) -> Iterator[Page | Skipped]:
        settings = cast(OpenAlexSettings, self.settings)
        for orcid in settings.orcids:
            found = identifier(orcid, "orcid")
            if found is None:
                raise ValueError(f"setting orcids: {orcid!r} is not an ORCID")
            yield from self._listing(ctx, f"author.orcid:{found.value}", f"orcid:{found.value}")
        for ror in settings.rors:
            ror_id = ror.rstrip("/").rsplit("/", 1)[-1]
            yield from self._listing(ctx, f"institutions.ror:{ror_id}", f"ror:{ror_id}")
        if settings.track_dois:
            yield from self._dois(ctx)

    def _listing(self, ctx: SourceContext, filter_: str, stream: str) -> Iterator[Page | Skipped]:
        settings = cast(OpenAlexSettings, self.settings)
        since = ctx.since(stream)
        if since is not None:
            filter_ = f"{filter_},from_updated_date:{since.isoformat()}"
        cursor = "*"
        while True:
            fetched = ctx.get_json(
                f"{API}/works",
                params={
                    "filter": filter_,
                    "per-page": settings.per_page,
                    "cursor": cursor,
                    **self._params(),
                },
            )
            results = require(fetched.data, "results", fetched.url)
            if not isinstance(results, list):
                raise BadPayloadError(fetched.url, "results is not a list")
            meta = fetched.data.get("meta") or {}
            next_cursor = meta.get("next_cursor") if isinstance(meta, Mapping) else None
            page = self.works_page(ctx, fetched, results, create_people=True)
            done = not results or not next_cursor
            if done:
                page.cursors = {stream: ctx.collected_at.date().isoformat()}
            yield page
            if done:
                return
            cursor = str(next_cursor)

    def _dois(self, ctx: SourceContext) -> Iterator[Page | Skipped]:
        dois = ctx.targets("doi")
        after = ctx.cursors.get("dois", "")
        todo = [doi for doi in dois if doi > after] if after else dois
        batches = list(chunks(todo, BATCH))
        for number, batch in enumerate(batches, start=1):
            fetched = ctx.get_json(
                f"{API}/works",
                params={
                    "filter": "doi:" + "|".join(batch),
                    "per-page": BATCH,
                    **self._params(),
                },
            )
            results = require(fetched.data, "results", fetched.url)
            if not isinstance(results, list):
                raise BadPayloadError(fetched.url, "results is not a list")
            page = self.works_page(ctx, fetched, results, create_people=False)
            page.cursors = {"dois": "" if number == len(batches) else batch[-1]}
            yield page
