"""Extraction: the identifiers and URLs written in plain text, HTML and URLs.

idutils validates and normalises one identifier at a time; this module finds them in what
people write. Detection order (written down, as idutils does):

1. URLs (``http(s)://`` or ``www.``) are cut out of the text first. Each is unwrapped if a
   known redirector carries its target, then read by ``identifiers_in_url``: a resolver URL
   (doi.org, hdl.handle.net, arxiv.org, PubMed, PMC, Europe PMC, orcid.org, SSRN) stands for
   its identifier; a repository handle URL (``/handle/1721.1/123``) or a page whose path or
   query carries a DOI yields that identifier as well as the URL itself; any other URL is a
   ``url`` identifier.
2. In the rest of the text: DOIs (bare, ``doi:``, percent-encoded, SICI DOIs with ``<>``,
   ``#``, ``;``, ``+`` and brackets), and identifiers that are only taken with a label that
   says what they are: ``arXiv:``, ``PMID:``, ``PMC``, ``ISBN``, ``hdl:``, ``urn:``,
   ``ORCID``, ``SSRN``. A bare integer is never a PMID, a bare number never an ISBN.

Trailing punctuation, a "..." and unbalanced closing brackets are dropped; a URL or DOI
with "…" glued to its end was cut short by the platform and is not used at all. Every pattern
is bounded, so no input (binary junk, a megabyte without a space) makes the scan slower
than linear; texts longer than ``MAX_TEXT_CHARS`` are read up to that length.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from functools import lru_cache
from html.parser import HTMLParser
from typing import NamedTuple
from urllib.parse import SplitResult, parse_qsl, unquote, urljoin, urlsplit

import idutils

from reachmeter.matching.identifiers import Identifier, IdentifierError, normalize
from reachmeter.matching.urls import (
    MAX_URL_LENGTH,
    UrlError,
    host_of,
    normalize_url,
    unwrap_url,
)

__all__ = [
    "MAX_TEXT_CHARS",
    "Found",
    "clean_doi",
    "extract",
    "extract_found",
    "extract_html",
    "identifiers_in_url",
    "resolver_identifier",
    "scan",
]

MAX_TEXT_CHARS = 1_000_000
MAX_HTML_CHARS = 5_000_000

# How an identifier was found (the matcher turns these into Event Data methods).
LITERAL = "literal"  # written out: doi:10..., a bare DOI, PMID: 123, a doi.org URL
URL_PATTERN = "url-pattern"  # a resolver or repository URL of the identifier
IN_URL = "in-url"  # a DOI in the path or query of some page's URL
URL = "url"  # the URL itself

_DOI_PREFIX = r"10\.\d{4,9}(?:\.\d{1,9}){0,5}"
# A DOI suffix: anything but space and quotes; "<...>" only as a SICI group (no space).
_DOI_SUFFIX = r"(?:[^\s\"<>\u00a0\u3000]|<[^\s<>\"]{1,80}>){1,1000}"
_DOI_IN_TEXT = re.compile(rf"(?<![\w.])({_DOI_PREFIX})(?:/|%2[fF])({_DOI_SUFFIX})")
_DOI_WHOLE = re.compile(rf"^({_DOI_PREFIX})/(.{{1,1000}})$", re.DOTALL)
_URL_IN_TEXT = re.compile(
    r"(?<![\w@/.])(?:https?://|www\.|(?:dx\.)?doi\.org/|arxiv\.org/|hdl\.handle\.net/|orcid\.org/"
    r"|pubmed\.ncbi\.nlm\.nih\.gov/)(?:[^\s<>\"'`{}|\\^\u00a0\u2000-\u200b\u3000]|<[^\s<>\"]{1,80}>){1,4096}",
    re.IGNORECASE,
)
_LABELLED: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    (
        "arxiv",
        "arxiv",
        re.compile(
            r"\barxiv(?:\.org)?\s{0,3}:?\s{0,3}((?:(?:[a-z-]{2,20}(?:\.[a-z]{2})?/)?\d{4}\.\d{4,5}|[a-z-]{2,20}(?:\.[a-z]{2})?/\d{7})"
            r"(?:v\d{1,3})?)(?![\w.])",
            re.IGNORECASE,
        ),
    ),
    ("pmid", "pmid", re.compile(r"\bpmid\s{0,3}:?\s{0,3}(\d{1,9})(?![\w.])", re.IGNORECASE)),
    ("pmc", "pmcid", re.compile(r"(?<![\w/])(PMC\d{3,9})(?![\w.])", re.IGNORECASE)),
    (
        "isbn",
        "isbn",
        re.compile(
            r"\bisbn(?:-1[03])?\s{0,3}:?\s{0,3}((?:97[89][\s-]?)?\d(?:[\s-]?\d){8}[\s-]?[\dxX])"
            r"(?![\w-])",
            re.IGNORECASE,
        ),
    ),
    (
        "hdl",
        "handle",
        re.compile(r"\bhdl\s{0,3}:\s{0,3}(\d{1,9}(?:\.[\w-]{1,40}){0,5}/[^\s\"<>]{1,300})", re.I),
    ),
    ("urn:", "urn", re.compile(r"\b(urn:[a-z0-9][a-z0-9-]{0,31}:[^\s\"<>]{1,500})", re.I)),
    (
        "orcid",
        "orcid",
        re.compile(r"\borcid(?:\s{0,3}id)?\s{0,3}:?\s{0,3}(\d{4}-\d{4}-\d{4}-\d{3}[\dX])\b", re.I),
    ),
    ("ssrn", "ssrn", re.compile(r"\bssrn(?:\s{0,3}id)?\s{0,3}:?\s{0,3}(\d{4,9})\b", re.IGNORECASE)),
)
_LOWER_TRIGGERS = tuple(trigger for trigger, _, _ in _LABELLED)
_CONTROL = re.compile(r"[\x00-\x1f]")
_TRAILING = ".,;:!?'\"*_~\u2026\u00bb\u201d\u2019"
_TRAILING_BUT_ELLIPSIS = _TRAILING.replace("\u2026", "")
_PAIRS = {")": "(", "]": "[", "}": "{", ">": "<"}

_ARXIV_PATH = re.compile(
    r"^/(?:abs|pdf|html|format)/([a-z-]{2,20}(?:\.[a-z]{2})?/\d{7}|\d{4}\.\d{4,5})(v\d{1,3})?"
    r"(?:\.pdf)?/?$",
    re.IGNORECASE,
)
_PUBMED_PATH = re.compile(r"^/(?:pubmed/)?(\d{1,9})/?$")
_PMC_PATH = re.compile(r"^/(?:pmc/)?articles/(PMC\d{3,9})(?:/.*)?$", re.IGNORECASE)
_EUROPEPMC_PATH = re.compile(
    r"^/(?:abstract|article|articles|api/fulltextRepo)/(MED|PMC)/(PMC\d{3,9}|\d{1,9})/?",
    re.IGNORECASE,
)
_ORCID_PATH = re.compile(r"^/(\d{4}-\d{4}-\d{4}-\d{3}[\dX])/?$", re.IGNORECASE)
_SSRN_ID = re.compile(r"^\d{1,9}$")
_SSRN_PATH = re.compile(r"^/abstract=(\d{1,9})/?$", re.IGNORECASE)
_HANDLE_PATH = re.compile(r"^/(\d{1,9}(?:\.[\w-]{1,40}){0,5}/[^?#]{1,300})$")
# DSpace and similar repositories: https://repo.example.edu/handle/1721.1/12345
_REPOSITORY_HANDLE = re.compile(r"/handle/(\d{1,9}(?:\.\d{1,9}){0,5}/[\w.-]{1,100})(?:/|$)")
_DOI_HOSTS = frozenset({"doi.org", "dx.doi.org"})
_NCBI_HOSTS = frozenset({"ncbi.nlm.nih.gov", "pubmed.ncbi.nlm.nih.gov", "pmc.ncbi.nlm.nih.gov"})
_ARXIV_HOSTS = frozenset({"arxiv.org", "export.arxiv.org", "xxx.lanl.gov"})
_SSRN_HOSTS = frozenset({"ssrn.com", "papers.ssrn.com"})
_ORCID_HOSTS = frozenset({"orcid.org", "sandbox.orcid.org"})
_RESOLVER_HOSTS = frozenset(
    {
        *_DOI_HOSTS,
        "hdl.handle.net",
        *_ARXIV_HOSTS,
        *_NCBI_HOSTS,
        "europepmc.org",
        *_ORCID_HOSTS,
        *_SSRN_HOSTS,
    }
)


class Found(NamedTuple):
    """One identifier found: what it is, how it was found, and the text it came from."""

    identifier: Identifier
    how: str
    raw: str


def _strip_trailing(value: str) -> str:
    """Drop trailing punctuation, ellipses and unbalanced closing brackets."""
    while value:
        if value.endswith("..."):
            value = value[:-3]
            continue
        last = value[-1]
        if last in _TRAILING:
            value = value[:-1]
            continue
        opener = _PAIRS.get(last)
        if opener is not None and value.count(opener) < value.count(last):
            value = value[:-1]
            continue
        break
    return value


def clean_doi(prefix: str, suffix: str) -> str | None:
    """The normalised (lower-cased) DOI of a prefix and a raw suffix, or ``None``.

    Percent-encoding is decoded; trailing punctuation and unbalanced brackets go.
    """
    if "%" in suffix:
        suffix = unquote(suffix, errors="replace")
    suffix = _strip_trailing(suffix.strip())
    if not suffix or "\ufffd" in suffix or _CONTROL.search(suffix):
        return None
    return f"{prefix}/{suffix}".lower()


def _doi_from_fragment(text: str) -> str | None:
    found = _DOI_IN_TEXT.search(text)
    if not found:
        return None
    return clean_doi(found.group(1), found.group(2))


def _handle_or_doi(value: str) -> Identifier | None:
    value = _strip_trailing(unquote(value, errors="replace"))
    if value.startswith("10."):
        whole = _DOI_WHOLE.match(value)
        doi = clean_doi(whole.group(1), whole.group(2)) if whole else None
        return Identifier("doi", doi) if doi else None
    try:
        return normalize(value, "handle")
    except IdentifierError:
        return None


def resolver_identifier(url: str) -> Identifier | None:
    """The identifier a resolver URL stands for (``https://doi.org/10.1/x`` is that DOI,
    ``arxiv.org/abs/2101.00001v2`` that arXiv id), or ``None`` for any other URL."""
    host = host_of(url)
    if host not in _RESOLVER_HOSTS:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return _resolved(host, parts)


def _resolved(host: str, parts: SplitResult) -> Identifier | None:
    """The identifier of a URL on a resolver host (``_RESOLVER_HOSTS``), split already."""
    path = parts.path
    if host in _DOI_HOSTS:
        found = _DOI_IN_TEXT.match(unquote(path[1:], errors="replace"))
        if found:
            # In a resolver URL a "#" or "?" is never part of the DOI (it would be %23, %3F).
            doi = clean_doi(found.group(1), found.group(2))
            return Identifier("doi", doi) if doi else None
        return None
    if host == "hdl.handle.net":
        found_handle = _HANDLE_PATH.match(path)
        return _handle_or_doi(found_handle.group(1)) if found_handle else None
    if host in _ARXIV_HOSTS:
        found = _ARXIV_PATH.match(path)
        if found:
            try:
                return normalize(found.group(1) + (found.group(2) or ""), "arxiv")
            except IdentifierError:
                return None
        return None
    if host in _NCBI_HOSTS:
        found = _PUBMED_PATH.match(path)
        if found and (host == "pubmed.ncbi.nlm.nih.gov" or path.startswith("/pubmed/")):
            return Identifier("pmid", found.group(1).lstrip("0") or "0")
        found = _PMC_PATH.match(path)
        if found and (host == "pmc.ncbi.nlm.nih.gov" or path.startswith("/pmc/")):
            return Identifier("pmcid", found.group(1).upper())
        return None
    if host == "europepmc.org":
        if found := _EUROPEPMC_PATH.match(path):
            kind, value = found.group(1).upper(), found.group(2).upper()
            if kind == "PMC" or value.startswith("PMC"):
                pmc = value if value.startswith("PMC") else f"PMC{value}"
                return Identifier("pmcid", pmc)
            return Identifier("pmid", value.lstrip("0") or "0")
        return None
    if host in _ORCID_HOSTS:
        if (found := _ORCID_PATH.match(path)) and idutils.is_orcid(found.group(1)):
            return Identifier("orcid", found.group(1).upper())
        return None
    if host in _SSRN_HOSTS:
        if found := _SSRN_PATH.match(path):
            return Identifier("ssrn", found.group(1))
        if path.lower().startswith("/sol3/papers.cfm"):
            for name, value in parse_qsl(parts.query):
                if name.lower() == "abstract_id" and _SSRN_ID.match(value):
                    return Identifier("ssrn", value)
        return None
    return None


def identifiers_in_url(url: str) -> list[Found]:
    """What a URL (from a link, a card or a text) names, most specific first.

    A resolver URL gives its identifier only. Another URL gives any repository handle or
    DOI it carries, then itself as a ``url`` identifier (normalised). Junk gives nothing.
    """
    return list(_identifiers_in_url(url))


# A popular link is posted again and again, and what a URL names depends on it alone. Kept
# small: most URLs are seen once, and a hit only saves about 10-25 us.
@lru_cache(maxsize=4096)
def _identifiers_in_url(url: str) -> tuple[Found, ...]:
    raw = url.strip()
    if not raw or len(raw) > MAX_URL_LENGTH:
        return ()
    if "://" not in raw[:12]:
        raw = "https://" + raw
    target = unwrap_url(raw)
    try:
        parts = urlsplit(target)
    except ValueError:
        return ()
    host = host_of(target)
    if host in _RESOLVER_HOSTS and (resolved := _resolved(host, parts)) is not None:
        return (Found(resolved, URL_PATTERN if resolved.scheme != "doi" else LITERAL, raw),)
    found: list[Found] = []
    if "/handle/" in parts.path and (handle := _REPOSITORY_HANDLE.search(parts.path)):
        with_handle = _handle_or_doi(handle.group(1))
        if with_handle is not None:
            found.append(Found(with_handle, URL_PATTERN, raw))
    if "10." in target:
        doi = _doi_from_fragment(unquote(parts.path, errors="replace"))
        if doi is None and parts.query:
            for _, value in parse_qsl(parts.query):
                if "10." in value and (doi := _doi_from_fragment(value)):
                    break
        if doi is not None:
            found.append(Found(Identifier("doi", doi), IN_URL, raw))
    with contextlib.suppress(UrlError):
        found.append(Found(Identifier("url", normalize_url(target)), URL, raw))
    return tuple(found)


def _truncated(token: str) -> bool:
    # Platforms mark text they cut with "…" glued to the last word: "doi.org/10.1371/journa…".
    return token.rstrip(_TRAILING_BUT_ELLIPSIS).endswith("\u2026")


def _url_spans(text: str) -> Iterator[tuple[int, int, str]]:
    """Each URL's span, and the URL ("" for a truncated one, which is cut out but unused)."""
    for match in _URL_IN_TEXT.finditer(text):
        token = match.group(0)
        url = "" if _truncated(token) else _strip_trailing(token)
        yield match.start(), match.end(), url if "." in url[8:] else ""


def _has_label(lowered: str) -> bool:
    # Most texts name nothing; this is ``any(t in lowered for t in _LOWER_TRIGGERS)``
    # written out, which is twice as fast (tested against ``_LOWER_TRIGGERS``).
    return (
        "arxiv" in lowered
        or "pmid" in lowered
        or "pmc" in lowered
        or "isbn" in lowered
        or "hdl" in lowered
        or "urn:" in lowered
        or "orcid" in lowered
        or "ssrn" in lowered
    )


def scan(text: str) -> tuple[list[str], list[Found]]:
    """The raw URLs in a text, and the identifiers written outside them (not yet matched).

    The cheap first half of ``extract_found``: URLs are neither unwrapped nor normalised,
    so a caller that only cares about some hosts can skip the rest.
    """
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS]
    urls: list[str] = []
    has_url = "://" in text or "www." in text or ".org/" in text or "handle.net/" in text
    lowered: str | None = None
    if not has_url and "10." not in text:
        lowered = text.lower()
        if not _has_label(lowered):
            return urls, []
    rest = text
    if has_url:
        pieces: list[str] = []
        position = 0
        for start, end, url in _url_spans(text):
            if url:
                urls.append(url)
            pieces.append(text[position:start])
            position = end
        if pieces:
            pieces.append(text[position:])
            rest = " ".join(pieces)
    found: list[Found] = []
    if "10." in rest:
        for match in _DOI_IN_TEXT.finditer(rest):
            if _truncated(match.group(0)):
                continue
            doi = clean_doi(match.group(1), match.group(2))
            if doi is not None:
                found.append(Found(Identifier("doi", doi), LITERAL, match.group(0)))
    if lowered is None or rest is not text:
        lowered = rest.lower()
    for trigger, scheme, pattern in _LABELLED:
        if trigger not in lowered:
            continue
        for match in pattern.finditer(rest):
            value = _strip_trailing(match.group(1))
            identifier = _labelled(scheme, value)
            if identifier is not None:
                found.append(Found(identifier, LITERAL, match.group(0)))
    return urls, found


def _labelled(scheme: str, value: str) -> Identifier | None:
    if scheme == "isbn":
        digits = re.sub(r"[\s-]", "", value)
        if len(digits) not in (10, 13) or not idutils.is_isbn(digits):
            return None
        value = digits
    elif scheme == "urn" and not idutils.is_urn(value):
        return None
    elif scheme == "handle":
        return _handle_or_doi(value)
    try:
        return normalize(value, scheme)
    except IdentifierError:
        return None


def extract_found(text: str) -> list[Found]:
    """Every identifier in a plain text, in the order of the detection rules, once each."""
    urls, found = scan(text)
    from_urls = [item for url in urls for item in identifiers_in_url(url)]
    return _unique([*from_urls, *found])


def _unique(found: list[Found]) -> list[Found]:
    seen: set[Identifier] = set()
    unique: list[Found] = []
    for item in found:
        if item.identifier not in seen:
            seen.add(item.identifier)
            unique.append(item)
    return unique


def extract(text: str) -> list[Identifier]:
    """The normalised identifiers (and URLs) in a plain text, once each."""
    return [item.identifier for item in extract_found(text)]


class _LinkText(HTMLParser):
    """Collects the links and the visible text of an HTML fragment or page."""

    def __init__(self, base_url: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.links: list[str] = []
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "a":
            for name, value in attrs:
                if name == "href" and value:
                    self._add_link(value)
        elif tag in ("br", "p", "div", "li"):
            self.text.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        elif tag in ("p", "div", "li", "a"):
            self.text.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)

    def _add_link(self, href: str) -> None:
        href = href.strip()
        if self.base_url and not href.lower().startswith(("http://", "https://")):
            try:
                href = urljoin(self.base_url, href)
            except ValueError:
                return
        if href.lower().startswith(("http://", "https://")):
            self.links.append(href)


def extract_html(html: str, base_url: str | None = None) -> list[Found]:
    """The identifiers in an HTML fragment or page: its links (resolved against
    ``base_url``), then what its visible text says. Read up to ``MAX_HTML_CHARS``."""
    parser = _LinkText(base_url)
    try:
        parser.feed(html[:MAX_HTML_CHARS])
        parser.close()
    except (AssertionError, ValueError):  # pragma: no cover - html.parser is lenient
        pass
    found = [item for link in parser.links for item in identifiers_in_url(link)]
    found.extend(extract_found("".join(parser.text)))
    return _unique(found)
