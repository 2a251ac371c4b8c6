"""Upstream archive: import the raw Twitter, Facebook and Wikipedia payloads a Lagotto
(PLOS ALM) instance kept for each work.

Lagotto stored what each platform answered about a work. The platforms' old APIs behind
these payloads are gone (Twitter's v1.1 search, Facebook's ``link_stat`` and Graph v2.1
``share`` counts), so they cannot be collected again: an archive import keeps them, with
their provenance, beside what the live sources collect now. The payload's shape says what
it is (a file's name does not):

=====================  ===================================================  ====================
payload                shape                                                becomes
=====================  ===================================================  ====================
``twitter_search``     Twitter v1.1 ``search/tweets``: ``statuses``,        one ``discusses``
                       ``search_metadata.query`` (the DOI searched)         event per status
``twitter_couchdb``    Lagotto's CouchDB view of PLOS tweets: ``rows``      one event per row
                       keyed by DOI, old and v1.1 tweet shapes
``facebook_graph``     Graph v2.1 ``?id=URL``: ``og_object``, ``share``     ``shares`` and
                                                                            ``comments``
``facebook_linkstat``  FQL ``link_stat``: ``data[]`` per URL form of the    ``shares``, ``likes``,
                       work (DOI URL, landing page)                         ``comments``,
                                                                            ``clicks``
``wikipedia``          Lagotto's result of Wikipedia searches:              one ``references``
                       ``{language: [{title, url, timestamp}]}``            event per page
=====================  ===================================================  ====================

Facebook counts are cumulative observations of the DOI (source ``facebook``), dated by
the payload (``og_object.updated_time``) or by ``observed_at``; of the URL forms of one
work in ``link_stat``, the one with the largest ``total_count`` is kept (Facebook merged
the forms it knew were one page; a form it had not merged shows zeros, not fewer shares).
Events keep Event Data's source names (``twitter``, ``wikipedia``). An error body (an
OAuth error, a MediaWiki error, a token response) is a clear error and nothing is stored;
an item that cannot be read (a tweet without its id or time) is quarantined with the
reason. Re-importing a payload stores nothing twice.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import orjson

from reachmeter import __version__
from reachmeter.matching.extract import extract, identifiers_in_url
from reachmeter.matching.identifiers import Identifier, IdentifierError, normalize, to_uri
from reachmeter.matching.match import match_new_events
from reachmeter.records import (
    KEY_NAMESPACE,
    CorrectionRecord,
    EventRecord,
    ObservationRecord,
    RecordError,
    parse_time,
)
from reachmeter.store import Store
from reachmeter.store.runs import finish_run, start_run
from reachmeter.store.writer import FactWriter, Quarantine, ensure_evidence

__all__ = [
    "KINDS",
    "LagottoError",
    "LagottoPayload",
    "LagottoSummary",
    "import_lagotto",
    "read_lagotto",
]

SOURCE = "lagotto"
KINDS = ("twitter_search", "twitter_couchdb", "facebook_graph", "facebook_linkstat", "wikipedia")
_LINKSTAT_METRICS = {
    "share_count": "shares",
    "like_count": "likes",
    "comment_count": "comments",
    "click_count": "clicks",
}
_GRAPH_METRICS = {"share_count": "shares", "comment_count": "comments"}

Fact = EventRecord | ObservationRecord | CorrectionRecord


class LagottoError(ValueError):
    """A payload that cannot be imported: an error body, an unknown shape, or no DOI."""


@dataclass
class LagottoPayload:
    """What one payload holds: its kind, the DOI it is about, facts, and unreadable items."""

    kind: str
    #: None only for an empty payload that names no work.
    doi: Identifier | None
    facts: list[Fact] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    #: Said when the payload is known to be incomplete (a search with more pages).
    note: str | None = None


def _key(*parts: object) -> str:
    return str(uuid.uuid5(KEY_NAMESPACE, "|".join(str(p) for p in parts)))


def _raw(item: Any) -> str:
    return orjson.dumps(item, default=str).decode()


def _error_of(document: Mapping[str, Any]) -> str | None:
    error = document.get("error")
    if isinstance(error, Mapping):
        code = error.get("code") or error.get("type") or ""
        message = error.get("message") or error.get("info") or ""
        kind = error.get("type")
        label = f"{kind} {code}" if kind and kind != code else str(code)
        return f"the payload is an error, not data: {label.strip()}: {message}".strip()
    errors = document.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        first = errors[0]
        return f"the payload is an error, not data: {first.get('code')}: {first.get('message')}"
    if "access_token" in document and "token_type" in document:
        return "the payload is an OAuth token response, not data"
    return None


def _kind(document: Any) -> str:
    if not isinstance(document, Mapping):
        raise LagottoError("not a Lagotto payload: the document is not a JSON object")
    if (error := _error_of(document)) is not None:
        raise LagottoError(error)
    if isinstance(document.get("statuses"), list):
        return "twitter_search"
    if isinstance(document.get("rows"), list) and "total_rows" in document:
        return "twitter_couchdb"
    if "og_object" in document or isinstance(document.get("share"), Mapping):
        return "facebook_graph"
    data = document.get("data")
    if isinstance(data, list) and all(isinstance(i, Mapping) and "url" in i for i in data):
        return "facebook_linkstat"
    if document and all(
        isinstance(pages, list) and all(isinstance(p, Mapping) and "title" in p for p in pages)
        for pages in document.values()
    ):
        return "wikipedia"
    raise LagottoError(
        "not a Lagotto payload of Twitter search, Facebook or Wikipedia "
        f"(keys: {', '.join(sorted(map(str, document))[:8])})"
    )


def _doi_in(text: str) -> Identifier | None:
    for found in extract(text):
        if found.scheme == "doi":
            return found
    return None


def _doi_of_url(url: str) -> Identifier | None:
    for found in identifiers_in_url(url):
        if found.identifier.scheme == "doi":
            return found.identifier
    return None


def _the_doi(named: Identifier | None, given: Identifier | None, kind: str) -> Identifier:
    found = _maybe_doi(named, given, kind)
    if found is None:
        raise LagottoError(f"the {kind} payload does not name its work: give its DOI")
    return found


def _maybe_doi(named: Identifier | None, given: Identifier | None, kind: str) -> Identifier | None:
    if named is not None and given is not None and named != given:
        raise LagottoError(f"the {kind} payload is about {named}, not the declared {given}")
    return named or given


def _tweet_time(value: Any) -> dt.datetime:
    """Twitter's ``Sat Jan 11 16:17:43 +0000 2014`` or the old ``Sun, 20 May 2012 ...``."""
    if not isinstance(value, str) or not value.strip():
        raise RecordError("tweet without created_at")
    text = value.strip()
    try:
        parsed = dt.datetime.strptime(text, "%a %b %d %H:%M:%S %z %Y")
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            raise RecordError(f"created_at {value!r} is not a Twitter time") from None
    if parsed.tzinfo is None:
        raise RecordError(f"created_at {value!r} has no time zone")
    return parsed.astimezone(dt.UTC)


def _tweet(status: Any, doi: Identifier, collected_at: dt.datetime, origin: str) -> EventRecord:
    if not isinstance(status, Mapping):
        raise RecordError("tweet is not an object")
    # ``id`` lost precision in JavaScript-era JSON (204270013081849860 for ...857): the
    # string form is the tweet's id.
    tweet_id = status.get("id_str")
    if not isinstance(tweet_id, str) or not tweet_id.isdigit():
        raise RecordError("tweet without id_str")
    user = status.get("user")
    screen = user.get("screen_name") if isinstance(user, Mapping) else status.get("from_user")
    if not isinstance(screen, str) or not screen:
        raise RecordError(f"tweet {tweet_id} without its author's screen name")
    occurred_at = _tweet_time(status.get("created_at"))
    url = f"https://twitter.com/{screen}/status/{tweet_id}"
    author = f"https://twitter.com/{screen}"
    subj: dict[str, Any] = {
        "pid": url,
        "type": "tweet",
        "title": status.get("text") if isinstance(status.get("text"), str) else None,
        "issued": occurred_at.isoformat(),
        "author": {"url": author, "name": screen},
        "alternative-id": tweet_id,
        "from": origin,
    }
    original = status.get("retweeted_status")
    if isinstance(original, Mapping) and isinstance(original.get("id_str"), str):
        original_user = original.get("user")
        original_screen = (
            original_user.get("screen_name") if isinstance(original_user, Mapping) else None
        )
        if original_screen:
            subj["original-tweet-url"] = (
                f"https://twitter.com/{original_screen}/status/{original['id_str']}"
            )
            subj["original-tweet-author"] = f"https://twitter.com/{original_screen}"
    return EventRecord(
        event_key=f"{SOURCE}:{_key('twitter', tweet_id, doi)}",
        subj_id=url,
        relation_type_id="discusses",
        obj_id=to_uri(doi),
        obj_scheme=doi.scheme,
        obj_value=doi.value,
        source_id="twitter",
        occurred_at=occurred_at,
        collected_at=collected_at,
        subj_author=author,
        subj=subj,
        evidence_url=None,
        license=None,
    )


def _observation(
    doi: Identifier, metric: str, value: Any, observed_at: dt.datetime, qualifier: str
) -> ObservationRecord | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return ObservationRecord(
        observation_key=f"{SOURCE}:{_key('facebook', doi, metric, qualifier, observed_at)}",
        metric=metric,
        value=float(value),
        observed_at=observed_at,
        source_id="facebook",
        obj_id=to_uri(doi),
        obj_scheme=doi.scheme,
        obj_value=doi.value,
        qualifier=qualifier,
        cumulative=True,
    )


def _wiki_page(language: str, page: Any, doi: Identifier, collected_at: dt.datetime) -> EventRecord:
    if not isinstance(page, Mapping):
        raise RecordError("page is not an object")
    title, url = page.get("title"), page.get("url")
    if not isinstance(title, str) or not title.strip():
        raise RecordError("page without a title")
    if not isinstance(url, str) or "/wiki/" not in url:
        raise RecordError(f"page {title!r} without its URL")
    subj_id = "https://" + url.split("://", 1)[-1]
    occurred_at = parse_time(page.get("timestamp"), "timestamp")
    return EventRecord(
        event_key=f"{SOURCE}:{_key('wikipedia', language, title, doi)}",
        subj_id=subj_id,
        relation_type_id="references",
        obj_id=to_uri(doi),
        obj_scheme=doi.scheme,
        obj_value=doi.value,
        source_id="wikipedia",
        occurred_at=occurred_at,
        collected_at=collected_at,
        subj_author=None,
        subj={"pid": subj_id, "title": title, "language": language, "type": "encyclopedia-entry"},
        evidence_url=None,
        license="https://creativecommons.org/publicdomain/zero/1.0/",
    )


def read_lagotto(
    payload: bytes,
    *,
    doi: str | None = None,
    observed_at: dt.datetime | None = None,
    collected_at: dt.datetime | None = None,
) -> LagottoPayload:
    """Read one Lagotto payload. ``doi`` is the work's DOI where the payload does not name
    it (Wikipedia) and is checked where it does; ``observed_at`` dates Facebook counts.

    Raises ``LagottoError`` for an error body, an unknown shape, or a missing or different
    DOI; items that cannot be read are in ``problems``.
    """
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise LagottoError(f"not JSON: {exc}") from None
    given: Identifier | None = None
    if doi:
        try:
            given = normalize(doi, "doi")
        except IdentifierError as exc:
            raise LagottoError(f"{doi!r} is not a DOI: {exc}") from None
    now = collected_at or dt.datetime.now(dt.UTC)
    kind = _kind(document)
    if kind == "twitter_search":
        metadata = document.get("search_metadata")
        query = metadata.get("query") if isinstance(metadata, Mapping) else None
        named = _doi_in(unquote(query)) if isinstance(query, str) else None
        statuses = document["statuses"]
        work = _the_doi(named, given, kind) if statuses else _maybe_doi(named, given, kind)
        result = LagottoPayload(kind, work)
        for status in statuses:
            try:
                result.facts.append(
                    _tweet(status, _the_doi(work, None, kind), now, "twitter-search-v1.1")
                )
            except RecordError as exc:
                result.problems.append((str(exc), _raw(status)))
        if isinstance(metadata, Mapping) and metadata.get("next_results"):
            result.note = f"the search had more results than this page ({metadata['next_results']})"
        return result
    if kind == "twitter_couchdb":
        rows = document["rows"]
        keys = {r.get("key") for r in rows if isinstance(r, Mapping)}
        named = _doi_in(str(next(iter(keys)))) if len(keys) == 1 else None
        if len(keys) > 1:
            raise LagottoError(f"the twitter payload mixes {len(keys)} works; import one each")
        work = _the_doi(named, given, "twitter") if rows else _maybe_doi(None, given, "twitter")
        result = LagottoPayload(kind, work)
        for row in rows:
            value = row.get("value") if isinstance(row, Mapping) else None
            try:
                result.facts.append(
                    _tweet(value, _the_doi(work, None, kind), now, "lagotto-couchdb")
                )
            except RecordError as exc:
                result.problems.append((str(exc), _raw(row)))
        return result
    if kind == "facebook_graph":
        url = document.get("id")
        named = _doi_of_url(url) if isinstance(url, str) else None
        work = _the_doi(named, given, "facebook")
        result = LagottoPayload(kind, work)
        og = document.get("og_object")
        when = observed_at
        if when is None and isinstance(og, Mapping) and og.get("updated_time"):
            try:
                when = parse_time(str(og["updated_time"]).replace("+0000", "+00:00"), "time")
            except RecordError:
                when = None
        if when is None:
            raise LagottoError("the facebook payload carries no date: give observed_at")
        share = document.get("share")
        for field_name, metric in _GRAPH_METRICS.items():
            value = share.get(field_name) if isinstance(share, Mapping) else None
            fact = _observation(work, metric, value, when, "graph")
            if fact is not None:
                result.facts.append(fact)
        return result
    # facebook_linkstat or wikipedia
    if kind == "facebook_linkstat":
        rows = [r for r in document["data"] if isinstance(r, Mapping)]
        dois = {d for r in rows if (d := _doi_of_url(str(r.get("url") or ""))) is not None}
        if len(dois) > 1:
            raise LagottoError(
                f"the facebook link stats are about {len(dois)} works: "
                + ", ".join(sorted(map(str, dois)))
            )
        work = _the_doi(next(iter(dois), None), given, "facebook")
        result = LagottoPayload(kind, work)
        if observed_at is None:
            raise LagottoError("facebook link stats carry no date: give observed_at")

        def total(row: Mapping[str, Any]) -> float:
            value = row.get("total_count")
            return float(value) if isinstance(value, int | float) else -1.0

        best = max(rows, key=total, default=None)
        if best is not None:
            for field_name, metric in _LINKSTAT_METRICS.items():
                fact = _observation(work, metric, best.get(field_name), observed_at, "link-stat")
                if fact is not None:
                    result.facts.append(fact)
        return result
    work = _the_doi(None, given, kind)
    result = LagottoPayload(kind, work)
    for language, pages in document.items():
        for page in pages:
            try:
                result.facts.append(_wiki_page(str(language), page, work, now))
            except RecordError as exc:
                result.problems.append((str(exc), _raw(page)))
    return result


@dataclass
class LagottoSummary:
    """What an import of Lagotto payloads read and stored, per file."""

    files: int = 0
    events: int = 0
    observations: int = 0
    duplicates: int = 0
    quarantined: int = 0
    kinds: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def import_lagotto(
    store: Store,
    paths: Sequence[Path],
    *,
    doi: str | None = None,
    observed_at: dt.datetime | None = None,
) -> LagottoSummary:
    """Import Lagotto payload files; a file that cannot be read is an error naming it and
    the reason, and stores nothing (the other files still go in)."""
    summary = LagottoSummary()
    run_id = start_run(store, "import", SOURCE, {"files": [str(p) for p in paths]})
    writer = FactWriter(store, run_id=run_id)
    now = dt.datetime.now(dt.UTC)
    for path in paths:
        try:
            payload = path.read_bytes()
            read = read_lagotto(payload, doi=doi, observed_at=observed_at, collected_at=now)
        except (OSError, LagottoError) as exc:
            summary.errors.append(f"{path}: {exc}")
            continue
        summary.files += 1
        summary.kinds[str(path)] = read.kind
        if read.note:
            summary.notes.append(f"{path}: {read.note}")
        with store.begin() as connection:
            evidence_id = ensure_evidence(
                connection,
                source_id=SOURCE,
                source_version=f"lagotto-{read.kind} reachmeter/{__version__}",
                request_url=path.resolve().as_uri(),
                payload_sha256=hashlib.sha256(payload).hexdigest(),
                collected_at=now,
                run_id=run_id,
                payload=payload.decode("utf-8", errors="replace"),
            )
        origin = str(path)
        problems = [
            Quarantine(origin, number, reason, raw)
            for number, (reason, raw) in enumerate(read.problems, start=1)
        ]
        result = writer.write(
            [(origin, number, fact) for number, fact in enumerate(read.facts, start=1)],
            problems,
            evidence_id,
        )
        summary.events += result.events
        summary.observations += result.observations
        summary.duplicates += result.duplicates
        summary.quarantined += result.quarantined
    with store.begin() as connection:
        match_new_events(connection)
    status = "failed" if summary.errors and not summary.files else "ok"
    if summary.errors and summary.files:
        status = "partial"
    finish_run(
        store,
        run_id,
        status,
        read=summary.files,
        stored=summary.events + summary.observations,
        duplicates=summary.duplicates,
        quarantined=summary.quarantined,
        errors=len(summary.errors),
        detail={"errors": summary.errors, "notes": summary.notes},
    )
    return summary
