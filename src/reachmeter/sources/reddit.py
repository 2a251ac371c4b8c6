"""Reddit (optional, off by default): submissions that link to tracked outputs.

Reddit's Data API needs OAuth app credentials, which Reddit now grants only on request, so
the source does nothing until ``enabled`` is set together with ``client_id`` and
``client_secret``. It logs in with the application-only grant (``client_credentials``),
then asks ``GET https://oauth.reddit.com/api/info?url=...`` (an exact-URL match) for every
tracked DOI (as ``https://doi.org/...`` and ``http://dx.doi.org/...``) and tracked URL
(with and without its trailing slash). Each submission is a ``discusses`` event of the
output, with its score and comment count as observations of the submission.

A submission that was deleted or removed comes back with ``[deleted]`` / ``[removed]``:
its mention gets a ``deleted`` correction (it stops counting) and its text is not kept,
as Reddit's terms ask.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, cast

import orjson
from pydantic import Field

from reachmeter import __version__
from reachmeter.http import UpstreamError
from reachmeter.matching.extract import Found
from reachmeter.matching.identifiers import Identifier
from reachmeter.records import EventRecord
from reachmeter.sources._social import (
    ConfigurationError,
    deleted,
    mention_events,
    post_json,
    post_observation,
    to_time,
)
from reachmeter.sources.base import (
    BadPayloadError,
    Page,
    Skipped,
    Source,
    SourceContext,
    SourceSettings,
)

__all__ = ["RedditSettings", "RedditSource"]

LOGIN_URL = "https://www.reddit.com/api/v1/access_token"
API = "https://oauth.reddit.com"
WEB = "https://www.reddit.com"
_GONE = frozenset({"[deleted]", "[removed]"})
_MAX_REMEMBERED = 10000


class RedditSettings(SourceSettings):
    #: Off until credentials are set: Reddit grants API access only on request.
    enabled: bool = False
    client_id: str = ""
    #: The OAuth app's secret; never logged or stored in evidence.
    client_secret: str = ""
    #: The Reddit user who registered the app (Reddit asks for it in the User-Agent).
    username: str = ""
    track_dois: bool = True
    track_urls: bool = True
    #: Pages of 100 submissions read per asked URL.
    max_pages: int = Field(default=3, ge=1)


def _is_gone(data: Mapping[str, Any]) -> bool:
    return (
        data.get("author") in _GONE
        or data.get("selftext") in _GONE
        or bool(data.get("removed_by_category"))
    )


class RedditSource(Source):
    id = "reddit"
    name = "Reddit"
    version = "1"
    kind = "social"
    description = "Reddit submissions that link to outputs (optional; needs API credentials)."
    settings_model = RedditSettings
    # Reddit allows 100 requests a minute per OAuth client.
    rate_limits: ClassVar[dict[str, float]] = {"oauth.reddit.com": 1.5, "www.reddit.com": 0.5}
    secret_fields: ClassVar[tuple[str, ...]] = ("client_secret",)

    @property
    def _settings(self) -> RedditSettings:
        return cast(RedditSettings, self.settings)

    def _user_agent(self) -> str:
        by = f" (by /u/{self._settings.username})" if self._settings.username else ""
        return f"python:reachmeter:{__version__}{by}"

    def _login(self, ctx: SourceContext) -> str:
        settings = self._settings
        if not (settings.client_id and settings.client_secret):
            raise ConfigurationError(
                "reddit is enabled but has no credentials: set client_id and client_secret "
                "(a Reddit OAuth app) in the reddit settings, or enabled=false",
                url=LOGIN_URL,
            )
        try:
            fetched = post_json(
                ctx,
                LOGIN_URL,
                data={"grant_type": "client_credentials"},
                headers={"User-Agent": self._user_agent()},
                auth=(settings.client_id, settings.client_secret),
            )
        except UpstreamError as exc:
            if exc.status in (400, 401, 403):
                raise ConfigurationError(
                    f"Reddit refused the credentials (HTTP {exc.status}): check client_id and "
                    "client_secret in the reddit settings",
                    url=LOGIN_URL,
                ) from None
            raise
        token = fetched.data.get("access_token") if isinstance(fetched.data, Mapping) else None
        if not isinstance(token, str) or not token:
            raise BadPayloadError(fetched.url, "the token answer has no access_token")
        ctx.secrets.append(token)
        return token

    def _queries(self, ctx: SourceContext) -> list[tuple[Identifier, list[str]]]:
        settings = self._settings
        queries: list[tuple[Identifier, list[str]]] = []
        if settings.track_dois:
            queries += [
                (Identifier("doi", doi), [f"https://doi.org/{doi}", f"http://dx.doi.org/{doi}"])
                for doi in ctx.targets("doi")
            ]
        if settings.track_urls:
            for url in ctx.targets("url"):
                other = url.removesuffix("/") if url.endswith("/") else f"{url}/"
                queries.append((Identifier("url", url), [url, other]))
        return sorted(queries, key=lambda q: str(q[0]))

    def submission_facts(
        self, ctx: SourceContext, child: Any, target: Identifier, asked: str
    ) -> list[Any]:
        """The mention (and figures, or deletion) of one listing child; raises
        ``ValueError`` with the reason when it is not a usable submission."""
        if not isinstance(child, Mapping) or child.get("kind") != "t3":
            raise ValueError(f"listing child is not a submission (kind {child.get('kind')!r})")
        data = child.get("data")
        if not isinstance(data, Mapping):
            raise ValueError("submission has no data")
        permalink = data.get("permalink")
        if not isinstance(permalink, str) or not permalink.startswith("/"):
            raise ValueError(f"submission {data.get('name')!r} has no permalink")
        occurred = to_time(data.get("created_utc"))
        if occurred is None:
            raise ValueError(f"submission {data.get('name')!r}: created_utc is not a time")
        subj_id = f"{WEB}{permalink}"
        gone = _is_gone(data)
        author = data.get("author")
        subj: dict[str, Any] = {"pid": subj_id, "type": "submission"}
        if gone:
            subj["deleted"] = True
        else:
            subj.update(
                {
                    "title": data.get("title"),
                    "subreddit": data.get("subreddit"),
                    "url": data.get("url"),
                    "author": {"name": author},
                    "edited": data.get("edited") not in (False, None),
                }
            )
        facts: list[Any] = mention_events(
            self.id,
            subj_id=subj_id,
            found=[Found(target, "api", str(data.get("url") or asked))],
            occurred_at=occurred,
            collected_at=ctx.collected_at,
            author=f"{WEB}/user/{author}" if isinstance(author, str) and not gone else None,
            subj=subj,
        )
        if not gone:
            for field, metric in (("score", "score"), ("num_comments", "comments")):
                fact = post_observation(self.id, subj_id, metric, data.get(field), ctx.collected_at)
                if fact is not None:
                    facts.append(fact)
        return facts

    def collect(self, ctx: SourceContext) -> Iterator[Page | Skipped]:
        settings = self._settings
        if not settings.enabled:
            return
        queries = self._queries(ctx)
        if not queries:
            return
        token = self._login(ctx)
        headers = {"Authorization": f"bearer {token}", "User-Agent": self._user_agent()}
        try:
            remembered = set(orjson.loads(ctx.cursors.get("deleted") or "[]"))
        except (orjson.JSONDecodeError, TypeError):
            remembered = set()
        after_target = ctx.cursors.get("targets", "")
        todo = [q for q in queries if str(q[0]) > after_target] if after_target else queries
        for number, (target, asked_urls) in enumerate(todo, start=1):
            for asked_number, asked in enumerate(asked_urls, start=1):
                after: str | None = None
                for page_number in range(1, settings.max_pages + 1):
                    params: dict[str, Any] = {"url": asked, "raw_json": 1, "limit": 100}
                    if after:
                        params["after"] = after
                    fetched = ctx.get_json(f"{API}/api/info", params=params, headers=headers)
                    listing = (
                        fetched.data.get("data") if isinstance(fetched.data, Mapping) else None
                    )
                    children = listing.get("children") if isinstance(listing, Mapping) else None
                    if not isinstance(children, list):
                        raise BadPayloadError(fetched.url, "the answer is not a Listing")
                    page = ctx.page(fetched)
                    for index, child in enumerate(children):
                        try:
                            facts = self.submission_facts(ctx, child, target, asked)
                        except ValueError as exc:
                            raw = orjson.dumps(child, default=str).decode()[:2000]
                            page.problems.append((f"Reddit listing item #{index + 1}: {exc}", raw))
                            continue
                        page.facts.extend(facts)
                        data = child["data"]
                        if _is_gone(data):
                            keys = [
                                f.event_key
                                for f in facts
                                if isinstance(f, EventRecord) and f.event_key not in remembered
                            ]
                            reason = f"submission {data.get('name')} was deleted or removed"
                            page.facts.extend(deleted(keys, reason, _day(ctx.collected_at)))
                            remembered.update(keys)
                            page.cursors["deleted"] = orjson.dumps(
                                sorted(remembered)[-_MAX_REMEMBERED:]
                            ).decode()
                    after = listing.get("after") if isinstance(listing, Mapping) else None
                    done = not after or not children or page_number == settings.max_pages
                    if done and asked_number == len(asked_urls):
                        page.cursors["targets"] = "" if number == len(todo) else str(target)
                    yield page
                    if done:
                        break


def _day(moment: dt.datetime) -> dt.datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)
