"""Europe PMC: citations of PubMed articles, and PMID / PMCID metadata of tracked DOIs.

For each tracked PMID, ``/{source}/{id}/citations`` gives ``hitCount`` (a cumulative
citation observation) and the citing articles (``cites`` events, subject the citing
article's Europe PMC page). For each tracked DOI without a PMID, ``/search`` with
``resultType=core`` gives the PMID, PMCID and metadata, and ``citedByCount``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, cast

from pydantic import Field

from reachmeter.http import UpstreamError
from reachmeter.matching.identifiers import Identifier, to_uri
from reachmeter.records import KEY_NAMESPACE, EventRecord
from reachmeter.sources._common import identifier, iso_date, observation
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

__all__ = ["EuropePMCSettings", "EuropePMCSource"]

API = "https://www.ebi.ac.uk/europepmc/webservices/rest"


class EuropePMCSettings(SourceSettings):
    track_pmids: bool = True
    track_dois: bool = True
    page_size: int = Field(default=1000, ge=1, le=1000)


class EuropePMCSource(Source):
    id = "europepmc"
    name = "Europe PMC"
    version = "1"
    description = "Citations of PubMed articles; PMID / PMCID metadata of DOIs."
    settings_model = EuropePMCSettings
    rate_limits: ClassVar[dict[str, float]] = {"www.ebi.ac.uk": 5.0}

    def citations_page(self, ctx: SourceContext, fetched: Fetched, pmid: Identifier) -> Page:
        data = fetched.data
        count = require(data, "hitCount", fetched.url)
        if not isinstance(count, int):
            raise BadPayloadError(fetched.url, "hitCount is not a number")
        page = ctx.page(fetched)
        page.facts.append(observation(self.id, pmid, "citations", count, ctx.collected_at))
        citation_list = data.get("citationList") or {}
        for citing in (
            citation_list.get("citation") or [] if isinstance(citation_list, Mapping) else []
        ):
            if not isinstance(citing, Mapping) or not citing.get("id"):
                continue
            subj_id = f"https://europepmc.org/article/{citing.get('source', 'MED')}/{citing['id']}"
            year = citing.get("pubYear")
            occurred = iso_date(str(year)) if year else None
            if occurred is None:
                continue
            import datetime as dt

            event_key = str(uuid.uuid5(KEY_NAMESPACE, f"{self.id}|{subj_id}|cites|{pmid.value}"))
            page.facts.append(
                EventRecord(
                    event_key=event_key,
                    subj_id=subj_id,
                    relation_type_id="cites",
                    obj_id=to_uri(pmid),
                    obj_scheme=pmid.scheme,
                    obj_value=pmid.value,
                    source_id=self.id,
                    occurred_at=dt.datetime(occurred.year, 1, 1, tzinfo=dt.UTC),
                    collected_at=ctx.collected_at,
                    subj_author=citing.get("authorString") or None,
                    subj={
                        "title": citing.get("title"),
                        "journal": citing.get("journalAbbreviation"),
                    },
                    evidence_url=None,
                    license=None,
                )
            )
        return page

    def collect(self, ctx: SourceContext) -> Iterator[Page | Skipped]:
        settings = cast(EuropePMCSettings, self.settings)
        if settings.track_pmids:
            yield from self._citations(ctx, settings)
        if settings.track_dois:
            yield from self._search(ctx)

    def _citations(
        self, ctx: SourceContext, settings: EuropePMCSettings
    ) -> Iterator[Page | Skipped]:
        pmids = ctx.targets("pmid")
        after = ctx.cursors.get("pmids", "")
        todo = [p for p in pmids if p > after] if after else pmids
        for number, value in enumerate(todo, start=1):
            pmid = identifier(f"pmid:{value}", "pmid")
            if pmid is None:
                continue
            url = f"{API}/MED/{pmid.value}/citations"
            try:
                fetched = ctx.get_json(
                    url, params={"format": "json", "page": 1, "pageSize": settings.page_size}
                )
            except UpstreamError as exc:
                if exc.retriable or exc.status in (None, 401, 403, 429):
                    raise
                yield ctx.skip(url, exc)
                continue
            page = self.citations_page(ctx, fetched, pmid)
            page.cursors = {"pmids": "" if number == len(todo) else value}
            yield page

    def _search(self, ctx: SourceContext) -> Iterator[Page | Skipped]:
        dois = ctx.targets("doi")
        after = ctx.cursors.get("dois", "")
        todo = [d for d in dois if d > after] if after else dois
        for number, doi in enumerate(todo, start=1):
            url = f"{API}/search"
            fetched = ctx.get_json(
                url, params={"query": f'DOI:"{doi}"', "resultType": "core", "format": "json"}
            )
            result_list = require(fetched.data, "resultList", fetched.url)
            results = require(result_list, "result", fetched.url)
            page = ctx.page(fetched, cursors={"dois": "" if number == len(todo) else doi})
            for result in results if isinstance(results, list) else []:
                if isinstance(result, Mapping):
                    self._result(ctx, page, result)
            yield page

    def _result(self, ctx: SourceContext, page: Page, result: Mapping[str, Any]) -> None:
        identifiers = [
            found
            for scheme, value in (
                ("doi", result.get("doi")),
                ("pmid", f"pmid:{result['pmid']}" if result.get("pmid") else None),
                ("pmcid", result.get("pmcid")),
            )
            if (found := identifier(value, scheme)) is not None
        ]
        if not identifiers:
            return
        journal = result.get("journalInfo") or {}
        venue = None
        if isinstance(journal, Mapping) and isinstance(journal.get("journal"), Mapping):
            venue = journal["journal"].get("title")
        page.outputs.append(
            OutputRecord(
                identifiers=identifiers,
                title=result.get("title") or None,
                venue=venue or result.get("journalTitle") or None,
                published_on=iso_date(result.get("firstPublicationDate")),
            )
        )
        cited = result.get("citedByCount")
        if isinstance(cited, int):
            page.facts.append(
                observation(self.id, identifiers[0], "citations", cited, ctx.collected_at)
            )
