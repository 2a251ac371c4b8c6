"""Stack Exchange: questions and answers that link to tracked outputs, on chosen sites.

For each site and each tracked DOI (and URL) the Stack Exchange API 2.3 is searched with
``/search/excerpts?q="<doi>"`` (questions and answers alike, newest first, 100 a page). An
item whose body does not name the output after all (full-text search is fuzzy) is left
out. Each remaining post is a mention (``discusses``) with its score in ``subj``, and the
score is also kept as a cumulative observation of the post.

Without a key the API allows 300 requests a day per address; with a key (``key``, free
from stackapps.com) 10,000. A used-up quota or a refused key or site (HTTP 400/403) stops
the run with a message saying what to set; a ``backoff`` the API asks for is honoured, and
the targets already done are the cursor, so a large catalogue is covered over several runs.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, cast

import orjson
from pydantic import Field, field_validator

from reachmeter.http import UpstreamError
from reachmeter.matching.extract import LITERAL, URL, Found, extract_html
from reachmeter.matching.identifiers import Identifier
from reachmeter.matching.urls import UrlError, url_key
from reachmeter.records import RecordError
from reachmeter.sources._social import ConfigurationError, mention_events, post_observation
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

__all__ = ["StackExchangeSettings", "StackExchangeSource", "phrase_of", "site_domain"]

API = "https://api.stackexchange.com/2.3"
HOST = "api.stackexchange.com"
LICENSE = "https://creativecommons.org/licenses/by-sa/4.0/"
_DOMAINS = {
    "stackoverflow": "stackoverflow.com",
    "serverfault": "serverfault.com",
    "superuser": "superuser.com",
    "askubuntu": "askubuntu.com",
    "mathoverflow.net": "mathoverflow.net",
    "stackapps": "stackapps.com",
}
_HELP = (
    "without a key Stack Exchange allows 300 requests a day; set a key with "
    "`reachmeter sources set stackexchange key='\"KEY\"'` (free from stackapps.com) and check "
    "the site names in `sites`"
)


def site_domain(site: str) -> str:
    """The web domain of an API site parameter (``chemistry`` -> chemistry.stackexchange.com)."""
    return _DOMAINS.get(site, site if "." in site else f"{site}.stackexchange.com")


class StackExchangeSettings(SourceSettings):
    #: API site parameters (``stackoverflow``, ``chemistry``, ``biology``, ``stats``, ...).
    sites: list[str] = Field(default_factory=lambda: ["stackoverflow"])
    #: A Stack Apps key: a higher daily quota (a secret: never logged).
    key: str = ""
    #: Also search for the tracked outputs' URLs.
    track_urls: bool = True
    #: At most this many pages of 100 per site and output.
    max_pages: int = Field(default=3, ge=1, le=25)

    @field_validator("sites")
    @classmethod
    def _sites(cls, value: list[str]) -> list[str]:
        cleaned = [v.strip().lower() for v in value if v.strip()]
        for site in cleaned:
            if not all(c.isalnum() or c in ".-" for c in site):
                raise ValueError(f"{site!r} is not a Stack Exchange site name")
        return cleaned


def phrase_of(target: Identifier) -> str:
    """What is searched for: the DOI, or the URL without its scheme."""
    return target.value if target.scheme == "doi" else target.value.split("://", 1)[-1]


def _names(body: str, target: Identifier) -> bool:
    """Whether an item's HTML body names ``target`` (a DOI or a URL)."""
    for found in extract_html(body):
        if found.identifier == target:
            return True
        if target.scheme == "url" and found.identifier.scheme == "url":
            try:
                if url_key(found.identifier.value) == url_key(target.value):
                    return True
            except UrlError:
                continue
    return False


def _time(value: Any, field: str) -> dt.datetime:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"{field} {value!r} is not a Unix time")
    return dt.datetime.fromtimestamp(value, dt.UTC)


class StackExchangeSource(Source):
    id = "stackexchange"
    name = "Stack Exchange"
    version = "1"
    kind = "social"
    description = "Stack Exchange questions and answers that link to tracked outputs."
    settings_model = StackExchangeSettings
    rate_limits: ClassVar[dict[str, float]] = {HOST: 1.0}
    secret_fields = ("key",)

    def collect(self, ctx: SourceContext) -> Iterator[Page | Skipped]:
        settings = cast(StackExchangeSettings, self.settings)
        targets = [Identifier("doi", doi) for doi in ctx.targets("doi")]
        if settings.track_urls:
            targets += [Identifier("url", url) for url in ctx.targets("url")]
        for site in settings.sites:
            stream = f"site:{site}"
            after = ctx.cursors.get(stream, "")
            todo = sorted((t for t in targets if str(t) > after), key=str)
            for number, target in enumerate(todo, start=1):
                pages, stop = self._search(ctx, settings, site, target)
                pages[-1].cursors[stream] = "" if number == len(todo) else str(target)
                yield from pages
                if stop:
                    yield stop
                    return

    def _search(
        self,
        ctx: SourceContext,
        settings: StackExchangeSettings,
        site: str,
        target: Identifier,
    ) -> tuple[list[Page], Skipped | None]:
        """The pages of one search, and a ``Skipped`` when the day's quota ran out."""
        params = {
            "site": site,
            "q": f'"{phrase_of(target)}"',
            "order": "desc",
            "sort": "creation",
            "pagesize": "100",
        }
        if settings.key:
            params["key"] = settings.key
        pages: list[Page] = []
        for number in range(1, settings.max_pages + 1):
            try:
                fetched = ctx.get_json(
                    f"{API}/search/excerpts", params={**params, "page": str(number)}
                )
            except UpstreamError as exc:
                if exc.status in (400, 401, 403):
                    raise ConfigurationError(
                        f"Stack Exchange refused the request (HTTP {exc.status}): the day's "
                        f"quota is used up, or the key or a site name is wrong; {_HELP}",
                        url=exc.url,
                    ) from None
                raise
            pages.append(self._page(ctx, fetched, site, target))
            data = fetched.data
            backoff = data.get("backoff")
            if isinstance(backoff, int) and backoff > 0:
                ctx.http.set_rate_limit(HOST, 1.0 / backoff)
            if data.get("quota_remaining") == 0:
                return pages, Skipped(
                    fetched.url, f"the day's quota is used up; the rest waits: {_HELP}"
                )
            if not data.get("has_more"):
                break
        return pages, None

    def _page(self, ctx: SourceContext, fetched: Fetched, site: str, target: Identifier) -> Page:
        if not isinstance(fetched.data, Mapping):
            raise BadPayloadError(fetched.url, "search answer is not a JSON object")
        page = ctx.page(fetched)
        domain = site_domain(site)
        for item in require(fetched.data, "items", fetched.url) or []:
            try:
                self._item(ctx, page, item, site, domain, target)
            except RecordError as exc:
                page.problems.append((str(exc), orjson.dumps(item, default=str).decode()))
        return page

    def _item(
        self,
        ctx: SourceContext,
        page: Page,
        item: Any,
        site: str,
        domain: str,
        target: Identifier,
    ) -> None:
        if not isinstance(item, Mapping):
            raise RecordError("search item is not an object")
        kind = item.get("item_type")
        number = item.get("answer_id") if kind == "answer" else item.get("question_id")
        if kind not in ("question", "answer") or not isinstance(number, int):
            raise RecordError(f"search item of type {kind!r} without its id")
        body = item.get("body")
        if isinstance(body, str) and body and not _names(body, target):
            return  # the search matched words, not the link
        created = _time(item.get("creation_date"), "creation_date")
        url = f"https://{domain}/{'a' if kind == 'answer' else 'q'}/{number}"
        score = item.get("score")
        title = item.get("title")
        subj: dict[str, Any] = {
            "pid": url,
            "type": kind,
            "title": html.unescape(title) if isinstance(title, str) else None,
            "issued": created.isoformat(),
            "site": site,
            "score": score if isinstance(score, int) and not isinstance(score, bool) else None,
            "question_id": item.get("question_id"),
            "tags": [t for t in item.get("tags") or [] if isinstance(t, str)],
        }
        for event in mention_events(
            self.id,
            subj_id=url,
            found=[Found(target, LITERAL if target.scheme == "doi" else URL, phrase_of(target))],
            occurred_at=created,
            collected_at=ctx.collected_at,
            author=None,
            subj=subj,
        ):
            page.facts.append(event._replace(license=LICENSE))
        fact = post_observation(self.id, url, "score", subj["score"], ctx.collected_at)
        if fact is not None:
            page.facts.append(fact)
