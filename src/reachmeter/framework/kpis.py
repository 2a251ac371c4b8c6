"""The KPIs an objective can be set on, and how each is measured from the store.

Every KPI is measured over a scope (``Scope``): accounts, or outputs, or the accounts or
outputs of people and groups. Each has a *shape* that decides what "current" means and how
it is projected to the deadline:

- ``flow``: a count accumulated between the objective's start and the day measured
  (mentions, posts); projected at the same daily rate to the deadline.
- ``level``: a standing value on the day measured (followers, citations, attention);
  projected by extending the change since the start at the same daily rate.
- ``ratio``: a rate over the period (engagement rate); projected as it stands.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, func, select

from reachmeter.scoring.accounts import AccountPoint, account_kpis
from reachmeter.scoring.compute import as_of_end, observation_totals
from reachmeter.scoring.load import (
    counted_event_filter,
    load_observations,
    load_outputs,
    members_of,
    roots,
)
from reachmeter.store.schema import (
    Account,
    Authorship,
    Event,
    EventMatch,
    Group,
    Observation,
    PersonGroup,
    Score,
)

__all__ = ["KPIS", "Kpi", "Scope", "group_tree", "measure", "resolve_scope"]

Shape = Literal["flow", "level", "ratio"]
Over = Literal["accounts", "outputs"]


@dataclass(frozen=True, slots=True)
class Kpi:
    """A metric an objective can target."""

    name: str
    over: Over
    shape: Shape
    unit: str
    description: str


KPIS: dict[str, Kpi] = {
    k.name: k
    for k in (
        Kpi("mentions", "outputs", "flow", "mentions",
            "mentions of the outputs that occurred in the period (deleted ones left out)"),
        Kpi("outputs_mentioned", "outputs", "flow", "outputs",
            "outputs with at least one mention that occurred in the period"),
        Kpi("attention", "outputs", "level", "points",
            "sum of the outputs' attention scores (default profile, latest stored day)"),
        Kpi("citations", "outputs", "level", "citations",
            "citations of the outputs (latest cumulative count per source, largest source)"),
        Kpi("usage", "outputs", "level", "views and downloads",
            "views and downloads of the outputs, all time"),
        Kpi("readers", "outputs", "level", "readers", "readers (bookmarks) of the outputs"),
        Kpi("followers", "accounts", "level", "followers",
            "followers of the accounts (latest count of each, added up)"),
        Kpi("posts", "accounts", "flow", "posts", "posts by the accounts in the period"),
        Kpi("engagements", "accounts", "flow", "engagements",
            "engagements with the accounts' posts in the period"),
        Kpi("impressions", "accounts", "flow", "impressions",
            "impressions of the accounts' posts in the period"),
        Kpi("engagement_rate", "accounts", "ratio", "%",
            "engagements / impressions x 100 over the period (engagement rate by impressions)"),
    )
}  # fmt: skip

SCOPE_KINDS = ("accounts", "outputs", "people", "groups")
ATTENTION_PROFILE = "default"


@dataclass(frozen=True, slots=True)
class Scope:
    """What an objective is measured over: ``kind`` and ids (empty: all of that kind)."""

    kind: str
    ids: tuple[int, ...] = ()


def group_tree(connection: Connection, group_ids: Collection[int]) -> set[int]:
    """The groups and all their subgroups."""
    children: dict[int, list[int]] = defaultdict(list)
    for gid, parent in connection.execute(select(Group.id, Group.parent_id)):
        if parent is not None:
            children[int(parent)].append(int(gid))
    found: set[int] = set()
    stack = list(group_ids)
    while stack:
        gid = stack.pop()
        if gid not in found:
            found.add(gid)
            stack.extend(children.get(gid, []))
    return found


def _people_of(connection: Connection, scope: Scope) -> set[int] | None:
    """The people a people/groups scope covers (None: everyone)."""
    if scope.kind == "people":
        return set(scope.ids) if scope.ids else None
    if not scope.ids:
        return {int(p) for (p,) in connection.execute(select(PersonGroup.person_id).distinct())}
    groups = group_tree(connection, scope.ids)
    return {
        int(p)
        for (p,) in connection.execute(
            select(PersonGroup.person_id).where(PersonGroup.group_id.in_(sorted(groups)))
        )
    }


def resolve_scope(connection: Connection, kpi: Kpi, scope: Scope) -> set[int] | None:
    """The account ids or kept output ids a KPI is measured over (None: all outputs)."""
    if kpi.over == "accounts":
        if scope.kind == "accounts":
            if scope.ids:
                return set(scope.ids)
            query = select(Account.id).where(Account.owned_by_org.is_(True))
            return {int(a) for (a,) in connection.execute(query)}
        people = _people_of(connection, scope)
        query = select(Account.id).where(Account.owner_person_id.is_not(None))
        if people is not None:
            query = query.where(Account.owner_person_id.in_(sorted(people)))
        return {int(a) for (a,) in connection.execute(query)}
    if scope.kind == "outputs":
        return set(scope.ids) if scope.ids else None
    people = _people_of(connection, scope)
    query = select(Authorship.output_id).distinct()
    if people is not None:
        query = query.where(Authorship.person_id.in_(sorted(people)))
    return {int(o) for (o,) in connection.execute(query)}


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


class _Outputs:
    """The outputs in scope, with every output merged into them."""

    def __init__(self, connection: Connection, wanted: set[int] | None) -> None:
        outputs = load_outputs(connection)
        self.root = roots(outputs)
        if wanted is None:
            self.members: set[int] | None = None
            self.kept: set[int] | None = None
        else:
            mapping = members_of(outputs, wanted)
            self.members = set(mapping)
            self.kept = set(mapping.values())


def _mentions(
    connection: Connection, outputs: _Outputs, start: dt.date, day: dt.date, distinct_outputs: bool
) -> float:
    conditions = [
        *counted_event_filter(as_of_end(day), ()),
        Event.occurred_at >= _start_of(start),
    ]
    if outputs.members is not None:
        if not outputs.members:
            return 0.0
        conditions.append(EventMatch.output_id.in_(sorted(outputs.members)))
    if distinct_outputs:
        rows = connection.execute(
            select(EventMatch.output_id)
            .join(Event, Event.id == EventMatch.event_id)
            .where(*conditions)
            .distinct()
        )
        return float(len({outputs.root.get(int(o), int(o)) for (o,) in rows}))
    count = connection.execute(
        select(func.count(func.distinct(Event.id)))
        .select_from(Event)
        .join(EventMatch, EventMatch.event_id == Event.id)
        .where(*conditions)
    ).scalar()
    return float(count or 0)


def _attention(connection: Connection, outputs: _Outputs, day: dt.date) -> float | None:
    latest = connection.execute(
        select(func.max(Score.as_of)).where(
            Score.profile_name == ATTENTION_PROFILE, Score.as_of <= day
        )
    ).scalar()
    if latest is None:
        return None
    query = select(func.coalesce(func.sum(Score.score), 0.0)).where(
        Score.profile_name == ATTENTION_PROFILE, Score.as_of == latest
    )
    if outputs.kept is not None:
        if not outputs.kept:
            return 0.0
        query = query.where(Score.output_id.in_(sorted(outputs.kept)))
    return float(connection.execute(query).scalar() or 0.0)


def _observed(connection: Connection, outputs: _Outputs, kind: str, day: dt.date) -> float:
    before = as_of_end(day)
    points = load_observations(connection, before, outputs.root, outputs.members)
    return float(sum(observation_totals(p, before).get(kind, 0.0) for p in points.values()))


def _account_points(
    connection: Connection, accounts: set[int], day: dt.date
) -> dict[int, list[AccountPoint]]:
    found: dict[int, list[AccountPoint]] = defaultdict(list)
    if not accounts:
        return found
    rows = connection.execute(
        select(
            Observation.account_id, Observation.id, Observation.metric, Observation.value,
            Observation.cumulative, Observation.period_start, Observation.period_end,
            Observation.observed_at,
        )
        .where(
            Observation.account_id.in_(sorted(accounts)),
            Observation.observed_at < as_of_end(day),
        )
        .order_by(Observation.observed_at, Observation.id)
    )  # fmt: skip
    for account_id, oid, metric, value, cumulative, p_start, p_end, observed_at in rows:
        found[int(account_id or 0)].append(
            AccountPoint(
                int(oid), metric, float(value), bool(cumulative), p_start, p_end, observed_at
            )
        )
    return found


def _followers(points: dict[int, list[AccountPoint]], day: dt.date) -> float | None:
    total, seen = 0.0, False
    for series in points.values():
        known = [p for p in series if p.metric == "followers" and p.observed_at < as_of_end(day)]
        if known:
            total += max(known, key=lambda p: (p.observed_at, p.observation_id)).value
            seen = True
    return total if seen else None


def measure(
    connection: Connection, kpi: Kpi, scope: Scope, start: dt.date, day: dt.date
) -> float | None:
    """The KPI over ``scope`` as of the end of ``day``: a ``flow`` or ``ratio`` counts from
    ``start``; a ``level`` is the standing value. ``None`` when nothing was measured."""
    wanted = resolve_scope(connection, kpi, scope)
    if kpi.over == "outputs":
        outputs = _Outputs(connection, wanted)
        if kpi.name == "mentions":
            return _mentions(connection, outputs, start, day, distinct_outputs=False)
        if kpi.name == "outputs_mentioned":
            return _mentions(connection, outputs, start, day, distinct_outputs=True)
        if kpi.name == "attention":
            return _attention(connection, outputs, day)
        return _observed(connection, outputs, kpi.name, day)
    points = _account_points(connection, wanted or set(), day)
    if kpi.name == "followers":
        return _followers(points, day)
    merged = [p for series in points.values() for p in series if p.metric != "followers"]
    kpis = account_kpis(merged, [(start, day)])[0]
    key = "engagement_rate_impr" if kpi.name == "engagement_rate" else kpi.name
    value = kpis.get(key)
    if value is None:
        return None if kpi.shape == "ratio" else 0.0
    return float(value)
