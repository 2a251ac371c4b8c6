"""Reach of a person or a group: always its parts, each with percentiles; never one number.

Components, per person (``docs/scoring.md`` gives the formulas):

* ``attention_total``: the sum of the stored attention scores of their outputs;
* ``attention_h_index``: the largest h such that h of their outputs score at least h;
* ``audience``: followers of their own accounts (latest value up to the date), summed;
* ``engagement``: engagements on their own accounts over the last 365 days;
* ``posting_regularity``: % of the last 12 months with a post from their social accounts;
* ``blogging_regularity``: % of the last 12 months with a post on their blog;
* ``web_search``: search impressions of their own pages (``search_impressions``) over 365 days;
* ``citations`` and ``usage``: summed over their outputs, from the stored breakdowns.

Each is shown with its percentile within the organisation and within each of their groups
("N% of the others have the same or less"). A group aggregates its members (and those of
its sub-groups): outputs are counted once however many members wrote them; regularities are
the members' mean. Groups are ranked among all groups.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select

from reachmeter.scoring.flags import account_key
from reachmeter.scoring.load import author_expr, load_outputs, roots
from reachmeter.store import Store
from reachmeter.store.schema import (
    Account,
    Authorship,
    Event,
    Group,
    Observation,
    Person,
    PersonGroup,
    Score,
)

__all__ = ["COMPONENTS", "ReachBasis", "h_index", "percentile_of", "reach_report"]

COMPONENTS = (
    "attention_total",
    "attention_h_index",
    "audience",
    "engagement",
    "posting_regularity",
    "blogging_regularity",
    "web_search",
    "citations",
    "usage",
)
BLOG_PLATFORMS = {"blog", "website"}


def h_index(scores: Iterable[float]) -> int:
    """The largest h such that h of the scores are at least h."""
    ordered = sorted(scores, reverse=True)
    h = 0
    for position, value in enumerate(ordered, start=1):
        if value >= position:
            h = position
        else:
            break
    return h


def percentile_of(value: float | None, values: Iterable[float | None]) -> float | None:
    """% of the other values that are the same or lower (None when nothing to compare)."""
    if value is None:
        return None
    known = [v for v in values if v is not None]
    if len(known) <= 1:
        return None
    same_or_lower = sum(1 for v in known if v <= value) - 1
    return round(100.0 * same_or_lower / (len(known) - 1), 2)


def _months_back(as_of: dt.date, count: int = 12) -> list[dt.date]:
    first = as_of.replace(day=1)
    result = []
    for _ in range(count):
        result.append(first)
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return result


def _load(store: Store, profile_name: str, as_of: dt.date) -> dict[str, Any]:
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    year_ago = as_of - dt.timedelta(days=365)
    recent_months = set(_months_back(as_of))
    with store.engine.connect() as connection:
        outputs = load_outputs(connection)
        root = roots(outputs)
        scores: dict[int, tuple[float, float, float]] = {}
        for output_id, score, breakdown in connection.execute(
            select(Score.output_id, Score.score, Score.breakdown).where(
                Score.profile_name == profile_name, Score.as_of == as_of
            )
        ):
            sources = (breakdown or {}).get("sources", {})
            scores[int(output_id)] = (
                float(score),
                float(sources.get("citations", {}).get("count", 0)),
                float(sources.get("usage", {}).get("count", 0)),
            )
        people = {int(i): n for i, n in connection.execute(select(Person.id, Person.name))}
        outputs_of: dict[int, set[int]] = defaultdict(set)
        for output_id, person_id in connection.execute(
            select(Authorship.output_id, Authorship.person_id)
        ):
            outputs_of[int(person_id)].add(root.get(int(output_id), int(output_id)))
        accounts = connection.execute(
            select(
                Account.id, Account.platform, Account.url, Account.handle,
                Account.owner_person_id,
            ).where(Account.owner_person_id.is_not(None))
        ).all()  # fmt: skip
        account_ids = [int(a.id) for a in accounts]
        followers: dict[int, tuple[dt.datetime, float, int]] = {}
        engagement: dict[int, float] = defaultdict(float)
        search: dict[int, float] = defaultdict(float)
        posted: dict[int, set[dt.date]] = defaultdict(set)
        # What each account's components were computed from: observation ids per component,
        # and the ids of the events its owner posted (for posting regularity).
        used: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for obs_id, account_id, metric, value, cumulative, period_start, observed_at in (
            connection.execute(
            select(
                Observation.id, Observation.account_id, Observation.metric, Observation.value,
                Observation.cumulative, Observation.period_start, Observation.observed_at,
            )
            .where(Observation.account_id.in_(account_ids), Observation.observed_at < end)
            .order_by(Observation.id)
            )
        ):  # fmt: skip
            if account_id is None:
                continue
            account_id = int(account_id)
            day = period_start or observed_at.date()
            if metric == "followers":
                known = followers.get(account_id)
                if known is None or observed_at >= known[0]:
                    followers[account_id] = (observed_at, float(value), int(obs_id))
            elif metric == "engagements" and day > year_ago:
                engagement[account_id] += float(value)
                used[account_id]["engagement"].append(int(obs_id))
            elif metric in ("search_impressions", "search-impressions") and day > year_ago:
                search[account_id] += float(value)
                used[account_id]["web_search"].append(int(obs_id))
            elif (
                metric == "posts"
                and not cumulative  # a profile's running post count says nothing of when
                and value > 0
                and day.replace(day=1) in recent_months
            ):
                posted[account_id].add(day.replace(day=1))
                used[account_id]["posting_observations"].append(int(obs_id))
        for account_id, (_when, _value, obs_id) in followers.items():
            used[account_id]["audience"].append(obs_id)
        by_key = {account_key(a.url or a.handle): int(a.id) for a in accounts}
        start = dt.datetime.combine(min(recent_months), dt.time(), tzinfo=dt.UTC)
        for event_id, author, occurred_at in connection.execute(
            select(Event.id, author_expr, Event.occurred_at).where(
                Event.occurred_at >= start, Event.occurred_at < end
            )
        ):
            account_id = by_key.get(account_key(author))
            if account_id is not None:
                posted[account_id].add(occurred_at.date().replace(day=1))
                used[account_id]["posting_events"].append(int(event_id))
        groups = {
            int(i): (name, int(parent) if parent is not None else None)
            for i, name, parent in connection.execute(select(Group.id, Group.name, Group.parent_id))
        }
        members: dict[int, set[int]] = defaultdict(set)
        for person_id, group_id in connection.execute(
            select(PersonGroup.person_id, PersonGroup.group_id)
        ):
            members[int(group_id)].add(int(person_id))
    return {
        "scores": scores,
        "people": people,
        "outputs_of": outputs_of,
        "accounts": accounts,
        "followers": followers,
        "engagement": engagement,
        "search": search,
        "posted": posted,
        "used": used,
        "groups": groups,
        "members": members,
    }


def _person_parts(data: Mapping[str, Any], person_id: int) -> dict[str, Any]:
    scores = data["scores"]
    outputs = sorted(data["outputs_of"].get(person_id, set()))
    scored = [scores[o] for o in outputs if o in scores]
    own = [a for a in data["accounts"] if a.owner_person_id == person_id]
    social = [int(a.id) for a in own if a.platform not in BLOG_PLATFORMS]
    blogs = [int(a.id) for a in own if a.platform in BLOG_PLATFORMS]

    def regularity(ids: list[int]) -> float | None:
        if not ids:
            return None
        months: set[dt.date] = set()
        for account_id in ids:
            months |= data["posted"].get(account_id, set())
        return round(100.0 * len(months) / 12, 2)

    followers = [data["followers"][i][1] for i in social + blogs if i in data["followers"]]
    inputs: dict[str, list[int]] = defaultdict(list)
    for account_id in social + blogs:
        for component, ids in data["used"].get(account_id, {}).items():
            if component.startswith("posting") and account_id in blogs:
                component = component.replace("posting", "blogging")
            inputs[component].extend(ids)
    searches = [data["search"][i] for i in social + blogs if i in data["search"]]
    return {
        "outputs": outputs,
        "accounts": [int(a.id) for a in own],
        "inputs": {name: sorted(ids) for name, ids in sorted(inputs.items())},
        "values": {
            "attention_total": round(sum(s[0] for s in scored), 6),
            "attention_h_index": h_index(s[0] for s in scored),
            "audience": sum(followers) if followers else None,
            "engagement": (
                sum(data["engagement"].get(i, 0.0) for i in social + blogs) if own else None
            ),
            "posting_regularity": regularity(social),
            "blogging_regularity": regularity(blogs),
            "web_search": sum(searches) if searches else None,
            "citations": sum(s[1] for s in scored),
            "usage": sum(s[2] for s in scored),
        },
    }


_WHY_NONE = {
    "audience": "no follower counts for their own accounts",
    "engagement": "no accounts of their own",
    "posting_regularity": "no social-media account of their own",
    "blogging_regularity": "no blog of their own",
    "web_search": "no search impressions (metric search_impressions) for their pages",
}


def _with_percentiles(
    values: Mapping[str, Any], peers: Mapping[str, Iterable[Mapping[str, Any]]]
) -> dict[str, Any]:
    components: dict[str, Any] = {}
    for name in COMPONENTS:
        value = values[name]
        entry: dict[str, Any] = {"value": value}
        if value is None:
            entry["reason"] = _WHY_NONE.get(name, "no data")
        for label, others in peers.items():
            entry[f"pct_{label}"] = percentile_of(value, [o[name] for o in others])
        components[name] = entry
    return components


def _descendants(groups: Mapping[int, tuple[str, int | None]], group_id: int) -> set[int]:
    found = {group_id}
    changed = True
    while changed:
        changed = False
        for child, (_name, parent) in groups.items():
            if parent in found and child not in found:
                found.add(child)
                changed = True
    return found


def _group_values(data: Mapping[str, Any], people: set[int], parts: Mapping[int, Any]) -> Any:
    outputs = set().union(*(set(parts[p]["outputs"]) for p in people)) if people else set()
    scored = [data["scores"][o] for o in outputs if o in data["scores"]]

    def total(name: str) -> float | None:
        known = [parts[p]["values"][name] for p in people if parts[p]["values"][name] is not None]
        return sum(known) if known else None

    def mean(name: str) -> float | None:
        known = [parts[p]["values"][name] for p in people if parts[p]["values"][name] is not None]
        return round(sum(known) / len(known), 2) if known else None

    return {
        "attention_total": round(sum(s[0] for s in scored), 6),
        "attention_h_index": h_index(s[0] for s in scored),
        "audience": total("audience"),
        "engagement": total("engagement"),
        "posting_regularity": mean("posting_regularity"),
        "blogging_regularity": mean("blogging_regularity"),
        "web_search": total("web_search"),
        "citations": sum(s[1] for s in scored),
        "usage": sum(s[2] for s in scored),
    }, sorted(outputs)


class ReachBasis:
    """Everything the reach of people and groups is computed from, read once for a profile
    and a day: the reports of any number of people and groups then cost no more reads
    (the dashboard keeps one for a few minutes)."""

    def __init__(self, store: Store, profile_name: str, as_of: dt.date) -> None:
        self.profile_name = profile_name
        self.as_of = as_of
        self.data = _load(store, profile_name, as_of)
        self.parts = {p: _person_parts(self.data, p) for p in self.data["people"]}
        self._groups: tuple[dict[int, Any], dict[int, list[int]]] | None = None

    def group_people(self, group_id: int) -> set[int]:
        """The people of a group and of its sub-groups."""
        data = self.data
        people: set[int] = set().union(
            *(data["members"].get(g, set()) for g in _descendants(data["groups"], group_id))
        )
        return people

    def person(self, person_id: int) -> dict[str, Any]:
        """A person's reach, as ``reach_report(..., person_id=...)`` gives it."""
        data, parts = self.data, self.parts
        if person_id not in parts:
            raise LookupError(f"no person with id {person_id}")
        peers: dict[str, list[Mapping[str, Any]]] = {
            "organisation": [part["values"] for part in parts.values()]
        }
        groups = []
        for gid, direct in sorted(data["members"].items()):
            if person_id in direct:
                people = self.group_people(gid)
                groups.append({"id": gid, "name": data["groups"][gid][0], "people": len(people)})
                peers[f"group_{gid}"] = [parts[p]["values"] for p in people]
        part = parts[person_id]
        return {
            "kind": "person",
            "person": {"id": person_id, "name": data["people"][person_id], "groups": groups},
            "profile": self.profile_name,
            "as_of": self.as_of.isoformat(),
            "components": _with_percentiles(part["values"], peers),
            "outputs": [
                {"output_id": o, "score": data["scores"].get(o, (None,))[0]}
                for o in part["outputs"]
            ],
            "accounts": part["accounts"],
            "inputs": part["inputs"],
        }

    def group(self, group_id: int) -> dict[str, Any]:
        """A group's reach, ranked among all groups, as ``reach_report(..., group_id=...)``."""
        if group_id not in self.data["groups"]:
            raise LookupError(f"no group with id {group_id}")
        if self._groups is None:  # every group's values, once: the ranks need them all
            all_values: dict[int, Any] = {}
            outputs_of_group: dict[int, list[int]] = {}
            for gid in self.data["groups"]:
                all_values[gid], outputs_of_group[gid] = _group_values(
                    self.data, self.group_people(gid), self.parts
                )
            self._groups = (all_values, outputs_of_group)
        all_values, outputs_of_group = self._groups
        return {
            "kind": "group",
            "group": {"id": group_id, "name": self.data["groups"][group_id][0]},
            "profile": self.profile_name,
            "as_of": self.as_of.isoformat(),
            "components": _with_percentiles(
                all_values[group_id], {"groups": list(all_values.values())}
            ),
            "outputs": outputs_of_group[group_id],
        }


def reach_report(
    store: Store,
    profile_name: str,
    as_of: dt.date,
    *,
    person_id: int | None = None,
    group_id: int | None = None,
) -> dict[str, Any]:
    """The reach of one person or one group, component by component, with percentiles."""
    basis = ReachBasis(store, profile_name, as_of)
    if person_id is not None:
        return basis.person(person_id)
    if group_id is None:
        raise LookupError("no group with id None")
    return basis.group(group_id)
