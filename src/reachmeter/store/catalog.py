"""Catalogue operations: outputs, people, groups and accounts, merged rather than doubled.

Every function works on an open ORM ``Session`` and leaves committing to the caller. Outputs
are found by any of their normalised identifiers; two outputs that turn out to share an
identifier are merged (the younger one points at the older through ``merged_into_id``; no
row is deleted). People are found by ORCID, else by exact name (case-insensitive). Groups
are named by paths such as ``"Faculty of Medicine > Public Health"``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session

from reachmeter.matching.identifiers import Identifier, IdentifierError, normalize
from reachmeter.store.schema import (
    Account,
    Authorship,
    Group,
    Output,
    OutputIdentifier,
    Person,
    PersonGroup,
    name_key,
)

__all__ = [
    "OUTPUT_TYPES",
    "PLATFORMS",
    "AuthorRef",
    "CatalogError",
    "account_url",
    "add_account",
    "canonical_output",
    "ensure_group",
    "find_output",
    "find_outputs",
    "find_person",
    "merge_outputs",
    "normalize_account",
    "normalize_orcid",
    "normalize_output_type",
    "output_identifiers",
    "person_accounts",
    "person_groups",
    "upsert_output",
    "upsert_person",
]

OUTPUT_TYPES = (
    "article",
    "preprint",
    "conference-paper",
    "dataset",
    "book",
    "chapter",
    "report",
    "thesis",
    "briefing",
    "blog-post",
    "video",
    "web-page",
    "software",
    "other",
)
_OUTPUT_TYPE_ALIASES = {
    "journal-article": "article",
    "paper": "article",
    "posted-content": "preprint",
    "proceedings-article": "conference-paper",
    "conference": "conference-paper",
    "book-chapter": "chapter",
    "dissertation": "thesis",
    "legal-briefing": "briefing",
    "blog": "blog-post",
    "post": "blog-post",
    "webpage": "web-page",
    "website": "web-page",
    "code": "software",
}

PLATFORMS = (
    "bluesky",
    "mastodon",
    "x",
    "linkedin",
    "youtube",
    "blog",
    "website",
    "facebook",
    "instagram",
)
_PLATFORM_ALIASES = {"twitter": "x", "bsky": "bluesky", "web": "website", "rss": "blog"}
_HOST_PLATFORMS = {
    "bsky.app": "bluesky",
    "x.com": "x",
    "twitter.com": "x",
    "mobile.twitter.com": "x",
    "linkedin.com": "linkedin",
    "youtube.com": "youtube",
    "facebook.com": "facebook",
    "instagram.com": "instagram",
}
_X_HANDLE = re.compile(r"^[a-z0-9_]{1,15}$")
_BLUESKY_HANDLE = re.compile(r"^(?:did:[a-z0-9]+:[a-z0-9._:-]+|[a-z0-9-]+(?:\.[a-z0-9-]+)+)$")
_MASTODON_HANDLE = re.compile(r"^[a-z0-9_.-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+$")
_URL = re.compile(r"^https?://", re.IGNORECASE)
_GROUP_SEPARATOR = ">"


class CatalogError(ValueError):
    """A catalogue record cannot be stored as given (the message says which and why)."""


@dataclass(frozen=True)
class AuthorRef:
    """An author as a file names them: a name, an ORCID, or both."""

    name: str = ""
    orcid: str | None = None

    def __str__(self) -> str:
        if self.name and self.orcid:
            return f"{self.name} ({self.orcid})"
        return self.name or self.orcid or ""


# -- outputs -------------------------------------------------------------------------------


def normalize_output_type(value: str) -> str:
    """One of ``OUTPUT_TYPES`` for a type name (``"Journal article"`` is ``article``)."""
    slug = re.sub(r"[\s_]+", "-", value.strip().lower())
    slug = _OUTPUT_TYPE_ALIASES.get(slug, slug)
    if slug not in OUTPUT_TYPES:
        raise CatalogError(f"unknown output type {value!r}; known: {', '.join(OUTPUT_TYPES)}")
    return slug


def _normalized_identifiers(identifiers: Iterable[Identifier]) -> list[Identifier]:
    seen: dict[Identifier, None] = {}
    for identifier in identifiers:
        try:
            seen[normalize(identifier.value, identifier.scheme)] = None
        except IdentifierError as exc:
            raise CatalogError(f"invalid identifier {identifier}: {exc}") from exc
    return list(seen)


def canonical_output(session: Session, output: Output) -> Output:
    """The output that ``output`` has been merged into (itself when it is not merged)."""
    seen = {output.id}
    while output.merged_into_id is not None:
        target = session.get(Output, output.merged_into_id)
        if target is None or target.id in seen:
            raise CatalogError(f"output {output.id} has a broken merged_into chain")
        seen.add(target.id)
        output = target
    return output


def find_outputs(session: Session, identifiers: Sequence[Identifier]) -> list[Output]:
    """The distinct (canonical) outputs known by any of these normalised identifiers, oldest
    first."""
    if not identifiers:
        return []
    pairs = [(identifier.scheme, identifier.value) for identifier in identifiers]
    rows = session.scalars(
        select(Output)
        .join(OutputIdentifier, OutputIdentifier.output_id == Output.id)
        .where(tuple_(OutputIdentifier.scheme, OutputIdentifier.value).in_(pairs))
    ).all()
    found = {output.id: output for output in (canonical_output(session, row) for row in rows)}
    return [found[key] for key in sorted(found)]


def output_identifiers(session: Session, output: Output) -> list[Identifier]:
    """The identifiers of an output, in the order they were added."""
    rows = session.execute(
        select(OutputIdentifier.scheme, OutputIdentifier.value)
        .where(OutputIdentifier.output_id == output.id)
        .order_by(OutputIdentifier.id)
    ).all()
    return [Identifier(scheme, value) for scheme, value in rows]


def merge_outputs(session: Session, keep: Output, other: Output) -> Output:
    """Merge ``other`` into ``keep`` and return ``keep``.

    Identifiers and authorships move onto ``keep``; metadata ``keep`` lacks is taken from
    ``other``; ``other.merged_into_id`` is set (and so is that of anything merged into it
    before). No row is deleted except an authorship ``keep`` already has.
    """
    keep = canonical_output(session, keep)
    other = canonical_output(session, other)
    if keep.id == other.id:
        return keep
    session.execute(
        update(OutputIdentifier)
        .where(OutputIdentifier.output_id == other.id)
        .values(output_id=keep.id)
        .execution_options(synchronize_session=False)
    )
    kept_people = set(
        session.scalars(select(Authorship.person_id).where(Authorship.output_id == keep.id))
    )
    for authorship in session.scalars(
        select(Authorship).where(Authorship.output_id == other.id)
    ).all():
        if authorship.person_id in kept_people:
            session.delete(authorship)
        else:
            session.add(
                Authorship(
                    output_id=keep.id,
                    person_id=authorship.person_id,
                    position=authorship.position,
                )
            )
            session.delete(authorship)
    if not keep.title and other.title:
        keep.title = other.title
    keep.venue = keep.venue or other.venue
    keep.published_on = keep.published_on or other.published_on
    keep.extra = {**(other.extra or {}), **(keep.extra or {})}
    session.execute(
        update(Output)
        .where(Output.merged_into_id == other.id)
        .values(merged_into_id=keep.id)
        .execution_options(synchronize_session="fetch")
    )
    other.merged_into_id = keep.id
    session.flush()
    return keep


def _link_authors(session: Session, output: Output, authors: Sequence[AuthorRef]) -> None:
    unknown: list[str] = []
    existing = {
        row.person_id: row
        for row in session.scalars(select(Authorship).where(Authorship.output_id == output.id))
    }
    for position, author in enumerate(authors, start=1):
        person = _match_person(session, author.name, _orcid_or_none(author.orcid))
        if person is None:
            unknown.append(author.name or author.orcid or "")
            continue
        authorship = existing.get(person.id)
        if authorship is None:
            authorship = Authorship(output_id=output.id, person_id=person.id, position=position)
            session.add(authorship)
            existing[person.id] = authorship
        elif authorship.position != position:
            authorship.position = position
    extra = dict(output.extra or {})
    if unknown:
        extra["authors"] = unknown
    else:
        extra.pop("authors", None)
    if extra != (output.extra or {}):
        output.extra = extra


def upsert_output(
    session: Session,
    *,
    identifiers: list[Identifier],
    title: str | None = None,
    type: str | None = None,
    venue: str | None = None,
    published_on: dt.date | None = None,
    extra: dict[str, Any] | None = None,
    authors: list[AuthorRef] | None = None,
) -> tuple[Output, bool]:
    """Find the output known by any of ``identifiers`` (creating it if none), update it.

    Given metadata replaces what is stored; ``None`` leaves it alone. ``extra`` is merged
    key by key. New identifiers are added. When the identifiers name several existing
    outputs they are merged into the oldest. Authors are linked to existing people (by
    ORCID, else by exact name); the names of unknown authors go to ``extra["authors"]``.

    Returns ``(output, created)``. Raises ``CatalogError`` when there is no identifier or
    one is invalid.
    """
    normalized = _normalized_identifiers(identifiers)
    if not normalized:
        raise CatalogError("an output needs at least one identifier (DOI, PMID, URL, ...)")
    output_type = normalize_output_type(type) if type else None
    found = find_outputs(session, normalized)
    created = not found
    if created:
        output = Output(
            type=output_type or "article",
            title=title or "",
            venue=venue,
            published_on=published_on,
            extra=dict(extra or {}),
        )
        session.add(output)
        session.flush()
    else:
        output = found[0]
        for other in found[1:]:
            merge_outputs(session, output, other)
        if output_type and output.type != output_type:
            output.type = output_type
        if title and output.title != title:
            output.title = title
        if venue and output.venue != venue:
            output.venue = venue
        if published_on and output.published_on != published_on:
            output.published_on = published_on
        if extra:
            merged = {**(output.extra or {}), **extra}
            if merged != output.extra:
                output.extra = merged
    known = set(output_identifiers(session, output))
    for identifier in normalized:
        if identifier not in known:
            session.add(
                OutputIdentifier(
                    output_id=output.id, scheme=identifier.scheme, value=identifier.value
                )
            )
    if authors is not None:
        _link_authors(session, output, authors)
    session.flush()
    return output, created


def find_output(session: Session, text_or_identifier: str | Identifier) -> Output | None:
    """The output with this numeric id or known by this identifier (any spelling), following
    merges; ``None`` when there is none."""
    if isinstance(text_or_identifier, str):
        text = text_or_identifier.strip()
        if text.isdigit():
            by_id = session.get(Output, int(text))
            return canonical_output(session, by_id) if by_id else None
        try:
            identifier = normalize(text)
        except IdentifierError:
            return None
    else:
        try:
            identifier = normalize(text_or_identifier.value, text_or_identifier.scheme)
        except IdentifierError:
            return None
    found = find_outputs(session, [identifier])
    return found[0] if found else None


# -- people and groups ---------------------------------------------------------------------


def normalize_orcid(value: str) -> str:
    """The bare ORCID (``0000-0002-1825-0097``) in any spelling; ``CatalogError`` if invalid."""
    try:
        return normalize(value, "orcid").value
    except IdentifierError as exc:
        raise CatalogError(f"invalid ORCID {value.strip()!r}") from exc


def _orcid_or_none(value: str | None) -> str | None:
    return normalize_orcid(value) if value and value.strip() else None


def _people_named(session: Session, name: str) -> list[Person]:
    return list(
        session.scalars(select(Person).where(Person.name_key == name_key(name)).order_by(Person.id))
    )


def _match_person(session: Session, name: str, orcid: str | None) -> Person | None:
    if orcid:
        return session.scalars(select(Person).where(Person.orcid == orcid)).first()
    if not name.strip():
        return None
    named = _people_named(session, name)
    if len(named) > 1:
        raise CatalogError(
            f"{len(named)} people are named {name.strip()!r}; give an ORCID to choose one"
        )
    return named[0] if named else None


def find_person(session: Session, text: str) -> Person | None:
    """The person with this numeric id, ORCID, or exact name (case-insensitive)."""
    text = text.strip()
    if text.isdigit():
        return session.get(Person, int(text))
    try:
        orcid = normalize(text, "orcid").value
    except IdentifierError:
        return _match_person(session, text, None)
    return _match_person(session, "", orcid)


def _group_path(path: str) -> list[str]:
    parts = [part.strip() for part in path.split(_GROUP_SEPARATOR)]
    if not path.strip() or not all(parts):
        raise CatalogError(f"invalid group path {path!r}")
    return parts


def ensure_group(session: Session, path: str) -> Group:
    """The group at the end of ``path`` (``"Faculty > Department"``), creating each level.

    Group names are unique: an existing group is reused, and given a parent if it had none;
    a group already nested under another parent is an error.
    """
    names = _group_path(path)
    existing = {
        group.name: group for group in session.scalars(select(Group).where(Group.name.in_(names)))
    }
    # Check the whole path before creating anything, so an error leaves no half-made path.
    for parent_name, name in itertools.pairwise(names):
        group = existing.get(name)
        if group is not None and group.parent_id is not None:
            current = session.get(Group, group.parent_id)
            if current is None or current.name != parent_name:
                raise CatalogError(
                    f"group {name!r} is already under {current.name if current else None!r}, "
                    f"not {parent_name!r}"
                )
    if len(set(names)) != len(names):
        raise CatalogError(f"group path {path!r} would make a cycle")
    parent: Group | None = None
    for name in names:
        group = existing.get(name)
        parent_id = parent.id if parent else None
        if group is None:
            group = Group(name=name, parent_id=parent_id)
            session.add(group)
            session.flush()
        elif parent_id is not None and group.parent_id != parent_id:
            ancestor: Group | None = parent
            while ancestor is not None:
                if ancestor.id == group.id:
                    raise CatalogError(f"group path {path!r} would make a cycle")
                ancestor = session.get(Group, ancestor.parent_id) if ancestor.parent_id else None
            group.parent_id = parent_id
        parent = group
    if parent is None:  # unreachable: _group_path returns at least one name
        raise CatalogError(f"invalid group path {path!r}")
    return parent


# -- accounts ------------------------------------------------------------------------------


def _canonical_url(url: str) -> str:
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if not host:
        raise CatalogError(f"invalid URL {url!r}")
    port = f":{parts.port}" if parts.port else ""
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme.lower()}://{host}{port}{path}{query}"


def _handle_from_url(platform: str, url: str) -> str:
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.")
    segments = [segment for segment in parts.path.split("/") if segment]
    url_platform = _HOST_PLATFORMS.get(host)
    if url_platform and url_platform != platform:
        raise CatalogError(f"{url!r} is a {url_platform} URL, not {platform}")
    if platform == "bluesky":
        if host != "bsky.app" or len(segments) < 2 or segments[0] != "profile":
            raise CatalogError(f"{url!r} is not a Bluesky profile URL (bsky.app/profile/...)")
        return segments[1]
    if platform == "x":
        if url_platform != "x" or not segments:
            raise CatalogError(f"{url!r} is not an X profile URL (x.com/...)")
        return segments[0]
    if platform == "mastodon":
        if not segments or not segments[0].startswith("@"):
            raise CatalogError(f"{url!r} is not a Mastodon profile URL (https://instance/@user)")
        user = segments[0].removeprefix("@")
        return user if "@" in user else f"{user}@{host}"
    return _canonical_url(url)


def normalize_account(platform: str, handle: str) -> tuple[str, str]:
    """``(platform, handle)`` in the store's spelling.

    Platforms are lower-case (``twitter`` is ``x``). Bluesky and X handles lose a leading
    ``@``; Mastodon handles are ``user@instance``; profile URLs on bsky.app, x.com,
    twitter.com and Mastodon instances become handles; other platforms keep a URL as the
    handle (lower-case host, no trailing slash). Raises ``CatalogError`` when the platform is
    unknown or the handle is not valid for it.
    """
    name = platform.strip().lower()
    name = _PLATFORM_ALIASES.get(name, name)
    if name not in PLATFORMS:
        raise CatalogError(f"unknown platform {platform!r}; known: {', '.join(PLATFORMS)}")
    text = handle.strip()
    if not text:
        raise CatalogError(f"empty {name} handle")
    if _URL.match(text):
        text = _handle_from_url(name, text)
        if _URL.match(text):
            return name, text
    if name in ("blog", "website"):
        if "." not in text or " " in text:
            raise CatalogError(f"{handle!r} is not a {name} URL")
        return name, _canonical_url(f"https://{text}")
    if name == "youtube" and not text.startswith("@"):
        return name, text  # channel ids are case-sensitive
    value = text.lower() if name == "youtube" else text.removeprefix("@").lower()
    checks = {"bluesky": _BLUESKY_HANDLE, "x": _X_HANDLE, "mastodon": _MASTODON_HANDLE}
    if name in checks and not checks[name].match(value):
        hint = " (Mastodon handles are user@instance)" if name == "mastodon" else ""
        raise CatalogError(f"{handle!r} is not a valid {name} handle{hint}")
    return name, value


def account_url(platform: str, handle: str) -> str | None:
    """The profile URL of a normalised account, where it can be known."""
    if _URL.match(handle):
        return handle
    if platform == "bluesky":
        return f"https://bsky.app/profile/{handle}"
    if platform == "x":
        return f"https://x.com/{handle}"
    if platform == "mastodon":
        user, _, instance = handle.partition("@")
        return f"https://{instance}/@{user}"
    if platform == "youtube":
        return f"https://www.youtube.com/{'' if handle.startswith('@') else 'channel/'}{handle}"
    if platform in ("instagram", "facebook"):
        return f"https://www.{platform}.com/{handle}"
    return None


def _owner_label(session: Session, account: Account) -> str:
    if account.owned_by_org:
        return "the organisation"
    person = session.get(Person, account.owner_person_id) if account.owner_person_id else None
    return f"{person.name} (person {person.id})" if person else "nobody"


def _check_account_free(
    session: Session, platform: str, handle: str, owner: Person | None, org: bool
) -> Account | None:
    account = session.scalars(
        select(Account).where(Account.platform == platform, Account.handle == handle)
    ).first()
    if account is None:
        return None
    unowned = account.owner_person_id is None and not account.owned_by_org
    same = (org and account.owned_by_org) or (
        owner is not None and owner.id is not None and account.owner_person_id == owner.id
    )
    if not (unowned or same):
        raise CatalogError(
            f"{platform} account {handle!r} is already owned by {_owner_label(session, account)}"
        )
    return account


def add_account(
    session: Session, platform: str, handle: str, *, owner: Person | None, org: bool
) -> Account:
    """Add (or confirm) the account ``platform``/``handle`` owned by ``owner`` or, with
    ``org``, by the organisation. An account owned by someone else is a ``CatalogError``."""
    if (owner is None) == (not org):
        raise CatalogError("an account is owned either by a person or by the organisation")
    platform, handle = normalize_account(platform, handle)
    account = _check_account_free(session, platform, handle, owner, org)
    if account is None:
        account = Account(platform=platform, handle=handle, url=account_url(platform, handle))
        session.add(account)
    if org and not account.owned_by_org:
        account.owned_by_org = True
    if owner is not None and account.owner_person_id != owner.id:
        account.owner_person_id = owner.id
    session.flush()
    return account


def upsert_person(
    session: Session,
    *,
    name: str,
    orcid: str | None = None,
    email: str | None = None,
    role: str | None = None,
    groups: Sequence[str] = (),
    accounts: Sequence[tuple[str, str]] = (),
) -> tuple[Person, bool]:
    """Find the person (by ORCID, else by exact name, case-insensitive) or create them.

    Given fields replace what is stored; ``None`` leaves it alone. A person with an ORCID
    that is new to the store takes over a same-named person who has no ORCID. ``groups`` are
    paths (``"Faculty > Department"``) and the person joins the last group of each;
    ``accounts`` are ``(platform, handle)`` pairs. The ORCID, group paths and accounts are
    checked before anything is written: a ``CatalogError`` for an invalid ORCID, an unknown
    platform or an account owned by someone else leaves the session unchanged.
    """
    name = name.strip()
    normalized_orcid = _orcid_or_none(orcid)
    if not name and not normalized_orcid:
        raise CatalogError("a person needs a name")
    person = _match_person(session, "", normalized_orcid) if normalized_orcid else None
    if person is None and name:
        named = [
            candidate
            for candidate in _people_named(session, name)
            if not normalized_orcid or candidate.orcid is None
        ]
        if len(named) > 1:
            raise CatalogError(
                f"{len(named)} people are named {name!r}; give an ORCID to choose one"
            )
        person = named[0] if named else None
    if person is None and not name:
        raise CatalogError(f"no person with ORCID {normalized_orcid} and no name to create one")
    for path in groups:
        _group_path(path)
    normalized_accounts = [normalize_account(platform, handle) for platform, handle in accounts]
    for platform, handle in normalized_accounts:
        _check_account_free(session, platform, handle, person, org=False)

    created = person is None
    if person is None:
        person = Person(name=name, orcid=normalized_orcid, email=email or None, role=role or None)
        session.add(person)
        session.flush()
    else:
        if name and person.name != name:
            person.name = name
        if normalized_orcid and person.orcid != normalized_orcid:
            person.orcid = normalized_orcid
        if email and person.email != email:
            person.email = email
        if role and person.role != role:
            person.role = role
    member_of = set(
        session.scalars(select(PersonGroup.group_id).where(PersonGroup.person_id == person.id))
    )
    for path in groups:
        group = ensure_group(session, path)
        if group.id not in member_of:
            session.add(PersonGroup(person_id=person.id, group_id=group.id))
            member_of.add(group.id)
    for platform, handle in normalized_accounts:
        add_account(session, platform, handle, owner=person, org=False)
    session.flush()
    return person, created


def person_accounts(session: Session, person: Person) -> list[tuple[str, str]]:
    """The ``(platform, handle)`` accounts a person owns."""
    rows = session.execute(
        select(Account.platform, Account.handle)
        .where(Account.owner_person_id == person.id)
        .order_by(Account.platform, Account.handle)
    ).all()
    return [(platform, handle) for platform, handle in rows]


def person_groups(session: Session, person: Person) -> list[str]:
    """The names of the groups a person belongs to (directly)."""
    return list(
        session.scalars(
            select(Group.name)
            .join(PersonGroup, PersonGroup.group_id == Group.id)
            .where(PersonGroup.person_id == person.id)
            .order_by(Group.name)
        )
    )
