"""Mastodon: statuses of tracked accounts and tag timelines of chosen instances.

- **Accounts** (``accounts`` of platform ``mastodon``, handles ``user@instance``):
  ``/api/v1/accounts/lookup`` gives followers, following and statuses as account
  observations; ``/api/v1/accounts/{id}/statuses`` (boosts left out) gives each own
  status's favourites, boosts, replies and quotes as observations of the status, and its
  links as mentions.
- **Tag timelines** (``tags`` on each of ``instances``): ``/api/v1/timelines/tag/{tag}``,
  resuming after the newest status seen (``min_id``); each status's links are mentions.

Links come from the status's HTML ``content`` (read with ``html.parser``, never rendered;
mention and hashtag links left out) and its preview ``card``. The text is kept as plain
text; the HTML stays only in the evidence. An edited status keeps its mentions (the event
keys do not change) and carries ``edited_at``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from html.parser import HTMLParser
from typing import Any, ClassVar, cast
from urllib.parse import quote

import orjson
from pydantic import Field

from reachmeter.http import UpstreamError
from reachmeter.records import EventRecord
from reachmeter.sources._social import (
    ConfigurationError,
    LinkFilter,
    Remembered,
    account_observation,
    daily_posts,
    deleted,
    edited,
    mention_events,
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

__all__ = ["MastodonSettings", "MastodonSource", "read_content"]

PLATFORM = "mastodon"
STATUS_METRICS = {
    "favourites_count": "favourites",
    "reblogs_count": "boosts",
    "replies_count": "replies",
    "quotes_count": "quotes",
}
ACCOUNT_METRICS = {
    "followers_count": "followers",
    "following_count": "following",
    "statuses_count": "posts_total",
}
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")
_PAGE = 40


class MastodonSettings(SourceSettings):
    #: Instances whose tag timelines are read (host names, ``mastodon.social``).
    instances: list[str] = Field(default_factory=list)
    #: Hashtags (without ``#``) read on every instance.
    tags: list[str] = Field(default_factory=list)
    #: Domains whose links count as mentions besides DOIs and tracked URLs.
    domains: list[str] = Field(default_factory=list)
    #: A token for instances that close their timelines to anonymous readers; a secret.
    access_token: str = ""
    #: Pages of 40 statuses read per tag (on each run) and per account.
    max_pages: int = Field(default=5, ge=1)
    account_pages: int = Field(default=1, ge=1)
    #: How long a status that mentions an output is checked for deletion and edits.
    recheck_days: int = Field(default=30, ge=0)


class _Content(HTMLParser):
    """The links and visible text of a status's HTML (Mastodon hides parts of long URLs in
    ``invisible`` spans; they are kept, so the text has the whole URL)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "a":
            classes = (values.get("class") or "").split()
            href = (values.get("href") or "").strip()
            if href.lower().startswith(("http://", "https://")) and not (
                {"mention", "hashtag"} & set(classes)
            ):
                self.links.append(href)
        elif tag in ("br", "p") and self.text:
            self.text.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)


def read_content(html: str) -> tuple[list[str], str]:
    """The links (not mentions or hashtags) and the plain text of a status's HTML."""
    parser = _Content()
    parser.feed(html[:200_000])
    parser.close()
    return parser.links, "".join(parser.text).strip()


def _host(value: str) -> str | None:
    host = value.strip().lower().removeprefix("https://").removesuffix("/")
    return host if _HOST.match(host) else None


class MastodonSource(Source):
    id = "mastodon"
    name = "Mastodon"
    version = "1"
    kind = "social"
    description = "Mastodon statuses that link to outputs; followers and status figures."
    settings_model = MastodonSettings
    secret_fields: ClassVar[tuple[str, ...]] = ("access_token",)
    #: The recent mentions, read from the cursor when a run starts.
    _recent: Remembered

    @property
    def _settings(self) -> MastodonSettings:
        return cast(MastodonSettings, self.settings)

    def _headers(self) -> dict[str, str]:
        token = self._settings.access_token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def status_facts(
        self, ctx: SourceContext, status: Any, links: LinkFilter, *, own: bool
    ) -> list[Any]:
        """The mentions (and, for a tracked account's own status, its figures) of a
        status; raises ``ValueError`` with the reason when it is not usable."""
        if not isinstance(status, Mapping):
            raise ValueError("status is not an object")
        if status.get("reblog"):
            return []  # a boost shows someone else's status
        status_id = status.get("id")
        url = status.get("url") or status.get("uri")
        if not status_id or not isinstance(url, str) or not url:
            raise ValueError(f"status {status_id!r} has no id or no url")
        occurred = to_time(status.get("created_at"))
        if occurred is None:
            raise ValueError(f"status {url}: created_at {status.get('created_at')!r} is not a time")
        content = status.get("content")
        hrefs, text = read_content(content) if isinstance(content, str) else ([], "")
        card = status.get("card")
        if isinstance(card, Mapping) and isinstance(card.get("url"), str):
            hrefs.append(card["url"])
        account = status.get("account") if isinstance(status.get("account"), Mapping) else {}
        account = cast(Mapping[str, Any], account)
        author = account.get("url") if isinstance(account.get("url"), str) else None
        facts: list[Any] = mention_events(
            self.id,
            subj_id=url,
            found=links.identifiers(hrefs, text),
            occurred_at=occurred,
            collected_at=ctx.collected_at,
            author=author,
            subj={
                "pid": status.get("uri") or url,
                "url": url,
                "type": "status",
                "text": text,
                "lang": status.get("language"),
                "edited_at": status.get("edited_at"),
                "author": {"acct": account.get("acct"), "name": account.get("display_name")},
            },
        )
        if own:
            for field, metric in STATUS_METRICS.items():
                fact = post_observation(self.id, url, metric, status.get(field), ctx.collected_at)
                if fact is not None:
                    facts.append(fact)
        return facts

    def _read(
        self,
        ctx: SourceContext,
        page: Page,
        statuses: list[Any],
        links: LinkFilter,
        *,
        own: bool,
        host: str,
    ) -> None:
        for number, status in enumerate(statuses):
            try:
                facts = self.status_facts(ctx, status, links, own=own)
            except ValueError as exc:
                raw = orjson.dumps(status, default=str).decode()[:2000]
                page.problems.append((f"Mastodon status #{number + 1}: {exc}", raw))
                continue
            page.facts.extend(facts)
            events = [f for f in facts if isinstance(f, EventRecord)]
            if events:
                self._recent.remember(
                    events[0].subj_id,
                    [e.event_key for e in events],
                    host=host,
                    id=str(status["id"]),
                )
                page.cursors[self._recent.stream] = self._recent.dump()

    def _recheck(self, ctx: SourceContext, links: LinkFilter) -> Iterator[Page | Skipped]:
        """Ask again for the statuses of recent mentions: a status that is gone was
        deleted; a status whose links changed no longer mentions what it dropped."""
        recent = self._recent
        for url in sorted(recent.entries):
            entry = recent.entries[url]
            host, status_id = _host(str(entry.get("host", ""))), str(entry.get("id", ""))
            if host is None or not status_id.isdigit():
                recent.forget(url)
                continue
            request = f"https://{host}/api/v1/statuses/{status_id}"
            try:
                fetched = ctx.get_json(request, headers=self._headers())
            except UpstreamError as exc:
                if exc.status not in (404, 410):
                    if exc.retriable or exc.status in (None, 401, 403, 429):
                        raise
                    yield ctx.skip(request, exc)
                    continue
                gone = Page(request_url=ctx.redact(request), payload=str(exc).encode())
                reason = f"post {url} was deleted (HTTP {exc.status} from its instance)"
                gone.facts.extend(deleted(recent.keys(url), reason, ctx.collected_at))
                recent.forget(url)
                gone.cursors[recent.stream] = recent.dump()
                yield gone
                continue
            page = ctx.page(fetched)
            try:
                facts = self.status_facts(ctx, fetched.data, links, own=False)
            except ValueError:
                facts = []  # not readable now: looked at again next time
            else:
                events = [f for f in facts if isinstance(f, EventRecord)]
                page.facts.extend(events)
                page.facts.extend(edited(recent.keys(url), events, url, ctx.collected_at))
                recent.replace(url, [e.event_key for e in events])
            page.cursors[recent.stream] = recent.dump()
            yield page

    def collect(self, ctx: SourceContext) -> Iterator[Page | Skipped]:
        settings = self._settings
        links = LinkFilter(ctx, settings.domains)
        self._recent = Remembered(ctx, settings.recheck_days)
        handles = ctx.accounts(PLATFORM)
        hosts = {_host(h.partition("@")[2]) for h in (x.lstrip("@") for x in handles)}
        hosts.update(_host(i) for i in settings.instances)
        for name in sorted(h for h in hosts if h):
            # 300 requests per 5 minutes per IP is every instance's default limit.
            ctx.http.set_rate_limit(name, 1.0)
        yield from self._recheck(ctx, links)
        for handle in handles:
            yield from self._account(ctx, handle, links)
        for instance in settings.instances:
            host = _host(instance)
            if host is None:
                yield Skipped(instance, f"instance {instance!r} is not a host name")
                continue
            for tag in settings.tags:
                yield from self._tag(ctx, host, tag.strip().lstrip("#"), links)

    def _account(
        self, ctx: SourceContext, handle: str, links: LinkFilter
    ) -> Iterator[Page | Skipped]:
        user, _, instance = handle.strip().lstrip("@").partition("@")
        host = _host(instance)
        if not user or host is None:
            yield Skipped(handle, f"account {handle!r} is not user@instance")
            return
        url = f"https://{host}/api/v1/accounts/lookup"
        try:
            fetched = ctx.get_json(url, params={"acct": user}, headers=self._headers())
        except UpstreamError as exc:
            if exc.retriable or exc.status in (None, 401, 403, 429):
                raise
            yield ctx.skip(f"{url}?acct={user}", exc)
            return
        account_id = fetched.data.get("id") if isinstance(fetched.data, Mapping) else None
        if not isinstance(account_id, str) or not account_id.isdigit():
            raise BadPayloadError(fetched.url, f"account {handle} has no id")
        page = ctx.page(fetched)
        for field, metric in ACCOUNT_METRICS.items():
            fact = account_observation(
                self.id, PLATFORM, handle, metric, fetched.data.get(field), ctx.collected_at
            )
            if fact is not None:
                page.facts.append(fact)
        yield page
        max_id: str | None = None
        created = []
        for number in range(1, self._settings.account_pages + 1):
            params: dict[str, Any] = {"limit": _PAGE, "exclude_reblogs": "true"}
            if max_id:
                params["max_id"] = max_id
            fetched = ctx.get_json(
                f"https://{host}/api/v1/accounts/{account_id}/statuses",
                params=params,
                headers=self._headers(),
            )
            if not isinstance(fetched.data, list):
                raise BadPayloadError(fetched.url, "statuses answer is not a list")
            page = ctx.page(fetched)
            self._read(ctx, page, fetched.data, links, own=True, host=host)
            ids = [int(s["id"]) for s in fetched.data if _numeric_id(s)]
            created += [
                moment
                for s in fetched.data
                if isinstance(s, Mapping) and not s.get("reblog")
                if (moment := to_time(s.get("created_at"))) is not None
            ]
            complete = not ids or len(fetched.data) < _PAGE
            last = complete or number == self._settings.account_pages
            if last:
                page.facts.extend(
                    daily_posts(
                        self.id,
                        PLATFORM,
                        handle,
                        created,
                        complete=complete,
                        observed_at=ctx.collected_at,
                    )
                )
                page.cursors[f"account:{handle}"] = ctx.collected_at.date().isoformat()
            yield page
            if last:
                return
            max_id = str(min(ids))

    def _tag(self, ctx: SourceContext, host: str, tag: str, links: LinkFilter) -> Iterator[Page]:
        stream = f"tag:{host}:{tag}"
        newest = ctx.cursors.get(stream, "")
        url = f"https://{host}/api/v1/timelines/tag/{quote(tag, safe='')}"
        for _ in range(self._settings.max_pages):
            params: dict[str, Any] = {"limit": _PAGE}
            if newest:
                params["min_id"] = newest
            try:
                fetched = ctx.get_json(url, params=params, headers=self._headers())
            except UpstreamError as exc:
                if exc.status == 401:
                    raise ConfigurationError(
                        f"{host} does not show its tag timelines without a login (HTTP 401): "
                        "set access_token (a token with read:statuses from that instance) in "
                        "the mastodon settings",
                        url=url,
                    ) from None
                raise
            if not isinstance(fetched.data, list):
                raise BadPayloadError(fetched.url, "timeline answer is not a list")
            page = ctx.page(fetched)
            self._read(ctx, page, fetched.data, links, own=False, host=host)
            ids = [int(s["id"]) for s in fetched.data if _numeric_id(s)]
            if ids:
                newest = str(max([*ids, int(newest)] if newest.isdigit() else ids))
                page.cursors[stream] = newest
            yield page
            # Without a saved position only the newest page is read; with one, every
            # newer page up to ``max_pages``.
            if not ids or len(fetched.data) < _PAGE or "min_id" not in params:
                return


def _numeric_id(status: Any) -> bool:
    return isinstance(status, Mapping) and str(status.get("id") or "").isdigit()
