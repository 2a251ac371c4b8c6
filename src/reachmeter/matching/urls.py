"""URLs: normalise, unwrap redirectors, and compare by normalised form.

``normalize_url`` builds on ``url-normalize`` (RFC 3986: scheme and host case, default
ports, dot segments, percent-encoding) and then drops the fragment and tracking parameters
and sorts the remaining query parameters, so two spellings of one page compare equal.
Normalising twice changes nothing. ``unwrap_url`` follows redirectors whose target is
written in the URL itself (``l.facebook.com/l.php?u=...``, ``google.com/url?q=...``); a link
shortener such as ``t.co`` or ``bit.ly`` carries no target and is left as it is.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from url_normalize import url_normalize

__all__ = [
    "MAX_URL_LENGTH",
    "TRACKING_PARAMS",
    "UrlError",
    "host_of",
    "is_tracking_param",
    "normalize_url",
    "same_url",
    "unwrap_url",
    "url_key",
]

# Longer "URLs" are junk or data: URIs in disguise; they are not normalised or matched.
MAX_URL_LENGTH = 4096

TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "mkt_tok",
        "_hsenc",
        "_hsmi",
        "_ga",
        "_gl",
        "ref_src",
        "ref_url",
        "wt.mc_id",
        "si",
    }
)
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "oly_")
# Parameters that carry the target of a redirector, by host (without ``www.``).
_REDIRECTORS: dict[str, tuple[str, ...]] = {
    "l.facebook.com": ("u",),
    "lm.facebook.com": ("u",),
    "m.facebook.com": ("u",),
    "facebook.com": ("u",),
    "l.instagram.com": ("u",),
    "l.messenger.com": ("u",),
    "google.com": ("q", "url"),
    "google.co.uk": ("q", "url"),
    "youtube.com": ("q",),
    "out.reddit.com": ("url",),
    "t.umblr.com": ("z",),
    "href.li": ("",),
    "slack-redir.net": ("url",),
    "duckduckgo.com": ("uddg",),
    "exit.sc": ("url",),
    "steamcommunity.com": ("url",),
    "safelinks.protection.outlook.com": ("url",),
    "nam02.safelinks.protection.outlook.com": ("url",),
    "eur01.safelinks.protection.outlook.com": ("url",),
    "eur02.safelinks.protection.outlook.com": ("url",),
    "eur03.safelinks.protection.outlook.com": ("url",),
    "nam10.safelinks.protection.outlook.com": ("url",),
    "nam11.safelinks.protection.outlook.com": ("url",),
    "nam12.safelinks.protection.outlook.com": ("url",),
    "linkedin.com": ("url",),
    "vk.com": ("to",),
    "away.vk.com": ("to",),
    "t.me": ("url",),
    "news.google.com": ("url",),
    "scholar.google.com": ("url",),
    "bing.com": ("u",),
    "onlinelibrary.wiley.com": ("target",),
}
_REDIRECT_PATHS = {
    "facebook.com": ("/l.php", "/flx/warn/"),
    "google.com": ("/url",),
    "google.co.uk": ("/url",),
    "youtube.com": ("/redirect",),
    "linkedin.com": ("/redir/redirect", "/safety/go"),
    "scholar.google.com": ("/scholar_url",),
    "bing.com": ("/ck/a",),
    "onlinelibrary.wiley.com": ("/action/cookieabsent",),
}
_MAX_UNWRAP = 5
_HOST = re.compile(r"^[a-z][a-z0-9+.-]*://(?:[^/?#@]*@)?(\[[^\]]*\]|[^/?#:]*)", re.IGNORECASE)
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
_NOT_IN_URL = re.compile(r"[\x00\r\n\t ]")
# A URL that url-normalize returns as it is (lower-case scheme and LDH host, no user, port,
# percent sign, fragment or non-ASCII): most links. Together with the checks in
# ``_plain_parts`` (no "--" in the host, no empty or dot segment) it skips url-normalize,
# whose IDNA host check is most of its cost. The query is not taken as it is: it is parsed
# and re-encoded below either way, which gives the same pairs for such a query. The groups
# are atomic: what follows a label, the path or the query is never in its class, so giving
# back characters could not succeed, and a near miss fails at once.
_PLAIN_URL = re.compile(
    r"(https?)://((?>(?:(?>[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)\.){1,20}"
    r"(?>[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)))"
    r"(/[A-Za-z0-9\-._~!$&'()*+,;=:@/]{0,4096}+)?"
    r"(?:\?([A-Za-z0-9\-._~!$&'()*+,;=:@/?]{0,4096}+))?"
)


class UrlError(ValueError):
    """A value is not an http(s) URL that can be normalised."""


def is_tracking_param(name: str) -> bool:
    """Whether a query parameter only tracks the click (``utm_source``, ``fbclid``, ...)."""
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(_TRACKING_PREFIXES)


def host_of(url: str) -> str:
    """The lower-cased host of a URL without a leading ``www.`` ("" when there is none).

    A cheap look that needs no full parse, for deciding whether a URL is worth normalising.
    """
    found = _HOST.match(url)
    if not found:
        return ""
    host = found.group(1).lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


@lru_cache(maxsize=65536)
def normalize_url(url: str) -> str:
    """The normalised form of an http(s) URL (``www.example.org/x`` gets ``https://``).

    Lower-cased scheme and host, no default port, no dot segments, consistent
    percent-encoding, no fragment, no tracking parameters, remaining parameters sorted.
    Raises ``UrlError`` for another scheme, no host, or a URL longer than ``MAX_URL_LENGTH``.
    """
    text = url.strip()
    if not text or len(text) > MAX_URL_LENGTH or _NOT_IN_URL.search(text):
        raise UrlError(f"not a URL: {text[:80]!r}")
    if not _SCHEME.match(text) or text.lower().startswith("www."):
        text = "https://" + text.lstrip("/")
    return _assemble(*(_plain_parts(text) or _normalized_parts(text)))


def _assemble(scheme: str, netloc: str, path: str, query: str) -> str:
    """The URL of url-normalized parts, without tracking parameters, the rest sorted."""
    if query:
        pairs = [
            (name, value)
            for name, value in parse_qsl(query, keep_blank_values=True)
            if not is_tracking_param(name)
        ]
        pairs.sort()
        query = urlencode(pairs, quote_via=quote, safe="/:@!$'()*,;~")
    return urlunsplit((scheme, netloc, path or "/", query, ""))


def _plain_parts(text: str) -> tuple[str, str, str, str] | None:
    """Scheme, host, path and query of a URL url-normalize would not change, else ``None``."""
    found = _PLAIN_URL.fullmatch(text)
    if found is None:
        return None
    scheme, host, path, query = found.group(1, 2, 3, 4)
    # IDNA refuses "--" in 3rd and 4th place ("xn--" labels are punycode) and hosts longer
    # than 253; url-normalize drops empty segments and resolves dot segments.
    if "--" in host or len(host) > 253 or (path and ("//" in path or "/." in path)):
        return None
    return scheme, host, path or "", query or ""


def _normalized_parts(text: str) -> tuple[str, str, str, str]:
    """Scheme, netloc, path and query of a URL after url-normalize (and checks)."""
    scheme = text.split(":", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise UrlError(f"not an http(s) URL: {text[:80]!r}")
    try:
        normalized = url_normalize(text)
        if normalized is None:
            raise UrlError(f"not a URL: {text[:80]!r}")
        parts = urlsplit(normalized)
    except (ValueError, UnicodeError) as exc:
        raise UrlError(f"not a URL: {text[:80]!r}: {exc}") from exc
    if not parts.hostname:
        raise UrlError(f"URL without a host: {text[:80]!r}")
    return parts.scheme, parts.netloc.rstrip("."), parts.path, parts.query


def url_key(url: str) -> str:
    """The key two URLs of one page share: normalised, without scheme, ``www.`` or a
    trailing slash. Raises ``UrlError`` like ``normalize_url``."""
    normalized = normalize_url(url)
    rest = normalized.split("://", 1)[1]
    if rest.startswith("www."):
        rest = rest[4:]
    if "?" not in rest and rest.endswith("/"):
        rest = rest[:-1]
    return rest


def same_url(first: str, second: str) -> bool:
    """Whether two URLs name the same page (compared by ``url_key``)."""
    try:
        return url_key(first) == url_key(second)
    except UrlError:
        return False


def _redirect_target(url: str) -> str | None:
    host = host_of(url)
    names = _REDIRECTORS.get(host)
    if names is None:
        return None
    parts = urlsplit(url)
    paths = _REDIRECT_PATHS.get(host)
    if paths is not None and not parts.path.startswith(paths):
        return None
    if names == ("",):
        # href.li puts the target right after the "?".
        target = unquote(parts.query)
        return target if target.lower().startswith(("http://", "https://")) else None
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    for name in names:
        target = params.get(name, "")
        if target.lower().startswith(("http://", "https://")):
            return target
    return None


def unwrap_url(url: str) -> str:
    """The URL a known redirector points to (following a few nested ones), else ``url``."""
    current = url.strip()
    for _ in range(_MAX_UNWRAP):
        if len(current) > MAX_URL_LENGTH:
            break
        try:
            target = _redirect_target(current)
        except ValueError:
            break
        if not target:
            break
        current = target.strip()
    return current
