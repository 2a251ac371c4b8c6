"""The shared HTTP client: politeness, retries, size cap, cache and the SSRF guard."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from reachmeter.http import (
    HttpClient,
    ResponseTooLargeError,
    UnsafeURLError,
    UpstreamError,
    redact_url,
)
from reachmeter.settings import Settings

PUBLIC = "93.184.216.34"


class Recorder:
    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]


def _client(handler: Recorder, sleeps: list[float], **kwargs: object) -> HttpClient:
    settings = Settings(contact_email="lib@example.org", http_max_attempts=3, http_backoff=1.0)
    return HttpClient(
        settings,
        transport=httpx.MockTransport(handler),
        resolver=lambda host: [PUBLIC],
        sleep=sleeps.append,
        **kwargs,  # type: ignore[arg-type]
    )


def test_user_agent_names_reachmeter_and_the_contact() -> None:
    handler = Recorder(httpx.Response(200, json={"ok": True}))
    with _client(handler, []) as client:
        assert client.get_json("https://api.example.org/x") == {"ok": True}
    agent = handler.requests[0].headers["User-Agent"]
    assert agent == (
        "ReachMeter/0.1.0 (+https://github.com/reachmeter/reachmeter; mailto:lib@example.org)"
    )


def test_retries_503_with_backoff_and_honours_retry_after() -> None:
    handler = Recorder(
        httpx.Response(503),
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.Response(200, text="done"),
    )
    sleeps: list[float] = []
    with _client(handler, sleeps) as client:
        assert client.get("https://api.example.org/x").text == "done"
    assert sleeps == [1.0, 7.0]
    assert len(handler.requests) == 3


def test_retry_after_as_an_http_date() -> None:
    handler = Recorder(
        httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}),
        httpx.Response(200),
    )
    sleeps: list[float] = []
    client = _client(handler, sleeps, wall_clock=lambda: 1445412500.0)
    client.get("https://api.example.org/x")
    assert sleeps == [10.0]


def test_gives_up_after_max_attempts_with_a_retriable_upstream_error() -> None:
    handler = Recorder(httpx.Response(502))
    sleeps: list[float] = []
    with _client(handler, sleeps) as client, pytest.raises(UpstreamError) as caught:
        client.get("https://api.example.org/x?api_key=SECRET&q=1")
    assert caught.value.status == 502
    assert caught.value.retriable
    assert "SECRET" not in caught.value.url
    assert "SECRET" not in str(caught.value)
    assert sleeps == [1.0, 2.0]


def test_a_404_is_not_retried() -> None:
    handler = Recorder(httpx.Response(404))
    with _client(handler, []) as client, pytest.raises(UpstreamError) as caught:
        client.get("https://api.example.org/x")
    assert (caught.value.status, caught.value.retriable) == (404, False)
    assert len(handler.requests) == 1


def test_timeouts_are_retried() -> None:
    attempts: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        if len(attempts) < 3:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, text="late")

    sleeps: list[float] = []
    client = HttpClient(
        Settings(http_max_attempts=3),
        transport=httpx.MockTransport(handler),
        allow_private=True,
        sleep=sleeps.append,
    )
    assert client.get("https://api.example.org/x").text == "late"
    assert len(sleeps) == 2


def test_responses_over_the_cap_are_refused() -> None:
    handler = Recorder(httpx.Response(200, content=b"x" * 2000))
    with _client(handler, []) as client:
        with pytest.raises(ResponseTooLargeError):
            client.get("https://api.example.org/big", max_bytes=1000)
        assert len(client.get("https://api.example.org/big", max_bytes=5000).content) == 2000


def test_streamed_bodies_without_a_length_are_capped() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter([b"x" * 600, b"y" * 600]))

    client = HttpClient(transport=httpx.MockTransport(handler), allow_private=True)
    with pytest.raises(ResponseTooLargeError):
        client.get("https://api.example.org/big", max_bytes=1000)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.0.0.5/",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[fe80::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://224.0.0.1/",
        "http://0.0.0.0/",
        "http://localhost:8080/",
        "file:///etc/passwd",
        "gopher://example.org/",
    ],
)
def test_the_ssrf_guard_refuses_private_and_odd_addresses(url: str) -> None:
    handler = Recorder(httpx.Response(200))
    with _client(handler, []) as client, pytest.raises(UnsafeURLError):
        client.get(url)
    assert handler.requests == []


def test_the_guard_checks_resolved_addresses_and_redirects() -> None:
    handler = Recorder(httpx.Response(200))
    client = HttpClient(transport=httpx.MockTransport(handler), resolver=lambda host: ["10.1.2.3"])
    with pytest.raises(UnsafeURLError):
        client.get("https://intranet.example.org/")
    redirect = Recorder(
        httpx.Response(302, headers={"Location": "http://127.0.0.1/admin"}), httpx.Response(200)
    )
    with _client(redirect, []) as guarded, pytest.raises(UnsafeURLError):
        guarded.get("https://example.org/go")
    assert [str(r.url) for r in redirect.requests] == ["https://example.org/go"]


def test_redirects_to_public_addresses_are_followed() -> None:
    handler = Recorder(
        httpx.Response(301, headers={"Location": "/final"}), httpx.Response(200, text="here")
    )
    with _client(handler, []) as client:
        response = client.get("https://example.org/start")
    assert response.text == "here"
    assert str(response.url) == "https://example.org/final"


def test_allow_private_lets_tests_and_intranets_through() -> None:
    handler = Recorder(httpx.Response(200, text="ok"))
    client = HttpClient(transport=httpx.MockTransport(handler), allow_private=True)
    assert client.get("http://127.0.0.1:9999/").text == "ok"


def test_per_host_rate_limit_waits_between_requests() -> None:
    handler = Recorder(httpx.Response(200))
    sleeps: list[float] = []
    now = [100.0]
    client = _client(handler, sleeps, clock=lambda: now[0])
    client.set_rate_limit("api.example.org", 2.0)
    client.get("https://api.example.org/a")
    now[0] += 0.1
    client.get("https://api.example.org/b")
    client.get("https://other.example.org/c")
    assert sleeps == [pytest.approx(0.4)]
    with pytest.raises(ValueError, match="positive"):
        client.set_rate_limit("x", 0)


def test_the_cache_answers_a_repeated_get(tmp_path: Path) -> None:
    handler = Recorder(httpx.Response(200, json=[1, 2]))
    now = [1000.0]
    client = _client(handler, [], cache_dir=tmp_path, wall_clock=lambda: now[0])
    assert client.get_json("https://api.example.org/x") == [1, 2]
    assert client.get_json("https://api.example.org/x") == [1, 2]
    assert len(handler.requests) == 1
    now[0] += 90000
    client.get_json("https://api.example.org/x")
    assert len(handler.requests) == 2


def test_invalid_json_is_an_upstream_error() -> None:
    handler = Recorder(httpx.Response(200, text="{not json"))
    with _client(handler, []) as client, pytest.raises(UpstreamError, match="not JSON"):
        client.get_json("https://api.example.org/x")


def test_secrets_never_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    handler = Recorder(httpx.Response(200))
    with caplog.at_level(logging.DEBUG, logger="reachmeter.http"), _client(handler, []) as client:
        client.get("https://api.example.org/x", params={"token": "T0P", "q": "a"})
    assert "T0P" not in caplog.text
    assert "token=REDACTED" in caplog.text
    assert redact_url("https://x.org/?access_token=a&password=b&key=c&ok=1") == (
        "https://x.org/?access_token=REDACTED&password=REDACTED&key=REDACTED&ok=1"
    )


def test_gzip_encoded_responses_are_decoded_once() -> None:
    import gzip

    body = b'{"message": {"is-referenced-by-count": 12}}'
    handler = Recorder(
        httpx.Response(
            200,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            content=gzip.compress(body),
        )
    )
    with _client(handler, []) as client:
        response = client.get("https://api.example.org/works/10.5555/x")
        assert response.content == body
        assert "content-encoding" not in response.headers
        assert client.get_json("https://api.example.org/works/10.5555/x") == {
            "message": {"is-referenced-by-count": 12}
        }


def test_a_post_is_sent_once_through_the_guard_and_the_cap() -> None:
    handler = Recorder(httpx.Response(503))
    sleeps: list[float] = []
    with _client(handler, sleeps) as client:
        with pytest.raises(UpstreamError) as failed:
            client.post("https://hooks.example.org/in", json_body={"a": 1})
        assert (failed.value.status, failed.value.retriable) == (503, True)
        assert len(handler.requests) == 1  # not retried: the caller decides
        assert handler.requests[0].headers["content-type"] == "application/json"
        assert handler.requests[0].content == b'{"a": 1}'
        with pytest.raises(UnsafeURLError):
            client.post("http://127.0.0.1/in", json_body={})
    big = Recorder(httpx.Response(200, content=iter([b"x" * 600, b"y" * 600])))
    settings = Settings(http_max_bytes=1000)
    capped = HttpClient(settings, transport=httpx.MockTransport(big), allow_private=True)
    with pytest.raises(ResponseTooLargeError):
        capped.post("https://api.example.org/token", form={"grant_type": "password"})
    assert big.requests[0].content == b"grant_type=password"
    redirect = Recorder(httpx.Response(302, headers={"location": "https://elsewhere.example/"}))
    with _client(redirect, []) as client, pytest.raises(UpstreamError, match="HTTP 302"):
        client.post("https://hooks.example.org/in", json_body={})
    assert len(redirect.requests) == 1
