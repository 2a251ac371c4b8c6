"""Identifiers: detection and normalisation on top of idutils.

An identifier is a pair of an idutils scheme name (``doi``, ``arxiv``, ``pmid``, ``pmcid``,
``isbn``, ``handle``, ``urn``, ``orcid``, ``ssrn``, ``url``) and its normalised value.
Normalising twice changes nothing. Detection tries schemes in ``SCHEME_ORDER``: the first
scheme idutils recognises wins, so ``doi:10.1/x`` is a DOI, not a Handle, and a doi.org URL
is a DOI, not a URL.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

import idutils

__all__ = [
    "SCHEME_ORDER",
    "Identifier",
    "IdentifierError",
    "normalize",
    "parse_obj_id",
    "to_uri",
]

SCHEME_ORDER = ("doi", "arxiv", "pmcid", "pmid", "orcid", "ssrn", "handle", "isbn", "urn", "url")

_DOI_URL = re.compile(r"^(?:https?://)?(?:dx\.)?doi\.org/(10\.\d{4,9}/\S+)$", re.IGNORECASE)
# A PMID is only a PMID where the text says so: a label or a PubMed URL, never a bare integer.
_PMID_IN_CONTEXT = re.compile(
    r"^(?:pmid:\s*|https?://(?:www\.)?(?:pubmed\.ncbi\.nlm\.nih\.gov|ncbi\.nlm\.nih\.gov/pubmed)/)"
    r"(\d{1,9})/?$",
    re.IGNORECASE,
)
_HANDLE = re.compile(
    r"^(?:hdl:\s*|(?:https?://)?hdl\.handle\.net/|info:hdl/)?(\d+(?:\.[\w-]+)*/\S+)$",
    re.IGNORECASE,
)
_URL_LIKE = re.compile(r"^(?:https?://|www\.)", re.IGNORECASE)
_ARXIV_PREFIX = re.compile(r"^(?:arxiv:)", re.IGNORECASE)
# Landing and PDF URLs of arXiv and PubMed Central stand for the identifier they carry.
_KNOWN_URLS = (
    (
        "arxiv",
        re.compile(r"^https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/(.+?)(?:\.pdf)?/?$", re.I),
    ),
    (
        "pmcid",
        re.compile(
            r"^https?://(?:www\.)?(?:pmc\.ncbi\.nlm\.nih\.gov|ncbi\.nlm\.nih\.gov/pmc)"
            r"/articles/(PMC\d+)/?$",
            re.I,
        ),
    ),
)
_SSRN = re.compile(
    r"^(?:ssrn:|https?://(?:papers\.)?ssrn\.com/(?:sol3/papers\.cfm\?abstract_id=|abstract=))"
    r"(\d{3,9})$",
    re.IGNORECASE,
)


class IdentifierError(ValueError):
    """A value is not an identifier of any known scheme (or not of the scheme asked for)."""


class Identifier(NamedTuple):
    scheme: str
    value: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.value}"


def _normalize_as(value: str, scheme: str) -> str:
    if scheme == "doi":
        return str(idutils.normalize_doi(value)).lower()
    if scheme == "isbn":
        return str(idutils.normalize_isbn(value)).replace("-", "")
    if scheme == "pmcid":
        return value.strip().upper().removeprefix("PMCID:").strip()
    if scheme == "ssrn":
        match = _SSRN.match(value.strip())
        return match.group(1) if match else value.strip()
    if scheme == "pmid":
        match = _PMID_IN_CONTEXT.match(value.strip())
        return match.group(1) if match else value.strip()
    if scheme == "arxiv":
        return _ARXIV_PREFIX.sub("", str(idutils.normalize_arxiv(value)))
    if scheme == "handle":
        match = _HANDLE.match(value.strip())
        return match.group(1) if match else value.strip()
    if scheme == "url":
        from reachmeter.matching.urls import UrlError, normalize_url

        try:
            return normalize_url(value)
        except UrlError as exc:
            raise IdentifierError(str(exc)) from exc
    return str(idutils.normalize_pid(value, scheme))


def _is_scheme(value: str, scheme: str, *, forced: bool = False) -> bool:
    # A forced scheme accepts the bare normalised form, so normalising twice changes nothing.
    if scheme == "ssrn":
        return bool(_SSRN.match(value) or (forced and value.isdigit()))
    if scheme == "pmid":
        return bool(_PMID_IN_CONTEXT.match(value) or (forced and value.isdigit()))
    if scheme == "handle":
        return bool(_HANDLE.match(value)) and not value.lower().startswith(("10.", "doi:"))
    check = getattr(idutils, f"is_{scheme}", None)
    return bool(check and check(value))


@lru_cache(maxsize=65536)
def normalize(value: str, scheme: str | None = None) -> Identifier:
    """The normalised identifier in ``value``; ``scheme`` forces one scheme.

    Raises ``IdentifierError`` when the value is empty or is not of the scheme.
    """
    text = value.strip()
    if not text:
        raise IdentifierError("empty identifier")
    if _URL_LIKE.match(text) and scheme in (
        None,
        "doi",
        "arxiv",
        "pmid",
        "pmcid",
        "orcid",
        "ssrn",
        "handle",
    ):
        # A resolver URL stands for its identifier (www.doi.org, %2F, arXiv and PMC URLs...).
        from reachmeter.matching.extract import resolver_identifier

        resolved = resolver_identifier(text)
        if resolved is not None and scheme in (None, resolved.scheme):
            return resolved
    for known, pattern in _KNOWN_URLS:
        found = pattern.match(text)
        if found and scheme in (None, known) and _is_scheme(found.group(1), known):
            return Identifier(known, _normalize_as(found.group(1), known))
    if scheme is not None:
        scheme = scheme.lower()
        if scheme not in SCHEME_ORDER:
            raise IdentifierError(f"unknown identifier scheme {scheme!r}")
        if not _is_scheme(text, scheme, forced=True):
            raise IdentifierError(f"{text!r} is not a valid {scheme}")
        return Identifier(scheme, _normalize_as(text, scheme))
    for candidate in SCHEME_ORDER:
        if _is_scheme(text, candidate):
            return Identifier(candidate, _normalize_as(text, candidate))
    raise IdentifierError(f"{text!r} is not a recognised identifier")


@lru_cache(maxsize=262144)
def parse_obj_id(obj_id: str) -> Identifier:
    """The identifier of an Event Data ``obj_id`` (usually a doi.org URL), cached.

    The doi.org form is by far the most common and is read without idutils' full detection.
    """
    match = _DOI_URL.match(obj_id.strip())
    if match:
        return Identifier("doi", match.group(1).lower())
    return normalize(obj_id)


def to_uri(identifier: Identifier) -> str:
    """A resolvable URI for an identifier (``https://doi.org/...`` for DOIs)."""
    if identifier.scheme == "url":
        return identifier.value
    if identifier.scheme == "arxiv":
        return f"https://arxiv.org/abs/{identifier.value}"
    if identifier.scheme == "ssrn":
        return f"https://papers.ssrn.com/sol3/papers.cfm?abstract_id={identifier.value}"
    url = idutils.to_url(identifier.value, identifier.scheme, "https")
    return str(url) if url else str(identifier)
