"""What ingest turns input records into: events, observations and corrections.

Every field is already normalised and typed; the writer only stores. Mapping is the same
for every input format: Crossref / DataCite Event Data (``subj_id`` or ``subj-id`` style)
and the generic mention format, which is Event Data's shape with friendlier defaults.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, NamedTuple

import orjson

from reachmeter.matching.identifiers import IdentifierError, parse_obj_id, to_uri

__all__ = [
    "CorrectionRecord",
    "EventRecord",
    "ObservationRecord",
    "RecordError",
    "key_hash",
    "map_record",
    "parse_time",
]

# The namespace of the deterministic keys of records that carry no id of their own.
KEY_NAMESPACE = uuid.UUID("6f1d7c2e-3b0a-5d8e-9a47-52b1c0e4f7a3")

_USAGE_RELATION = re.compile(
    r"^(?P<metric>(?:total|unique)-dataset-(?:investigations|requests))-(?P<access>regular|machine)$",
    re.IGNORECASE,
)
_DELETION_STATES = {"deleted", "edited", "updated"}


class RecordError(ValueError):
    """A record that cannot be used; the message is the reason it is quarantined."""


class EventRecord(NamedTuple):
    event_key: str
    subj_id: str
    relation_type_id: str
    obj_id: str
    obj_scheme: str
    obj_value: str
    source_id: str
    occurred_at: dt.datetime
    collected_at: dt.datetime
    subj_author: str | None
    subj: dict[str, Any] | None
    evidence_url: str | None
    license: str | None


class ObservationRecord(NamedTuple):
    observation_key: str
    metric: str
    value: float
    observed_at: dt.datetime
    source_id: str
    obj_id: str | None = None
    obj_scheme: str | None = None
    obj_value: str | None = None
    account: tuple[str, str] | None = None
    qualifier: str = ""
    cumulative: bool = False
    period_start: dt.date | None = None
    period_end: dt.date | None = None


class CorrectionRecord(NamedTuple):
    target_kind: str
    target_key: str
    action: str
    reason: str
    corrected_at: dt.datetime


def key_hash(key: str) -> int:
    """The signed 64-bit hash under which a record's key is deduplicated."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def parse_time(value: object, field: str) -> dt.datetime:
    """An ISO 8601 time (or date) as an aware UTC datetime; naive times are taken as UTC."""
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise RecordError(f"{field} {value!r} is not an ISO 8601 time") from None
    else:
        raise RecordError(f"missing {field}")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _parse_date(value: object, field: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            raise RecordError(f"{field} {value!r} is not an ISO 8601 date") from None
    raise RecordError(f"{field} {value!r} is not an ISO 8601 date")


def _text(record: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = record.get(name)
        if value:
            return value.strip() if type(value) is str else str(value).strip()
        if value is not None and value != "":
            return str(value)
    return ""


@lru_cache(maxsize=262144)
def _obj_cached(obj_id: str) -> tuple[str, str, str] | str:
    try:
        identifier = parse_obj_id(obj_id)
    except IdentifierError as exc:
        return f"obj_id: {exc}"
    return to_uri(identifier), identifier.scheme, identifier.value


def _obj(obj_id: str) -> tuple[str, str, str]:
    """The canonical URI, scheme and value of an ``obj_id`` (cached: few outputs, many events)."""
    found = _obj_cached(obj_id)
    if isinstance(found, str):
        raise RecordError(found)
    return found


def _author(record: Mapping[str, Any], subj: Mapping[str, Any] | None) -> str | None:
    flat = _text(record, "subj_author", "author")
    if flat:
        return flat
    if subj:
        author = subj.get("author")
        if isinstance(author, Mapping):
            found = _text(author, "url", "name", "id")
            return found or None
        if isinstance(author, str) and author.strip():
            return author.strip()
    return None


def _month_bounds(moment: dt.datetime) -> tuple[dt.date, dt.date]:
    start = moment.date().replace(day=1)
    following = (start + dt.timedelta(days=32)).replace(day=1)
    return start, following - dt.timedelta(days=1)


def _norm(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """Event Data's older hyphenated field names (``subj-id``) in the underscore form."""
    if "subj-id" in record or "obj-id" in record or "occurred-at" in record:
        return {key.replace("-", "_"): value for key, value in record.items()}
    return record


def _observation(record: Mapping[str, Any], default_source: str) -> ObservationRecord:
    metric = _text(record, "metric")
    raw_value = record.get("value")
    if isinstance(raw_value, bool) or raw_value is None or raw_value == "":
        raise RecordError("observation without a value")
    try:
        value = float(raw_value)
    except (TypeError, ValueError):
        raise RecordError(f"value {raw_value!r} is not a number") from None
    source_id = _text(record, "source_id") or default_source
    observed_at = parse_time(record.get("observed_at"), "observed_at")
    period_start = _parse_date(record.get("period_start"), "period_start")
    period_end = _parse_date(record.get("period_end"), "period_end")
    if period_start and period_end and period_end < period_start:
        raise RecordError(f"period_end {period_end} is before period_start {period_start}")
    cumulative = record.get("cumulative") in (True, "true", "True", "1", 1)
    qualifier = _text(record, "qualifier")
    obj_id = _text(record, "obj_id")
    account_text = _text(record, "account")
    if bool(obj_id) == bool(account_text):
        raise RecordError("an observation needs exactly one of obj_id and account")
    fields: dict[str, Any] = {}
    subject: str
    if obj_id:
        fields["obj_id"], fields["obj_scheme"], fields["obj_value"] = _obj(obj_id)
        subject = f"{fields['obj_scheme']}:{fields['obj_value']}"
    else:
        platform, sep, handle = account_text.partition(":")
        if not sep or not platform.strip() or not handle.strip():
            raise RecordError(f"account {account_text!r} is not PLATFORM:HANDLE")
        fields["account"] = (platform.strip().lower(), handle.strip())
        subject = f"account:{platform.strip().lower()}:{handle.strip()}"
    key = _text(record, "id")
    if not key:
        key = str(
            uuid.uuid5(
                KEY_NAMESPACE,
                "|".join(
                    [
                        source_id,
                        subject,
                        metric,
                        qualifier,
                        str(period_start),
                        str(period_end),
                        observed_at.isoformat() if cumulative or not period_start else "",
                    ]
                ),
            )
        )
    return ObservationRecord(
        observation_key=key,
        metric=metric,
        value=value,
        observed_at=observed_at,
        source_id=source_id,
        qualifier=qualifier,
        cumulative=cumulative,
        period_start=period_start,
        period_end=period_end,
        **fields,
    )


def map_record(
    raw: Mapping[str, Any], *, collected_at: dt.datetime, default_source: str = ""
) -> list[EventRecord | ObservationRecord | CorrectionRecord]:
    """Map one input record (Event Data or generic) to what is stored.

    An Event Data usage event (``unique-dataset-investigations-regular`` with a ``total``)
    becomes an observation for the month it occurred in; a record with ``metric`` and
    ``value`` is an observation; an ``updated`` event is its event plus a correction.
    Raises ``RecordError`` with the reason when the record cannot be used.
    """
    record = _norm(raw)
    if "metric" in record:
        return [_observation(record, default_source or "generic")]
    subj_id = _text(record, "subj_id")
    relation = _text(record, "relation_type_id")
    raw_obj = _text(record, "obj_id")
    source_id = _text(record, "source_id") or default_source
    occurred = record.get("occurred_at")
    if not (subj_id and relation and raw_obj and source_id and occurred):
        missing = [
            name
            for name, value in (
                ("subj_id", subj_id),
                ("relation_type_id", relation),
                ("obj_id", raw_obj),
                ("occurred_at", occurred),
                ("source_id", source_id),
            )
            if not value
        ]
        raise RecordError("missing " + ", ".join(missing))
    obj_id, obj_scheme, obj_value = _obj(raw_obj)
    occurred_at = parse_time(occurred, "occurred_at")
    event_key = _text(record, "id", "uuid")
    if record.get("total") is not None and (usage := _USAGE_RELATION.match(relation)):
        start, end = _month_bounds(occurred_at)
        return [
            _observation(
                {
                    "id": f"eventdata:{event_key}" if event_key else "",
                    "metric": usage.group("metric").lower(),
                    "qualifier": usage.group("access").lower(),
                    "value": record["total"],
                    "obj_id": obj_id,
                    "observed_at": occurred_at.isoformat(),
                    "period_start": start.isoformat(),
                    "period_end": end.isoformat(),
                    "source_id": source_id,
                },
                source_id,
            )
        ]
    if not event_key:
        event_key = str(uuid.uuid5(KEY_NAMESPACE, f"{source_id}|{subj_id}|{relation}|{obj_id}"))
    subj = record.get("subj")
    if isinstance(subj, str) and subj.strip().startswith("{"):
        # The CSV form of an event keeps ``subj`` as JSON text.
        try:
            subj = orjson.loads(subj)
        except orjson.JSONDecodeError:
            raise RecordError("subj is not valid JSON") from None
    if not isinstance(subj, Mapping):
        subj = None
    title = _text(record, "subj_title")
    if title:
        subj = {**(subj or {}), "title": title}
    timestamp = record.get("timestamp") or record.get("collected_at")
    event = EventRecord(
        event_key=event_key,
        subj_id=subj_id,
        relation_type_id=relation,
        obj_id=obj_id,
        obj_scheme=obj_scheme,
        obj_value=obj_value,
        source_id=source_id,
        occurred_at=occurred_at,
        collected_at=parse_time(timestamp, "timestamp") if timestamp else collected_at,
        subj_author=_author(record, subj),
        subj=dict(subj) if subj else None,
        evidence_url=_text(record, "evidence_record", "evidence_url") or None,
        license=_text(record, "license") or None,
    )
    mapped: list[EventRecord | ObservationRecord | CorrectionRecord] = [event]
    updated = _text(record, "updated").lower() if "updated" in record else ""
    if updated:
        if updated not in _DELETION_STATES:
            raise RecordError(f"updated {updated!r} is not one of {sorted(_DELETION_STATES)}")
        mapped.append(
            CorrectionRecord(
                target_kind="event",
                target_key=event_key,
                action="deleted" if updated == "deleted" else "edited",
                reason=_text(record, "updated_reason") or f"marked {updated} upstream",
                corrected_at=parse_time(
                    record.get("updated_date") or record.get("timestamp"), "updated_date"
                ),
            )
        )
    return mapped
