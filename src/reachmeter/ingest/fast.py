"""The fast path for the common case: a plain Event Data event straight to its storage row.

``fast_event_row`` gives exactly the row that ``map_record`` followed by ``event_row``
would give, without building the intermediate record. It declines (returns ``None``) for
anything out of the ordinary (hyphenated field names, usage events, ``updated`` events,
observations, records without an id, anything missing or malformed), and the caller then
takes the general path, which also words the quarantine reasons. A test holds the two
paths to the same result.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from reachmeter.records import _obj_cached, _text
from reachmeter.store.writer import storage_time

__all__ = ["fast_event_row"]

_DECLINE = frozenset(
    {"subj-id", "obj-id", "metric", "updated", "total", "subj_title", "subj_author", "author"}
)
_fromisoformat = dt.datetime.fromisoformat
_UTC = dt.UTC
_ZERO = dt.timedelta(0)
_blake2b = hashlib.blake2b
_from_bytes = int.from_bytes
_dumps = orjson.dumps
# Names that recur in every event (relations, sources, licences) are shared, not one
# string per event: batches travel smaller and the storing side builds fewer objects.
# Bounded, so a file of ever-new names cannot grow it without end.
_SHARED_MAX = 4096
_shared: dict[str, str] = {}


def _share(text: str) -> str:
    if len(_shared) < _SHARED_MAX:
        _shared[text] = text
    return text


def _time(value: object, sqlite: bool) -> Any:
    if type(value) is not str:
        return None
    try:
        parsed = _fromisoformat(value)
    except ValueError:
        return None
    if (
        sqlite
        and (parsed.tzinfo is _UTC or parsed.utcoffset() == _ZERO)
        and len(value) >= 20
        and value[10] == "T"
        and value[4] == value[7] == "-"
        and value[13] == value[16] == ":"
    ):
        # The usual "2017-05-14T05:04:37(.000)Z" or "...+00:00": the text is already UTC, so
        # the stored form is built from it directly (datetime.isoformat costs more).
        return f"{value[:10]} {value[11:19]}.{parsed.microsecond:06d}"
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_UTC)
    return storage_time(parsed, sqlite)


def _subj_author(author: object) -> str | None:
    """``subj.author`` as ``records._author`` reads it (a record with a flat author field
    never takes the fast path)."""
    if isinstance(author, Mapping):
        return _text(author, "url", "name", "id") or None
    if isinstance(author, str) and author.strip():
        return author.strip()
    return None


def fast_event_row(
    record: Mapping[str, Any], collected_at: Any, evidence_id: int, sqlite: bool
) -> tuple[Any, ...] | None:
    """The storage row of a plain Event Data event, or None to take the general path.

    ``collected_at`` is the ingest time already in storage form.
    """
    if not _DECLINE.isdisjoint(record.keys()):
        return None
    get = record.get
    subj_id = get("subj_id")
    relation = get("relation_type_id")
    raw_obj = get("obj_id")
    source_id = get("source_id")
    key = get("id") or get("uuid")
    if not (
        type(subj_id) is str
        and type(relation) is str
        and type(raw_obj) is str
        and type(source_id) is str
        and type(key) is str
    ):
        return None
    subj_id = subj_id.strip()
    relation = relation.strip()
    relation = _shared.get(relation) or _share(relation)
    source_id = source_id.strip()
    source_id = _shared.get(source_id) or _share(source_id)
    key = key.strip()
    if not (subj_id and relation and source_id and key):
        return None
    obj = _obj_cached(raw_obj.strip())
    if type(obj) is not tuple:
        return None
    occurred_at = _time(get("occurred_at"), sqlite)
    if occurred_at is None:
        return None
    timestamp = get("timestamp") or get("collected_at")
    if timestamp:
        collected = _time(timestamp, sqlite)
        if collected is None:
            return None
    else:
        collected = collected_at
    subj = get("subj")
    author = None
    if type(subj) is dict:
        if subj:
            found = subj.get("author")
            if found is not None:
                author = _subj_author(found)
        else:
            subj = None
    elif isinstance(subj, str):
        return None
    elif isinstance(subj, Mapping) and subj:
        found = subj.get("author")
        if found is not None:
            author = _subj_author(found)
    else:
        subj = None
    evidence_url = get("evidence_record") or get("evidence_url")
    license_ = get("license")
    if (evidence_url is not None and type(evidence_url) is not str) or (
        license_ is not None and type(license_) is not str
    ):
        return None
    return (
        # records.key_hash, inlined: this runs once per event.
        _from_bytes(_blake2b(key.encode(), digest_size=8).digest(), "big", signed=True),
        key,
        subj_id,
        relation,
        obj[0],
        obj[1],
        obj[2],
        source_id,
        occurred_at,
        collected,
        author,
        _dumps(subj).decode() if subj is not None else None,
        evidence_id,
        evidence_url.strip() or None if evidence_url else None,
        (_shared.get(license_) or _share(license_.strip()) or None) if license_ else None,
    )
