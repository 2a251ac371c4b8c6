"""Reading what scoring needs from the store, and writing scores back.

Event -> output goes through ``event_matches``, following ``merged_into_id`` to the kept
output. A deleted event (a ``deleted`` correction) never counts; nor does an event carrying
a flag that the profile excludes. Distinct authors per source are distinct ``subj_author``
values, falling back to ``subj_id`` when an event has no author.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    func,
    insert,
    select,
    text,
    type_coerce,
)

from reachmeter.records import key_hash
from reachmeter.scoring.compute import ObservationPoint
from reachmeter.scoring.kinds import EVENT_KINDS, OBSERVATION_KINDS
from reachmeter.scoring.profiles import Profile
from reachmeter.store.mentions import event_author
from reachmeter.store.schema import (
    Correction,
    Event,
    EventMatch,
    FirstMention,
    MentionTotal,
    Observation,
    Output,
    OutputIdentifier,
    ScoreFlag,
)
from reachmeter.store.writer import storage_time

__all__ = [
    "CountPlan",
    "OutputRow",
    "author_expr",
    "count_by_author",
    "count_range",
    "counted_event_filter",
    "counting",
    "deleted_event_ids",
    "driver_executemany",
    "driver_rows",
    "event_ids_by_key",
    "load_counts",
    "load_merged",
    "load_observations",
    "load_outputs",
    "members_of",
    "not_deleted",
    "uncounted_events",
]

author_expr = event_author  # who wrote an event (the store defines it)


class OutputRow(NamedTuple):
    output_id: int
    merged_into_id: int | None
    venue: str | None
    published_on: dt.date | None


def load_outputs(connection: Connection, *conditions: Any) -> dict[int, OutputRow]:
    """Every output's (or those meeting ``conditions``) id, merge target, venue and date."""
    rows = connection.execute(
        select(Output.id, Output.merged_into_id, Output.venue, Output.published_on).where(
            *conditions
        )
    )
    return {
        int(i): OutputRow(int(i), int(m) if m is not None else None, v or None, d)
        for i, m, v, d in rows
    }


def load_merged(connection: Connection) -> dict[int, OutputRow]:
    """The outputs merged into another: all that ``roots`` and ``members_of`` need, and few
    beside every output."""
    return load_outputs(connection, Output.merged_into_id.is_not(None))


def roots(outputs: dict[int, OutputRow]) -> dict[int, int]:
    """Each output's kept output: itself, or the end of its ``merged_into_id`` chain.

    ``outputs`` may hold every output or only the merged ones (``load_merged``); an output
    it does not hold is its own kept output.
    """
    found: dict[int, int] = {}
    for output_id in outputs:
        seen = [output_id]
        current = output_id
        while (
            (row := outputs.get(current)) is not None
            and (parent := row.merged_into_id) is not None
            and parent not in seen
        ):
            if parent in found:
                current = found[parent]
                break
            seen.append(parent)
            current = parent
        for member in seen:
            found[member] = current
    return found


def members_of(outputs: dict[int, OutputRow], wanted: Iterable[int]) -> dict[int, int]:
    """The outputs (the wanted ones and all merged into them) mapped to their kept output.

    ``outputs`` may hold every output or only the merged ones (``load_merged``).
    """
    root = roots(outputs)
    wanted_roots = {root.get(w, w) for w in wanted}
    members = {kept: kept for kept in wanted_roots}
    members.update({member: kept for member, kept in root.items() if kept in wanted_roots})
    return members


def not_deleted() -> Any:
    """The SQL condition that an event has no ``deleted`` correction."""
    return ~(
        select(Correction.id)
        .where(
            Correction.target_kind == "event",
            Correction.action == "deleted",
            Correction.target_key == Event.event_key,
        )
        .exists()
    )


def counted_event_filter(before: dt.datetime, exclude_flags: Collection[str]) -> list[Any]:
    """The SQL conditions under which an event counts."""
    conditions: list[Any] = [Event.occurred_at < before, not_deleted()]
    if exclude_flags:
        flagged = (
            select(ScoreFlag.id)
            .where(ScoreFlag.event_id == Event.id, ScoreFlag.kind.in_(sorted(exclude_flags)))
            .exists()
        )
        conditions.append(~flagged)
    return conditions


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


_COUNT_CHUNK = 500  # output ids per query
_FETCH_ROWS = 10_000
_LOOKUP_CHUNK = 400

# Events that never count for a run: deleted, or carrying a flag the profile excludes. A
# temporary table, so not in Base.metadata.
_uncounted_table = Table(
    "tmp_uncounted_events",
    MetaData(),
    Column("event_id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    prefixes=["TEMPORARY"],
)


def event_ids_by_key(connection: Connection, keys: Collection[str]) -> dict[str, list[int]]:
    """The stored events with these keys, found by the index of the keys' hashes."""
    wanted = {key_hash(key): key for key in keys}
    hashes = sorted(wanted)
    found: dict[str, list[int]] = defaultdict(list)
    for start in range(0, len(hashes), _LOOKUP_CHUNK):
        for event_id, key in connection.execute(
            select(Event.id, Event.event_key).where(
                Event.key_hash.in_(hashes[start : start + _LOOKUP_CHUNK])
            )
        ):
            if key in keys:
                found[key].append(int(event_id))
    return dict(found)


def deleted_event_ids(connection: Connection) -> set[int]:
    """The stored events that a ``deleted`` correction names (by their key)."""
    keys = {
        key
        for (key,) in connection.execute(
            select(Correction.target_key).where(
                Correction.target_kind == "event", Correction.action == "deleted"
            )
        )
    }
    return {i for ids in event_ids_by_key(connection, keys).values() for i in ids}


@contextlib.contextmanager
def uncounted_events(connection: Connection, exclude_flags: Collection[str]) -> Iterator[Any]:
    """A temporary table of the events that do not count: deleted (a ``deleted``
    correction names their key) or flagged with a kind in ``exclude_flags``."""
    table = _uncounted_table
    table.create(connection, checkfirst=True)
    try:
        connection.execute(table.delete())
        deleted = sorted(deleted_event_ids(connection))
        for start in range(0, len(deleted), 5000):
            connection.execute(
                insert(table), [{"event_id": i} for i in deleted[start : start + 5000]]
            )
        if exclude_flags:
            flagged = (
                select(ScoreFlag.event_id)
                .where(ScoreFlag.kind.in_(sorted(exclude_flags)), ScoreFlag.event_id.is_not(None))
                .except_(select(table.c.event_id))
            )
            connection.execute(insert(table).from_select(["event_id"], flagged))
        yield table
    finally:
        table.drop(connection, checkfirst=True)


# The event sources in the store, one index probe each (a loose index scan): the counting
# needs to know which kinds more than one source feeds.
_SOURCES = text(
    "WITH RECURSIVE found(source_id) AS ("
    " SELECT min(source_id) FROM events"
    " UNION ALL"
    " SELECT (SELECT min(source_id) FROM events WHERE events.source_id > found.source_id)"
    " FROM found WHERE found.source_id IS NOT NULL)"
    " SELECT source_id FROM found WHERE source_id IS NOT NULL"
)


@dataclass(frozen=True)
class CountPlan:
    """What counting distinct authors needs to know of a store before it counts.

    ``mapping`` gives each source's kind under the profile; ``merged`` each merged
    output's kept one; ``shared`` the sources of a kind that more than one source feeds;
    ``by_author`` the outputs counted author by author from their matches (those of a
    merge, and those with a mention that does not count). Picklable: a second process
    can count a range of outputs with it (``count_range``).
    """

    mapping: dict[str, str]
    cutoffs: tuple[dt.datetime, ...]
    merged: dict[int, int]
    shared: tuple[str, ...]
    by_author: frozenset[int]


@contextlib.contextmanager
def counting(
    connection: Connection,
    profile: Profile,
    cutoffs: Sequence[dt.datetime],
    root: dict[int, int],
) -> Iterator[tuple[CountPlan, list[Any]]]:
    """The plan of a count, and the conditions under which a match counts (they use a
    temporary table of the uncounted events, there while this is open)."""
    mapping = {**EVENT_KINDS, **profile.sources}
    merged = {member: kept for member, kept in root.items() if member != kept}
    with uncounted_events(connection, profile.flags.exclude) as uncounted:
        feeding: dict[str, list[str]] = defaultdict(list)
        for (source_id,) in connection.execute(_SOURCES):
            feeding[mapping.get(source_id, "other")].append(source_id)
        shared = sorted(s for sources in feeding.values() if len(sources) > 1 for s in sources)
        by_author = set(merged) | set(merged.values())
        by_author |= {
            int(o)
            for (o,) in connection.execute(
                select(EventMatch.output_id)
                .where(EventMatch.event_id.in_(select(uncounted.c.event_id)))
                .distinct()
            )
        }
        counted = [
            EventMatch.occurred_at < cutoffs[0],
            EventMatch.event_id.not_in(select(uncounted.c.event_id)),
        ]
        yield (
            CountPlan(mapping, tuple(cutoffs), merged, tuple(shared), frozenset(by_author)),
            counted,
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

    No event row is read: an author counts before a cutoff when their first counted
    mention is before it.

    - Most outputs are counted from ``first_mentions`` (each author's first mention of an
      output on a source), in two passes: the authors per output and source, then the
      few first mentions recent enough to fall after one of the cutoffs. That needs the
      first mention to count and each kind fed by one source. So three kinds of output
      are counted author by author from their matches instead: those with a mention that
      does not count (deleted, or flagged with a kind the profile excludes), those of a
      merge (counted as the kept one), and, for every output, the sources of a kind that
      several sources feed (one author may appear under two of them).
    - With ``output_ids`` (an incremental run), those outputs alone, looked up by id.
    """
    with counting(connection, profile, cutoffs, root) as (plan, counted):
        if output_ids is None:
            result = count_range(connection, plan)
            wanted = set(plan.by_author)
        else:
            wanted = set(output_ids)
            result = count_range(connection, plan, chunks=_chunks(wanted - plan.by_author))
            wanted &= plan.by_author
        by_author = count_by_author(connection, plan, counted, wanted)
    for kept, kinds in by_author.items():
        result.setdefault(kept, {}).update(kinds)
    return result


def count_by_author(
    connection: Connection, plan: CountPlan, counted: list[Any], output_ids: Collection[int]
) -> dict[int, dict[str, list[int]]]:
    """The counts of ``output_ids`` (with every output merged into them), author by author
    from their counted matches."""
    selections = [[EventMatch.output_id.in_(chunk)] for chunk in _chunks(output_ids)]
    return _count_authors(connection, plan, counted, selections)


def count_range(
    connection: Connection,
    plan: CountPlan,
    low: int | None = None,
    high: int | None = None,
    *,
    chunks: list[list[int]] | None = None,
) -> dict[int, dict[str, list[int]]]:
    """The counts of the outputs not counted author by author (``plan.by_author``): those
    from ``low`` up to ``high`` (not included) if given, of ``chunks`` if given, else all.

    From ``first_mentions`` for the sources with a kind of their own; author by author
    from the matches for the ``shared`` ones. None of these outputs has a merge or a
    mention that does not count, so every match of theirs counts up to the first cutoff.
    """
    if chunks is not None:
        result = _count_from_totals(connection, plan, chunks)
    else:
        bounds: list[Any] = []
        if low is not None:
            bounds.append(FirstMention.output_id >= low)
        if high is not None:
            bounds.append(FirstMention.output_id < high)
        result = _count_first_mentions(connection, plan, *bounds)
    if plan.shared:
        in_shared = EventMatch.source_id.in_(plan.shared)
        selections: list[list[Any]] = [[in_shared]]
        if chunks is not None:
            selections = [[in_shared, EventMatch.output_id.in_(chunk)] for chunk in chunks]
        if low is not None:
            selections = [[*chosen, EventMatch.output_id >= low] for chosen in selections]
        if high is not None:
            selections = [[*chosen, EventMatch.output_id < high] for chosen in selections]
        counted = [EventMatch.occurred_at < plan.cutoffs[0]]
        for output_id, kinds in _count_authors(connection, plan, counted, selections).items():
            if output_id not in plan.by_author:
                result.setdefault(output_id, {}).update(kinds)
    return result


def _chunks(output_ids: Collection[int]) -> list[list[int]]:
    wanted = sorted(output_ids)
    return [wanted[start : start + _COUNT_CHUNK] for start in range(0, len(wanted), _COUNT_CHUNK)]


def _count_first_mentions(
    connection: Connection, plan: CountPlan, *scope: Any
) -> dict[int, dict[str, list[int]]]:
    """From ``first_mentions``: per output (those ``scope``'s conditions pick; not those of
    ``plan.by_author``) and kind (of the sources not ``plan.shared``), the authors first
    seen before each cutoff.

    The database counts the authors before the first cutoff per output and source; then
    the first mentions on or after the earliest other cutoff are read one by one and taken
    off the counts of the cutoffs they are not before.
    """
    cutoffs, mapping, shared, skip = plan.cutoffs, plan.mapping, plan.shared, plan.by_author
    sqlite = connection.dialect.name == "sqlite"
    # On SQLite, times are compared in their stored text form, which sorts as they do.
    limits = [storage_time(cut, sqlite) for cut in cutoffs]
    first = FirstMention
    conditions: list[Any] = [first.first_at < cutoffs[0]]
    if shared:
        conditions.append(first.source_id.not_in(list(shared)))
    result: dict[int, dict[str, list[int]]] = {}
    totals = (
        select(first.output_id, first.source_id, func.count())
        .where(*conditions)
        .group_by(first.output_id, first.source_id)
    )
    width = len(cutoffs)
    for rows in driver_rows(connection, [totals.where(*scope)]):
        for output_id, source_id, authors in rows:
            if output_id in skip:
                continue
            kind = mapping.get(source_id, "other")
            per_output = result.get(output_id)
            if per_output is None:
                per_output = result[output_id] = {}
            per_output[kind] = [authors] * width
    if width == 1:
        return result
    recent = select(
        first.output_id,
        first.source_id,
        type_coerce(first.first_at, String) if sqlite else first.first_at,
    ).where(first.first_at >= min(cutoffs[1:]), *conditions)
    later = range(1, width)
    for rows in driver_rows(connection, [recent.where(*scope)]):
        for output_id, source_id, at in rows:
            if output_id in skip:
                continue
            numbers = result[output_id][mapping.get(source_id, "other")]
            for index in later:
                if at >= limits[index]:
                    numbers[index] -= 1
    return result


def _count_from_totals(
    connection: Connection, plan: CountPlan, chunks: list[list[int]]
) -> dict[int, dict[str, list[int]]]:
    """What ``_count_first_mentions`` counts, for the outputs of ``chunks``, read by index:
    each output's authors per source from ``mention_totals`` (one row per source), less
    its first mentions on or after each cutoff (the recent ones alone, found by
    ``ix_first_mentions_recent``). So an incremental run reads a row per source and per
    recent author, not one per author an output ever had.
    """
    cutoffs, mapping, shared, skip = plan.cutoffs, plan.mapping, plan.shared, plan.by_author
    sqlite = connection.dialect.name == "sqlite"
    # On SQLite, times are compared in their stored text form, which sorts as they do.
    limits = [storage_time(cut, sqlite) for cut in cutoffs]
    total, first = MentionTotal, FirstMention
    totals = select(total.output_id, total.source_id, total.authors)
    recent = select(
        first.output_id,
        first.source_id,
        type_coerce(first.first_at, String) if sqlite else first.first_at,
    ).where(first.first_at >= min(cutoffs))
    if shared:
        totals = totals.where(total.source_id.not_in(list(shared)))
        recent = recent.where(first.source_id.not_in(list(shared)))
    result: dict[int, dict[str, list[int]]] = {}
    numbers_of: dict[tuple[int, str], list[int]] = {}  # the same lists, by output and source
    width = len(cutoffs)
    for rows in driver_rows(connection, [totals.where(total.output_id.in_(c)) for c in chunks]):
        for output_id, source_id, authors in rows:
            if output_id in skip:
                continue
            kind = mapping.get(source_id, "other")
            numbers = numbers_of[output_id, source_id] = [authors] * width
            result.setdefault(output_id, {})[kind] = numbers
    # A first mention at ``at`` is not before the cutoffs up to bisect_right(rising, at)
    # in rising order: for most, the earliest cutoff alone.
    order = sorted(range(width), key=limits.__getitem__)
    rising = [limits[index] for index in order]
    after = bisect.bisect_right
    for rows in driver_rows(connection, [recent.where(first.output_id.in_(c)) for c in chunks]):
        for output_id, source_id, at in rows:
            found = numbers_of.get((output_id, source_id))
            if found is None:
                if output_id in skip:
                    continue
                raise RuntimeError(
                    f"no mention total for output {output_id} on {source_id!r}, which has"
                    " first mentions: the store's mention_totals is out of step"
                )
            for index in order[: after(rising, at)]:
                found[index] -= 1
    # As counted from the first mentions themselves: a kind with no author before the
    # first cutoff has no count, and an output with none has no entry.
    for output_id in list(result):
        kinds = result[output_id]
        for kind in [kind for kind, numbers in kinds.items() if not numbers[0]]:
            del kinds[kind]
        if not kinds:
            del result[output_id]
    return result


def driver_executemany(connection: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """Run ``sql`` for each of ``rows`` on the driver's own cursor: rows already in storage
    form skip SQLAlchemy's processing of each value. ``{mark}`` in ``sql`` stands for the
    driver's placeholder."""
    mark = "?" if connection.dialect.name == "sqlite" else "%s"
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql.replace("{mark}", mark), rows)
    finally:
        cursor.close()


def driver_rows(
    connection: Connection, queries: Sequence[Any]
) -> Generator[Sequence[Any], None, None]:
    """The rows of ``queries`` in batches, straight from the driver's cursor: whole
    numbers, text and times (text on SQLite, aware datetimes from PostgreSQL) need no
    conversion, and a row object each cost about a microsecond."""
    for query in queries:
        cursor = connection.execute(query).cursor
        try:
            while rows := cursor.fetchmany(_FETCH_ROWS):
                yield rows
        finally:
            cursor.close()


def _count_authors(
    connection: Connection, plan: CountPlan, counted: list[Any], selections: list[list[Any]]
) -> dict[int, dict[str, list[int]]]:
    """Author by author: the counted matches that each of ``selections`` (a list of
    conditions, each a selection of outputs, or of outputs and sources) picks.

    The rows come in the order of their outputs and each output is counted as soon as its
    rows are in, so memory holds one output's authors at a time (and those of outputs
    that others were merged into, until the end).
    """
    cutoffs, mapping, merged = plan.cutoffs, plan.mapping, plan.merged
    sqlite = connection.dialect.name == "sqlite"
    # On SQLite, times are compared in their stored text form, which sorts as they do.
    limits = [storage_time(cut, sqlite) for cut in cutoffs]
    gathering = set(merged.values())  # kept outputs with members: counted at the end
    firsts: dict[int, dict[tuple[str, str], Any]] = defaultdict(dict)
    result: dict[int, dict[str, list[int]]] = {}

    def count(kept: int) -> None:
        per_kind: dict[str, list[Any]] = defaultdict(list)
        for (kind, _author), first in firsts.pop(kept).items():
            per_kind[kind].append(first)
        numbers: dict[str, list[int]] = {}
        for kind, times in per_kind.items():
            times.sort()
            numbers[kind] = [bisect.bisect_left(times, limit) for limit in limits]
        result.setdefault(kept, {}).update(numbers)

    query = (
        select(
            EventMatch.output_id,
            EventMatch.source_id,
            EventMatch.author,
            type_coerce(EventMatch.occurred_at, String) if sqlite else EventMatch.occurred_at,
        )
        .where(*counted)
        .order_by(EventMatch.output_id)
    )
    current = None
    for rows in driver_rows(connection, [query.where(*chosen) for chosen in selections]):
        for output_id, source_id, author, occurred in rows:
            if output_id != current:
                if current is not None and current not in gathering and current in firsts:
                    count(current)
                current = output_id
            kept = merged.get(output_id, output_id)
            kind = mapping.get(source_id, "other")
            key = (kind, author)
            per_output = firsts[kept]
            known = per_output.get(key)
            if known is None or occurred < known:
                per_output[key] = occurred
    for kept in list(firsts):
        count(kept)
    return result
