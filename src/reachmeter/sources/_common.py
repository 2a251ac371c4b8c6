"""Small helpers the scholarly sources share: identifiers, observations, dates, authors."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from reachmeter.matching.identifiers import Identifier, IdentifierError, normalize, to_uri
from reachmeter.records import KEY_NAMESPACE, ObservationRecord
from reachmeter.store.catalog import AuthorRef, CatalogError, normalize_output_type

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def identifier(value: Any, scheme: str) -> Identifier | None:
    """The normalised identifier, or None when ``value`` is not one of ``scheme``."""
    if not value or not isinstance(value, str | int):
        return None
    try:
        return normalize(str(value), scheme)
    except IdentifierError:
        return None


def observation(
    source_id: str,
    obj: Identifier,
    metric: str,
    value: float,
    observed_at: dt.datetime,
    *,
    qualifier: str = "",
    cumulative: bool = True,
    period: tuple[dt.date, dt.date] | None = None,
) -> ObservationRecord:
    """An observation of an output. A cumulative figure is kept once per day and value; a
    per-period figure once per period and value (a revised figure is a new observation)."""
    when = "" if period else observed_at.date().isoformat()
    key_text = "|".join(
        [
            source_id,
            f"{obj.scheme}:{obj.value}",
            metric,
            qualifier,
            str(period[0]) if period else "",
            str(period[1]) if period else "",
            when,
            repr(float(value)),
        ]
    )
    return ObservationRecord(
        observation_key=f"{source_id}:{uuid.uuid5(KEY_NAMESPACE, key_text)}",
        metric=metric,
        value=float(value),
        observed_at=observed_at,
        source_id=source_id,
        obj_id=to_uri(obj),
        obj_scheme=obj.scheme,
        obj_value=obj.value,
        qualifier=qualifier,
        cumulative=cumulative,
        period_start=period[0] if period else None,
        period_end=period[1] if period else None,
    )


def output_type(value: Any) -> str:
    """A catalogue output type for an upstream type name; ``other`` when unknown."""
    if not isinstance(value, str) or not value:
        return "other"
    try:
        return normalize_output_type(value)
    except CatalogError:
        return "other"


def date_from_parts(parts: Any) -> dt.date | None:
    """A date from Crossref's ``{"date-parts": [[y, m, d]]}`` (missing parts are 1)."""
    try:
        values = parts["date-parts"][0]
        year = int(values[0])
        month = int(values[1]) if len(values) > 1 and values[1] else 1
        day = int(values[2]) if len(values) > 2 and values[2] else 1
        return dt.date(year, month, day)
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def iso_date(value: Any) -> dt.date | None:
    if not isinstance(value, str) or len(value) < 4:
        return None
    try:
        if len(value) == 4:
            return dt.date(int(value), 1, 1)
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def author(name: str, orcid: Any) -> AuthorRef:
    found = identifier(orcid, "orcid") if orcid else None
    return AuthorRef(name=name.strip(), orcid=found.value if found else None)


def first(value: Any) -> str | None:
    """The first string of a list (Crossref's titles), or the string itself."""
    if isinstance(value, list):
        value = value[0] if value else None
    return value.strip() if isinstance(value, str) and value.strip() else None
