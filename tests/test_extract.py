"""Extraction of identifiers from plain text, URLs and HTML, against tables of real cases."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from reachmeter.matching.extract import (
    _LOWER_TRIGGERS,
    _has_label,
    extract,
    extract_html,
    identifiers_in_url,
)
from reachmeter.matching.identifiers import SCHEME_ORDER, Identifier, normalize
from tests.conftest import shared_data

FIXTURES = Path(__file__).parent / "fixtures" / "matching"


def _ids(text: str) -> list[str]:
    return [str(identifier) for identifier in extract(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("See https://doi.org/10.1038/NATURE12373. Great!", ["doi:10.1038/nature12373"]),
        ("doi:10.1016/j.epsl.2011.11.037", ["doi:10.1016/j.epsl.2011.11.037"]),
        ("DOI: 10.1016/J.EPSL.2011.11.037,", ["doi:10.1016/j.epsl.2011.11.037"]),
        ("http://dx.doi.org/10.1016/j.epsl.2011.11.037", ["doi:10.1016/j.epsl.2011.11.037"]),
        ("https://www.doi.org/10.1038%2Fnature12373", ["doi:10.1038/nature12373"]),
        ("doi.org/10.1016/j.epsl.2011.11.037", ["doi:10.1016/j.epsl.2011.11.037"]),
        ("bare 10.1038%2Fnature12373 encoded", ["doi:10.1038/nature12373"]),
        (
            "SICI: 10.1002/(SICI)1521-3978(199806)46:4/5<493::AID-PROP493>3.0.CO;2-P.",
            ["doi:10.1002/(sici)1521-3978(199806)46:4/5<493::aid-prop493>3.0.co;2-p"],
        ),
        (
            "(10.1002/(SICI)1097-4636(199601)30:1<1::AID-JBM1>3.0.CO;2-+)",
            ["doi:10.1002/(sici)1097-4636(199601)30:1<1::aid-jbm1>3.0.co;2-+"],
        ),
        (
            "10.1002/1521-3773(20010105)40:1<225::AID-ANIE225>3.0.CO;2-#",
            ["doi:10.1002/1521-3773(20010105)40:1<225::aid-anie225>3.0.co;2-#"],
        ),
        ("(see doi:10.1000/abc(1)2)", ["doi:10.1000/abc(1)2"]),
        ("[10.1000/xyz]", ["doi:10.1000/xyz"]),
        ("read 10.1234/abc... and 10.1234/def.", ["doi:10.1234/abc", "doi:10.1234/def"]),
        ("cut short: doi.org/10.1371/journa\u2026", []),
        (
            "http://journals.plos.org/plosone/article?id=10.1371%2Fjournal.pone.0000030&utm_source=x",
            [
                "doi:10.1371/journal.pone.0000030",
                "url:http://journals.plos.org/plosone/article?id=10.1371/journal.pone.0000030",
            ],
        ),
        (
            "https://onlinelibrary.wiley.com/doi/abs/10.1002/ece3.1234#abstract",
            [
                "doi:10.1002/ece3.1234",
                "url:https://onlinelibrary.wiley.com/doi/abs/10.1002/ece3.1234",
            ],
        ),
        ("arXiv:2101.00001v2", ["arxiv:2101.00001v2"]),
        ("arxiv: hep-th/9901001", ["arxiv:hep-th/9901001"]),
        ("https://arxiv.org/abs/2101.00001v3", ["arxiv:2101.00001v3"]),
        ("http://arxiv.org/pdf/1310.2590.pdf", ["arxiv:1310.2590"]),
        ("arxiv.org/pdf/math.GT/0309136v2", ["arxiv:math/0309136v2"]),
        ("PMID: 12082125", ["pmid:12082125"]),
        ("pmid 12082125; 12345678", ["pmid:12082125"]),
        ("12082125", []),
        ("https://pubmed.ncbi.nlm.nih.gov/12082125/", ["pmid:12082125"]),
        ("https://www.ncbi.nlm.nih.gov/pubmed/12082125", ["pmid:12082125"]),
        ("https://europepmc.org/article/MED/12082125", ["pmid:12082125"]),
        ("PMC2631623", ["pmcid:PMC2631623"]),
        (
            "https://www.ncbi.nlm.nih.gov/pmc/articles/PMC4852986/?report=classic",
            ["pmcid:PMC4852986"],
        ),
        ("https://pmc.ncbi.nlm.nih.gov/articles/PMC4852986/", ["pmcid:PMC4852986"]),
        ("ISBN 0-9752298-0-X", ["isbn:9780975229804"]),
        ("ISBN-13: 978-3-905673-82-1", ["isbn:9783905673821"]),
        ("ISBN 978-3-905673-82-2", []),
        ("9783905673821", []),
        ("hdl:10013/epic.10033", ["handle:10013/epic.10033"]),
        ("https://hdl.handle.net/10013/epic.10033", ["handle:10013/epic.10033"]),
        ("http://hdl.handle.net/10.1000/abc", ["doi:10.1000/abc"]),
        (
            "https://dspace.mit.edu/handle/1721.1/12345",
            ["handle:1721.1/12345", "url:https://dspace.mit.edu/handle/1721.1/12345"],
        ),
        ("urn:nbn:de:bvb:19-146642.", ["urn:urn:nbn:de:bvb:19-146642"]),
        ("ORCID: 0000-0002-1825-0097", ["orcid:0000-0002-1825-0097"]),
        ("https://orcid.org/0000-0002-1694-233X", ["orcid:0000-0002-1694-233X"]),
        ("ORCID 0000-0002-1825-0098", []),
        ("https://papers.ssrn.com/sol3/papers.cfm?abstract_id=1234567", ["ssrn:1234567"]),
        ("https://ssrn.com/abstract=1234567", ["ssrn:1234567"]),
        ("SSRN: 1234567", ["ssrn:1234567"]),
        ("[paper](https://example.org/a_(b))", ["url:https://example.org/a_(b)"]),
        ("go to www.Example.org/Path/?b=2&a=1#top!", ["url:https://www.example.org/Path/?a=1&b=2"]),
        (
            "https://l.facebook.com/l.php?u=https%3A%2F%2Fdoi.org%2F10.1000%2Fabc&h=AT0",
            ["doi:10.1000/abc"],
        ),
        ("nothing to see here, version 10.5 of the app", []),
        ("", []),
    ],
)
def test_extract_finds_every_real_spelling(text: str, expected: list[str]) -> None:
    assert _ids(text) == expected


def test_extract_html_reads_links_and_text() -> None:
    html = (
        '<p>New paper <a href="/doi/full/10.1080/1465.2016.1">here</a> and '
        '<a href="https://doi.org/10.5555/ABC">doi</a>. PMID: 123456<script>'
        "var x = 'doi:10.9999/hidden';</script></p>"
    )
    found = [str(f.identifier) for f in extract_html(html, "https://www.tandfonline.com/x")]
    assert found == [
        "doi:10.1080/1465.2016.1",
        "url:https://www.tandfonline.com/doi/full/10.1080/1465.2016.1",
        "doi:10.5555/abc",
        "pmid:123456",
    ]


# -- the idutils table ---------------------------------------------------------------------


def _ours(row: dict[str, Any]) -> str | None:
    """Our scheme for a row of idutils' table whose normalised value is of that scheme."""
    scheme = str(row["expected_schemes"][0])
    return scheme if scheme in SCHEME_ORDER and scheme != "url" else None


def _our_form(scheme: str, idutils_normalized: str) -> str:
    if scheme == "doi":
        return idutils_normalized.lower()
    if scheme == "isbn":
        return idutils_normalized.replace("-", "")
    if scheme == "arxiv":
        return idutils_normalized.removeprefix("arXiv:")
    return idutils_normalized


def _idutils_rows() -> list[dict[str, Any]]:
    table = json.loads(shared_data("identifiers", "idutils_test_cases.json").read_text())
    return list(table["identifiers"])


def test_idutils_table_normalises_to_the_same_value() -> None:
    checked = 0
    for row in _idutils_rows():
        scheme = _ours(row)
        if scheme is None:
            continue
        got = normalize(row["input"], scheme)
        assert got == Identifier(scheme, _our_form(scheme, row["normalized"])), row
        assert normalize(got.value, scheme) == got
        checked += 1
    assert checked == 54


def test_idutils_table_labelled_and_linked_identifiers_are_extracted() -> None:
    """Every DOI, Handle, arXiv, PMID, PMCID and ORCID row written with a label, a prefix
    or as a URL is found in running text; bare numbers are not taken for PMIDs or ISBNs."""
    found = 0
    for row in _idutils_rows():
        scheme = _ours(row)
        text: str = row["input"]
        if scheme is None:
            schemes = {i.scheme for i in extract(f"see {text} today")} - {"url"}
            assert schemes <= set(row["expected_schemes"]), row
            continue
        expected = Identifier(scheme, _our_form(scheme, row["normalized"]))
        labelled = text.lower().startswith(
            ("doi", "10.", "http", "hdl", "arxiv", "pmid", "pmc", "urn:", "ads:")
        )
        if scheme in ("doi", "handle", "arxiv", "pmid", "pmcid", "orcid") and labelled:
            assert expected in extract(f"see {text} today"), row
            found += 1
    assert found == 28


# -- the mention table ---------------------------------------------------------------------


def _walk(node: Any, pointer: list[Any]) -> Any:
    for step in pointer:
        node = json.loads(node) if step == "$json" else node[step]
    return node


def _load(path: Path) -> Any:
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    return yaml.safe_load(path.read_text(encoding="utf-8"))


MENTIONS = json.loads((FIXTURES / "mentions.json").read_text())["cases"]


@pytest.mark.parametrize("case", MENTIONS, ids=lambda c: f"{c['file']}:{c['pointer']}")
def test_real_mentions_give_exactly_the_expected_identifiers(case: dict[str, Any]) -> None:
    value = _walk(_load(shared_data(*case["file"].split("/"))), case["pointer"])
    if case["kind"] == "url":
        found = [f.identifier for f in identifiers_in_url(value)]
    elif case["kind"] == "html":
        found = [f.identifier for f in extract_html(value)]
    else:
        found = extract(value)
    assert [str(identifier) for identifier in found] == case["expected"]


# -- properties ----------------------------------------------------------------------------

_SUFFIX = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._;()/:", min_size=1, max_size=30)
_DOIS = st.builds(
    lambda prefix, suffix: f"10.{prefix}/{suffix}",
    st.integers(min_value=1000, max_value=999999),
    _SUFFIX.filter(lambda s: s[-1].isalnum() and s[0].isalnum()),
)
_AROUND = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40)


@given(doi=_DOIS, before=_AROUND, after=_AROUND)
@settings(max_examples=300, deadline=None)
def test_a_doi_in_surrounding_text_is_found(doi: str, before: str, after: str) -> None:
    balanced = doi.count("(") == doi.count(")")
    text = f"{before} {doi} {after}"
    if balanced:
        assert Identifier("doi", doi.lower()) in extract(text)


@given(
    value=st.one_of(
        _DOIS,
        st.builds(lambda n: f"PMC{n}", st.integers(min_value=100, max_value=999999999)),
        st.builds(lambda n: f"arXiv:{n:04d}.{n % 100000:05d}", st.integers(1, 9999)),
        st.builds(lambda n: f"https://example.org/{n}/?utm_source=x&b={n}", st.integers(0, 10**9)),
    )
)
@settings(max_examples=200, deadline=None)
def test_normalising_twice_changes_nothing(value: str) -> None:
    once = normalize(value)
    assert normalize(once.value, once.scheme) == once


@given(text=st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_any_text_is_read_without_error(text: str) -> None:
    for identifier in extract(text):
        assert identifier.scheme in SCHEME_ORDER


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "10." * 200_000,
        "10.1000/" + "a" * 2_000_000,
        "https://" + "a" * 2_000_000,
        "https://x.org/" + "(" * 500_000,
        "doi:10.1000/" + "<" * 300_000 + ">" * 300_000,
        "PMID: " + "1" * 1_000_000,
        "urn:a:" + "b" * 1_000_000,
        "www." * 300_000,
        "\x00\xff\ufffd" * 300_000,
        "https://doi.org/10.1000/%ZZ%E0%A4%A",
    ],
    ids=lambda t: repr(t[:20]),
)
def test_pathological_text_finishes_quickly(text: str) -> None:
    started = time.perf_counter()
    extract(text)
    assert time.perf_counter() - started < 5


def test_junk_gives_no_false_identifiers() -> None:
    junk = bytes(range(256)).decode("latin-1") * 100
    assert [i for i in extract(junk) if i.scheme != "url"] == []
    assert [i.scheme for i in extract("https://doi.org/10.1000/%FF%FE")] == ["url"]
    assert extract("ISBN 1234567890 ISBN 978-0-00-000000-1") == []
    assert extract("PMC PMID ISBN arXiv urn:x ORCID hdl: ssrn") == []


def test_pathological_html_finishes_quickly() -> None:
    html = "<a href='" + "x" * 1_000_000 + "'>" + "<div>" * 100_000 + "<!--" * 10_000
    started = time.perf_counter()
    extract_html(html)
    assert time.perf_counter() - started < 10


@pytest.mark.parametrize("trigger", _LOWER_TRIGGERS)
def test_every_label_is_looked_for_in_a_text_without_urls(trigger: str) -> None:
    assert _has_label(f"see {trigger} 1")
    assert not _has_label("the new study shows that open access matters")


def test_identifiers_in_url_gives_a_new_list_each_time() -> None:
    url = "https://example.org/papers/10.1371/journal.pone.0000001?utm_source=x"
    first = identifiers_in_url(url)
    expected = list(first)
    first.clear()
    assert identifiers_in_url(url) == expected
    assert [str(found.identifier) for found in expected] == [
        "doi:10.1371/journal.pone.0000001",
        "url:https://example.org/papers/10.1371/journal.pone.0000001",
    ]
