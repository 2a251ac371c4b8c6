"""Landing pages: the DOI and canonical URL a publisher's page declares about itself.

``read_landing_page`` reads the ``<meta>`` and ``<link>`` tags of a page (stdlib
``html.parser``; nothing is executed) and picks the DOI by this order, most specific first:

1. ``citation_doi`` (Highwire / Google Scholar tags, also ``bepress_citation_doi``)
2. ``dc.identifier`` with ``scheme="doi"``, then ``DC.Identifier.DOI``
3. ``prism.doi``
4. any other ``dc.identifier`` (or a ``doi`` meta tag) whose content is a DOI
5. a DOI inside ``prism.url``, then the ``canonical`` link, then ``og:url``

Tag names are compared without case. ``LandingResolver`` fetches pages through the shared
``HttpClient`` (timeout, size cap, SSRF guard) and remembers what it found.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin

from reachmeter.matching.extract import _DOI_IN_TEXT, clean_doi
from reachmeter.matching.urls import UrlError, normalize_url

__all__ = ["LandingPage", "LandingResolver", "doi_in_text", "read_landing_page"]

MAX_PAGE_CHARS = 5_000_000
MAX_PAGE_BYTES = 5 * 1024 * 1024

_DOI_TAGS = (
    ("citation_doi", "citation_doi"),
    ("bepress_citation_doi", "citation_doi"),
    ("dc.identifier[doi]", "dc.identifier"),
    ("dc.identifier.doi", "dc.identifier.doi"),
    ("prism.doi", "prism.doi"),
    ("dc.identifier", "dc.identifier"),
    ("doi", "doi"),
)
_URL_TAGS = (("prism.url", "prism.url"), ("canonical", "canonical"), ("og:url", "og:url"))


def doi_in_text(value: str) -> str | None:
    """The first DOI in a meta tag's content (``doi:10...``, a doi.org URL, a DOI in a URL)."""
    text = unquote(value.strip(), errors="replace")
    found = _DOI_IN_TEXT.search(text)
    if not found:
        return None
    suffix = found.group(2)
    if "://" in text[: found.start()]:
        # Inside a URL, a query or fragment is not part of the DOI.
        suffix = suffix.split("?", 1)[0].split("#", 1)[0]
    return clean_doi(found.group(1), suffix)


@dataclass(frozen=True)
class LandingPage:
    """What a page says about itself. ``doi_tag`` names the tag the DOI came from."""

    url: str
    doi: str | None = None
    doi_tag: str | None = None
    canonical_url: str | None = None
    og_url: str | None = None

    @property
    def declared_url(self) -> str | None:
        """The page's own idea of its address: canonical link, else ``og:url``."""
        return self.canonical_url or self.og_url


class _HeadTags(HTMLParser):
    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.values: dict[str, list[str]] = {}

    def _add(self, key: str, value: str | None) -> None:
        if value and value.strip():
            self.values.setdefault(key, []).append(value.strip())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("meta", "link"):
            return
        attributes = {name.lower(): value or "" for name, value in attrs}
        if tag == "meta":
            name = (attributes.get("name") or attributes.get("property") or "").strip().lower()
            if not name:
                return
            scheme = attributes.get("scheme", "").strip().lower()
            content = attributes.get("content")
            if name == "dc.identifier" and scheme == "doi":
                self._add("dc.identifier[doi]", content)
            self._add(name, content)
        else:
            rels = attributes.get("rel", "").lower().split()
            if "canonical" in rels:
                href = attributes.get("href", "")
                try:
                    self._add("canonical", urljoin(self.base_url, href.strip()) if href else "")
                except ValueError:
                    return

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def _absolute(url: str | None, base: str) -> str | None:
    if not url:
        return None
    try:
        return normalize_url(urljoin(base, url))
    except (UrlError, ValueError):
        return None


def read_landing_page(html: str, url: str) -> LandingPage:
    """The DOI (with the tag it came from), canonical link and ``og:url`` of a page."""
    parser = _HeadTags(url)
    try:
        parser.feed(html[:MAX_PAGE_CHARS])
        parser.close()
    except (AssertionError, ValueError):  # pragma: no cover - html.parser is lenient
        pass
    values = parser.values
    canonical = _absolute(next(iter(values.get("canonical", [])), None), url)
    og_url = _absolute(next(iter(values.get("og:url", [])), None), url)
    for key, label in (*_DOI_TAGS, *_URL_TAGS):
        for value in values.get(key, []):
            doi = doi_in_text(value)
            if doi is not None:
                return LandingPage(url, doi, label, canonical, og_url)
    return LandingPage(url, None, None, canonical, og_url)


class LandingResolver:
    """Fetches landing pages through the shared HTTP client and reads them, with a cache.

    A page that cannot be fetched (unsafe address, too large, upstream error) reads as
    ``None`` and is remembered as such, so one bad link is tried once per resolver.
    """

    def __init__(self, client: object, *, cache_size: int = 10_000) -> None:
        from reachmeter.http import HttpClient

        if not isinstance(client, HttpClient):
            raise TypeError("LandingResolver needs a reachmeter.http.HttpClient")
        self._client = client
        self._cache: OrderedDict[str, LandingPage | None] = OrderedDict()
        self._cache_size = cache_size

    def resolve(self, url: str) -> LandingPage | None:
        """The landing page at ``url``, read; ``None`` when it cannot be fetched."""
        from reachmeter.http import HttpError

        try:
            key = normalize_url(url)
        except UrlError:
            return None
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        page: LandingPage | None
        try:
            response = self._client.get(
                key, max_bytes=MAX_PAGE_BYTES, headers={"Accept": "text/html"}
            )
            final_url = str(response.url)
            page = read_landing_page(response.text, final_url)
        except HttpError:
            page = None
        self._cache[key] = page
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return page
