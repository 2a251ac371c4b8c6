"""A test kit for sources: replay recorded responses through an injected transport.

``Replay`` is an ``httpx.MockTransport`` that answers from VCR cassettes (YAML), betamax
recordings (JSON) and plain JSON files routed by URL. A request nothing answers raises
``ReplayMiss`` (an ``AssertionError``), so a test never reaches the network by accident.
Matching ignores the order of query parameters and the polite-pool ``mailto``.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import httpx
import yaml

from reachmeter.http import HttpClient
from reachmeter.settings import Settings

__all__ = ["Replay", "ReplayMiss", "replay_client", "request_key"]

_IGNORED_PARAMS = frozenset({"mailto"})


class ReplayMiss(AssertionError):
    """A request that no recording answers."""


def request_key(method: str, url: str) -> str:
    """The matching key of a request: method, host, unquoted path, sorted query."""
    parts = urlsplit(url)
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k not in _IGNORED_PARAMS
    )
    path = unquote(parts.path).rstrip("/") or "/"
    return f"{method.upper()} {parts.netloc.lower()}{path}?{urlencode(query)}"


Recorded = tuple[int, dict[str, str], bytes]


class Replay(httpx.MockTransport):
    """Answers requests from recordings; keeps the requests it was asked (``requests``)."""

    def __init__(self) -> None:
        self.recorded: dict[str, list[Recorded]] = {}
        self.requests: list[httpx.Request] = []
        self.fallback: Callable[[httpx.Request], httpx.Response] | None = None
        super().__init__(self._handle)

    # -- loading --------------------------------------------------------------------------

    def add(
        self,
        url: str,
        body: bytes | str | Mapping[str, Any] | list[Any],
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        method: str = "GET",
    ) -> Replay:
        """Answer ``url`` with ``body`` (bytes, text, or data sent as JSON)."""
        if isinstance(body, (Mapping, list)):
            content = json.dumps(body).encode()
            headers = {"content-type": "application/json", **(headers or {})}
        else:
            content = body.encode() if isinstance(body, str) else body
        headers = dict(headers or {})
        if headers.pop("content-encoding", "") == "gzip" and content[:2] == b"\x1f\x8b":
            # Replayed bodies are served decoded (a recording's encoding is not what the
            # test is about, and the length header would no longer hold).
            content = gzip.decompress(content)
            headers.pop("content-length", None)
        self.recorded.setdefault(request_key(method, url), []).append(
            (status, dict(headers or {}), content)
        )
        return self

    def add_file(self, url: str, path: Path, *, status: int = 200) -> Replay:
        """Answer ``url`` with a recorded file's bytes (a JSON response body)."""
        return self.add(url, path.read_bytes(), status=status, headers=_JSON)

    def add_vcr(self, path: Path) -> Replay:
        """Load every interaction of a VCR (vcrpy) YAML cassette."""
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for interaction in document.get("interactions") or []:
            request, response = interaction["request"], interaction["response"]
            body = response.get("body") or {}
            content = body.get("string", b"") if isinstance(body, Mapping) else body
            headers = {
                str(k).lower(): str(v[0] if isinstance(v, list) and v else v)
                for k, v in (response.get("headers") or {}).items()
            }
            self.add(
                request["uri"],
                content if isinstance(content, bytes) else str(content).encode(),
                status=int(response["status"]["code"]),
                headers=headers,
                method=request.get("method", "GET"),
            )
        return self

    def add_betamax(self, path: Path) -> Replay:
        """Load every interaction of a betamax JSON recording."""
        document = json.loads(path.read_text(encoding="utf-8"))
        for interaction in document.get("http_interactions") or []:
            request, response = interaction["request"], interaction["response"]
            body = response.get("body") or {}
            content = body.get("string", "").encode()
            headers = {
                str(k).lower(): str(v[0] if isinstance(v, list) and v else v)
                for k, v in (response.get("headers") or {}).items()
            }
            self.add(
                request["uri"],
                content,
                status=int(response["status"]["code"]),
                headers=headers,
                method=request.get("method", "GET"),
            )
        return self

    # -- answering ------------------------------------------------------------------------

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = request_key(request.method, str(request.url))
        answers = self.recorded.get(key)
        if not answers:
            if self.fallback is not None:
                return self.fallback(request)
            known = "\n  ".join(sorted(self.recorded)[:20])
            raise ReplayMiss(f"no recording answers {key}\nrecorded:\n  {known}")
        # Repeated requests replay the recordings in turn, staying on the last one.
        status, headers, content = answers.pop(0) if len(answers) > 1 else answers[0]
        return httpx.Response(status, headers=headers, content=content, request=request)


_JSON = {"content-type": "application/json"}


def replay_client(replay: httpx.BaseTransport, settings: Settings | None = None) -> HttpClient:
    """A shared HTTP client on a replay transport that never sleeps between retries."""
    return HttpClient(
        settings or Settings(contact_email="tests@example.org"),
        transport=replay,
        sleep=lambda _seconds: None,
    )


def replay_of(paths: Iterable[Path]) -> Replay:
    """A replay of VCR cassettes (``.yaml``/``.yml``) and betamax recordings (``.json``)."""
    replay = Replay()
    for path in paths:
        if path.suffix in (".yaml", ".yml"):
            replay.add_vcr(path)
        else:
            replay.add_betamax(path)
    return replay
