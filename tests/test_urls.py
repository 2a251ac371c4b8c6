"""URL normalisation, redirector unwrapping and comparison."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reachmeter.matching.urls import (
    UrlError,
    _assemble,
    _normalized_parts,
    _plain_parts,
    normalize_url,
    same_url,
    unwrap_url,
    url_key,
)


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


@pytest.mark.parametrize(
    "url",
    [
        "https://www.tandfonline.com/doi/full/10.1080/0001?src=recsys",
        "https://law.example/briefings/10/",
        "http://192.0.2.1/a",
        "https://x.org",
        "https://x.org?b=2&a=1",
        "https://x.org/a?q=a=b=c&&x+y=1&utm_source=z&flag",
        "https://x.org/a?",
        "https://x.org/(a)/b;c=d,e/@f:g/~h*i!j$k'l+m&n",
        "https://x.org/a?next=/b?c=d:e@f",
    ],
)
def test_plain_urls_skip_url_normalize_and_get_what_it_gives(url: str) -> None:
    plain = _plain_parts(url)
    assert plain is not None
    assert _assemble(*plain) == _assemble(*_normalized_parts(url))


@pytest.mark.parametrize(
    "url",
    [
        "https://xn--bcher-kva.example/",
        "https://ab--c.example/",
        "https://-a.example/",
        "https://X.org/",
        "HTTPS://x.org/",
        "https://x.org./",
        "https://localhost/",
        "https://x.org:8080/",
        "https://user@x.org/",
        "https://x.org/a/../b",
        "https://x.org/./b",
        "https://x.org//a",
        "https://x.org/.well-known/a",
        "https://x.org/%7e",
        "https://x.org/?a=%C3%A9",
        "https://x.org/a#!b",
        "https://x.org/caf\u00e9",
        "https://x.org/[a]",
        "https://" + "a." * 130 + "org/",
    ],
)
def test_urls_url_normalize_may_change_go_through_it(url: str) -> None:
    assert _plain_parts(url) is None


_LABELS = st.text(alphabet="ab9-", min_size=1, max_size=5)
_SEGMENTS = st.one_of(
    st.text(alphabet="aZ09-._~!$&'()*+,;=:@", max_size=6), st.sampled_from([".", "..", ""])
)
_PARAMS = st.text(alphabet="aZ09-._~!$'()*+,;=:@/?", max_size=6)


@given(
    scheme=st.sampled_from(["http", "https"]),
    labels=st.lists(_LABELS, min_size=2, max_size=4),
    segments=st.lists(_SEGMENTS, max_size=4),
    params=st.lists(st.tuples(_PARAMS, _PARAMS), max_size=4),
    has_query=st.booleans(),
)
@settings(max_examples=500, deadline=None)
def test_the_plain_url_path_agrees_with_url_normalize(
    scheme: str,
    labels: list[str],
    segments: list[str],
    params: list[tuple[str, str]],
    has_query: bool,
) -> None:
    path = "".join(f"/{segment}" for segment in segments)
    query = "?" + "&".join(f"{name}={value}" for name, value in params) if has_query else ""
    url = f"{scheme}://{'.'.join(labels)}{path}{query}"
    plain = _plain_parts(url)
    if plain is not None:
        assert _assemble(*plain) == _assemble(*_normalized_parts(url))
