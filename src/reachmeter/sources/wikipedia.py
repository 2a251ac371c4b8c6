"""Wikipedia: pages in chosen languages that cite a tracked DOI or URL.

For each language and each tracked DOI (and URL) the MediaWiki Action API is asked two
ways: ``list=exturlusage`` (pages whose external links start with ``doi.org/<doi>`` or the
tracked URL; each link is checked to name exactly that output) and ``list=search`` with
``insource:"<doi>"`` (the DOI written in the wikitext, as citation templates do). The pages
found are then asked for their latest revision (``prop=revisions``, 50 titles a request).

Each page citing an output is one mention (``references``), whatever the number of
citations on it, keyed by the revision it was first seen in. The pages seen per language
and output are the cursor: a page that no longer cites the output on a later complete run
gets a ``deleted`` correction; if it cites it again, that is a new mention.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, cast
from urllib.parse import quote

import orjson
from pydantic import Field, field_validator

from reachmeter.http import UpstreamError
from reachmeter.matching.extract import identifiers_in_url
from reachmeter.matching.identifiers import Identifier, to_uri
from reachmeter.matching.urls import UrlError, url_key
from reachmeter.records import (
    KEY_NAMESPACE,
    CorrectionRecord,
    EventRecord,
    RecordError,
    parse_time,
)
from reachmeter.sources.base import (
    BadPayloadError,
    Fetched,
    Page,
    Skipped,
    Source,
    SourceContext,
    SourceSettings,
    require,
)

__all__ = ["WikipediaSettings", "WikipediaSource", "revision_pages", "search_titles"]

LICENSE = "https://creativecommons.org/publicdomain/zero/1.0/"
_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,12}){0,3}$")
_BATCH = 50
# Errors that concern the whole wiki (or us), not one query: the run stops.
_FATAL_CODES = frozenset({"ratelimited", "maxlag", "readapidenied", "blocked", "autoblocked"})


class WikipediaSettings(SourceSettings):
    #: Language editions to search (``en`` is en.wikipedia.org).
    languages: list[str] = Field(default_factory=lambda: ["en"])
    #: Ask ``list=exturlusage`` for links to ``doi.org/<doi>`` and to tracked URLs.
    exturlusage: bool = True
    #: Ask ``list=search`` for ``insource:"<doi>"`` (DOIs written in the wikitext).
    search: bool = True
    #: Also look for links to the tracked outputs' URLs.
    track_urls: bool = True
    #: Namespaces to look in (0: articles).
    namespaces: list[int] = Field(default_factory=lambda: [0])

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        cleaned = [v.strip().lower() for v in value]
        for language in cleaned:
            if not _LANGUAGE.match(language):
                raise ValueError(f"{language!r} is not a Wikipedia language code")
        return cleaned


def raw_text(item: Any) -> str:
    """An upstream item as JSON text, for the quarantine."""
    return orjson.dumps(item, default=str).decode()


def _mention(
    *,
    language: str,
    title: str,
    revid: int,
    target: Identifier,
    occurred_at: dt.datetime,
    collected_at: dt.datetime,
    found_by: str,
) -> EventRecord:
    """One page citing ``target``, keyed by the revision it was first seen in."""
    page = _page_url(language, title)
    key = uuid.uuid5(KEY_NAMESPACE, f"wikipedia|{language}|{title}|{revid}|{target}")
    return EventRecord(
        event_key=f"wikipedia:{key}",
        subj_id=page,
        relation_type_id="references",
        obj_id=to_uri(target),
        obj_scheme=target.scheme,
        obj_value=target.value,
        source_id="wikipedia",
        occurred_at=occurred_at,
        collected_at=collected_at,
        subj_author=None,
        subj={
            "pid": page,
            "url": f"https://{language}.wikipedia.org/w/index.php?"
            f"title={quote(title.replace(' ', '_'))}&oldid={revid}",
            "title": title,
            "type": "encyclopedia-entry",
            "language": language,
            "revision": revid,
            "found-by": found_by,
        },
        evidence_url=None,
        license=LICENSE,
    )


class _QueryError(Exception):
    """A MediaWiki error about one query (a malformed link pattern, say): skipped."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(reason)
        self.url = url
        self.reason = reason


def _api(language: str) -> str:
    return f"https://{language}.wikipedia.org/w/api.php"


def _page_url(language: str, title: str) -> str:
    return f"https://{language}.wikipedia.org/wiki/{quote(title.replace(' ', '_'), safe='/:()')}"


def _api_error(fetched: Fetched) -> tuple[str, str] | None:
    error = fetched.data.get("error") if isinstance(fetched.data, Mapping) else None
    if not isinstance(error, Mapping):
        return None
    return str(error.get("code") or "error"), str(error.get("info") or "")


def search_titles(fetched: Fetched) -> tuple[list[str], list[tuple[str, str]]]:
    """The titles of a ``list=search`` response, and the items that have none."""
    query = require(fetched.data, "query", fetched.url)
    titles: list[str] = []
    problems: list[tuple[str, str]] = []
    for item in require(query, "search", fetched.url) or []:
        title = item.get("title") if isinstance(item, Mapping) else None
        if isinstance(title, str) and title.strip():
            titles.append(title)
        else:
            problems.append(("search result without a title", raw_text(item)))
    return titles, problems


def _cites(link: str, target: Identifier) -> bool:
    """Whether an external link names exactly ``target`` (not a longer DOI or URL)."""
    if target.scheme == "url":
        try:
            return url_key(link) == url_key(target.value)
        except UrlError:
            return False
    return any(found.identifier == target for found in identifiers_in_url(link))


def _usage_titles(fetched: Fetched, target: Identifier) -> tuple[list[str], list[tuple[str, str]]]:
    query = require(fetched.data, "query", fetched.url)
    titles: list[str] = []
    problems: list[tuple[str, str]] = []
    for item in require(query, "exturlusage", fetched.url) or []:
        if not isinstance(item, Mapping) or not isinstance(item.get("title"), str):
            problems.append(("exturlusage item without a title", raw_text(item)))
            continue
        link = item.get("url")
        if isinstance(link, str) and _cites(link, target):
            titles.append(item["title"])
    return titles, problems


def revision_pages(
    fetched: Fetched,
) -> tuple[dict[str, tuple[int, dt.datetime]], list[tuple[str, str]]]:
    """Each page's latest revision id and time, by title, from a ``prop=revisions`` answer
    (``formatversion=2``); pages without a revision (missing, deleted) are left out."""
    query = require(fetched.data, "query", fetched.url)
    found: dict[str, tuple[int, dt.datetime]] = {}
    problems: list[tuple[str, str]] = []
    for page in require(query, "pages", fetched.url) or []:
        if not isinstance(page, Mapping) or page.get("missing") or page.get("invalid"):
            continue
        revisions = page.get("revisions")
        revision = revisions[0] if isinstance(revisions, list) and revisions else None
        try:
            if not isinstance(revision, Mapping) or not isinstance(page.get("title"), str):
                raise RecordError("page without a title or a revision")
            revid = revision.get("revid")
            if not isinstance(revid, int) or isinstance(revid, bool):
                raise RecordError(f"revision id {revid!r} is not a number")
            found[page["title"]] = (revid, parse_time(revision.get("timestamp"), "timestamp"))
        except RecordError as exc:
            problems.append((str(exc), raw_text(page)))
    return found, problems


class WikipediaSource(Source):
    id = "wikipedia"
    name = "Wikipedia"
    version = "1"
    kind = "social"
    description = "Wikipedia pages that cite tracked outputs."
    settings_model = WikipediaSettings

    def collect(self, ctx: SourceContext) -> Iterator[Page | Skipped]:
        settings = cast(WikipediaSettings, self.settings)
        targets = [Identifier("doi", doi) for doi in ctx.targets("doi")]
        if settings.track_urls:
            targets += [Identifier("url", url) for url in ctx.targets("url")]
        for language in settings.languages:
            for target in targets:
                yield from self._target(ctx, settings, language, target)

    def _listing(
        self, ctx: SourceContext, language: str, params: dict[str, Any]
    ) -> Iterator[Fetched]:
        """Every response of one listing, following ``continue``."""
        follow: dict[str, Any] = {"continue": ""}
        while True:
            fetched = ctx.get_json(_api(language), params={**params, **follow})
            error = _api_error(fetched)
            if error is not None:
                code, info = error
                message = f"MediaWiki error {code}: {info}".strip()
                if code in _FATAL_CODES:
                    raise BadPayloadError(fetched.url, message)
                raise _QueryError(fetched.url, message)
            yield fetched
            more = fetched.data.get("continue")
            if not isinstance(more, Mapping) or not more:
                return
            follow = {str(k): str(v) for k, v in more.items()}

    def _target(
        self,
        ctx: SourceContext,
        settings: WikipediaSettings,
        language: str,
        target: Identifier,
    ) -> Iterator[Page | Skipped]:
        stream = f"{language}:{target.scheme}:{target.value}"
        try:
            previous = orjson.loads(ctx.cursors.get(stream) or "{}")
        except orjson.JSONDecodeError:
            previous = {}
        if not isinstance(previous, dict):
            previous = {}
        namespaces = "|".join(str(n) for n in settings.namespaces)
        queries: list[tuple[str, dict[str, Any]]] = []
        if settings.exturlusage:
            link = (
                f"doi.org/{target.value}"
                if target.scheme == "doi"
                else re.sub(r"^https?://", "", target.value)
            )
            queries.append(
                (
                    "exturlusage",
                    {
                        "action": "query",
                        "format": "json",
                        "formatversion": "2",
                        "list": "exturlusage",
                        "euquery": link,
                        "euprop": "title|url",
                        "eunamespace": namespaces,
                        "eulimit": "max",
                    },
                )
            )
        if settings.search and target.scheme == "doi":
            queries.append(
                (
                    "search",
                    {
                        "action": "query",
                        "format": "json",
                        "formatversion": "2",
                        "list": "search",
                        "srsearch": f'insource:"{target.value}"',
                        "srnamespace": namespaces,
                        "srlimit": "max",
                        "srprop": "timestamp",
                        "srinfo": "totalhits",
                    },
                )
            )
        pages: list[Page] = []
        found_by: dict[str, str] = {}
        try:
            for how, params in queries:
                for fetched in self._listing(ctx, language, params):
                    if how == "search":
                        titles, problems = search_titles(fetched)
                    else:
                        titles, problems = _usage_titles(fetched, target)
                    pages.append(ctx.page(fetched, problems=problems))
                    for title in titles:
                        found_by.setdefault(title, how)
        except _QueryError as exc:
            yield Skipped(exc.url, exc.reason)
            return
        except UpstreamError as exc:
            if exc.retriable or exc.status in (None, 401, 403, 429):
                raise
            yield ctx.skip(exc.url, exc)
            return
        keys: dict[str, str] = {
            t: k for t, k in previous.items() if isinstance(k, str) and t in found_by
        }
        new = [title for title in found_by if title not in keys]
        for start in range(0, len(new), _BATCH):
            batch = new[start : start + _BATCH]
            fetched = ctx.get_json(
                _api(language),
                params={
                    "action": "query",
                    "format": "json",
                    "formatversion": "2",
                    "prop": "revisions",
                    "rvprop": "ids|timestamp",
                    "titles": "|".join(batch),
                },
            )
            if (error := _api_error(fetched)) is not None:
                raise BadPayloadError(fetched.url, f"MediaWiki error {error[0]}: {error[1]}")
            revisions, problems = revision_pages(fetched)
            page = ctx.page(fetched, problems=problems)
            for title in batch:
                if title not in revisions:
                    continue
                revid, when = revisions[title]
                event = _mention(
                    language=language,
                    title=title,
                    revid=revid,
                    target=target,
                    occurred_at=when,
                    collected_at=ctx.collected_at,
                    found_by=found_by[title],
                )
                page.facts.append(event)
                keys[title] = event.event_key
            pages.append(page)
        gone = {t: k for t, k in previous.items() if isinstance(k, str) and t not in found_by}
        if not pages:
            return
        last = pages[-1]
        for title, key in sorted(gone.items()):
            last.facts.append(
                CorrectionRecord(
                    target_kind="event",
                    target_key=key,
                    action="deleted",
                    reason=f"{language}.wikipedia.org page {title!r} no longer cites {target}",
                    corrected_at=ctx.collected_at,
                )
            )
        last.cursors[stream] = orjson.dumps(dict(sorted(keys.items()))).decode()
        yield from pages
