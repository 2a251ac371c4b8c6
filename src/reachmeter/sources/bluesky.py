"""Bluesky: posts that link to tracked outputs, and the figures of tracked accounts.

Three streams, in this order on every run:

- **Deletions**: mentions seen in the last ``recheck_days`` are asked for again
  (``app.bsky.feed.getPosts``, public); a post the AppView no longer returns was deleted, and
  each of its mentions gets a ``deleted`` correction (it stops counting; nothing is erased).
- **Accounts** (``accounts`` of platform ``bluesky``, no login): the profile
  (``getProfile``: followers, following, posts as account observations) and the author feed
  (``getAuthorFeed``: each own post's likes, reposts, replies and quotes as observations of
  the post, and its links as mentions).
- **Search** (needs an app-password login, ``createSession``): ``searchPosts`` with
  ``url=https://doi.org/{doi}`` for every tracked DOI, ``url=`` for every tracked URL and
  ``domain=`` for each configured domain; a finished pass saves the date and the next asks
  only for posts since then (less the lag window).

Links are read from the record's facets (their ``byteStart``/``byteEnd`` are UTF-8 byte
offsets, so the text is sliced as bytes) and from ``embed.external`` (also inside
``recordWithMedia``), never from the possibly shortened text. Posts are known by their
``https://bsky.app/profile/{did}/post/{rkey}`` URL (a DID does not change, a handle can).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, NamedTuple, cast

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

__all__ = [
    "BlueskySettings",
    "BlueskySource",
    "Link",
    "at_uri_to_url",
    "embed_links",
    "facet_links",
    "url_to_at_uri",
]

PLATFORM = "bluesky"
WEB = "https://bsky.app"
_COLLECTION_PATHS = {
    "app.bsky.feed.post": "post",
    "app.bsky.feed.generator": "feed",
    "app.bsky.graph.list": "lists",
}
_PATH_COLLECTIONS = {path: collection for collection, path in _COLLECTION_PATHS.items()}
POST_METRICS = {
    "likeCount": "likes",
    "repostCount": "reposts",
    "replyCount": "replies",
    "quoteCount": "quotes",
}
PROFILE_METRICS = {
    "followersCount": "followers",
    "followsCount": "following",
    "postsCount": "posts_total",
}
_GET_POSTS_BATCH = 25
_MAX_RECENT = 5000


class BlueskySettings(SourceSettings):
    #: The login of the account used for search (``name.bsky.social`` or an e-mail).
    handle: str = ""
    #: An app password of that account (Settings > Privacy and security); a secret.
    app_password: str = ""
    #: Where to log in and search (the entryway proxies to the AppView).
    service: str = "https://bsky.social"
    #: The public AppView for profiles, author feeds and post look-ups (no login).
    public_api: str = "https://public.api.bsky.app"
    search: bool = True
    #: Publisher or repository domains whose links are searched (``domain=``) and kept.
    domains: list[str] = Field(default_factory=list)
    #: Pages of 100 posts read per search and per author feed on one run.
    max_pages: int = Field(default=5, ge=1)
    feed_pages: int = Field(default=1, ge=1)
    #: How long a mention is re-checked for deletion.
    recheck_days: int = Field(default=30, ge=0)


class Link(NamedTuple):
    """A link of a post: where it points, and the text it was written as."""

    uri: str
    text: str


def at_uri_to_url(uri: str) -> str:
    """``at://{did}/app.bsky.feed.post/{rkey}`` as ``https://bsky.app/profile/{did}/post/{rkey}``.

    Raises ``ValueError`` for a URI that is not of a post, feed or list.
    """
    if not uri.startswith("at://"):
        raise ValueError(f"{uri!r} is not an at:// URI")
    parts = uri.removeprefix("at://").split("/")
    if len(parts) != 3 or not all(parts) or parts[1] not in _COLLECTION_PATHS:
        raise ValueError(f"{uri!r} is not the at:// URI of a post, feed or list")
    authority, collection, rkey = parts
    return f"{WEB}/profile/{authority}/{_COLLECTION_PATHS[collection]}/{rkey}"


def url_to_at_uri(url: str) -> str:
    """``https://bsky.app/profile/{actor}/post/{rkey}`` as an at:// URI (the actor may be a
    handle: an at:// URI allows either). Raises ``ValueError`` for another URL."""
    text = url.strip()
    for prefix in (f"{WEB}/profile/", "https://www.bsky.app/profile/", "http://bsky.app/profile/"):
        if text.startswith(prefix):
            parts = text.removeprefix(prefix).split("?")[0].split("#")[0].strip("/").split("/")
            if len(parts) == 3 and all(parts) and parts[1] in _PATH_COLLECTIONS:
                return f"at://{parts[0]}/{_PATH_COLLECTIONS[parts[1]]}/{parts[2]}"
            break
    raise ValueError(f"{url!r} is not the bsky.app URL of a post, feed or list")


def facet_links(record: Mapping[str, Any]) -> list[Link]:
    """The links of a post record's facets, with the text they cover (byte offsets)."""
    text = record.get("text")
    encoded = text.encode("utf-8") if isinstance(text, str) else b""
    links = []
    for facet in record.get("facets") or []:
        if not isinstance(facet, Mapping):
            continue
        index = facet.get("index")
        anchor = ""
        if isinstance(index, Mapping):
            start, end = index.get("byteStart"), index.get("byteEnd")
            if isinstance(start, int) and isinstance(end, int) and 0 <= start <= end:
                anchor = encoded[start:end].decode("utf-8", errors="replace")
        for feature in facet.get("features") or []:
            if (
                isinstance(feature, Mapping)
                and feature.get("$type") == "app.bsky.richtext.facet#link"
                and isinstance(feature.get("uri"), str)
            ):
                links.append(Link(feature["uri"], anchor))
    return links


def embed_links(embed: Any) -> list[Link]:
    """The link card of an embed (a record's ``embed`` or a post view's), also inside
    ``recordWithMedia``; a quoted post's own links are not this post's."""
    if not isinstance(embed, Mapping):
        return []
    kind = str(embed.get("$type") or "").split("#")[0]
    if kind == "app.bsky.embed.external":
        external = embed.get("external")
        if isinstance(external, Mapping) and isinstance(external.get("uri"), str):
            return [Link(external["uri"], str(external.get("title") or ""))]
    if kind == "app.bsky.embed.recordWithMedia":
        return embed_links(embed.get("media"))
    return []


class BlueskySource(Source):
    id = "bluesky"
    name = "Bluesky"
    version = "1"
    kind = "social"
    description = "Posts on Bluesky that link to outputs; followers and post figures of accounts."
    settings_model = BlueskySettings
    rate_limits: ClassVar[dict[str, float]] = {
        "public.api.bsky.app": 5.0,
        "api.bsky.app": 5.0,
        "bsky.social": 2.0,
    }
    secret_fields: ClassVar[tuple[str, ...]] = ("app_password",)

    def __init__(self, settings: SourceSettings) -> None:
        super().__init__(settings)
        self._token: str | None = None

    @property
    def _settings(self) -> BlueskySettings:
        return cast(BlueskySettings, self.settings)

    # -- reading posts --------------------------------------------------------------------

    def post_facts(
        self, ctx: SourceContext, post: Any, links: LinkFilter, *, own: bool
    ) -> tuple[list[Any], str | None]:
        """The mentions (and, for an account's own post, its figures) of a post view.

        Returns the facts and the post's at:// URI; raises ``ValueError`` with the reason
        when the post view is not usable.
        """
        if not isinstance(post, Mapping):
            raise ValueError("post is not an object")
        uri = post.get("uri")
        record = post.get("record")
        author = post.get("author")
        if not isinstance(uri, str) or not isinstance(record, Mapping):
            raise ValueError(f"post {uri!r} has no uri or no record")
        url = at_uri_to_url(uri)
        did = uri.removeprefix("at://").split("/")[0]
        occurred = to_time(record.get("createdAt")) or to_time(post.get("indexedAt"))
        if occurred is None:
            raise ValueError(f"post {uri}: createdAt {record.get('createdAt')!r} is not a time")
        text = record.get("text") if isinstance(record.get("text"), str) else ""
        found = links.identifiers(
            [
                link.uri
                for link in [
                    *facet_links(record),
                    *embed_links(record.get("embed")),
                    *embed_links(post.get("embed")),
                ]
            ],
            cast(str, text),
        )
        author_info = author if isinstance(author, Mapping) else {}
        handle = author_info.get("handle")
        # The handle's profile URL, as accounts are stored (the DID when it is not valid).
        profile = (
            f"{WEB}/profile/{handle.lower()}"
            if isinstance(handle, str) and handle and handle != "handle.invalid"
            else f"{WEB}/profile/{did}"
        )
        subj = {
            "pid": uri,
            "url": url,
            "type": "post",
            "text": text,
            "lang": record.get("langs"),
            "author": {
                "did": did,
                "handle": author_info.get("handle"),
                "name": author_info.get("displayName"),
            },
        }
        facts: list[Any] = mention_events(
            self.id,
            subj_id=url,
            found=found,
            occurred_at=occurred,
            collected_at=ctx.collected_at,
            author=profile,
            subj=subj,
        )
        if own:
            for field, metric in POST_METRICS.items():
                fact = post_observation(self.id, url, metric, post.get(field), ctx.collected_at)
                if fact is not None:
                    facts.append(fact)
        return facts, uri

    def _read_posts(
        self,
        ctx: SourceContext,
        page: Page,
        posts: list[Any],
        links: LinkFilter,
        recent: Remembered,
        *,
        own: bool = False,
    ) -> None:
        for number, post in enumerate(posts):
            try:
                facts, uri = self.post_facts(ctx, post, links, own=own)
            except ValueError as exc:
                raw = orjson.dumps(post).decode()[:2000] if post is not None else "null"
                page.problems.append((f"Bluesky post #{number + 1}: {exc}", raw))
                continue
            page.facts.extend(facts)
            keys = [f.event_key for f in facts if isinstance(f, EventRecord)]
            if keys and uri:
                recent.remember(uri, keys)
                page.cursors[recent.stream] = recent.dump()

    # -- streams --------------------------------------------------------------------------

    def collect(self, ctx: SourceContext) -> Iterator[Page | Skipped]:
        settings = self._settings
        links = LinkFilter(ctx, settings.domains)
        recent = Remembered(ctx, settings.recheck_days, limit=_MAX_RECENT)
        yield from self._recheck(ctx, recent, links)
        for handle in ctx.accounts(PLATFORM):
            yield from self._account(ctx, handle, links, recent)
        if settings.search:
            yield from self._search(ctx, links, recent)

    def _recheck(self, ctx: SourceContext, recent: Remembered, links: LinkFilter) -> Iterator[Page]:
        """Ask again for the posts of recent mentions: a post no longer there was deleted;
        a post whose links changed no longer mentions what it dropped."""
        settings = self._settings
        uris = sorted(recent.entries)
        for start in range(0, len(uris), _GET_POSTS_BATCH):
            batch = uris[start : start + _GET_POSTS_BATCH]
            fetched = ctx.get_json(
                f"{settings.public_api}/xrpc/app.bsky.feed.getPosts", params={"uris": batch}
            )
            posts = fetched.data.get("posts") if isinstance(fetched.data, Mapping) else None
            if not isinstance(posts, list):
                raise BadPayloadError(fetched.url, "getPosts answer has no posts list")
            present = {p["uri"]: p for p in posts if isinstance(p, Mapping) and "uri" in p}
            page = ctx.page(fetched)
            for uri in batch:
                url = at_uri_to_url(uri)
                if uri not in present:
                    reason = f"post {url} was deleted (getPosts no longer returns it)"
                    page.facts.extend(deleted(recent.keys(uri), reason, ctx.collected_at))
                    recent.forget(uri)
                    continue
                try:
                    facts, _ = self.post_facts(ctx, present[uri], links, own=False)
                except ValueError:
                    continue  # not readable now: looked at again next time
                events = [f for f in facts if isinstance(f, EventRecord)]
                page.facts.extend(events)
                page.facts.extend(edited(recent.keys(uri), events, url, ctx.collected_at))
                recent.replace(uri, [e.event_key for e in events])
            page.cursors[recent.stream] = recent.dump()
            yield page

    def _account(
        self,
        ctx: SourceContext,
        handle: str,
        links: LinkFilter,
        recent: Remembered,
    ) -> Iterator[Page | Skipped]:
        settings = self._settings
        actor = handle.strip().removeprefix("@")
        url = f"{settings.public_api}/xrpc/app.bsky.actor.getProfile"
        try:
            fetched = ctx.get_json(url, params={"actor": actor})
        except UpstreamError as exc:
            if exc.retriable or exc.status in (None, 401, 403, 429):
                raise
            yield ctx.skip(f"{url}?actor={actor}", exc)
            return
        if not isinstance(fetched.data, Mapping) or "did" not in fetched.data:
            raise BadPayloadError(fetched.url, f"profile of {actor} has no did")
        page = ctx.page(fetched)
        for field, metric in PROFILE_METRICS.items():
            fact = account_observation(
                self.id, PLATFORM, handle, metric, fetched.data.get(field), ctx.collected_at
            )
            if fact is not None:
                page.facts.append(fact)
        yield page
        cursor: str | None = None
        created: list[dt.datetime] = []
        for number in range(1, settings.feed_pages + 1):
            params: dict[str, Any] = {"actor": actor, "limit": 100, "filter": "posts_no_replies"}
            if cursor:
                params["cursor"] = cursor
            fetched = ctx.get_json(
                f"{settings.public_api}/xrpc/app.bsky.feed.getAuthorFeed", params=params
            )
            feed = fetched.data.get("feed") if isinstance(fetched.data, Mapping) else None
            if not isinstance(feed, list):
                raise BadPayloadError(fetched.url, "getAuthorFeed answer has no feed list")
            page = ctx.page(fetched)
            # A repost shows someone else's post: its figures are not this account's.
            own = [
                item.get("post") if isinstance(item, Mapping) else item
                for item in feed
                if not (isinstance(item, Mapping) and isinstance(item.get("reason"), Mapping))
            ]
            self._read_posts(ctx, page, own, links, recent, own=True)
            for post in own:
                record = post.get("record") if isinstance(post, Mapping) else None
                moment = to_time(record.get("createdAt")) if isinstance(record, Mapping) else None
                if moment is not None:
                    created.append(moment)
            cursor = fetched.data.get("cursor")
            complete = not cursor or not feed
            last = complete or number == settings.feed_pages
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

    def _login(self, ctx: SourceContext) -> str:
        settings = self._settings
        url = f"{settings.service}/xrpc/com.atproto.server.createSession"
        try:
            fetched = post_json(
                ctx, url, json={"identifier": settings.handle, "password": settings.app_password}
            )
        except UpstreamError as exc:
            if exc.status in (400, 401):
                raise ConfigurationError(
                    f"Bluesky refused the login of {settings.handle!r} (HTTP {exc.status}): "
                    "check the handle and app_password settings (an app password, not the "
                    "account password)",
                    url=url,
                ) from None
            raise
        token = fetched.data.get("accessJwt") if isinstance(fetched.data, Mapping) else None
        if not isinstance(token, str) or not token:
            raise BadPayloadError(fetched.url, "createSession answer has no accessJwt")
        ctx.secrets.append(token)
        self._token = token
        return token

    def _search_targets(self, ctx: SourceContext) -> list[tuple[str, str]]:
        targets = [("url", f"https://doi.org/{doi}") for doi in ctx.targets("doi")]
        targets += [("url", url) for url in ctx.targets("url")]
        targets += [("domain", d.strip().lower()) for d in self._settings.domains if d.strip()]
        # Sorted, so the saved cursor (the last target done) says where to resume.
        return sorted(set(targets), key=lambda t: f"{t[0]}={t[1]}")

    def _search(
        self, ctx: SourceContext, links: LinkFilter, recent: Remembered
    ) -> Iterator[Page | Skipped]:
        settings = self._settings
        targets = self._search_targets(ctx)
        url = f"{settings.service}/xrpc/app.bsky.feed.searchPosts"
        if not targets:
            return
        if not (settings.handle and settings.app_password):
            yield Skipped(
                url,
                "searching Bluesky posts needs a login: set handle and app_password "
                "(an app password) in the bluesky settings, or search=false",
            )
            return
        after = ctx.cursors.get("search", "")
        todo = [t for t in targets if f"{t[0]}={t[1]}" > after] if after else targets
        since = ctx.since("search-since")
        token = self._token or self._login(ctx)
        for number, (kind, value) in enumerate(todo, start=1):
            cursor: str | None = None
            for page_number in range(1, settings.max_pages + 1):
                params: dict[str, Any] = {"q": "*", kind: value, "limit": 100, "sort": "latest"}
                if since is not None:
                    params["since"] = since.isoformat()
                if cursor:
                    params["cursor"] = cursor
                try:
                    fetched = ctx.get_json(
                        url, params=params, headers={"Authorization": f"Bearer {token}"}
                    )
                except UpstreamError as exc:
                    if exc.status != 401:
                        raise
                    # An expired session: log in again once.
                    token = self._login(ctx)
                    fetched = ctx.get_json(
                        url, params=params, headers={"Authorization": f"Bearer {token}"}
                    )
                posts = fetched.data.get("posts") if isinstance(fetched.data, Mapping) else None
                if not isinstance(posts, list):
                    raise BadPayloadError(fetched.url, "searchPosts answer has no posts list")
                page = ctx.page(fetched)
                self._read_posts(ctx, page, posts, links, recent)
                cursor = fetched.data.get("cursor")
                done = not cursor or not posts or page_number == settings.max_pages
                if done:
                    if number == len(todo):
                        page.cursors["search"] = ""
                        page.cursors["search-since"] = ctx.collected_at.date().isoformat()
                    else:
                        page.cursors["search"] = f"{kind}={value}"
                yield page
                if done:
                    break
