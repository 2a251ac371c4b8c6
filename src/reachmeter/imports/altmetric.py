"""Upstream reference: import Altmetric API v1 responses.

``import_altmetric`` reads API v1 responses (the flat ``counts`` form, or ``{"results":
[...]}`` lists of them) and ``fetch`` records (with ``counts``, ``citation`` and ``posts``),
as JSON or JSON Lines. For each record:

* the output, by its identifiers (DOI, PMID, PMC, arXiv, ISBN, Handle), with title, venue
  and date;
* Altmetric's score and per-source counts as observations of source ``altmetric``
  (``altmetric_score``; ``altmetric_accounts`` and ``altmetric_posts`` qualified by
  Altmetric's source name); Mendeley readers as ``readers`` (qualifier ``mendeley``);
* each listed post as an event of the matching source (``twitter``, ``news``, ``blogs``,
  ``policy``, ...), with its author chosen the way Altmetric counts unique users: the
  X/Facebook account id, the policy body, the Wikipedia page, the outlet or blog.

``reachmeter.scoring.altmetric.compare_with_altmetric`` then sets our recomputed
per-source author counts and our ``altmetric-like`` score beside Altmetric's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson

from reachmeter.matching.identifiers import Identifier, IdentifierError, normalize, to_uri
from reachmeter.matching.match import match_new_events
from reachmeter.records import EventRecord, ObservationRecord
from reachmeter.store import Store
from reachmeter.store.catalog import CatalogError, upsert_output
from reachmeter.store.writer import FactWriter, Quarantine, ensure_evidence

__all__ = [
    "SOURCE",
    "SOURCE_IDS",
    "AltmetricFileError",
    "ImportSummary",
    "import_altmetric",
    "post_author",
    "read_altmetric_file",
]

SOURCE = "altmetric"
NAMESPACE = uuid.UUID("0b6f5d0e-63a4-5c7e-8d1f-2a9c3e4b5f60")

# Altmetric's post and count keys -> our source ids
SOURCE_IDS = {
    "twitter": "twitter",
    "tweeters": "twitter",
    "facebook": "facebook",
    "fbwalls": "facebook",
    "googleplus": "googleplus",
    "gplus": "googleplus",
    "news": "news",
    "msm": "news",
    "blogs": "blogs",
    "feeds": "blogs",
    "policy": "policy",
    "policies": "policy",
    "guidelines": "guideline",
    "patent": "patent",
    "patents": "patent",
    "wikipedia": "wikipedia",
    "reddit": "reddit",
    "rdts": "reddit",
    "video": "youtube",
    "videos": "youtube",
    "peer_reviews": "peer-review",
    "f1000": "peer-review",
    "qna": "qna",
    "weibo": "weibo",
    "linkedin": "linkedin",
    "pinterest": "pinterest",
    "syllabi": "syllabus",
    "bluesky": "bluesky",
    "misc": "web",
}


class AltmetricFileError(ValueError):
    """A file that is not Altmetric API JSON or JSON Lines; the message names the line."""


def read_altmetric_file(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """The records in a file, with their line numbers (1 for a whole-file JSON document)."""
    data = path.read_bytes()
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as whole_error:
        lines = data.splitlines()
        if len(lines) < 2:
            raise AltmetricFileError(f"{path}: not valid JSON: {whole_error}") from None
        records: list[tuple[int, dict[str, Any]]] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise AltmetricFileError(
                    f"{path}: neither JSON ({whole_error}) nor JSON Lines (line {number})"
                ) from None
            records.extend((number, r) for r in _records(item))
        yield from records
        return
    for record in _records(document):
        yield 1, record


def _records(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, list):
        return [d for d in document if isinstance(d, dict) and d]
    if isinstance(document, dict):
        if isinstance(document.get("results"), list):
            return [d for d in document["results"] if isinstance(d, dict) and d]
        return [document] if document else []
    return []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _identifiers(record: dict[str, Any]) -> list[Identifier]:
    citation = _dict(record.get("citation")) or record
    found: list[Identifier] = []
    candidates: list[tuple[str | None, Any]] = [
        ("doi", citation.get("doi")),
        ("pmid", citation.get("pmid")),
        ("pmcid", citation.get("pmc")),
        ("arxiv", citation.get("arxiv_id")),
    ]
    candidates += [("isbn", v) for v in citation.get("isbns") or [] if isinstance(v, str)]
    candidates += [("handle", v) for v in citation.get("handles") or [] if isinstance(v, str)]
    for scheme, value in candidates:
        if isinstance(value, str | int) and str(value).strip():
            try:
                found.append(normalize(str(value), scheme))
            except IdentifierError:
                continue
    return found


def _date(value: Any) -> dt.date | None:
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC).date()
    if isinstance(value, str) and value[:10]:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _time(value: Any) -> dt.datetime | None:
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    if isinstance(value, str) and value:
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


def post_author(source: str, post: dict[str, Any]) -> str | None:
    """Who a post counts as, the way Altmetric counts a source's unique users."""
    author = _dict(post.get("author"))
    ident = author.get("id_on_source")
    if source == "twitter" and ident:
        return f"https://twitter.com/{ident}"
    if source == "facebook" and ident:
        return f"https://www.facebook.com/{ident}"
    if source == "wikipedia":
        page = post.get("page_url")
        if isinstance(page, str) and page:
            curid = parse_qs(urlparse(page).query).get("curid")
            lang = post.get("wiki_lang") or urlparse(page).hostname or ""
            return f"wikipedia:{lang}:{curid[0]}" if curid else page
    if source == "policy":
        body = _dict(post.get("source"))
        name = body.get("url") or body.get("name")
        if isinstance(name, str) and name:
            return name
    if source in ("googleplus", "reddit") and author.get("name"):
        return str(author["name"])
    for key in ("url", "name"):
        value = author.get(key)
        if isinstance(value, str) and value:
            return value
    return str(ident) if ident else None


def _counts(record: dict[str, Any]) -> dict[str, tuple[int | None, int | None]]:
    """Altmetric's per-source (unique accounts, posts), from either record form."""
    result: dict[str, tuple[int | None, int | None]] = {}
    counts = record.get("counts")
    if isinstance(counts, dict):
        for source, value in counts.items():
            if isinstance(value, dict) and source not in ("readers", "total"):
                users = value.get("unique_users_count")
                posts = value.get("posts_count")
                result[source] = (
                    int(users) if users is not None else None,
                    int(posts) if posts is not None else None,
                )
    for key, value in record.items():
        if key.startswith("cited_by_") and key.endswith("_count") and isinstance(value, int):
            source = key.removeprefix("cited_by_").removesuffix("_count")
            if source not in ("posts", "accounts"):
                result.setdefault(source, (value, None))
    return result


def _score(record: dict[str, Any]) -> float | None:
    value = record.get("score")
    if isinstance(value, int | float):
        return float(value)
    nested = record.get("altmetric_score")
    if isinstance(nested, dict) and isinstance(nested.get("score"), int | float):
        return float(nested["score"])
    return None


def _readers(record: dict[str, Any]) -> float | None:
    for holder in (record.get("counts"), record):
        if isinstance(holder, dict) and isinstance(holder.get("readers"), dict):
            value = holder["readers"].get("mendeley")
            try:
                return float(value) if value is not None else None
            except (TypeError, ValueError):
                return None
    return None


@dataclass
class ImportSummary:
    """What an import read and stored."""

    records: int = 0
    outputs: int = 0
    events: int = 0
    duplicates: int = 0
    observations: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)


def _facts(
    record: dict[str, Any], primary: Identifier, observed_at: dt.datetime, digest: str
) -> list[EventRecord | ObservationRecord]:
    obj_id = to_uri(primary)
    facts: list[EventRecord | ObservationRecord] = []

    def observation(metric: str, value: float, qualifier: str = "") -> None:
        facts.append(
            ObservationRecord(
                observation_key=f"{SOURCE}:{digest}:{metric}:{qualifier}",
                metric=metric,
                value=value,
                observed_at=observed_at,
                source_id=SOURCE,
                obj_id=obj_id,
                obj_scheme=primary.scheme,
                obj_value=primary.value,
                qualifier=qualifier,
                cumulative=True,
            )
        )

    score = _score(record)
    if score is not None:
        observation("altmetric_score", score)
    for source, (users, posts) in sorted(_counts(record).items()):
        if users is not None:
            observation("altmetric_accounts", float(users), source)
        if posts is not None:
            observation("altmetric_posts", float(posts), source)
    readers = _readers(record)
    if readers is not None:
        facts.append(
            ObservationRecord(
                observation_key=f"{SOURCE}:{digest}:readers:mendeley",
                metric="readers",
                value=readers,
                observed_at=observed_at,
                source_id="mendeley",
                obj_id=obj_id,
                obj_scheme=primary.scheme,
                obj_value=primary.value,
                qualifier="mendeley",
                cumulative=True,
            )
        )
    posts = record.get("posts")
    if isinstance(posts, dict):
        for source, items in posts.items():
            if not isinstance(items, list):
                continue
            source_id = str(SOURCE_IDS.get(str(source), source))
            for post in items:
                if not isinstance(post, dict):
                    continue
                url = post.get("url") or post.get("page_url")
                when = _time(post.get("posted_on"))
                if not isinstance(url, str) or when is None:
                    continue
                key = str(uuid.uuid5(NAMESPACE, f"{source}|{url}|{primary}"))
                subj = {
                    k: post[k] for k in ("title", "summary", "license") if post.get(k) is not None
                }
                author = post.get("author")
                if isinstance(author, dict):
                    subj["author"] = {
                        k: author[k]
                        for k in ("name", "url", "id_on_source", "followers")
                        if author.get(k) not in (None, "")
                    }
                facts.append(
                    EventRecord(
                        event_key=f"{SOURCE}:{key}",
                        subj_id=url,
                        relation_type_id="discusses",
                        obj_id=obj_id,
                        obj_scheme=primary.scheme,
                        obj_value=primary.value,
                        source_id=source_id,
                        occurred_at=when,
                        collected_at=observed_at,
                        subj_author=post_author(source, post),
                        subj=subj,
                        evidence_url=None,
                        license=post.get("license")
                        if isinstance(post.get("license"), str)
                        else None,
                    )
                )
    return facts


def import_altmetric(store: Store, paths: Sequence[Path]) -> ImportSummary:
    """Import Altmetric API v1 responses and fetch records; one bad file never sinks the rest."""
    summary = ImportSummary()
    writer = FactWriter(store, run_id=None)
    now = dt.datetime.now(dt.UTC)
    for path in paths:
        try:
            records = list(read_altmetric_file(path))
        except (AltmetricFileError, OSError) as exc:
            summary.problems.append(str(exc))
            summary.skipped += 1
            continue
        for line, record in records:
            summary.records += 1
            raw = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
            digest = hashlib.sha256(raw).hexdigest()
            identifiers = _identifiers(record)
            if not identifiers:
                summary.skipped += 1
                summary.problems.append(f"{path}, line {line}: no usable identifier (DOI, PMID...)")
                continue
            citation = _dict(record.get("citation")) or record
            observed_at = (
                _time(record.get("last_updated")) or _time(citation.get("last_mentioned_on")) or now
            )
            try:
                with store.session() as session:
                    _output, created = upsert_output(
                        session,
                        identifiers=identifiers,
                        title=citation.get("title") or None,
                        venue=citation.get("journal") or None,
                        published_on=_date(citation.get("pubdate") or citation.get("published_on")),
                    )
                    summary.outputs += int(created)
            except CatalogError as exc:
                summary.skipped += 1
                summary.problems.append(f"{path}, line {line}: {exc}")
                continue
            with store.begin() as connection:
                evidence_id = ensure_evidence(
                    connection,
                    source_id=SOURCE,
                    source_version="api-v1",
                    request_url=f"{path.resolve().as_uri()}#line={line}",
                    payload_sha256=digest,
                    collected_at=now,
                    run_id=None,
                )
            facts = _facts(record, identifiers[0], observed_at, digest)
            origin = str(path)
            result = writer.write(
                [(origin, line, fact) for fact in facts], list[Quarantine](), evidence_id
            )
            summary.events += result.events
            summary.duplicates += result.duplicates
            summary.observations += result.observations
    with store.begin() as connection:
        match_new_events(connection)
    return summary
