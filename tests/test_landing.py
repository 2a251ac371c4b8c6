"""Landing pages: the DOI and canonical URL a page declares, and fetching it safely."""

from __future__ import annotations

import json

import httpx
import pytest

from reachmeter.http import HttpClient
from reachmeter.matching.landing import LandingResolver, read_landing_page
from reachmeter.matching.urls import normalize_url
from tests.conftest import shared_data


def _cases() -> list[dict[str, str]]:
    return list(json.loads(shared_data("landing-pages", "expected.json").read_text()))


def test_all_six_landing_pages_give_exactly_the_expected_doi() -> None:
    for case in _cases():
        html = shared_data("landing-pages", case["file"]).read_text(errors="replace")
        page = read_landing_page(html, case["page_url"])
        assert page.doi == case["expected_doi"], case["file"]


def test_the_tag_order_prefers_citation_doi_and_skips_non_doi_identifiers() -> None:
    tags = {
        case["file"]: read_landing_page(
            shared_data("landing-pages", case["file"]).read_text(errors="replace"),
            case["page_url"],
        ).doi_tag
        for case in _cases()
    }
    assert tags == {
        "PMC4852986": "citation_doi",
        "mnsc.2016.2427": "dc.identifier",
        "A_Modeler_s_Tale": "dc.identifier",
        "18594": "citation_doi",
        "s13054-016-1322-5": "citation_doi",
        "djw160.full": "citation_doi",
    }


@pytest.mark.parametrize(
    ("name", "canonical", "og_url"),
    [
        (
            "work.html",
            "http://dx.plos.org/10.1371/journal.pone.0000030",
            "http://dx.plos.org/10.1371/journal.pone.0000030",
        ),
        (
            "work_canonical.html",
            "http://journals.plos.org/plosone/article?id=10.1371%2Fjournal.pone.0000030",
            None,
        ),
        (
            "work_opengraph.html",
            None,
            "http://journals.plos.org/plosone/article?id=10.1371%2Fjournal.pone.0000030",
        ),
    ],
)
def test_lagotto_pages_give_their_canonical_and_og_url(
    name: str, canonical: str | None, og_url: str | None
) -> None:
    html = shared_data("lagotto", name).read_text(errors="replace")
    page = read_landing_page(
        html, "http://www.plosone.org/article/info:doi/10.1371/journal.pone.0000030"
    )
    assert page.canonical_url == (normalize_url(canonical) if canonical else None)
    assert page.og_url == (normalize_url(og_url) if og_url else None)
    assert page.doi == "10.1371/journal.pone.0000030"


@pytest.mark.parametrize(
    ("html", "doi", "tag"),
    [
        (
            '<meta name="dc.identifier" scheme="doi" content="10.1001/A">',
            "10.1001/a",
            "dc.identifier",
        ),
        (
            '<meta name="DC.Identifier.DOI" content="doi:10.1002/b">',
            "10.1002/b",
            "dc.identifier.doi",
        ),
        ('<meta name="prism.doi" content="https://doi.org/10.1003/c">', "10.1003/c", "prism.doi"),
        ('<meta name="prism.url" content="https://x.org/10.1004/d?x=1">', "10.1004/d", "prism.url"),
        ('<link rel="canonical" href="/articles/10.1005/e">', "10.1005/e", "canonical"),
        ('<meta name="dc.identifier" content="12345">', None, None),
        ("<meta name=citation_doi content=>" * 10_000, None, None),
    ],
)
def test_meta_tags(html: str, doi: str | None, tag: str | None) -> None:
    page = read_landing_page(f"<html><head>{html}</head></html>", "https://x.org/p")
    assert (page.doi, page.doi_tag) == (doi, tag)


def test_resolver_fetches_through_the_client_once_and_refuses_private_addresses() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(200, html='<meta name="citation_doi" content="10.1009/z">')

    client = HttpClient(
        transport=httpx.MockTransport(handler), resolver=lambda host: ["93.184.216.34"]
    )
    resolver = LandingResolver(client)
    first = resolver.resolve("https://publisher.example/article?utm_source=x")
    assert first is not None
    assert first.doi == "10.1009/z"
    assert resolver.resolve("https://publisher.example/article") is first
    assert calls == ["https://publisher.example/article"]
    assert resolver.resolve("http://127.0.0.1/admin") is None
    assert resolver.resolve("http://169.254.169.254/latest/meta-data") is None
    assert calls == ["https://publisher.example/article"]
