"""Feed lists: OPML files (what feed readers export) and adding feeds to the feeds source.

Every ``<outline>`` with an ``xmlUrl`` is a feed, however deeply it is nested in category
outlines; the categories are kept as the feed's title prefix only in messages. One URL
listed twice (in two categories, or spelled with ``www.`` and without) is one feed. Feeds
are stored in the settings of the ``feeds`` source; a feed with an owner is that person's
blog, and their ``blog`` account (the feed URL) is added so its entries count as their posts.
Re-importing a file changes nothing.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import defusedxml.ElementTree as defused
from defusedxml import DefusedXmlException
from pydantic import ValidationError
from sqlalchemy.orm import Session

from reachmeter.imports import (
    ImportFileError,
    ImportSummary,
    Outcome,
    Parsed,
    SourceRecord,
    record_label,
    run_import,
)
from reachmeter.sources.feeds import FeedConfig, FeedsSource, configured, feed_key, merge_feeds
from reachmeter.sources.runner import ensure_source
from reachmeter.store import Store
from reachmeter.store.catalog import CatalogError, add_account, find_person
from reachmeter.store.schema import Person

__all__ = ["OpmlFeed", "add_feed", "import_opml", "read_opml"]


@dataclass(frozen=True)
class OpmlFeed:
    """One feed listed in an OPML file."""

    url: str
    title: str | None
    site: str | None
    categories: tuple[str, ...] = ()


def _root(path: Path) -> ET.Element:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read the file: {exc.strerror or exc}") from exc
    try:
        root = defused.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ImportFileError(
            f"{path}: OPML with a DOCTYPE or ENTITY declaration is not read"
        ) from exc
    except ET.ParseError as exc:
        raise ImportFileError(f"{path}: not well-formed XML: {exc}") from None
    if root.tag.lower() != "opml":
        raise ImportFileError(f"{path}: not an OPML file (its root element is <{root.tag}>)")
    return root


def read_opml(path: Path) -> list[Parsed[OpmlFeed]]:
    """The feeds an OPML file lists, each once (by ``feed_key``), in the file's order.

    An outline with an ``xmlUrl`` that is not an http(s) URL is a record with an error.
    Raises ``ImportFileError`` for a file that is not OPML.
    """
    root = _root(path)
    body = root.find("body")
    if body is None:
        raise ImportFileError(f"{path}: OPML without a <body>")
    found: list[Parsed[OpmlFeed]] = []
    seen: set[str] = set()
    number = 0

    def walk(element: ET.Element, categories: tuple[str, ...]) -> None:
        nonlocal number
        for outline in element.findall("outline"):
            title = (outline.get("title") or outline.get("text") or "").strip() or None
            url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
            if url:
                number += 1
                raw = ET.tostring(outline, encoding="unicode").split(">", 1)[0] + ">"
                record = SourceRecord(number, raw, record_label(number, title, "outline"))
                parts = url.split("://", 1)
                if len(parts) != 2 or parts[0].lower() not in ("http", "https") or not parts[1]:
                    found.append(Parsed(record, error=f"xmlUrl {url!r} is not an http(s) URL"))
                elif (key := feed_key(url)) not in seen:
                    seen.add(key)
                    site = (outline.get("htmlUrl") or "").strip() or None
                    found.append(Parsed(record, OpmlFeed(url, title, site, categories)))
            walk(outline, (*categories, title) if title and not url else categories)

    walk(body, ())
    return found


def _owner(session: Session, owner: str | None) -> Person | None:
    if owner is None:
        return None
    person = find_person(session, owner)
    if person is None:
        raise CatalogError(f"no person {owner!r} (give their id, ORCID or exact name)")
    return person


def add_feed(
    session: Session,
    url: str,
    *,
    kind: str,
    owner: Person | None = None,
    title: str | None = None,
) -> Outcome:
    """Add one feed to the feeds source (and its owner's ``blog`` account); a feed already
    configured is left as it is, except that one without an owner takes ``owner``.

    Raises ``CatalogError`` for an invalid URL or kind, a news feed given an owner, or a
    blog account that someone else owns.
    """
    if owner is not None and kind != "blog":
        raise CatalogError("only a blog has an owner (a person's own feed is a blog)")
    account = None
    if owner is not None:
        account = add_account(session, "blog", url, owner=owner, org=False).handle
    try:
        feed = FeedConfig.model_validate(
            {
                "url": url,
                "kind": kind,
                "owner": owner.id if owner is not None else None,
                "account": account,
                "title": title,
            }
        )
    except ValidationError as exc:
        reasons = "; ".join(str(error["msg"]) for error in exc.errors())
        raise CatalogError(f"feed {url!r}: {reasons}") from None
    row = ensure_source(session, FeedsSource)
    merged, added, owned = merge_feeds(configured(row.settings), [feed])
    if added or owned:
        row.settings = {
            **(row.settings or {}),
            "feeds": [f.model_dump(mode="json", exclude_none=True) for f in merged],
        }
        session.flush()
    return Outcome(created=bool(added), changed=bool(added or owned))


def import_opml(
    store: Store,
    path: str | os.PathLike[str],
    *,
    kind: str = "blog",
    owner: str | None = None,
) -> ImportSummary:
    """Add every feed an OPML file lists to the feeds source, as ``kind`` (and, given an
    ``owner``, as that person's blogs). Bad outlines are quarantined; the rest go in.

    Raises ``ImportFileError`` when the file is not OPML or the owner is unknown.
    """
    if kind not in ("blog", "news"):
        raise ImportFileError(f"unknown feed kind {kind!r}; use blog or news")
    if owner is not None and kind != "blog":
        raise ImportFileError("only a blog has an owner (a person's own feed is a blog)")
    with store.session() as session:
        try:
            person = _owner(session, owner)
        except CatalogError as exc:
            raise ImportFileError(str(exc)) from exc
        person_id = person.id if person is not None else None

    def apply(session: Session, feed: OpmlFeed) -> Outcome:
        person = session.get(Person, person_id) if person_id is not None else None
        return add_feed(session, feed.url, kind=kind, owner=person, title=feed.title)

    def parse(file: Path) -> Iterable[Parsed[OpmlFeed]]:
        return read_opml(file)

    return run_import(store, path, "import-opml", parse, apply)
