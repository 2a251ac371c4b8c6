"""Hacker News: stories that link to tracked outputs, found through Algolia's HN Search API.

For every tracked DOI and URL, ``GET https://hn.algolia.com/api/v1/search`` with the DOI
(or the URL without its scheme) as ``query``, searched in the stories' ``url`` only. Search
is fuzzy, so a hit counts only when its URL really names the tracked DOI or URL. Each
story becomes a ``discusses`` event of the output, and its points and comment count are
kept as observations of the story (they are read again on every pass).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, cast

import orjson
from pydantic import Field

from reachmeter.http import UpstreamError
from reachmeter.matching.extract import identifiers_in_url
from reachmeter.matching.identifiers import Identifier
from reachmeter.sources._social import mention_events, post_observation, to_time
from reachmeter.sources.base import (
    BadPayloadError,
    Page,
    Skipped,
    Source,
    SourceContext,
    SourceSettings,
)

__all__ = ["HackerNewsSettings", "HackerNewsSource"]

API = "https://hn.algolia.com/api/v1/search"
ITEM = "https://news.ycombinator.com/item?id="
USER = "https://news.ycombinator.com/user?id="


class HackerNewsSettings(SourceSettings):
    track_dois: bool = True
    track_urls: bool = True
    #: Pages of ``hits_per_page`` hits read per tracked DOI or URL.
    max_pages: int = Field(default=3, ge=1)
    hits_per_page: int = Field(default=100, ge=1, le=1000)


class HackerNewsSource(Source):
    id = "hackernews"
    name = "Hacker News"
    version = "1"
    kind = "social"
    description = "Hacker News stories that link to outputs (Algolia HN Search)."
    settings_model = HackerNewsSettings
    rate_limits: ClassVar[dict[str, float]] = {"hn.algolia.com": 2.0}

    def _targets(self, ctx: SourceContext) -> list[tuple[Identifier, str]]:
        settings = cast(HackerNewsSettings, self.settings)
        targets: list[tuple[Identifier, str]] = []
        if settings.track_dois:
            targets += [(Identifier("doi", doi), doi) for doi in ctx.targets("doi")]
        if settings.track_urls:
            targets += [
                (Identifier("url", url), url.split("://", 1)[-1]) for url in ctx.targets("url")
            ]
        return sorted(targets, key=lambda t: str(t[0]))

    def story_facts(self, ctx: SourceContext, hit: Any, target: Identifier) -> list[Any]:
        """The mention and figures of one search hit; ``[]`` when it does not link to the
        target. Raises ``ValueError`` with the reason for a hit that is not usable."""
        if not isinstance(hit, Mapping) or not hit.get("objectID"):
            raise ValueError("hit has no objectID")
        story_url = hit.get("url")
        if not isinstance(story_url, str) or not story_url:
            return []
        named = identifiers_in_url(story_url)
        found = [f for f in named if f.identifier == target]
        if not found:
            return []
        occurred = to_time(hit.get("created_at")) or to_time(hit.get("created_at_i"))
        if occurred is None:
            raise ValueError(f"item {hit['objectID']}: created_at is not a time")
        subj_id = f"{ITEM}{hit['objectID']}"
        author = hit.get("author")
        facts: list[Any] = mention_events(
            self.id,
            subj_id=subj_id,
            found=found[:1],
            occurred_at=occurred,
            collected_at=ctx.collected_at,
            author=f"{USER}{author}" if isinstance(author, str) and author else None,
            subj={
                "pid": subj_id,
                "type": "story",
                "title": hit.get("title"),
                "url": story_url,
                "author": {"name": author},
            },
        )
        for field, metric in (("points", "points"), ("num_comments", "comments")):
            fact = post_observation(self.id, subj_id, metric, hit.get(field), ctx.collected_at)
            if fact is not None:
                facts.append(fact)
        return facts

    def collect(self, ctx: SourceContext) -> Iterator[Page | Skipped]:
        settings = cast(HackerNewsSettings, self.settings)
        targets = self._targets(ctx)
        after = ctx.cursors.get("targets", "")
        todo = [t for t in targets if str(t[0]) > after] if after else targets
        for number, (target, query) in enumerate(todo, start=1):
            for page_number in range(settings.max_pages):
                params = {
                    "query": query,
                    "restrictSearchableAttributes": "url",
                    "tags": "story",
                    "hitsPerPage": settings.hits_per_page,
                    "page": page_number,
                }
                try:
                    fetched = ctx.get_json(API, params=params)
                except UpstreamError as exc:
                    if exc.retriable or exc.status in (None, 401, 403, 429):
                        raise
                    yield ctx.skip(API, exc)
                    break
                hits = fetched.data.get("hits") if isinstance(fetched.data, Mapping) else None
                if not isinstance(hits, list):
                    raise BadPayloadError(fetched.url, "search answer has no hits list")
                page = ctx.page(fetched)
                for index, hit in enumerate(hits):
                    try:
                        page.facts.extend(self.story_facts(ctx, hit, target))
                    except ValueError as exc:
                        raw = orjson.dumps(hit, default=str).decode()[:2000]
                        page.problems.append((f"Hacker News hit #{index + 1}: {exc}", raw))
                pages = fetched.data.get("nbPages")
                done = (
                    not hits
                    or not isinstance(pages, int)
                    or page_number + 1 >= min(pages, settings.max_pages)
                )
                if done:
                    # The cursor names the last target done; a finished pass starts over.
                    page.cursors["targets"] = "" if number == len(todo) else str(target)
                yield page
                if done:
                    break
