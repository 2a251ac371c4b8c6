"""What the social-platform sources share: mention events, post and account figures, and
the few POST requests their logins need.

A post that links to something becomes one ``discusses`` event per identifier its links
name (the most specific one per link: a DOI before the publisher URL that carries it).
Links to ordinary web pages are kept only when their host is one a tracked output lives
on (or a configured domain), so a timeline full of unrelated links stores nothing.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from reachmeter.http import HttpError
from reachmeter.matching.extract import Found, extract_found, identifiers_in_url
from reachmeter.matching.identifiers import Identifier, to_uri
from reachmeter.matching.urls import UrlError, host_of, normalize_url
from reachmeter.records import KEY_NAMESPACE, CorrectionRecord, EventRecord, ObservationRecord
from reachmeter.sources.base import BadPayloadError, Fetched, SourceContext

__all__ = [
    "ConfigurationError",
    "LinkFilter",
    "Remembered",
    "account_observation",
    "daily_posts",
    "deleted",
    "edited",
    "mention_events",
    "post_json",
    "post_observation",
    "post_uri",
    "to_time",
]

_HTML = re.compile(rb"^\s*(<!doctype html|<html)", re.IGNORECASE)
_RETRIABLE = frozenset({429, 502, 503, 504})


class ConfigurationError(HttpError):
    """A source cannot run as configured (a missing credential, a login refused); the
    message says what to set."""


class LinkFilter:
    """Which links of a post are worth an event: scholarly identifiers always, web pages
    only on the hosts of tracked URLs and the configured domains."""

    def __init__(self, ctx: SourceContext, domains: Iterable[str] = ()) -> None:
        hosts = {host_of(url) for url in ctx.targets("url")}
        hosts.update(d.strip().lower().removeprefix("www.") for d in domains if d.strip())
        self.hosts = {h.removeprefix("www.") for h in hosts if h}

    def keeps(self, identifier: Identifier) -> bool:
        if identifier.scheme != "url":
            return True
        host = host_of(identifier.value).removeprefix("www.")
        return any(host == h or host.endswith("." + h) for h in self.hosts)

    def identifiers(self, links: Iterable[str], text: str = "") -> list[Found]:
        """The identifiers named by ``links`` (most specific one per link) and the
        non-URL identifiers written in ``text``, once each, filtered."""
        found: list[Found] = []
        seen: set[Identifier] = set()
        candidates: list[Found] = []
        for link in links:
            named = identifiers_in_url(link)
            if named:
                candidates.append(named[0])
        if text:
            candidates.extend(f for f in extract_found(text) if f.identifier.scheme != "url")
        for item in candidates:
            if item.identifier not in seen and self.keeps(item.identifier):
                seen.add(item.identifier)
                found.append(item)
        return found


def to_time(value: Any) -> dt.datetime | None:
    """An aware UTC time from an ISO 8601 text or a Unix timestamp; None when unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return dt.datetime.fromtimestamp(float(value), dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def post_uri(url: str) -> Identifier:
    """The identifier a post is known by in observations: its normalised URL."""
    try:
        return Identifier("url", normalize_url(url))
    except UrlError:
        return Identifier("url", url)


def event_key(source_id: str, subj_id: str, obj: Identifier) -> str:
    return str(uuid.uuid5(KEY_NAMESPACE, f"{source_id}|{subj_id}|discusses|{to_uri(obj)}"))


def mention_events(
    source_id: str,
    *,
    subj_id: str,
    found: Iterable[Found],
    occurred_at: dt.datetime,
    collected_at: dt.datetime,
    author: str | None,
    subj: Mapping[str, Any],
    evidence_url: str | None = None,
) -> list[EventRecord]:
    """One ``discusses`` event per identifier a post names (keys stable across runs)."""
    events = []
    for item in found:
        obj = item.identifier
        events.append(
            EventRecord(
                event_key=event_key(source_id, subj_id, obj),
                subj_id=subj_id,
                relation_type_id="discusses",
                obj_id=to_uri(obj),
                obj_scheme=obj.scheme,
                obj_value=obj.value,
                source_id=source_id,
                occurred_at=occurred_at,
                collected_at=collected_at,
                subj_author=author,
                subj={**subj, "link": item.raw},
                evidence_url=evidence_url,
                license=None,
            )
        )
    return events


def deleted(event_keys: Iterable[str], reason: str, at: dt.datetime) -> list[CorrectionRecord]:
    """The corrections that stop deleted posts' mentions from counting."""
    return [
        CorrectionRecord(
            target_kind="event", target_key=key, action="deleted", reason=reason, corrected_at=at
        )
        for key in event_keys
    ]


def edited(
    remembered: Iterable[str], current: Iterable[EventRecord], post_url: str, at: dt.datetime
) -> list[CorrectionRecord]:
    """Corrections for the mentions an edit removed: those remembered for a post that its
    current version no longer makes."""
    now = {event.event_key for event in current}
    reason = f"post {post_url} was edited and no longer links to this output"
    return deleted(sorted(set(remembered) - now), reason, at)


class Remembered:
    """The posts whose mentions were stored lately, kept in the ``recent`` cursor so that
    later runs can look at them again (a deleted or edited post is seen that way)."""

    stream = "recent"

    def __init__(self, ctx: SourceContext, days: int, limit: int = 5000) -> None:
        try:
            loaded = orjson.loads(ctx.cursors.get(self.stream) or "{}")
        except orjson.JSONDecodeError:
            loaded = {}
        oldest = (ctx.collected_at - dt.timedelta(days=days)).date().isoformat()
        self.entries: dict[str, dict[str, Any]] = {
            post: entry
            for post, entry in (loaded.items() if isinstance(loaded, dict) else [])
            if isinstance(entry, dict) and str(entry.get("on", "")) >= oldest
        }
        self.limit = limit
        self.today = ctx.collected_at.date().isoformat()

    def remember(self, post: str, keys: Iterable[str], **extra: Any) -> None:
        entry = self.entries.setdefault(post, {"on": self.today, **extra})
        entry["keys"] = sorted(set(entry.get("keys", [])) | set(keys))

    def replace(self, post: str, keys: Iterable[str]) -> None:
        """The post's mentions now; a post that mentions nothing any more is let go."""
        current = sorted(set(keys))
        if not current:
            self.forget(post)
        elif post in self.entries:
            self.entries[post]["keys"] = current

    def forget(self, post: str) -> None:
        self.entries.pop(post, None)

    def keys(self, post: str) -> list[str]:
        return list(self.entries.get(post, {}).get("keys", []))

    def dump(self) -> str:
        if len(self.entries) > self.limit:
            by_age = sorted(self.entries, key=lambda post: str(self.entries[post].get("on")))
            for post in by_age[: len(self.entries) - self.limit]:
                del self.entries[post]
        return orjson.dumps(self.entries, option=orjson.OPT_SORT_KEYS).decode()


def _key(*parts: str) -> str:
    return str(uuid.uuid5(KEY_NAMESPACE, "|".join(parts)))


def post_observation(
    source_id: str, post_url: str, metric: str, value: Any, observed_at: dt.datetime
) -> ObservationRecord | None:
    """A post's cumulative figure (likes, reposts, ...) for the day; None if not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    obj = post_uri(post_url)
    day = observed_at.date().isoformat()
    return ObservationRecord(
        observation_key=f"{source_id}:{_key(source_id, str(obj), metric, day, repr(float(value)))}",
        metric=metric,
        value=float(value),
        observed_at=observed_at,
        source_id=source_id,
        obj_id=to_uri(obj),
        obj_scheme=obj.scheme,
        obj_value=obj.value,
        cumulative=True,
    )


def account_observation(
    source_id: str,
    platform: str,
    handle: str,
    metric: str,
    value: Any,
    observed_at: dt.datetime,
) -> ObservationRecord | None:
    """An account's cumulative figure (followers, posts) for the day; None if not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    day = observed_at.date().isoformat()
    key = _key(source_id, f"account:{platform}:{handle}", metric, day, repr(float(value)))
    return ObservationRecord(
        observation_key=f"{source_id}:{key}",
        metric=metric,
        value=float(value),
        observed_at=observed_at,
        source_id=source_id,
        account=(platform, handle),
        cumulative=True,
    )


def daily_posts(
    source_id: str,
    platform: str,
    handle: str,
    created: Iterable[dt.datetime],
    *,
    complete: bool,
    observed_at: dt.datetime,
) -> list[ObservationRecord]:
    """An account's own posts per day (``posts``, one period a day), from the posts read.

    Only days the reading covers wholly count: not today (more may come), and not the day
    of the oldest post read unless the feed was read to its end. A day's figure is kept
    once (its key has no value), so a later run never adds a second figure for it.
    """
    per_day: dict[dt.date, int] = {}
    for moment in created:
        per_day[moment.date()] = per_day.get(moment.date(), 0) + 1
    if not per_day:
        return []
    oldest, today = min(per_day), observed_at.date()
    records = []
    for day, count in sorted(per_day.items()):
        if day >= today or (day == oldest and not complete):
            continue
        key = _key(source_id, f"account:{platform}:{handle}", "posts", day.isoformat())
        records.append(
            ObservationRecord(
                observation_key=f"{source_id}:{key}",
                metric="posts",
                value=float(count),
                observed_at=observed_at,
                source_id=source_id,
                account=(platform, handle),
                period_start=day,
                period_end=day,
            )
        )
    return records


def post_json(
    ctx: SourceContext,
    url: str,
    *,
    json: Mapping[str, Any] | None = None,
    data: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
) -> Fetched:
    """POST to a login endpoint (Bluesky's ``createSession``, Reddit's token) through the
    shared client, and read its JSON answer.

    Errors are the client's: ``UpstreamError`` for an HTTP error status or no answer,
    ``BadPayloadError`` for a body that is not JSON.
    """
    shown = ctx.redact(url)
    response = ctx.http.post(
        url, json_body=json, form=data, headers=headers, auth=auth, shown=shown
    )
    payload = response.content
    if _HTML.match(payload[:200]):
        raise BadPayloadError(shown, f"HTML page instead of JSON (HTTP {response.status_code})")
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise BadPayloadError(shown, f"body is not valid JSON: {exc}") from None
    return Fetched(url=shown, status=response.status_code, data=parsed, payload=payload)
