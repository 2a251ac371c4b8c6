"""Reading the store for the REST API and the pages: filtered lists with keyset pagination,
and the details of outputs, people, groups, accounts, events and observations.

Nothing here computes a score: stored scores are read as ``reachmeter.scoring`` reads them
(``read_score``, the same JSON shape), so every surface shows the same numbers.

Lists are paginated by an opaque cursor: the sort key of the last row of a page, so a page
costs the same wherever it is and rows added meanwhile neither repeat nor go missing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import time
import weakref
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import orjson
from pydantic import BaseModel, Field
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    bindparam,
    exists,
    func,
    null,
    or_,
    select,
    tuple_,
)
from sqlalchemy.orm import aliased

from reachmeter.matching.identifiers import Identifier, IdentifierError, normalize
from reachmeter.scoring import builtin_profiles, latest_as_of
from reachmeter.scoring.profiles import Profile, ProfileError, load_profile, parse_profile
from reachmeter.store import Store
from reachmeter.store.schema import (
    Account,
    Authorship,
    Correction,
    Event,
    EventMatch,
    Group,
    Observation,
    Output,
    OutputIdentifier,
    Person,
    PersonGroup,
    Score,
    ScoringMethod,
)

__all__ = [
    "MAX_LIMIT",
    "AccountOut",
    "CursorError",
    "EventOut",
    "GroupOut",
    "NotFoundError",
    "ObservationOut",
    "OutputDetail",
    "OutputFilters",
    "OutputSummary",
    "Page",
    "PersonOut",
    "ScoreOut",
    "Scoring",
    "find_output_id",
    "find_person_id",
    "forget_latest",
    "forget_merges",
    "get_account",
    "get_event",
    "get_group",
    "get_output",
    "get_person",
    "group_descendants",
    "identifiers_of",
    "kept_output_id",
    "known_profiles",
    "latest_day",
    "list_accounts",
    "list_events",
    "list_groups",
    "list_observations",
    "list_outputs",
    "list_people",
    "list_scores",
    "members",
    "parse_identifier",
    "profile_object",
    "resolve_scoring",
]

MAX_LIMIT = 500
OutputSort = Literal["score", "published_on", "title", "id"]
_EPOCH = dt.date(1, 1, 1)  # "no date" in a date cursor: undated outputs sort first


class NotFoundError(LookupError):
    """The record asked for is not in the store (the message says which)."""


class CursorError(ValueError):
    """A pagination cursor that this list did not hand out."""


# -- response models -------------------------------------------------------------------------

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` as ``cursor`` for the next (null: last page)."""

    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="Opaque cursor of the next page; null on the last page."
    )


class SourcePart(BaseModel):
    """A kind's part of a score: distinct authors (or observed value), weight and points."""

    count: float
    weight: float
    points: float
    capped: bool
    category: str


class Breakdown(BaseModel):
    """A score by kind (``sources``) and by PlumX category (``categories``)."""

    sources: dict[str, SourcePart]
    categories: dict[str, float]


class ContextStats(BaseModel):
    """Where a score stands among the outputs with at least one mention in one group."""

    count: int | None = Field(default=None, description="Outputs compared (with mentions).")
    mean: float | None = Field(default=None, description="Their mean score.")
    rank: int | None = Field(default=None, description="1 is the highest score.")
    higher_than: int | None = Field(default=None, description="How many score lower.")
    pct: float | None = Field(
        default=None, description="% of the others with the same or a lower score."
    )
    reason: str | None = Field(default=None, description="Why there is no comparison.")


class ScoreOut(BaseModel):
    """An output's stored attention score under one profile as of one date."""

    output_id: int
    profile: str
    profile_version: str
    as_of: dt.date
    score: float
    mentions: int = Field(description="Distinct authors counted, over all sources.")
    breakdown: Breakdown
    context: dict[str, ContextStats] = Field(
        description="Against all outputs (`all`), the same `venue`, `similar_age` "
        "(published within six weeks either side) and `venue_similar_age`."
    )
    history: dict[str, float] = Field(
        description="Change over 1d, 1w, 1m, 3m, 6m, 1y; `at` is the all-time score."
    )
    flags: int = Field(description="Data-quality flags on the output's mentions.")
    computed_at: dt.datetime


class OutputSummary(BaseModel):
    """An output in a list, with its score under the chosen profile (null when unscored)."""

    id: int
    type: str
    title: str
    venue: str | None
    published_on: dt.date | None
    identifiers: list[str] = Field(description="`scheme:value`, normalised.")
    score: float | None
    mentions: int | None
    flags: int | None


class PersonRef(BaseModel):
    id: int
    name: str
    orcid: str | None
    position: int | None = None


class OutputDetail(BaseModel):
    """An output with its identifiers, authors, mentions per source and stored score."""

    id: int
    type: str
    title: str
    venue: str | None
    published_on: dt.date | None
    identifiers: list[str]
    merged_into_id: int | None = Field(description="Set when merged into another output.")
    merged_from: list[int] = Field(description="Outputs merged into this one.")
    authors: list[PersonRef]
    mentions_by_source: dict[str, int] = Field(
        description="Stored events matched to the output per source_id (deleted ones too)."
    )
    score: ScoreOut | None


class GroupRef(BaseModel):
    id: int
    name: str


class PersonOut(BaseModel):
    """A person (e-mail addresses are never published)."""

    id: int
    name: str
    orcid: str | None
    role: str | None
    groups: list[GroupRef]
    accounts: list[int] | None = Field(default=None, description="Their accounts' ids.")
    outputs: int | None = Field(default=None, description="How many outputs they authored.")


class GroupOut(BaseModel):
    id: int
    name: str
    kind: str
    parent_id: int | None
    children: list[int]
    people: int = Field(description="Direct members.")
    people_total: int | None = Field(
        default=None, description="Members of the group and of all its sub-groups."
    )


class AccountOut(BaseModel):
    id: int
    platform: str
    handle: str
    url: str | None
    owner_person_id: int | None
    owned_by_org: bool


class CorrectionOut(BaseModel):
    action: str
    reason: str
    corrected_at: dt.datetime


class EventOut(BaseModel):
    """A mention in Crossref Event Data's shape, with the outputs it matched."""

    id: int
    event_key: str
    subj_id: str
    relation_type_id: str
    obj_id: str
    source_id: str
    occurred_at: dt.datetime
    collected_at: dt.datetime
    subj_author: str | None
    subj: dict[str, Any] | None
    evidence_id: int
    evidence_url: str | None
    license: str | None
    outputs: list[int] = Field(description="Tracked outputs the event was matched to.")
    correction: CorrectionOut | None = Field(
        description="The latest correction (e.g. `deleted`), if any."
    )


class ObservationOut(BaseModel):
    id: int
    observation_key: str
    obj_id: str | None
    account_id: int | None
    metric: str
    qualifier: str
    value: float
    cumulative: bool
    period_start: dt.date | None
    period_end: dt.date | None
    observed_at: dt.datetime
    source_id: str
    evidence_id: int


# -- cursors --------------------------------------------------------------------------------


def _encode_cursor(kind: str, values: Sequence[Any]) -> str:
    raw = orjson.dumps([kind, *values])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_cursor(text: str | None, kinds: Sequence[str]) -> tuple[str, list[Any]] | None:
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value = orjson.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise CursorError("invalid cursor: pass next_cursor from a previous page") from exc
    if not isinstance(value, list) or not value or value[0] not in kinds:
        raise CursorError("this cursor belongs to another list or sort order")
    return str(value[0]), value[1:]


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CursorError("invalid cursor")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CursorError("invalid cursor")
    return float(value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise CursorError("invalid cursor")
    return value


def _date(value: Any) -> dt.date:
    try:
        return dt.date.fromisoformat(_text(value))
    except ValueError as exc:
        raise CursorError("invalid cursor") from exc


def _after(keys: Sequence[Any], values: Sequence[Any], descending: bool) -> ColumnElement[bool]:
    """Rows after ``values`` in the order of ``keys`` (the last key is unique), written so
    that an index on the keys serves it: ``a <= x AND (a < x OR b < y)``."""
    first, value = keys[0], values[0]
    if len(keys) == 1:
        single: ColumnElement[bool] = first < value if descending else first > value
        return single
    rest = _after(keys[1:], values[1:], descending)
    if descending:
        return and_(first <= value, or_(first < value, rest))
    return and_(first >= value, or_(first > value, rest))


def _after_day(day: dt.date | None, last_id: int, descending: bool) -> ColumnElement[bool]:
    """Outputs after the one published on ``day`` (None: undated) with id ``last_id``, in
    publication order with the undated first (ascending) or last (descending)."""
    published = Output.published_on
    if day is None:
        if descending:
            return and_(published.is_(None), Output.id < last_id)
        return or_(published.is_not(None), and_(published.is_(None), Output.id > last_id))
    after = _after((published, Output.id), (day, last_id), descending)
    return or_(after, published.is_(None)) if descending else after


def _limit(limit: int) -> int:
    return max(1, min(limit, MAX_LIMIT))


# -- scoring profile and date ---------------------------------------------------------------


@dataclass(frozen=True)
class Scoring:
    """The profile and the scoring date a request reads (``as_of`` is None: nothing stored)."""

    profile: str
    as_of: dt.date | None


def known_profiles(store: Store) -> list[str]:
    """The shipped profiles and those recorded in the methods log."""
    with store.engine.connect() as connection:
        logged = set(connection.execute(select(ScoringMethod.profile_name).distinct()).scalars())
    return sorted(set(builtin_profiles()) | logged)


@functools.cache
def _shipped() -> frozenset[str]:
    return frozenset(builtin_profiles())


# The latest scoring day of each profile changes once a day at most; it is read again after
# a few seconds, so a page never waits for it and a new day shows up at once.
LATEST_TTL = 5.0
_latest: weakref.WeakKeyDictionary[Engine, dict[str, tuple[float, dt.date | None]]] = (
    weakref.WeakKeyDictionary()
)


def latest_day(store: Store, profile: str) -> dt.date | None:
    """``latest_as_of`` of the profile, remembered for ``LATEST_TTL`` seconds."""
    days = _latest.setdefault(store.engine, {})
    now = time.monotonic()
    known = days.get(profile)
    if known is not None and known[0] > now:
        return known[1]
    day = latest_as_of(store, profile)
    days[profile] = (now + LATEST_TTL, day)
    return day


def forget_latest() -> None:
    """Drop the remembered scoring days (after scores were computed in this process)."""
    _latest.clear()


def resolve_scoring(store: Store, profile: str, as_of: dt.date | None) -> Scoring:
    """Check the profile name (shipped, or in the methods log: never a file path) and pick
    the latest stored date when ``as_of`` is not given."""
    if profile not in _shipped():
        with store.engine.connect() as connection:
            logged = connection.execute(
                select(ScoringMethod.id).where(ScoringMethod.profile_name == profile).limit(1)
            ).first()
        if logged is None:
            raise NotFoundError(
                f"no profile named {profile!r}; known: {', '.join(known_profiles(store))}"
            )
    return Scoring(profile, as_of if as_of is not None else latest_day(store, profile))


def profile_object(store: Store, name: str) -> Profile:
    """The profile itself: a shipped one, or the latest content recorded in the methods log."""
    if name in _shipped():
        return load_profile(name)
    with store.engine.connect() as connection:
        text = connection.execute(
            select(ScoringMethod.profile_text)
            .where(ScoringMethod.profile_name == name)
            .order_by(ScoringMethod.changed_at.desc(), ScoringMethod.id.desc())
            .limit(1)
        ).scalar()
    if text is None:
        raise NotFoundError(f"no profile named {name!r}")
    try:
        return parse_profile(text, f"{name} (methods log)")
    except ProfileError as exc:
        raise NotFoundError(str(exc)) from exc


# -- outputs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputFilters:
    """Which outputs a list shows; every filter given must hold."""

    type: str | None = None
    group_id: int | None = None
    person_id: int | None = None
    source_id: str | None = None
    published_from: dt.date | None = None
    published_to: dt.date | None = None
    score_min: float | None = None
    score_max: float | None = None


def group_descendants(connection: Connection, group_id: int) -> set[int]:
    """The group and every group nested under it."""
    children: dict[int, list[int]] = defaultdict(list)
    for child, parent in connection.execute(
        select(Group.id, Group.parent_id).where(Group.parent_id.is_not(None))
    ):
        if parent is not None:
            children[int(parent)].append(int(child))
    found = {group_id}
    pending = [group_id]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def _output_conditions(connection: Connection, filters: OutputFilters, authored: Any) -> list[Any]:
    conditions: list[Any] = [Output.merged_into_id.is_(None)]
    if filters.type:
        conditions.append(Output.type == filters.type)
    if filters.published_from:
        conditions.append(Output.published_on >= filters.published_from)
    if filters.published_to:
        conditions.append(Output.published_on <= filters.published_to)
    if authored is not None:
        conditions.append(Output.id.in_(authored))
    if filters.group_id is not None:
        # Checked per output (its authors, their groups): a group may hold most outputs.
        groups = sorted(group_descendants(connection, filters.group_id))
        conditions.append(
            select(Authorship.person_id)
            .join(PersonGroup, PersonGroup.person_id == Authorship.person_id)
            .where(Authorship.output_id == Output.id, PersonGroup.group_id.in_(groups))
            .exists()
        )
    if filters.source_id:
        # ``|| ''`` keeps SQLite from scanning all of the source's events for each output:
        # the events of one output are found through its matches, then checked.
        source = Event.source_id.concat("") == filters.source_id
        mentioned = (
            select(EventMatch.id)
            .join(Event, Event.id == EventMatch.event_id)
            .where(EventMatch.output_id == Output.id, source)
            .exists()
        )
        if not _merged_children(connection):
            conditions.append(mentioned)
        else:
            member = aliased(Output)
            via_member = (
                select(EventMatch.id)
                .join(Event, Event.id == EventMatch.event_id)
                .join(member, member.id == EventMatch.output_id)
                .where(member.merged_into_id == Output.id, source)
                .exists()
            )
            conditions.append(or_(mentioned, via_member))
    return conditions


def _authored_ids(connection: Connection, filters: OutputFilters) -> list[int] | None:
    """The outputs of the person (None: no person filter). They are few: listing them lets
    the query start from them rather than from every score."""
    if filters.person_id is None:
        return None
    return sorted(
        int(i)
        for i in connection.execute(
            select(Authorship.output_id).where(Authorship.person_id == filters.person_id)
        ).scalars()
    )


def _score_range(filters: OutputFilters) -> list[Any]:
    conditions: list[Any] = []
    if filters.score_min is not None:
        conditions.append(Score.score >= filters.score_min)
    if filters.score_max is not None:
        conditions.append(Score.score <= filters.score_max)
    return conditions


_SUMMARY_COLUMNS = (
    Output.id,
    Output.type,
    Output.title,
    Output.venue,
    Output.published_on,
    Score.score,
    Score.mentions,
    Score.flags,
)


# Statements read on most requests are built once, with their values bound when run:
# building a statement costs SQLAlchemy more than SQLite takes to run it.
_IDENTIFIERS_OF = (
    select(OutputIdentifier.output_id, OutputIdentifier.scheme, OutputIdentifier.value)
    .where(OutputIdentifier.output_id.in_(bindparam("ids", expanding=True)))
    .order_by(OutputIdentifier.id)
)


def identifiers_of(connection: Connection, output_ids: Iterable[int]) -> dict[int, list[str]]:
    """The ``scheme:value`` identifiers of each output, in the order they were added."""
    ids = sorted(set(output_ids))
    found: dict[int, list[str]] = defaultdict(list)
    if not ids:
        return found
    for output_id, scheme, value in connection.execute(_IDENTIFIERS_OF, {"ids": ids}):
        found[int(output_id)].append(f"{scheme}:{value}")
    return found


def _summaries(connection: Connection, rows: Sequence[Any]) -> list[OutputSummary]:
    identifiers = identifiers_of(connection, (int(row[0]) for row in rows))
    return [
        OutputSummary(
            id=int(row[0]),
            type=row[1],
            title=row[2],
            venue=row[3],
            published_on=row[4],
            identifiers=identifiers.get(int(row[0]), []),
            score=None if row[5] is None else float(row[5]),
            mentions=None if row[6] is None else int(row[6]),
            flags=None if row[7] is None else int(row[7]),
        )
        for row in rows
    ]


def list_outputs(
    store: Store,
    filters: OutputFilters,
    scoring: Scoring,
    *,
    sort: OutputSort = "score",
    descending: bool | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[OutputSummary]:
    """A page of outputs (merged ones left out) with their stored scores.

    ``sort="score"`` walks the scored outputs by score (ties by the score row), then the
    outputs not scored on that date, by id. Other sorts: ``published_on`` (undated first
    when ascending), ``title``, ``id``; ties by id. ``descending`` defaults to True for
    score and date.
    """
    limit = _limit(limit)
    if descending is None:
        descending = sort in ("score", "published_on")
    with store.engine.connect() as connection:
        authored = _authored_ids(connection, filters)
        conditions = _output_conditions(connection, filters, authored)
        if sort == "score":
            rows, next_cursor = _by_score(connection, conditions, filters, authored, scoring,
                                          descending, limit, cursor)  # fmt: skip
        else:
            rows, next_cursor = _by_output_key(
                connection, conditions, filters, scoring, sort, descending, limit, cursor
            )
        return Page[OutputSummary](items=_summaries(connection, rows), next_cursor=next_cursor)


def _scored_here(scoring: Scoring) -> ColumnElement[bool]:
    return and_(
        Score.output_id == Output.id,
        Score.profile_name == scoring.profile,
        Score.as_of == scoring.as_of,
    )


def _by_score(
    connection: Connection,
    conditions: list[Any],
    filters: OutputFilters,
    authored: list[int] | None,
    scoring: Scoring,
    descending: bool,
    limit: int,
    cursor: str | None,
) -> tuple[list[Any], str | None]:
    direction = "d" if descending else "a"
    decoded = _decode_cursor(cursor, (f"score-{direction}", "unscored"))
    rows: list[Any] = []
    if scoring.as_of is not None and (decoded is None or decoded[0] != "unscored"):
        # With a person's or group's few outputs, ``|| ''`` steers SQLite to find their
        # scores by output (then sort them) rather than walk every score in order.
        few = authored is not None
        profile = Score.profile_name.concat("") if few else Score.profile_name
        query = (
            select(*_SUMMARY_COLUMNS, Score.id)
            .select_from(Score)
            .join(Output, Output.id == Score.output_id)
            .where(
                profile == scoring.profile,
                Score.as_of == scoring.as_of,
                *conditions,
                *_score_range(filters),
            )
        )
        if authored is not None:
            query = query.where(Score.output_id.in_(authored))
        if decoded is not None:
            values = decoded[1]
            if len(values) != 2:
                raise CursorError("invalid cursor")
            query = query.where(
                _after((Score.score, Score.id), (_number(values[0]), _int(values[1])), descending)
            )
        order = (Score.score.desc(), Score.id.desc()) if descending else (Score.score, Score.id)
        rows = list(connection.execute(query.order_by(*order).limit(limit + 1)))
        if len(rows) > limit:
            last = rows[limit - 1]
            return [r[:-1] for r in rows[:limit]], _encode_cursor(
                f"score-{direction}", [float(last[5]), int(last[-1])]
            )
        rows = [r[:-1] for r in rows]
    if filters.score_min is not None or filters.score_max is not None:
        return rows, None  # an unscored output has no score in any range
    after_id = 0
    if decoded is not None and decoded[0] == "unscored":
        if len(decoded[1]) != 1:
            raise CursorError("invalid cursor")
        after_id = _int(decoded[1][0])
    room = limit - len(rows)
    unscored = (
        select(*_SUMMARY_COLUMNS[:5], null(), null(), null())
        .select_from(Output)
        .where(*conditions, Output.id > after_id)
    )
    if scoring.as_of is not None:
        unscored = unscored.where(
            ~exists().where(
                Score.output_id == Output.id,
                Score.profile_name == scoring.profile,
                Score.as_of == scoring.as_of,
            )
        )
    more = list(connection.execute(unscored.order_by(Output.id).limit(room + 1)))
    if len(more) > room:
        rows.extend(more[:room])
        last_id = int(more[room - 1][0]) if room else after_id
        return rows, _encode_cursor("unscored", [last_id])
    rows.extend(more)
    return rows, None


def _by_output_key(
    connection: Connection,
    conditions: list[Any],
    filters: OutputFilters,
    scoring: Scoring,
    sort: OutputSort,
    descending: bool,
    limit: int,
    cursor: str | None,
) -> tuple[list[Any], str | None]:
    kind = f"{sort}-{'d' if descending else 'a'}"
    decoded = _decode_cursor(cursor, (kind,))
    if sort == "published_on":
        # The column itself, not a stand-in date for the undated, so that the index on
        # (published_on, id) gives the order and serves a date range at once.
        key: Any = Output.published_on
    elif sort == "title":
        key = Output.title
    else:
        key = None
    keys = (Output.id,) if key is None else (key, Output.id)
    query = select(*_SUMMARY_COLUMNS).select_from(Output).where(*conditions)
    if filters.score_min is not None or filters.score_max is not None:
        query = query.outerjoin(Score, _scored_here(scoring)).where(*_score_range(filters))
    if decoded is not None:
        values = decoded[1]
        if len(values) != len(keys):
            raise CursorError("invalid cursor")
        parsed: list[Any] = [_int(values[-1])]
        if sort == "published_on":
            day = _date(values[0])
            query = query.where(_after_day(None if day == _EPOCH else day, parsed[0], descending))
        else:
            if sort == "title":
                parsed.insert(0, _text(values[0]))
            query = query.where(_after(keys, parsed, descending))
    order = [k.desc() if descending else k for k in keys]
    if sort == "published_on":
        # Undated first when ascending, last when descending (SQLite's own NULL order, which
        # PostgreSQL must be told).
        order[0] = order[0].nulls_last() if descending else order[0].nulls_first()
    if filters.score_min is None and filters.score_max is None:
        # Choose the page from the outputs alone, then join the scores of those rows only:
        # SQLite would otherwise look up a score for every output it sorts.
        page = query.with_only_columns(Output.id).order_by(*order).limit(limit + 1)
        ids = [int(i) for i in connection.execute(page).scalars()]
        found = {
            int(row[0]): row
            for row in connection.execute(
                select(*_SUMMARY_COLUMNS)
                .select_from(Output)
                .outerjoin(Score, _scored_here(scoring))
                .where(Output.id.in_(ids))
            )
        }
        rows = [found[i] for i in ids]
    else:
        rows = list(connection.execute(query.order_by(*order).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    values_out: list[Any] = [int(last[0])]
    if sort == "published_on":
        values_out.insert(0, (last[4] or _EPOCH).isoformat())
    elif sort == "title":
        values_out.insert(0, last[2])
    return rows[:limit], _encode_cursor(kind, values_out)


_OUTPUT_BY_IDENTIFIER = select(OutputIdentifier.output_id).where(
    OutputIdentifier.scheme == bindparam("scheme"), OutputIdentifier.value == bindparam("value")
)
_MERGED_INTO = select(Output.merged_into_id).where(Output.id == bindparam("output_id"))


def find_output_id(connection: Connection, identifier: Identifier) -> int | None:
    """The kept output known by a normalised identifier (following merges), or None."""
    found = connection.execute(
        _OUTPUT_BY_IDENTIFIER, {"scheme": identifier.scheme, "value": identifier.value}
    ).scalar()
    return None if found is None else kept_output_id(connection, int(found))


def kept_output_id(connection: Connection, output_id: int) -> int | None:
    """The output ``output_id`` was merged into (itself if not merged); None if unknown."""
    seen: set[int] = set()
    current = output_id
    while current not in seen:
        seen.add(current)
        row = connection.execute(_MERGED_INTO, {"output_id": current}).first()
        if row is None:
            return None
        if row[0] is None:
            return current
        current = int(row[0])
    return current


def parse_identifier(text: str, scheme: str | None = None) -> Identifier:
    """A normalised identifier, or ``NotFoundError`` saying why it is not one."""
    try:
        return normalize(text, scheme)
    except IdentifierError as exc:
        raise NotFoundError(str(exc)) from exc


# Which outputs were merged into which: read with one scan (``merged_into_id`` has no index)
# and kept for a few seconds per store; our own writes forget it at once.
MERGES_TTL = 10.0
_merges: weakref.WeakKeyDictionary[Engine, tuple[float, dict[int, list[int]]]] = (
    weakref.WeakKeyDictionary()
)


def forget_merges() -> None:
    """Drop the remembered merges (after a write that may have merged outputs)."""
    _merges.clear()


def _merged_children(connection: Connection) -> dict[int, list[int]]:
    key = connection.engine
    now = time.monotonic()
    known = _merges.get(key)
    if known is not None and known[0] > now:
        return known[1]
    children: dict[int, list[int]] = defaultdict(list)
    for child, parent in connection.execute(
        select(Output.id, Output.merged_into_id).where(Output.merged_into_id.is_not(None))
    ):
        if parent is not None:
            children[int(parent)].append(int(child))
    _merges[key] = (now + MERGES_TTL, dict(children))
    return children


def members(connection: Connection, output_id: int) -> list[int]:
    """The output and every output merged into it (directly or through others)."""
    children = _merged_children(connection)
    members = {output_id}
    pending = [output_id]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in members:
                members.add(child)
                pending.append(child)
    return sorted(members)


# An output's own facts (also read by the output page).
OUTPUT_ROW = select(
    Output.id, Output.type, Output.title, Output.venue, Output.published_on, Output.merged_into_id
).where(Output.id == bindparam("output_id"))
_AUTHORS = (
    select(Person.id, Person.name, Person.orcid, Authorship.position)
    .join(Authorship, Authorship.person_id == Person.id)
    .where(Authorship.output_id == bindparam("output_id"))
    .order_by(Authorship.position, Person.id)
)
_MENTIONS_BY_SOURCE = (
    select(Event.source_id, func.count(func.distinct(Event.id)))
    .join(EventMatch, EventMatch.event_id == Event.id)
    .where(EventMatch.output_id.in_(bindparam("ids", expanding=True)))
    .group_by(Event.source_id)
    .order_by(Event.source_id)
)


def get_output(store: Store, output_id: int, scoring: Scoring) -> OutputDetail:
    """An output with its identifiers, authors, mentions per source and stored score."""
    from reachmeter.scoring import read_score

    with store.engine.connect() as connection:
        row = connection.execute(OUTPUT_ROW, {"output_id": output_id}).first()
        if row is None:
            raise NotFoundError(f"no output with id {output_id}")
        member_ids = members(connection, output_id)
        authors = [
            PersonRef(id=int(i), name=n, orcid=o, position=p)
            for i, n, o, p in connection.execute(_AUTHORS, {"output_id": output_id})
        ]
        by_source = {
            str(source): int(count)
            for source, count in connection.execute(_MENTIONS_BY_SOURCE, {"ids": member_ids})
        }
        identifiers = identifiers_of(connection, [output_id])[output_id]
    stored = (
        read_score(store, output_id, scoring.profile, scoring.as_of)
        if scoring.as_of is not None
        else None
    )
    return OutputDetail(
        id=int(row.id),
        type=row.type,
        title=row.title,
        venue=row.venue,
        published_on=row.published_on,
        identifiers=identifiers,
        merged_into_id=row.merged_into_id,
        merged_from=[m for m in member_ids if m != output_id],
        authors=authors,
        mentions_by_source=by_source,
        score=None if stored is None else ScoreOut.model_validate(stored),
    )


# -- scores ---------------------------------------------------------------------------------


def list_scores(
    store: Store, scoring: Scoring, *, limit: int = 100, cursor: str | None = None
) -> Page[dict[str, Any]]:
    """A page of the stored scores of a profile for a date, by output id (the rows
    ``iter_scores`` gives, in the same shape)."""
    from reachmeter.scoring.run import _score_dict

    limit = _limit(limit)
    decoded = _decode_cursor(cursor, ("scores",))
    if scoring.as_of is None:
        return Page[dict[str, Any]](items=[], next_cursor=None)
    with store.session() as session:
        query = select(Score).where(
            Score.profile_name == scoring.profile, Score.as_of == scoring.as_of
        )
        if decoded is not None:
            if len(decoded[1]) != 1:
                raise CursorError("invalid cursor")
            query = query.where(Score.output_id > _int(decoded[1][0]))
        rows = [
            _score_dict(score)
            for score in session.scalars(query.order_by(Score.output_id).limit(limit + 1))
        ]
    if len(rows) > limit:
        return Page[dict[str, Any]](
            items=rows[:limit],
            next_cursor=_encode_cursor("scores", [rows[limit - 1]["output_id"]]),
        )
    return Page[dict[str, Any]](items=rows, next_cursor=None)


# -- people, groups, accounts ---------------------------------------------------------------


def _groups_of(connection: Connection, person_ids: Sequence[int]) -> dict[int, list[GroupRef]]:
    found: dict[int, list[GroupRef]] = defaultdict(list)
    if not person_ids:
        return found
    for person_id, group_id, name in connection.execute(
        select(PersonGroup.person_id, Group.id, Group.name)
        .join(Group, Group.id == PersonGroup.group_id)
        .where(PersonGroup.person_id.in_(sorted(set(person_ids))))
        .order_by(Group.name, Group.id)
    ):
        found[int(person_id)].append(GroupRef(id=int(group_id), name=name))
    return found


def list_people(
    store: Store,
    *,
    group_id: int | None = None,
    name: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[PersonOut]:
    """People by name (ties by id); ``group_id`` includes its sub-groups; ``name`` matches
    a part of the name, case-insensitively."""
    limit = _limit(limit)
    decoded = _decode_cursor(cursor, ("people",))
    with store.engine.connect() as connection:
        query = select(Person.id, Person.name, Person.orcid, Person.role)
        if group_id is not None:
            groups = sorted(group_descendants(connection, group_id))
            query = query.where(
                Person.id.in_(select(PersonGroup.person_id).where(PersonGroup.group_id.in_(groups)))
            )
        if name:
            query = query.where(func.lower(Person.name).contains(name.lower(), autoescape=True))
        if decoded is not None:
            values = decoded[1]
            if len(values) != 2:
                raise CursorError("invalid cursor")
            query = query.where(
                _after((Person.name, Person.id), (_text(values[0]), _int(values[1])), False)
            )
        rows = connection.execute(query.order_by(Person.name, Person.id).limit(limit + 1)).all()
        page = rows[:limit]
        groups_of = _groups_of(connection, [int(r.id) for r in page])
    items = [
        PersonOut(
            id=int(r.id), name=r.name, orcid=r.orcid, role=r.role, groups=groups_of[int(r.id)]
        )
        for r in page
    ]
    next_cursor = (
        _encode_cursor("people", [page[-1].name, int(page[-1].id)]) if len(rows) > limit else None
    )
    return Page[PersonOut](items=items, next_cursor=next_cursor)


def get_person(store: Store, person_id: int) -> PersonOut:
    """A person with their groups, accounts and how many outputs they authored."""
    with store.engine.connect() as connection:
        row = connection.execute(
            select(Person.id, Person.name, Person.orcid, Person.role).where(Person.id == person_id)
        ).first()
        if row is None:
            raise NotFoundError(f"no person with id {person_id}")
        accounts = [
            int(a)
            for a in connection.execute(
                select(Account.id).where(Account.owner_person_id == person_id).order_by(Account.id)
            ).scalars()
        ]
        outputs = connection.execute(
            select(func.count()).select_from(Authorship).where(Authorship.person_id == person_id)
        ).scalar()
        groups = _groups_of(connection, [person_id])[person_id]
    return PersonOut(
        id=int(row.id),
        name=row.name,
        orcid=row.orcid,
        role=row.role,
        groups=groups,
        accounts=accounts,
        outputs=int(outputs or 0),
    )


def find_person_id(connection: Connection, orcid: str) -> int | None:
    """The person with this (normalised) ORCID."""
    found = connection.execute(select(Person.id).where(Person.orcid == orcid)).scalar()
    return None if found is None else int(found)


def _group_rows(connection: Connection, ids: Sequence[int] | None) -> list[GroupOut]:
    query = select(Group.id, Group.name, Group.kind, Group.parent_id).order_by(Group.id)
    if ids is not None:
        query = query.where(Group.id.in_(list(ids)))
    rows = connection.execute(query).all()
    wanted = [int(r.id) for r in rows]
    children: dict[int, list[int]] = defaultdict(list)
    for child, parent in connection.execute(
        select(Group.id, Group.parent_id).where(Group.parent_id.in_(wanted)).order_by(Group.id)
    ):
        if parent is not None:
            children[int(parent)].append(int(child))
    members = {
        int(g): int(c)
        for g, c in connection.execute(
            select(PersonGroup.group_id, func.count())
            .where(PersonGroup.group_id.in_(wanted))
            .group_by(PersonGroup.group_id)
        )
    }
    return [
        GroupOut(
            id=int(r.id),
            name=r.name,
            kind=r.kind,
            parent_id=r.parent_id,
            children=children.get(int(r.id), []),
            people=members.get(int(r.id), 0),
        )
        for r in rows
    ]


def list_groups(
    store: Store, *, parent_id: int | None = None, limit: int = 100, cursor: str | None = None
) -> Page[GroupOut]:
    """Groups by id; with ``parent_id``, only the groups directly under it."""
    limit = _limit(limit)
    decoded = _decode_cursor(cursor, ("groups",))
    with store.engine.connect() as connection:
        query = select(Group.id).order_by(Group.id)
        if parent_id is not None:
            query = query.where(Group.parent_id == parent_id)
        if decoded is not None:
            if len(decoded[1]) != 1:
                raise CursorError("invalid cursor")
            query = query.where(Group.id > _int(decoded[1][0]))
        ids = [int(i) for i in connection.execute(query.limit(limit + 1)).scalars()]
        items = _group_rows(connection, ids[:limit])
    next_cursor = _encode_cursor("groups", [ids[limit - 1]]) if len(ids) > limit else None
    return Page[GroupOut](items=items, next_cursor=next_cursor)


def get_group(store: Store, group_id: int) -> GroupOut:
    """A group with its sub-groups and how many people it holds with theirs."""
    with store.engine.connect() as connection:
        found = _group_rows(connection, [group_id])
        if not found:
            raise NotFoundError(f"no group with id {group_id}")
        groups = sorted(group_descendants(connection, group_id))
        total = connection.execute(
            select(func.count(func.distinct(PersonGroup.person_id))).where(
                PersonGroup.group_id.in_(groups)
            )
        ).scalar()
    return found[0].model_copy(update={"people_total": int(total or 0)})


_ACCOUNT_COLUMNS = (
    Account.id,
    Account.platform,
    Account.handle,
    Account.url,
    Account.owner_person_id,
    Account.owned_by_org,
)


def _account(row: Any) -> AccountOut:
    return AccountOut(
        id=int(row.id),
        platform=row.platform,
        handle=row.handle,
        url=row.url,
        owner_person_id=row.owner_person_id,
        owned_by_org=bool(row.owned_by_org),
    )


def list_accounts(
    store: Store,
    *,
    platform: str | None = None,
    person_id: int | None = None,
    organisation: bool | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[AccountOut]:
    """Accounts by id, filtered by platform, owner, or whether the organisation owns them."""
    limit = _limit(limit)
    decoded = _decode_cursor(cursor, ("accounts",))
    query = select(*_ACCOUNT_COLUMNS).order_by(Account.id)
    if platform:
        query = query.where(Account.platform == platform)
    if person_id is not None:
        query = query.where(Account.owner_person_id == person_id)
    if organisation is not None:
        query = query.where(Account.owned_by_org.is_(organisation))
    if decoded is not None:
        if len(decoded[1]) != 1:
            raise CursorError("invalid cursor")
        query = query.where(Account.id > _int(decoded[1][0]))
    with store.engine.connect() as connection:
        rows = connection.execute(query.limit(limit + 1)).all()
    items = [_account(r) for r in rows[:limit]]
    next_cursor = _encode_cursor("accounts", [items[-1].id]) if len(rows) > limit else None
    return Page[AccountOut](items=items, next_cursor=next_cursor)


def get_account(store: Store, account_id: int) -> AccountOut:
    with store.engine.connect() as connection:
        row = connection.execute(select(*_ACCOUNT_COLUMNS).where(Account.id == account_id)).first()
    if row is None:
        raise NotFoundError(f"no account with id {account_id}")
    return _account(row)


# -- events and observations ----------------------------------------------------------------

_EVENT_COLUMNS = (
    Event.id,
    Event.event_key,
    Event.subj_id,
    Event.relation_type_id,
    Event.obj_id,
    Event.source_id,
    Event.occurred_at,
    Event.collected_at,
    Event.subj_author,
    Event.subj,
    Event.evidence_id,
    Event.evidence_url,
    Event.license,
)


_MATCHES_OF_EVENTS = (
    select(EventMatch.event_id, EventMatch.output_id)
    .where(EventMatch.event_id.in_(bindparam("ids", expanding=True)))
    .order_by(EventMatch.output_id)
)
_EVENT_CORRECTIONS = (
    select(Correction.target_key, Correction.action, Correction.reason, Correction.corrected_at)
    .where(
        Correction.target_kind == "event",
        Correction.target_key.in_(bindparam("keys", expanding=True)),
    )
    .order_by(Correction.corrected_at, Correction.id)
)
# An output's events by id (the output filter alone: the API's /outputs/{id}/events).
_OUTPUT_EVENTS = (
    select(*_EVENT_COLUMNS)
    .where(
        Event.id.in_(
            select(EventMatch.event_id).where(
                EventMatch.output_id.in_(bindparam("members", expanding=True))
            )
        ),
        Event.id > bindparam("after"),
    )
    .order_by(Event.id)
    .limit(bindparam("rows"))
)
_OUTPUT_EXISTS = select(Output.id).where(Output.id == bindparam("output_id"))


def _events(connection: Connection, rows: Sequence[Any]) -> list[EventOut]:
    ids = [int(r.id) for r in rows]
    outputs: dict[int, list[int]] = defaultdict(list)
    corrections: dict[str, CorrectionOut] = {}
    if ids:
        for event_id, output_id in connection.execute(_MATCHES_OF_EVENTS, {"ids": ids}):
            outputs[int(event_id)].append(int(output_id))
        for key, action, reason, corrected_at in connection.execute(
            _EVENT_CORRECTIONS, {"keys": [r.event_key for r in rows]}
        ):
            corrections[key] = CorrectionOut(
                action=action, reason=reason, corrected_at=corrected_at
            )
    return [
        EventOut(
            id=int(r.id),
            event_key=r.event_key,
            subj_id=r.subj_id,
            relation_type_id=r.relation_type_id,
            obj_id=r.obj_id,
            source_id=r.source_id,
            occurred_at=r.occurred_at,
            collected_at=r.collected_at,
            subj_author=r.subj_author,
            subj=r.subj if isinstance(r.subj, dict) else None,
            evidence_id=int(r.evidence_id),
            evidence_url=r.evidence_url,
            license=r.license,
            outputs=outputs.get(int(r.id), []),
            correction=corrections.get(r.event_key),
        )
        for r in rows
    ]


def list_events(
    store: Store,
    *,
    source_id: str | None = None,
    output_id: int | None = None,
    occurred_from: dt.datetime | None = None,
    occurred_to: dt.datetime | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[EventOut]:
    """Events by id; ``output_id`` gives those matched to the output or to any output merged
    into it; ``occurred_to`` is exclusive."""
    limit = _limit(limit)
    decoded = _decode_cursor(cursor, ("events",))
    if decoded is not None and len(decoded[1]) != 1:
        raise CursorError("invalid cursor")
    after = _int(decoded[1][0]) if decoded is not None else 0
    with store.engine.connect() as connection:
        member_ids: list[int] | None = None
        if output_id is not None:
            if connection.execute(_OUTPUT_EXISTS, {"output_id": output_id}).first() is None:
                raise NotFoundError(f"no output with id {output_id}")
            member_ids = members(connection, output_id)
        if member_ids is not None and not (source_id or occurred_from or occurred_to):
            rows = connection.execute(
                _OUTPUT_EVENTS, {"members": member_ids, "after": after, "rows": limit + 1}
            ).all()
        else:
            query = select(*_EVENT_COLUMNS).where(Event.id > after).order_by(Event.id)
            if source_id:
                # Walked by id, not through the source's index (which would sort all its
                # events).
                query = query.where(Event.source_id.concat("") == source_id)
            if occurred_from is not None:
                query = query.where(Event.occurred_at >= occurred_from)
            if occurred_to is not None:
                query = query.where(Event.occurred_at < occurred_to)
            if member_ids is not None:
                query = query.where(
                    Event.id.in_(
                        select(EventMatch.event_id).where(EventMatch.output_id.in_(member_ids))
                    )
                )
            rows = connection.execute(query.limit(limit + 1)).all()
        items = _events(connection, rows[:limit])
    next_cursor = _encode_cursor("events", [items[-1].id]) if len(rows) > limit else None
    return Page[EventOut](items=items, next_cursor=next_cursor)


def get_event(store: Store, event_id: int) -> EventOut:
    with store.engine.connect() as connection:
        rows = connection.execute(select(*_EVENT_COLUMNS).where(Event.id == event_id)).all()
        if not rows:
            raise NotFoundError(f"no event with id {event_id}")
        return _events(connection, rows)[0]


_OBSERVATION_COLUMNS = (
    Observation.id,
    Observation.observation_key,
    Observation.obj_id,
    Observation.account_id,
    Observation.metric,
    Observation.qualifier,
    Observation.value,
    Observation.cumulative,
    Observation.period_start,
    Observation.period_end,
    Observation.observed_at,
    Observation.source_id,
    Observation.evidence_id,
)


def list_observations(
    store: Store,
    *,
    metric: str | None = None,
    source_id: str | None = None,
    account_id: int | None = None,
    output_id: int | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[ObservationOut]:
    """Observations by id; ``output_id`` gives those of any identifier of the output or of
    an output merged into it."""
    limit = _limit(limit)
    decoded = _decode_cursor(cursor, ("observations",))
    query = select(*_OBSERVATION_COLUMNS).order_by(Observation.id)
    if metric:
        query = query.where(Observation.metric == metric)
    if source_id:
        query = query.where(Observation.source_id == source_id)
    if account_id is not None:
        query = query.where(Observation.account_id == account_id)
    if decoded is not None:
        if len(decoded[1]) != 1:
            raise CursorError("invalid cursor")
        query = query.where(Observation.id > _int(decoded[1][0]))
    with store.engine.connect() as connection:
        if output_id is not None:
            if connection.execute(select(Output.id).where(Output.id == output_id)).first() is None:
                raise NotFoundError(f"no output with id {output_id}")
            pairs = connection.execute(
                select(OutputIdentifier.scheme, OutputIdentifier.value).where(
                    OutputIdentifier.output_id.in_(members(connection, output_id))
                )
            ).all()
            if not pairs:
                return Page[ObservationOut](items=[], next_cursor=None)
            query = query.where(
                tuple_(Observation.obj_scheme, Observation.obj_value).in_(
                    [(s, v) for s, v in pairs]
                )
            )
        rows = connection.execute(query.limit(limit + 1)).all()
    items = [
        ObservationOut(
            id=int(r.id),
            observation_key=r.observation_key,
            obj_id=r.obj_id,
            account_id=r.account_id,
            metric=r.metric,
            qualifier=r.qualifier,
            value=float(r.value),
            cumulative=bool(r.cumulative),
            period_start=r.period_start,
            period_end=r.period_end,
            observed_at=r.observed_at,
            source_id=r.source_id,
            evidence_id=int(r.evidence_id),
        )
        for r in rows[:limit]
    ]
    next_cursor = _encode_cursor("observations", [items[-1].id]) if len(rows) > limit else None
    return Page[ObservationOut](items=items, next_cursor=next_cursor)
