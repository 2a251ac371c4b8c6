"""Reading what scoring needs from the store, and writing scores back.

Event -> output goes through ``event_matches``, following ``merged_into_id`` to the kept
output. A deleted event (a ``deleted`` correction) never counts; nor does an event carrying
a flag that the profile excludes. Distinct authors per source are distinct ``subj_author``
values, falling back to ``subj_id`` when an event has no author.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    MetaData,
    Table,
    and_,
    case,
    func,
    insert,
    select,
)

from reachmeter.scoring.compute import ObservationPoint
from reachmeter.scoring.kinds import EVENT_KINDS, OBSERVATION_KINDS
from reachmeter.scoring.profiles import Profile
from reachmeter.store.schema import (
    Correction,
    Event,
    EventMatch,
    Observation,
    Output,
    OutputIdentifier,
    ScoreFlag,
)

__all__ = [
    "OutputRow",
    "author_expr",
    "counted_event_filter",
    "load_counts",
    "load_first_seen",
    "load_observations",
    "load_outputs",
    "members_of",
]

author_expr = func.coalesce(Event.subj_author, Event.subj_id)


class OutputRow(NamedTuple):
    output_id: int
    merged_into_id: int | None
    venue: str | None
    published_on: dt.date | None


def load_outputs(connection: Connection) -> dict[int, OutputRow]:
    """Every output's id, merge target, venue and date."""
    rows = connection.execute(
        select(Output.id, Output.merged_into_id, Output.venue, Output.published_on)
    )
    return {
        int(i): OutputRow(int(i), int(m) if m is not None else None, v or None, d)
        for i, m, v, d in rows
    }


def roots(outputs: dict[int, OutputRow]) -> dict[int, int]:
    """Each output's kept output: itself, or the end of its ``merged_into_id`` chain."""
    found: dict[int, int] = {}
    for output_id in outputs:
        seen = [output_id]
        current = output_id
        while (parent := outputs[current].merged_into_id) is not None and parent not in seen:
            if parent in found:
                current = found[parent]
                break
            seen.append(parent)
            current = parent
        for member in seen:
            found[member] = current
    return found


def members_of(outputs: dict[int, OutputRow], wanted: Iterable[int]) -> dict[int, int]:
    """The outputs (the wanted ones and all merged into them) mapped to their kept output."""
    root = roots(outputs)
    wanted_roots = {root.get(w, w) for w in wanted}
    return {member: kept for member, kept in root.items() if kept in wanted_roots}


def counted_event_filter(before: dt.datetime, exclude_flags: Collection[str]) -> list[Any]:
    """The SQL conditions under which an event counts."""
    deleted = (
        select(Correction.id)
        .where(
            Correction.target_kind == "event",
            Correction.action == "deleted",
            Correction.target_key == Event.event_key,
        )
        .exists()
    )
    conditions: list[Any] = [Event.occurred_at < before, ~deleted]
    if exclude_flags:
        flagged = (
            select(ScoreFlag.id)
            .where(ScoreFlag.event_id == Event.id, ScoreFlag.kind.in_(sorted(exclude_flags)))
            .exists()
        )
        conditions.append(~flagged)
    return conditions


def load_first_seen(
    connection: Connection,
    profile: Profile,
    before: dt.datetime,
    root: dict[int, int],
    output_ids: Collection[int] | None = None,
) -> dict[int, dict[str, list[dt.datetime]]]:
    """Per kept output and kind: the sorted first-mention times of its distinct authors."""
    query = (
        select(EventMatch.output_id, Event.source_id, author_expr, func.min(Event.occurred_at))
        .join(Event, Event.id == EventMatch.event_id)
        .where(and_(*counted_event_filter(before, profile.flags.exclude)))
        .group_by(EventMatch.output_id, Event.source_id, author_expr)
    )
    if output_ids is not None:
        query = query.where(EventMatch.output_id.in_(sorted(output_ids)))
    firsts: dict[int, dict[tuple[str, str], dt.datetime]] = defaultdict(dict)
    kind_of: dict[str, str] = {}
    for output_id, source_id, author, first in connection.execute(query):
        kept = root.get(int(output_id), int(output_id))
        kind = kind_of.get(source_id)
        if kind is None:
            kind = kind_of[source_id] = profile.kind_of_source(source_id)
        key = (kind, author)
        per_output = firsts[kept]
        known = per_output.get(key)
        if known is None or first < known:
            per_output[key] = first
    result: dict[int, dict[str, list[dt.datetime]]] = {}
    for output_id, per_author in firsts.items():
        by_kind: dict[str, list[dt.datetime]] = defaultdict(list)
        for (kind, _author), first in per_author.items():
            by_kind[kind].append(first)
        for times in by_kind.values():
            times.sort()
        result[output_id] = dict(by_kind)
    return result


def load_observations(
    connection: Connection,
    before: dt.datetime,
    root: dict[int, int],
    output_ids: Collection[int] | None = None,
) -> dict[int, list[ObservationPoint]]:
    """Per kept output: its readers, citations and usage observations (not deleted)."""
    deleted = (
        select(Correction.id)
        .where(
            Correction.target_kind == "observation",
            Correction.action == "deleted",
            Correction.target_key == Observation.observation_key,
        )
        .exists()
    )
    query = (
        select(
            OutputIdentifier.output_id,
            Observation.metric,
            Observation.source_id,
            Observation.value,
            Observation.cumulative,
            Observation.observed_at,
            Observation.period_start,
            Observation.qualifier,
        )
        .join(
            OutputIdentifier,
            and_(
                OutputIdentifier.scheme == Observation.obj_scheme,
                OutputIdentifier.value == Observation.obj_value,
            ),
        )
        .where(
            Observation.metric.in_(sorted(OBSERVATION_KINDS)),
            Observation.observed_at < before,
            ~deleted,
        )
    )
    if output_ids is not None:
        query = query.where(OutputIdentifier.output_id.in_(sorted(output_ids)))
    result: dict[int, list[ObservationPoint]] = defaultdict(list)
    for (
        output_id,
        metric,
        source_id,
        value,
        cumulative,
        observed_at,
        start,
        qualifier,
    ) in connection.execute(query):
        kept = root.get(int(output_id), int(output_id))
        result[kept].append(
            ObservationPoint(
                metric, source_id, float(value), bool(cumulative), observed_at, start, qualifier
            )
        )
    return dict(result)


# Merged outputs and where they were merged to; a temporary table, so not in Base.metadata.
_roots_table = Table(
    "tmp_score_roots",
    MetaData(),
    Column("output_id", BigInteger, primary_key=True),
    Column("root_id", BigInteger),
    prefixes=["TEMPORARY"],
)


def load_counts(
    connection: Connection,
    profile: Profile,
    cutoffs: Sequence[dt.datetime],
    root: dict[int, int],
    output_ids: Collection[int] | None = None,
) -> dict[int, dict[str, list[int]]]:
    """Per kept output and kind: how many counted distinct authors first mentioned it
    before each cutoff (``cutoffs[0]`` is the end of the ``as_of`` day).

    The same numbers ``load_first_seen`` gives as times, counted by the database: events
    are grouped per (kept output, kind, author) and then per (kept output, kind).
    """
    mapping = {**EVENT_KINDS, **profile.sources}
    kind = case(
        *[(Event.source_id == source, value) for source, value in sorted(mapping.items())],
        else_="other",
    )
    merged = {member: kept for member, kept in root.items() if member != kept}
    if merged:
        _roots_table.create(connection, checkfirst=True)
        connection.execute(_roots_table.delete())
        rows = [{"output_id": m, "root_id": k} for m, k in sorted(merged.items())]
        for start in range(0, len(rows), 5000):
            connection.execute(insert(_roots_table), rows[start : start + 5000])
        kept_id: Any = func.coalesce(_roots_table.c.root_id, EventMatch.output_id)
        joined: Any = (
            select(EventMatch.output_id)
            .select_from(EventMatch)
            .join(Event, Event.id == EventMatch.event_id)
            .outerjoin(_roots_table, _roots_table.c.output_id == EventMatch.output_id)
        )
    else:
        kept_id = EventMatch.output_id
        joined = select(EventMatch.output_id).join(Event, Event.id == EventMatch.event_id)
    firsts = joined.with_only_columns(
        kept_id.label("oid"),
        kind.label("kind"),
        author_expr.label("author"),
        func.min(Event.occurred_at).label("first"),
    ).where(and_(*counted_event_filter(cutoffs[0], profile.flags.exclude)))
    if output_ids is not None:
        firsts = firsts.where(EventMatch.output_id.in_(sorted(output_ids)))
    inner = firsts.group_by(kept_id, kind, author_expr).subquery()
    query = select(
        inner.c.oid,
        inner.c.kind,
        func.count(),
        *[func.sum(case((inner.c.first < cut, 1), else_=0)) for cut in cutoffs[1:]],
    ).group_by(inner.c.oid, inner.c.kind)
    result: dict[int, dict[str, list[int]]] = defaultdict(dict)
    for row in connection.execute(query):
        result[int(row[0])][row[1]] = [int(v or 0) for v in row[2:]]
    if merged:
        _roots_table.drop(connection, checkfirst=True)
    return dict(result)
