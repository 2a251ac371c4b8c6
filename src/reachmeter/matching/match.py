"""Matching: from what a source saw to the tracked outputs it is about (the percolator).

Every match records Event Data's ``method`` and ``verification``:

==========================  ======================  =============================================
method                      verification            when
==========================  ======================  =============================================
``doi-literal``             ``literal``             a DOI written out (``doi:``, bare, doi.org)
``identifier-literal``      ``literal``             arXiv, PMID, PMCID, ISBN, Handle, URN, SSRN
                                                    or ORCID written out with its label
``url-pattern``             ``literal``             a resolver or repository URL (arxiv.org,
                                                    PubMed, PMC, hdl.handle.net, ``/handle/``)
``landing-page-url``        ``doi-in-url``          a DOI in the path or query of a page's URL
``landing-page-url``        ``checked-url-exact``   the URL equals an output's URL (normalised)
``landing-page-url``        ``checked-url-basic``   equal up to scheme, ``www.``, trailing slash
``landing-page-meta-tag``   ``checked-url-basic``   a fetched page's DOI tag, and the page's
                                                    canonical / og:url is the page itself
``landing-page-meta-tag``   ``unverified``          a fetched page's DOI tag, nothing more
``landing-page-meta-tag``   ``lookup``              a fetched page's canonical / og:url is an
                                                    output's URL
==========================  ======================  =============================================

An identifier belongs to the output that holds it now; merged outputs hand their
identifiers to the kept one, and ``mentions_of`` counts the events of every output merged
into the one asked about. Events that match nothing keep no row here and are matched again
by ``match_events`` / ``reachmeter match`` when outputs are added.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from reachmeter.matching.extract import (
    IN_URL,
    LITERAL,
    URL_PATTERN,
    Found,
    extract_html,
    identifiers_in_url,
    scan,
)
from reachmeter.matching.identifiers import Identifier
from reachmeter.matching.landing import LandingPage
from reachmeter.matching.urls import UrlError, host_of, normalize_url, url_key
from reachmeter.store.corrections import rejected_matches
from reachmeter.store.mentions import add_first_mentions, event_author
from reachmeter.store.schema import Event, EventMatch, Meta, Output, OutputIdentifier

__all__ = [
    "LAST_EVENT_KEY",
    "Match",
    "MatchSummary",
    "Matcher",
    "OutputIndex",
    "match_events",
    "match_new_events",
    "mentions_of",
    "normalize_output_urls",
]

LAST_EVENT_KEY = "matching.last_event_id"
_BATCH = 5000
_ARXIV_VERSION = re.compile(r"v\d{1,3}$")


class Match(NamedTuple):
    """One output a mention is about, the identifier that tied them, and how."""

    output_id: int
    identifier: Identifier
    method: str
    verification: str


class OutputIndex:
    """The identifiers of tracked outputs, in memory, for fast lookups.

    URLs are keyed by ``url_key``; the hosts of output URLs are kept so that a URL on
    any other host is dismissed without being normalised.
    """

    def __init__(self, rows: Iterable[tuple[int, str, str]] = ()) -> None:
        self.by_identifier: dict[Identifier, int] = {}
        self.by_url_key: dict[str, tuple[int, str]] = {}
        self.hosts: set[str] = set()
        for output_id, scheme, value in rows:
            self.add(output_id, Identifier(scheme, value))

    def add(self, output_id: int, identifier: Identifier) -> None:
        """Track one (normalised) identifier of an output."""
        self.by_identifier[identifier] = output_id
        if identifier.scheme == "url":
            try:
                key = url_key(identifier.value)
            except UrlError:
                return
            self.by_url_key.setdefault(key, (output_id, identifier.value))
            self.hosts.add(host_of(identifier.value))

    def __len__(self) -> int:
        return len(self.by_identifier)

    @classmethod
    def load(cls, connection: Connection) -> OutputIndex:
        """The identifiers of every output in the store."""
        rows = connection.execute(
            select(OutputIdentifier.output_id, OutputIdentifier.scheme, OutputIdentifier.value)
        )
        return cls((int(output_id), scheme, value) for output_id, scheme, value in rows)


class Matcher:
    """Matches identifiers, URLs, texts, HTML and landing pages to tracked outputs."""

    def __init__(self, index: OutputIndex) -> None:
        self.index = index

    def _lookup(self, identifier: Identifier) -> int | None:
        found = self.index.by_identifier.get(identifier)
        if found is None and identifier.scheme == "arxiv":
            # A mention of version 2 is a mention of the work tracked without a version.
            bare = _ARXIV_VERSION.sub("", identifier.value)
            if bare != identifier.value:
                found = self.index.by_identifier.get(Identifier("arxiv", bare))
        return found

    def match_identifier(self, identifier: Identifier, how: str = LITERAL) -> Match | None:
        """The output known by this normalised identifier (found as ``how`` says)."""
        if identifier.scheme == "url":
            return self._match_normalized_url(identifier.value)
        output_id = self._lookup(identifier)
        if output_id is None:
            return None
        if how == IN_URL:
            return Match(output_id, identifier, "landing-page-url", "doi-in-url")
        if how == URL_PATTERN:
            return Match(output_id, identifier, "url-pattern", "literal")
        method = "doi-literal" if identifier.scheme == "doi" else "identifier-literal"
        return Match(output_id, identifier, method, "literal")

    def _match_normalized_url(self, normalized: str) -> Match | None:
        exact = self.index.by_identifier.get(Identifier("url", normalized))
        if exact is not None:
            return Match(
                exact, Identifier("url", normalized), "landing-page-url", "checked-url-exact"
            )
        try:
            key = url_key(normalized)
        except UrlError:
            return None
        basic = self.index.by_url_key.get(key)
        if basic is None:
            return None
        return Match(basic[0], Identifier("url", basic[1]), "landing-page-url", "checked-url-basic")

    def _match_found(self, found: Iterable[Found]) -> list[Match]:
        matches: list[Match] = []
        seen: set[int] = set()
        for item in found:
            match = self.match_identifier(item.identifier, item.how)
            if match is not None and match.output_id not in seen:
                seen.add(match.output_id)
                matches.append(match)
        return matches

    def _worth_reading(self, url: str) -> bool:
        # Most links point at hosts no output lives on and carry no identifier: skip them
        # before paying for unwrapping and normalisation.
        if "10." in url or "/handle/" in url:
            return True
        host = host_of(url) if "://" in url[:12] else host_of("https://" + url)
        return host in self.index.hosts or host in _ALWAYS_READ

    def match_url(self, url: str) -> list[Match]:
        """The outputs a URL (a link, a card, an ``obj_id``) is about, best first."""
        if not self._worth_reading(url):
            return []
        return self._match_found(identifiers_in_url(url))

    def match_text(self, text: str) -> list[Match]:
        """The outputs a plain text mentions, once each, in the order they are found."""
        urls, found = scan(text)
        if not urls and not found:
            return []
        from_urls = [
            item for url in urls if self._worth_reading(url) for item in identifiers_in_url(url)
        ]
        return self._match_found([*from_urls, *found])

    def match_html(self, html: str, base_url: str | None = None) -> list[Match]:
        """The outputs an HTML fragment mentions (links and visible text)."""
        return self._match_found(extract_html(html, base_url))

    def match_landing_page(self, page: LandingPage) -> list[Match]:
        """The outputs a fetched landing page is (by its DOI tag or its declared URL)."""
        matches: list[Match] = []
        if page.doi is not None:
            output_id = self._lookup(Identifier("doi", page.doi))
            if output_id is not None:
                declared = page.declared_url
                checked = declared is not None and _same(declared, page.url)
                verification = "checked-url-basic" if checked else "unverified"
                matches.append(
                    Match(
                        output_id,
                        Identifier("doi", page.doi),
                        "landing-page-meta-tag",
                        verification,
                    )
                )
        for declared in (page.canonical_url, page.og_url, page.url):
            if declared is None:
                continue
            try:
                by_url = self._match_normalized_url(normalize_url(declared))
            except UrlError:
                continue
            if by_url is not None and all(m.output_id != by_url.output_id for m in matches):
                method = "landing-page-url" if declared == page.url else "landing-page-meta-tag"
                verification = by_url.verification if declared == page.url else "lookup"
                matches.append(by_url._replace(method=method, verification=verification))
        return matches


# Resolver hosts whose URLs name an identifier even when no output URL lives there.
_ALWAYS_READ = frozenset(
    {
        "doi.org",
        "dx.doi.org",
        "hdl.handle.net",
        "arxiv.org",
        "export.arxiv.org",
        "ncbi.nlm.nih.gov",
        "pubmed.ncbi.nlm.nih.gov",
        "pmc.ncbi.nlm.nih.gov",
        "europepmc.org",
        "orcid.org",
        "ssrn.com",
        "papers.ssrn.com",
        "l.facebook.com",
        "lm.facebook.com",
        "facebook.com",
        "l.instagram.com",
        "google.com",
        "youtube.com",
        "out.reddit.com",
        "t.umblr.com",
        "href.li",
        "linkedin.com",
        "duckduckgo.com",
        "bing.com",
    }
)


def _same(first: str, second: str) -> bool:
    try:
        return url_key(first) == url_key(second)
    except UrlError:
        return False


# -- the store -----------------------------------------------------------------------------


@dataclass(slots=True)
class MatchSummary:
    """What a matching run did: events read, events matched, and new match rows."""

    events: int = 0
    matched: int = 0
    new_matches: int = 0
    last_event_id: int | None = None


def _event_matches(matcher: Matcher, scheme: str, value: str) -> list[Match]:
    if scheme == "url":
        return matcher.match_url(value)
    match = matcher.match_identifier(Identifier(scheme, value))
    return [match] if match is not None else []


def _insert_ignoring(connection: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert the match rows not already recorded; the ids of those inserted."""
    if not rows:
        return []
    statement: Any
    if connection.dialect.name == "postgresql":
        statement = postgresql.insert(EventMatch).on_conflict_do_nothing()
    elif connection.dialect.name == "sqlite":
        statement = sqlite.insert(EventMatch).on_conflict_do_nothing()
    else:  # pragma: no cover - the store runs on SQLite and PostgreSQL only
        raise NotImplementedError(connection.dialect.name)
    # RETURNING gives the rows really inserted on both backends (rowcount of an
    # executemany is not reliable on PostgreSQL).
    return [int(i) for (i,) in connection.execute(statement.returning(EventMatch.id), rows)]


def match_events(
    connection: Connection,
    event_ids: Sequence[int] | None = None,
    *,
    after_id: int | None = None,
    index: OutputIndex | None = None,
) -> MatchSummary:
    """Match stored events to tracked outputs and record each match (idempotent).

    ``event_ids`` limits the run to those events; ``after_id`` to events with a larger id;
    neither means every event. A match already recorded is left as it is.
    """
    index = index if index is not None else OutputIndex.load(connection)
    matcher = Matcher(index)
    summary = MatchSummary()
    now = dt.datetime.now(dt.UTC)
    if not len(index):
        # Nothing is tracked: nothing can match, but the events still count as read.
        query = select(func.count(), func.max(Event.id))
        if after_id is not None:
            query = query.where(Event.id > after_id)
        if event_ids is not None:
            query = query.where(Event.id.in_(list(event_ids)))
        count, last = connection.execute(query).one()
        summary.events = int(count or 0)
        summary.last_event_id = int(last) if last is not None else None
        return summary
    # Pairs an editor said are not a match are never linked again.
    rejected = rejected_matches(connection)
    for rows in _event_batches(connection, event_ids, after_id):
        new_rows: list[dict[str, Any]] = []
        for event_id, scheme, value, source_id, author, occurred_at in rows:
            summary.events += 1
            matches = [
                m
                for m in _event_matches(matcher, scheme, value)
                if (event_id, m.output_id) not in rejected
            ]
            if matches:
                summary.matched += 1
            for match in matches:
                new_rows.append(
                    {
                        "event_id": event_id,
                        "output_id": match.output_id,
                        "identifier": str(match.identifier)[:2000],
                        "method": match.method,
                        "verification": match.verification,
                        "matched_at": now,
                        "source_id": source_id,
                        "author": author,
                        "occurred_at": occurred_at,
                    }
                )
        inserted = _insert_ignoring(connection, new_rows)
        if inserted:
            summary.new_matches += len(inserted)
            add_first_mentions(connection, after_match=min(inserted) - 1)
        last = int(rows[-1][0])
        summary.last_event_id = max(summary.last_event_id or last, last)
    return summary


def _event_batches(
    connection: Connection, event_ids: Sequence[int] | None, after_id: int | None
) -> Iterator[Sequence[Row[int, str, str, str, str, dt.datetime]]]:
    query = select(
        Event.id,
        Event.obj_scheme,
        Event.obj_value,
        Event.source_id,
        event_author,
        Event.occurred_at,
    ).order_by(Event.id)
    if event_ids is not None:
        ids = sorted(set(event_ids))
        for start in range(0, len(ids), _BATCH):
            yield connection.execute(query.where(Event.id.in_(ids[start : start + _BATCH]))).all()
        return
    cursor = after_id if after_id is not None else -(2**63)
    while True:
        rows = connection.execute(query.where(Event.id > cursor).limit(_BATCH)).all()
        if not rows:
            return
        yield rows
        cursor = rows[-1][0]


def match_new_events(connection: Connection, index: OutputIndex | None = None) -> MatchSummary:
    """Match the events stored since the last call (the ingest calls this after storing).

    Remembers the highest event id it has read in the ``meta`` table, in the caller's
    transaction, so a rolled-back ingest leaves nothing half-done.
    """
    stored = connection.execute(select(Meta.value).where(Meta.key == LAST_EVENT_KEY)).scalar()
    after = int(stored) if stored else None
    summary = match_events(connection, after_id=after, index=index)
    if summary.last_event_id is not None:
        if stored is None:
            connection.execute(
                insert(Meta).values(key=LAST_EVENT_KEY, value=str(summary.last_event_id))
            )
        else:
            connection.execute(
                update(Meta)
                .where(Meta.key == LAST_EVENT_KEY)
                .values(value=str(summary.last_event_id))
            )
    return summary


def normalize_output_urls(connection: Connection) -> tuple[int, list[str]]:
    """Rewrite outputs' URL identifiers in the normalised form; returns (changed, problems).

    An identifier whose normalised form another output already holds is left alone and
    reported (merging them is a decision for a person).
    """
    rows = connection.execute(
        select(OutputIdentifier.id, OutputIdentifier.output_id, OutputIdentifier.value).where(
            OutputIdentifier.scheme == "url"
        )
    ).all()
    held = {value: output_id for _, output_id, value in rows}
    changed = 0
    problems: list[str] = []
    for row_id, output_id, value in rows:
        try:
            normalized = normalize_url(value)
        except UrlError as exc:
            problems.append(f"output {output_id}: {exc}")
            continue
        if normalized == value:
            continue
        owner = held.get(normalized)
        if owner is None:
            connection.execute(
                update(OutputIdentifier)
                .where(OutputIdentifier.id == row_id)
                .values(value=normalized)
            )
            held[normalized] = output_id
            changed += 1
        elif owner == output_id:
            connection.execute(delete(OutputIdentifier).where(OutputIdentifier.id == row_id))
            changed += 1
        else:
            problems.append(
                f"output {output_id}: {value} is {normalized}, which output {owner} holds"
            )
    return changed, problems


def mentions_of(connection: Connection, output_id: int) -> list[int]:
    """The ids of the events matched to an output or to any output merged into it."""
    merged: dict[int, list[int]] = {}
    for child, parent in connection.execute(
        select(Output.id, Output.merged_into_id).where(Output.merged_into_id.is_not(None))
    ):
        if parent is not None:
            merged.setdefault(int(parent), []).append(int(child))
    members = {output_id}
    pending = [output_id]
    while pending:
        for child in merged.get(pending.pop(), []):
            if child not in members:
                members.add(child)
                pending.append(child)
    return list(
        connection.execute(
            select(EventMatch.event_id)
            .where(EventMatch.output_id.in_(sorted(members)))
            .distinct()
            .order_by(EventMatch.event_id)
        ).scalars()
    )
