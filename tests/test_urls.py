"""URL normalisation, redirector unwrapping and comparison."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reachmeter.matching.urls import UrlError, normalize_url, same_url, unwrap_url, url_key


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "HTTP://Example.COM:80/a/../b/./c?utm_source=x&b=2&a=1#frag",
            "http://example.com/b/c?a=1&b=2",
        ),
        ("https://example.com:443", "https://example.com/"),
        ("www.example.org/x", "https://www.example.org/x"),
        ("https://x.org/p?fbclid=1&gclid=2&utm_medium=3&id=7", "https://x.org/p?id=7"),
        ("https://x.org/%7e/a%2fb", "https://x.org/~/a%2Fb"),
        ("https://x.org/?r=%ZZ", "https://x.org/?r=%25ZZ"),
    ],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert normalize_url(url) == expected
    assert normalize_url(expected) == expected


@pytest.mark.parametrize(
    "url", ["", "ftp://x.org/a", "javascript:alert(1)", "https://", "https://a b", "x" * 5000]
)
def test_not_urls_are_refused(url: str) -> None:
    with pytest.raises(UrlError):
        normalize_url(url)


def test_same_url_ignores_scheme_www_trailing_slash_and_tracking() -> None:
    assert same_url("http://www.example.org/a/?utm_source=tw", "https://example.org/a")
    assert not same_url("https://example.org/a", "https://example.org/b")
    assert url_key("https://WWW.Example.org/a/") == "example.org/a"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://l.facebook.com/l.php?u=https%3A%2F%2Fexample.org%2Fa&h=AT0",
            "https://example.org/a",
        ),
        (
            "https://www.google.com/url?sa=t&url=https%3A%2F%2Fexample.org%2Fb",
            "https://example.org/b",
        ),
        ("https://www.youtube.com/redirect?q=https://example.org/c", "https://example.org/c"),
        ("https://out.reddit.com/t3_x?url=https%3A%2F%2Fexample.org%2Fd", "https://example.org/d"),
        ("https://href.li/?https://example.org/e", "https://example.org/e"),
        ("https://t.co/abc123", "https://t.co/abc123"),
        (
            "https://www.google.com/search?q=https://example.org",
            "https://www.google.com/search?q=https://example.org",
        ),
        (
            "https://l.facebook.com/l.php?u=javascript:alert(1)",
            "https://l.facebook.com/l.php?u=javascript:alert(1)",
        ),
    ],
)
def test_unwrap_url_follows_redirectors_that_carry_their_target(url: str, expected: str) -> None:
    assert unwrap_url(url) == expected


@given(
    path=st.text(alphabet="abcXYZ019-._~%/", max_size=20),
    params=st.lists(
        st.tuples(st.sampled_from(["a", "b", "utm_source", "id"]), st.text("xyz12", max_size=4)),
        max_size=4,
    ),
)
@settings(max_examples=200, deadline=None)
def test_normalising_a_url_twice_changes_nothing(path: str, params: list[tuple[str, str]]) -> None:
    query = "&".join(f"{name}={value}" for name, value in params)
    url = f"HTTPS://Example.ORG/{path}?{query}#x"
    once = normalize_url(url)
    assert normalize_url(once) == once
