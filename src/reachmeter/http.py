"""The one HTTP client every source and resolver uses.

It identifies ReachMeter politely (``User-Agent`` with a contact address), waits a minimum
interval between requests to one host, retries 429/502/503/504 and timeouts with
exponential backoff (honouring ``Retry-After``), caps the size of what it reads, refuses
URLs that point at private, loopback, link-local, multicast or reserved addresses (SSRF),
checks every redirect the same way, and never logs a secret from a query string.

Exceptions, all under ``HttpError``:

- ``UnsafeURLError``: not http(s), or an address the guard refuses.
- ``ResponseTooLargeError``: the body is larger than the cap.
- ``UpstreamError``: the server answered an error or could not be reached; ``status``
  (``None`` when there was no answer), ``retriable`` and ``url`` (secrets redacted).

Tests inject an ``httpx.MockTransport``; with an injected transport host names are not
resolved (only literal IP addresses are checked) unless a ``resolver`` is given, and
``sleep`` can be replaced so no test waits.
"""

from __future__ import annotations

import email.utils
import hashlib
import ipaddress
import json
import logging
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import tenacity

from reachmeter import __version__
from reachmeter.settings import Settings

__all__ = [
    "HttpClient",
    "HttpError",
    "ResponseTooLargeError",
    "UnsafeURLError",
    "UpstreamError",
    "check_address",
    "redact_url",
]

log = logging.getLogger(__name__)

SECRET_PARAMS = frozenset(
    {"api_key", "apikey", "key", "token", "password", "access_token", "secret", "client_secret"}
)
RETRIABLE_STATUS = frozenset({429, 502, 503, 504})
MAX_REDIRECTS = 5

Resolver = Callable[[str], list[str]]


class HttpError(Exception):
    """Anything that went wrong with an outgoing request; ``url`` has secrets redacted."""

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message)
        self.url = redact_url(url) if url else ""


class UnsafeURLError(HttpError):
    """The URL is not http(s), or points at an address the SSRF guard refuses."""


class ResponseTooLargeError(HttpError):
    """The response body is larger than the cap."""


class UpstreamError(HttpError):
    """The server answered with an error, or could not be reached at all."""

    def __init__(
        self, message: str, *, url: str = "", status: int | None = None, retriable: bool = False
    ) -> None:
        super().__init__(message, url=url)
        self.status = status
        self.retriable = retriable
        self.retry_after: float | None = None


def redact_url(url: str) -> str:
    """The URL with the values of secret query parameters replaced by ``REDACTED``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if not parts.query:
        return url
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if not any(name.lower() in SECRET_PARAMS for name, _ in pairs):
        return url
    redacted = [
        (name, "REDACTED" if name.lower() in SECRET_PARAMS else value) for name, value in pairs
    ]
    return urlunsplit(parts._replace(query=urlencode(redacted)))


def _system_resolver(host: str) -> list[str]:
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return sorted({str(info[4][0]) for info in infos})


def check_address(address: str) -> None:
    """Raise ``UnsafeURLError`` unless ``address`` is a public unicast IP address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError as exc:
        raise UnsafeURLError(f"not an IP address: {address!r}") from exc
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    ):
        raise UnsafeURLError(f"refusing a request to a non-public address ({ip})")


def _retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now)


class HttpClient:
    """A polite, guarded, retrying HTTP client (see the module docs). Use it as a context
    manager, or call ``close()``."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        allow_private: bool = False,
        cache_dir: Path | None = None,
        resolver: Resolver | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings or Settings()
        self.allow_private = allow_private
        self.cache_dir = cache_dir
        if resolver is None and transport is None:
            resolver = _system_resolver
        self._resolver = resolver
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._intervals: dict[str, float] = {}
        self._last_request: dict[str, float] = {}
        contact = self.settings.contact_email
        agent = f"ReachMeter/{__version__} (+https://github.com/reachmeter/reachmeter"
        agent += f"; mailto:{contact})" if contact else ")"
        self.user_agent = agent
        self._client = httpx.Client(
            transport=transport,
            headers={"User-Agent": agent},
            timeout=self.settings.http_timeout,
            follow_redirects=False,
        )

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- politeness -----------------------------------------------------------------------

    def set_rate_limit(self, host: str, per_second: float) -> None:
        """At most ``per_second`` requests a second to ``host`` (a minimum interval)."""
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self._intervals[host.lower()] = 1.0 / per_second

    def _wait_turn(self, host: str) -> None:
        interval = self._intervals.get(host)
        if interval is None:
            return
        last = self._last_request.get(host)
        now = self._clock()
        if last is not None and now - last < interval:
            self._sleep(interval - (now - last))
            now = self._clock()
        self._last_request[host] = now

    # -- the guard ------------------------------------------------------------------------

    def _check_url(self, url: httpx.URL) -> None:
        if url.scheme not in ("http", "https"):
            raise UnsafeURLError(f"only http(s) URLs are fetched, not {url.scheme!r}", url=str(url))
        host = url.host
        if not host:
            raise UnsafeURLError("URL without a host", url=str(url))
        if self.allow_private:
            return
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            self._check(host, url)
            return
        if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(
            (".localhost", ".local", ".internal")
        ):
            raise UnsafeURLError(f"refusing a request to {host}", url=str(url))
        if self._resolver is None:
            return
        try:
            addresses = self._resolver(host)
        except OSError as exc:
            raise UpstreamError(
                f"cannot resolve {host}: {exc}", url=str(url), retriable=True
            ) from exc
        if not addresses:
            raise UpstreamError(f"{host} has no address", url=str(url))
        for address in addresses:
            self._check(address, url)

    @staticmethod
    def _check(address: str, url: httpx.URL) -> None:
        try:
            check_address(address)
        except UnsafeURLError as exc:
            raise UnsafeURLError(str(exc), url=str(url)) from None

    # -- the cache ------------------------------------------------------------------------

    def _cache_paths(self, url: httpx.URL, headers: Mapping[str, str]) -> tuple[Path, Path] | None:
        if self.cache_dir is None:
            return None
        accept = headers.get("Accept", headers.get("accept", ""))
        key = hashlib.sha256(f"{url}\n{accept}".encode()).hexdigest()
        folder = self.cache_dir / key[:2]
        return folder / f"{key}.json", folder / f"{key}.body"

    def _from_cache(self, paths: tuple[Path, Path] | None) -> httpx.Response | None:
        if paths is None or not paths[0].is_file() or not paths[1].is_file():
            return None
        try:
            meta = json.loads(paths[0].read_text())
            if self._wall_clock() - float(meta["stored_at"]) > self.settings.http_cache_ttl:
                return None
            body = paths[1].read_bytes()
        except (OSError, ValueError, KeyError):
            return None
        return httpx.Response(
            int(meta["status"]),
            headers=meta["headers"],
            content=body,
            request=httpx.Request("GET", meta["url"]),
        )

    def _to_cache(self, paths: tuple[Path, Path] | None, response: httpx.Response) -> None:
        if paths is None or response.status_code != 200:
            return
        paths[0].parent.mkdir(parents=True, exist_ok=True)
        headers = {
            name: value
            for name, value in response.headers.items()
            if name.lower() in ("content-type", "etag", "last-modified")
        }
        paths[1].write_bytes(response.content)
        paths[0].write_text(
            json.dumps(
                {
                    "url": str(response.url),
                    "status": response.status_code,
                    "headers": headers,
                    "stored_at": self._wall_clock(),
                }
            )
        )

    # -- requests -------------------------------------------------------------------------

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """GET a URL (following checked redirects) and return the successful response.

        Raises ``UnsafeURLError``, ``ResponseTooLargeError`` or ``UpstreamError``.
        """
        try:
            target = httpx.URL(url, params=params) if params else httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise UnsafeURLError(f"invalid URL: {exc}", url=url) from None
        request_headers = dict(headers or {})
        cache_paths = self._cache_paths(target, request_headers)
        cached = self._from_cache(cache_paths)
        if cached is not None:
            return cached
        limit = max_bytes if max_bytes is not None else self.settings.http_max_bytes
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.settings.http_max_attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception(
                lambda exc: isinstance(exc, UpstreamError) and exc.retriable
            ),
            sleep=self._sleep,
            reraise=True,
        )
        response: httpx.Response = retrying(
            self._get_following, target, request_headers, limit, timeout
        )
        self._to_cache(cache_paths, response)
        return response

    def _wait(self, state: tenacity.RetryCallState) -> float:
        backoff = self.settings.http_backoff * (2 ** (state.attempt_number - 1))
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, UpstreamError) and exc.retry_after is not None:
            backoff = exc.retry_after
        return float(min(backoff, self.settings.http_max_wait))

    def _get_following(
        self,
        url: httpx.URL,
        headers: dict[str, str],
        limit: int,
        timeout: float | None,
    ) -> httpx.Response:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            response = self._request_once("GET", current, headers, limit, timeout)
            if response.is_redirect and "location" in response.headers:
                current = current.join(response.headers["location"])
                continue
            return response
        raise UpstreamError("too many redirects", url=str(url))

    def _request_once(
        self,
        method: str,
        url: httpx.URL,
        headers: dict[str, str],
        limit: int,
        timeout: float | None,
        *,
        content: bytes | None = None,
        form: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        shown: str | None = None,
    ) -> httpx.Response:
        """One request through the guard and the rate limit, its body read up to ``limit``
        bytes; an error status raises ``UpstreamError``, a redirect is returned unread."""
        self._check_url(url)
        self._wait_turn(url.host.lower())
        shown = shown or redact_url(str(url))
        log.debug("%s %s", method, shown)
        try:
            with self._client.stream(
                method,
                url,
                headers=headers,
                content=content,
                data=dict(form) if form is not None else None,
                auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            ) as response:
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise ResponseTooLargeError(
                        f"response of {declared} bytes is over the cap of {limit}", url=str(url)
                    )
                if response.is_redirect:
                    response.close()
                    return response
                if response.status_code >= 400:
                    error = UpstreamError(
                        f"HTTP {response.status_code} from {shown}",
                        url=str(url),
                        status=response.status_code,
                        retriable=response.status_code in RETRIABLE_STATUS,
                    )
                    error.retry_after = _retry_after(
                        response.headers.get("retry-after"), self._wall_clock()
                    )
                    raise error
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise ResponseTooLargeError(
                            f"response is over the cap of {limit} bytes", url=str(url)
                        )
                    chunks.append(chunk)
        except httpx.TimeoutException as exc:
            raise UpstreamError(f"timed out: {shown}", url=str(url), retriable=True) from exc
        except httpx.TransportError as exc:
            raise UpstreamError(
                f"cannot reach {shown}: {type(exc).__name__}", url=str(url), retriable=True
            ) from exc
        return httpx.Response(
            response.status_code,
            headers=_decoded_headers(response.headers),
            content=b"".join(chunks),
            request=response.request,
        )

    def get_json(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
        timeout: float | None = None,
    ) -> Any:
        """GET a URL and parse its body as JSON; ``UpstreamError`` if it is not JSON."""
        request_headers = {"Accept": "application/json", **(headers or {})}
        response = self.get(
            url, params=params, headers=request_headers, max_bytes=max_bytes, timeout=timeout
        )
        try:
            return json.loads(response.content)
        except ValueError as exc:
            raise UpstreamError(
                f"response is not JSON: {exc}", url=str(response.url), status=response.status_code
            ) from None

    def post(
        self,
        url: str,
        *,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        shown: str | None = None,
    ) -> httpx.Response:
        """POST a JSON body or a form, once (a POST is not retried here: the caller decides),
        through the same guard, rate limit and size cap; redirects are not followed.

        Returns a 2xx response; raises ``UnsafeURLError``, ``ResponseTooLargeError`` or
        ``UpstreamError`` (``retriable`` for timeouts, 429 and 5xx). ``shown`` is how the URL
        appears in errors (default: with secret query values redacted).
        """
        try:
            target = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise UnsafeURLError(f"invalid URL: {exc}", url=url) from None
        shown = shown or redact_url(str(target))
        sent_headers = dict(headers or {})
        content: bytes | None = None
        if json_body is not None:
            content = json.dumps(json_body, default=str).encode()
            sent_headers.setdefault("Content-Type", "application/json")
        try:
            response = self._request_once(
                "POST",
                target,
                sent_headers,
                self.settings.http_max_bytes,
                timeout,
                content=content,
                form=form,
                auth=auth,
                shown=shown,
            )
        except UpstreamError as exc:
            # A server error on a POST may pass: the caller may try again later.
            exc.retriable = exc.retriable or (exc.status or 0) >= 500
            raise
        if not response.is_success:  # a redirect, which a POST does not follow
            raise UpstreamError(
                f"HTTP {response.status_code} from {shown}",
                url=shown,
                status=response.status_code,
            )
        return response

    def post_json(
        self,
        url: str,
        payload: Any,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """POST ``payload`` as JSON (see ``post``)."""
        return self.post(url, json_body=payload, headers=headers, timeout=timeout)


# The body is kept decoded; headers that describe the encoded body would make httpx decode
# it a second time (a gzip response would fail to read).
_ENCODING_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def _decoded_headers(headers: httpx.Headers) -> list[tuple[str, str]]:
    return [
        (name, value) for name, value in headers.items() if name.lower() not in _ENCODING_HEADERS
    ]
