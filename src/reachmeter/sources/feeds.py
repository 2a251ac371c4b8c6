"""Blogs and news: RSS, Atom and JSON feeds of chosen blogs and outlets, and people's own blogs.

Feeds are configured in the source's settings (``sources.settings`` of ``feeds``; see
``reachmeter feeds add`` and ``reachmeter import opml``), each with a kind (``blog`` or
``news``) and, for a blog, an optional owner: a person whose ``blog`` account (the feed URL)
is in the ``accounts`` table. Every feed is fetched through the shared HTTP client (the
SSRF guard, size cap and retries apply; feedparser never fetches anything itself) and
parsed with feedparser; JSON Feed documents and the JSON / XML answers of two blog-search
services (WordPress.com search, ResearchBlogging) are read by small readers here.

What is stored:

* an entry whose links or text name a tracked output is a mention of it, of source
  ``blogs`` or ``news`` by the feed's kind (relation ``discusses``), one per entry and
  tracked identifier: the entry's link is the ``subj_id``, its published (else updated)
  time is ``occurred_at`` (an entry without a date gets the time it was first seen), its
  author is kept in ``subj``;
* every entry of an owned blog is a ``posts`` observation (value 1, the entry's day) of the
  owner's ``blog`` account, which is what blogging regularity in reach counts; mentions from
  an owned feed carry the account as their author, so they count as the owner's own.

A feed URL holding ``{doi}`` is a search feed: it is fetched once per tracked DOI, and each
entry it answers is a mention of that DOI (the service matched it).

Links to pages on the hosts listed in ``landing_hosts`` (publishers' sites) are fetched,
each once per run and at most ``max_landing_pages`` a run, and the DOI the page declares is
read (``reachmeter.matching.landing``): a post linking ``academic.oup.com/...`` without a
DOI in the URL still counts for the paper.

Keys come from the entry's id (else its link) and the output, so an edited entry is never
stored twice; an entry that drops out of a feed (feeds keep only their latest entries) is
not a deletion, and its mentions stay. The ``ETag`` / ``Last-Modified`` of each feed are
its cursor: an unchanged feed answers ``304 Not Modified`` and costs nothing, unless the
tracked outputs changed since (then the feed is read whole again). A feed that cannot be
fetched or read is skipped with the reason and stores nothing; the others go on, and a run
in which every feed failed fails.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import re
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, cast
from urllib.parse import quote, urlsplit

import defusedxml.ElementTree as defused
import feedparser  # type: ignore[import-untyped]
import orjson
from defusedxml import DefusedXmlException
from pydantic import BaseModel, ConfigDict, Field, field_validator

from reachmeter.http import HttpError, UpstreamError
from reachmeter.matching.extract import extract_html
from reachmeter.matching.identifiers import SCHEME_ORDER, Identifier, to_uri
from reachmeter.matching.landing import LandingResolver
from reachmeter.matching.match import Matcher, OutputIndex
from reachmeter.matching.urls import host_of
from reachmeter.records import KEY_NAMESPACE, EventRecord, ObservationRecord
from reachmeter.sources.base import (
    BadPayloadError,
    Fact,
    Page,
    Skipped,
    Source,
    SourceContext,
    SourceSettings,
)

__all__ = [
    "FeedConfig",
    "FeedDocument",
    "FeedEntry",
    "FeedError",
    "FeedsSettings",
    "FeedsSource",
    "configured",
    "cursor_stream",
    "entry_facts",
    "feed_key",
    "merge_feeds",
    "parse_feed",
]

FeedKind = Literal["blog", "news"]
SOURCE_OF_KIND: dict[str, str] = {"blog": "blogs", "news": "news"}
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
# Identifiers that stand for an output (an ORCID names a person, not an output).
_OUTPUT_SCHEMES = tuple(s for s in SCHEME_ORDER if s != "orcid")
_HTML = re.compile(rb"^\s*(?:\xef\xbb\xbf)?\s*(<!doctype html|<html)", re.IGNORECASE)
_ENTITY = re.compile(rb"<!ENTITY", re.IGNORECASE)
_ROOT_ELEMENT = re.compile(rb"<[A-Za-z_]")
_TAGS = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"\s+")
_SUMMARY_CHARS = 1000
# feedparser's notes that do not make a feed unreadable: a mislabelled encoding, a feed
# served as text/html or without a content type.
_HARMLESS_BOZO = ("CharacterEncodingOverride", "NonXMLContentType")


class FeedError(ValueError):
    """A feed that cannot be read; the message says why."""


class FeedConfig(BaseModel):
    """One configured feed."""

    model_config = ConfigDict(extra="forbid")

    url: str
    kind: FeedKind = "blog"
    #: The person whose own blog this is (``people.id``).
    owner: int | None = None
    #: The handle of the owner's ``blog`` account, to which the entries count as posts.
    account: str | None = None
    title: str | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        parts = urlsplit(value.replace("{doi}", "x"))
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @property
    def is_search(self) -> bool:
        return "{doi}" in self.url


class FeedsSettings(SourceSettings):
    """Settings of the feeds source."""

    feeds: list[FeedConfig] = Field(default_factory=list)
    #: Hosts (publishers' sites) whose pages, when an entry links them, are fetched to read
    #: the DOI they declare (``matching/landing.py``); a subdomain counts as its host.
    landing_hosts: list[str] = Field(default_factory=list)
    #: At most this many such pages are fetched in one run (each once).
    max_landing_pages: int = Field(default=200, ge=0)


def feed_key(url: str) -> str:
    """The form under which two spellings of one feed URL are the same feed."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.")
    port = f":{parts.port}" if parts.port else ""
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}{port}{parts.path.rstrip('/')}{query}"


# -- reading a feed ------------------------------------------------------------------------


@dataclass(slots=True)
class FeedEntry:
    """One entry (post, article) of a feed, in the same shape whatever the format."""

    key: str
    link: str | None = None
    title: str | None = None
    author: str | None = None
    published: dt.datetime | None = None
    html: str = ""
    text: str = ""
    links: list[str] = field(default_factory=list)


@dataclass(slots=True)
class FeedDocument:
    """A parsed feed: its format, title, site link and entries."""

    format: str
    title: str | None = None
    link: str | None = None
    entries: list[FeedEntry] = field(default_factory=list)
    encoding: str = "utf-8"


def _clean(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _struct_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, time.struct_time):
        return None
    try:
        return dt.datetime(*value[:6], tzinfo=dt.UTC)
    except (TypeError, ValueError):
        return None


def _iso_time(value: Any) -> dt.datetime | None:
    text = _clean(value)
    if text is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def _feedparser_document(payload: bytes, url: str, content_type: str | None) -> FeedDocument:
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    parsed = feedparser.parse(io.BytesIO(payload), response_headers=headers)
    if parsed.get("bozo"):
        problem = parsed.get("bozo_exception")
        # HTML entities (``&eacute;``, ``&nbsp;``) are undefined in XML but common in feeds,
        # and feedparser's lenient parser reads them right; anything else is not a feed.
        harmless = type(problem).__name__ in _HARMLESS_BOZO or "undefined entity" in str(problem)
        if not harmless:
            raise FeedError(f"not a well-formed feed: {problem}")
    if not parsed.get("version") and not parsed.entries:
        root = re.search(rb"<([A-Za-z_][\w:.-]*)", payload)
        name = root.group(1).decode("ascii", "replace") if root else "none"
        raise FeedError(f"not an RSS, Atom or JSON feed (its root element is <{name}>)")
    feed = parsed.feed
    feed_author = _clean(feed.get("author"))
    entries: list[FeedEntry] = []
    for number, item in enumerate(parsed.entries):
        link = _clean(item.get("link"))
        key = _clean(item.get("id")) or link
        title = _clean(item.get("title"))
        html_parts = [
            str(part.get("value", ""))
            for part in item.get("content") or []
            if isinstance(part, Mapping)
        ]
        summary = _clean(item.get("summary"))
        if summary and summary not in html_parts:
            html_parts.append(summary)
        if key is None:
            digest = hashlib.sha256(f"{title}|{summary}|{number}".encode()).hexdigest()[:20]
            key = f"entry:{digest}"
        links = [
            href
            for candidate in item.get("links") or []
            if isinstance(candidate, Mapping) and (href := _clean(candidate.get("href")))
        ]
        entries.append(
            FeedEntry(
                key=key,
                link=link,
                title=title,
                author=_clean(item.get("author")) or feed_author,
                published=_struct_time(item.get("published_parsed"))
                or _struct_time(item.get("updated_parsed")),
                html="\n".join(html_parts),
                links=links,
            )
        )
    return FeedDocument(
        format=str(parsed.get("version") or "feed"),
        title=_clean(feed.get("title")),
        link=_clean(feed.get("link")),
        entries=entries,
        encoding=str(parsed.get("encoding") or "utf-8"),
    )


def _json_document(payload: bytes) -> FeedDocument:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise FeedError(f"body is not valid JSON: {exc}") from None
    if data is None:
        return FeedDocument(format="wordpress-search")
    if isinstance(data, list):
        return _wordpress_search(data)
    if isinstance(data, Mapping) and str(data.get("version", "")).startswith(
        "https://jsonfeed.org/version/"
    ):
        return _json_feed(data)
    raise FeedError("JSON that is neither a JSON Feed nor a list of blog search results")


def _wordpress_search(items: list[Any]) -> FeedDocument:
    """WordPress.com search results (``[{title, link, epoch_time, author, guid, content}]``)."""
    entries = []
    for item in items:
        if not isinstance(item, Mapping):
            raise FeedError(f"search result {item!r} is not an object")
        link = _clean(item.get("link"))
        key = _clean(item.get("guid")) or link
        if key is None:
            raise FeedError(f"search result {item.get('title')!r} has neither guid nor link")
        epoch = str(item.get("epoch_time") or "")
        entries.append(
            FeedEntry(
                key=key,
                link=link,
                title=_clean(item.get("title")),
                author=_clean(item.get("author")),
                published=dt.datetime.fromtimestamp(int(epoch), dt.UTC)
                if epoch.isdigit()
                else None,
                html=str(item.get("content") or ""),
            )
        )
    return FeedDocument(format="wordpress-search", entries=entries)


def _json_feed(data: Mapping[str, Any]) -> FeedDocument:
    """A JSON Feed (jsonfeed.org, versions 1 and 1.1)."""
    entries = []
    for item in data.get("items") or []:
        if not isinstance(item, Mapping):
            raise FeedError(f"item {item!r} is not an object")
        link = _clean(item.get("url"))
        key = _clean(str(item.get("id") or "")) or link
        if key is None:
            raise FeedError(f"item {item.get('title')!r} has neither id nor url")
        authors = item.get("authors") or ([item["author"]] if item.get("author") else [])
        names = [a.get("name") for a in authors if isinstance(a, Mapping) and a.get("name")]
        html = _clean(item.get("content_html")) or ""
        text = " ".join(
            part
            for part in (item.get("content_text"), item.get("summary"))
            if isinstance(part, str)
        )
        entries.append(
            FeedEntry(
                key=key,
                link=link,
                title=_clean(item.get("title")),
                author=", ".join(map(str, names)) or None,
                published=_iso_time(item.get("date_published"))
                or _iso_time(item.get("date_modified")),
                html=html,
                text=text,
                links=[u for u in (_clean(item.get("external_url")),) if u],
            )
        )
    return FeedDocument(
        format="json-feed",
        title=_clean(data.get("title")),
        link=_clean(data.get("home_page_url")),
        entries=entries,
    )


def _xml_root(payload: bytes) -> ET.Element:
    try:
        # No feed or search answer needs a DTD; refusing them rules out entity expansion.
        return defused.fromstring(payload, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise FeedError("XML with a DOCTYPE or ENTITY declaration is not read") from exc
    except ET.ParseError as exc:
        raise FeedError(f"not well-formed XML: {exc}") from None


def _researchblogging(payload: bytes) -> FeedDocument:
    """ResearchBlogging's ``<blogposts><post>`` search answer: each post and the works it
    cites (their DOIs are read as text)."""
    root = _xml_root(payload)
    entries = []
    for post in root.iter("post"):
        link = _clean(post.findtext("post_URL"))
        key = link or (f"researchblogging:{post.get('id')}" if post.get("id") else None)
        if key is None:
            raise FeedError("a post has neither post_URL nor id")
        dois = [
            f"doi:{doi}"
            for citation in post.iter("citation")
            if (doi := _clean(citation.findtext("doi")))
        ]
        published = _clean(post.findtext("published_date"))
        entries.append(
            FeedEntry(
                key=key,
                link=link,
                # The service escapes its titles twice (``Replica&amp;ccedil;&amp;atilde;o``).
                title=_clean(html.unescape(post.findtext("post_title") or "")),
                author=_clean(html.unescape(post.findtext("blogger_name") or "")),
                published=_iso_time(published.replace(" ", "T")) if published else None,
                text=" ".join(dois),
            )
        )
    return FeedDocument(format="researchblogging", entries=entries)


def parse_feed(payload: bytes, url: str, content_type: str | None = None) -> FeedDocument:
    """Read a feed's bytes: RSS 0.9x/1.0/2.0 and Atom (feedparser), JSON Feed, and the
    WordPress.com search and ResearchBlogging answers. Raises ``FeedError`` with the reason
    when the bytes are not a readable feed (not well-formed, an HTML page, another format).
    """
    head = payload[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise FeedError("empty body")
    if _HTML.match(payload[:512]):
        raise FeedError("HTML page instead of a feed")
    if head[:1] in (b"{", b"[") or head[:4] == b"null":
        return _json_document(payload)
    if re.match(rb"(?:<\?xml[^>]*>\s*)?<blogposts[\s>/]", head):
        return _researchblogging(payload)
    root = _ROOT_ELEMENT.search(payload)
    if _ENTITY.search(payload, 0, root.start() if root else len(payload)):
        # Declarations come before the root element. RSS 0.91 has a DOCTYPE, which is fine;
        # no feed needs entities of its own (nor the expansion attacks they allow).
        raise FeedError("XML with an ENTITY declaration is not read")
    return _feedparser_document(payload, url, content_type)


# -- from entries to facts -------------------------------------------------------------------


def _global(key: str) -> bool:
    return key.lower().startswith(("http://", "https://", "tag:", "urn:"))


def _plain(text: str | None, limit: int) -> str | None:
    if not text:
        return None
    flat = _SPACES.sub(" ", _TAGS.sub(" ", text)).strip()
    return flat[:limit] or None


def entry_facts(
    document: FeedDocument,
    feed: FeedConfig,
    matcher: Matcher,
    *,
    collected_at: dt.datetime,
    query: Identifier | None = None,
    resolve: Callable[[str], list[Identifier]] | None = None,
) -> list[Fact]:
    """The mentions (and, for an owned blog, the posts) one parsed feed shows.

    ``query`` is the identifier a search feed was asked about: each entry mentions it.
    ``resolve`` names the outputs of a page an entry links to (a fetched landing page).
    Entries that appear twice (one entry listed again) give their facts once.
    """
    source_id = SOURCE_OF_KIND[feed.kind]
    facts: list[Fact] = []
    seen: set[str] = set()
    for entry in document.entries:
        scoped = entry.key if _global(entry.key) else f"{feed.url}#{entry.key}"
        if scoped in seen:
            continue
        seen.add(scoped)
        found: dict[Identifier, None] = {}
        if query is not None:
            found[query] = None
        for link in [*filter(None, [entry.link]), *entry.links]:
            for match in matcher.match_url(link):
                found.setdefault(match.identifier)
        if entry.html:
            for match in matcher.match_html(entry.html, entry.link or feed.url):
                found.setdefault(match.identifier)
        for text in (entry.title, entry.text):
            if text:
                for match in matcher.match_text(text):
                    found.setdefault(match.identifier)
        if resolve is not None:
            for link in _outbound_links(entry, feed.url):
                for identifier in resolve(link):
                    found.setdefault(identifier)
        occurred_at = entry.published or collected_at
        subj_id = entry.link or (entry.key if _global(entry.key) else scoped)
        subj: dict[str, Any] = {
            "type": "post-weblog" if feed.kind == "blog" else "article-newspaper",
            "title": entry.title,
            "url": entry.link,
            "summary": _plain(entry.html or entry.text, _SUMMARY_CHARS),
            "feed": {"url": feed.url, "title": document.title or feed.title},
        }
        if entry.author:
            subj["author"] = {"name": entry.author}
        if entry.published is None:
            subj["date_unknown"] = True
        author = feed.account if feed.account else entry.author
        for identifier in found:
            obj_id = to_uri(identifier)
            key = uuid.uuid5(KEY_NAMESPACE, f"{source_id}|{scoped}|{obj_id}")
            facts.append(
                EventRecord(
                    event_key=f"{source_id}:{key}",
                    subj_id=subj_id,
                    relation_type_id="discusses",
                    obj_id=obj_id,
                    obj_scheme=identifier.scheme,
                    obj_value=identifier.value,
                    source_id=source_id,
                    occurred_at=occurred_at,
                    collected_at=collected_at,
                    subj_author=author,
                    subj={k: v for k, v in subj.items() if v is not None},
                    evidence_url=None,
                    license=None,
                )
            )
        if feed.account and query is None:
            day = occurred_at.date()
            key = uuid.uuid5(KEY_NAMESPACE, f"posts|blog|{feed.account}|{scoped}")
            facts.append(
                ObservationRecord(
                    observation_key=f"{source_id}:post:{key}",
                    metric="posts",
                    value=1.0,
                    observed_at=occurred_at,
                    source_id=source_id,
                    account=("blog", feed.account),
                    period_start=day,
                    period_end=day,
                )
            )
    return facts


def _outbound_links(entry: FeedEntry, base: str) -> list[str]:
    """The pages an entry links to, other than itself."""
    links = [link for link in entry.links if link != entry.link]
    if entry.html:
        links += [
            item.identifier.value
            for item in extract_html(entry.html, entry.link or base)
            if item.identifier.scheme == "url"
        ]
    return list(dict.fromkeys(links))


def _landing(
    ctx: SourceContext, settings: FeedsSettings, matcher: Matcher
) -> Callable[[str], list[Identifier]] | None:
    """Reads the landing pages on the configured hosts (each fetched once, within budget)."""
    hosts = {h.strip().lower().removeprefix("www.") for h in settings.landing_hosts if h.strip()}
    if not hosts or settings.max_landing_pages == 0:
        return None
    resolver = LandingResolver(ctx.http)
    asked: dict[str, list[Identifier]] = {}

    def resolve(url: str) -> list[Identifier]:
        host = host_of(url)
        if not any(host == h or host.endswith(f".{h}") for h in hosts):
            return []
        if url not in asked:
            if len(asked) >= settings.max_landing_pages:
                return []
            page = resolver.resolve(url)
            asked[url] = [m.identifier for m in matcher.match_landing_page(page)] if page else []
        return asked[url]

    return resolve


def _matcher(ctx: SourceContext) -> tuple[Matcher, str]:
    """A matcher over every tracked identifier, and a fingerprint of the tracked set."""
    index = OutputIndex()
    digest = hashlib.sha256()
    number = 0
    for scheme in _OUTPUT_SCHEMES:
        for value in ctx.targets(scheme):
            number += 1
            index.add(number, Identifier(scheme, value))
            digest.update(f"{scheme}:{value}\n".encode())
    return Matcher(index), digest.hexdigest()[:16]


def cursor_stream(url: str) -> str:
    text = f"feed:{url}"
    return text if len(text) <= 400 else f"feed:sha256:{hashlib.sha256(url.encode()).hexdigest()}"


def _evidence(payload: bytes, encoding: str) -> bytes:
    """The payload as UTF-8 (evidence is kept as text; a Latin-1 feed stays readable)."""
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8", "us-ascii", "ascii"):
        return payload
    try:
        return payload.decode(encoding).encode("utf-8")
    except (LookupError, UnicodeDecodeError):
        return payload


class FeedsSource(Source):
    """Mentions in RSS / Atom / JSON feeds of blogs and news outlets, and people's blog posts."""

    id = "feeds"
    name = "Blogs and news feeds"
    version = "1"
    kind = "social"
    description = "Entries of chosen blog and news feeds that link to tracked outputs."
    settings_model = FeedsSettings
    rate_limits: ClassVar[dict[str, float]] = {}

    def collect(self, ctx: SourceContext) -> Iterator[Page | Skipped]:
        settings = cast(FeedsSettings, self.settings)
        if not settings.feeds:
            return
        matcher, fingerprint = _matcher(ctx)
        resolve = _landing(ctx, settings, matcher)
        if resolve is not None:
            # Pages read from other hosts may name other outputs: read old entries again.
            hosts = ",".join(sorted(settings.landing_hosts))
            fingerprint = hashlib.sha256(f"{fingerprint}|{hosts}".encode()).hexdigest()[:16]
        read = 0
        last_error: HttpError | None = None
        for feed in settings.feeds:
            for url, query in self._requests(ctx, feed):
                try:
                    page = self._read(ctx, feed, url, query, matcher, fingerprint, resolve)
                except HttpError as exc:
                    last_error = exc
                    yield Skipped(ctx.redact(exc.url or url), self._reason(exc), self._status(exc))
                    continue
                read += 1
                if page is not None:
                    yield page
        if read == 0 and last_error is not None:
            raise last_error

    @staticmethod
    def _requests(ctx: SourceContext, feed: FeedConfig) -> Iterable[tuple[str, Identifier | None]]:
        if not feed.is_search:
            return [(feed.url, None)]
        return [
            (feed.url.replace("{doi}", quote(doi, safe="")), Identifier("doi", doi))
            for doi in ctx.targets("doi")
        ]

    @staticmethod
    def _status(exc: HttpError) -> int | None:
        return exc.status if isinstance(exc, UpstreamError) else None

    @staticmethod
    def _reason(exc: HttpError) -> str:
        reason = str(exc)
        if isinstance(exc, UpstreamError) and exc.status in (401, 403):
            reason += " (feeds are read without a login: use the feed's public URL)"
        return reason

    def _read(
        self,
        ctx: SourceContext,
        feed: FeedConfig,
        url: str,
        query: Identifier | None,
        matcher: Matcher,
        fingerprint: str,
        resolve: Callable[[str], list[Identifier]] | None = None,
    ) -> Page | None:
        stream = cursor_stream(url)
        saved: dict[str, Any] = {}
        if query is None and ctx.cursors.get(stream):
            try:
                loaded = orjson.loads(ctx.cursors[stream])
                saved = loaded if isinstance(loaded, dict) else {}
            except orjson.JSONDecodeError:
                saved = {}
        headers = {"Accept": ACCEPT}
        if saved.get("targets") == fingerprint:
            if saved.get("etag"):
                headers["If-None-Match"] = str(saved["etag"])
            if saved.get("last_modified"):
                headers["If-Modified-Since"] = str(saved["last_modified"])
        response = ctx.http.get(url, headers=headers)
        shown = ctx.redact(str(response.request.url) if response.request else url)
        if response.status_code == 304:
            return None
        try:
            document = parse_feed(response.content, shown, response.headers.get("content-type"))
        except FeedError as exc:
            raise BadPayloadError(shown, f"{exc}") from None
        facts = entry_facts(
            document, feed, matcher, collected_at=ctx.collected_at, query=query, resolve=resolve
        )
        cursors: dict[str, str] = {}
        if query is None:
            cursors[stream] = orjson.dumps(
                {
                    "etag": response.headers.get("etag"),
                    "last_modified": response.headers.get("last-modified"),
                    "targets": fingerprint,
                    "read_at": ctx.collected_at.isoformat(),
                    "entries": len(document.entries),
                }
            ).decode()
        return Page(
            request_url=shown,
            payload=_evidence(response.content, document.encoding),
            facts=facts,
            cursors=cursors,
        )


def configured(settings: Mapping[str, Any] | None) -> list[FeedConfig]:
    """The feeds in a stored settings document (invalid ones raise ``ValueError``)."""
    return FeedsSettings.model_validate(settings or {}).feeds


def merge_feeds(
    current: Sequence[FeedConfig], new: Sequence[FeedConfig]
) -> tuple[list[FeedConfig], list[FeedConfig], list[FeedConfig]]:
    """``current`` with the ``new`` feeds added: (all, added, given an owner).

    A feed already there (same ``feed_key``) is kept as it is, except that one without an
    owner takes the owner given now.
    """
    merged = list(current)
    by_key = {feed_key(f.url): n for n, f in enumerate(merged)}
    added: list[FeedConfig] = []
    owned: list[FeedConfig] = []
    for feed in new:
        key = feed_key(feed.url)
        if key not in by_key:
            by_key[key] = len(merged)
            merged.append(feed)
            added.append(feed)
            continue
        known = merged[by_key[key]]
        if feed.owner is not None and known.owner is None and known.kind == feed.kind:
            updated = known.model_copy(update={"owner": feed.owner, "account": feed.account})
            merged[by_key[key]] = updated
            owned.append(updated)
    return merged, added, owned
