"""Raising alerts: spikes, milestones, data quality, objectives, and digests per rule.

Every alert has a ``dedup_key``; raising it again does nothing (the key is unique in the
store), so a check can run as often as wanted and an alert is never raised or sent twice.
What counts as each kind:

- ``spike``: a day on which an output had at least ``SPIKE_MIN_MENTIONS`` mentions and at
  least ``SPIKE_FACTOR`` times its average daily mentions over the ``BASELINE_DAYS`` days
  before (an output with no earlier mentions needs only the minimum).
- ``milestone``: an output's first news story, first policy citation or first Wikipedia
  reference (the earliest such mention known), or its attention score (default profile)
  passing one of ``SCORE_THRESHOLDS`` between two scored days.
- ``data-quality``: a source's collection run failed, or the source was paused after
  repeated failures; a run stored nothing where the source's previous ``DROP_RUNS`` runs
  stored ``DROP_MIN_STORED`` or more on average; a cumulative count fell, or rose faster
  than the default profile's ``jump_rise_per_day`` (``scoring.flags.find_count_jumps``).
- ``objective``: an objective ``at risk`` or ``behind`` (``reachmeter.framework``), at most
  once per objective, status and ISO week.
- ``mentions``: the digest of a daily or weekly rule: the new mentions (matched in the
  period) of the outputs in the rule's scope, with the other alerts of the period.

Only facts from the last ``lookback`` days raise spikes, milestones and failures, so a
first check on an old store does not flood anyone.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from reachmeter.framework.kpis import group_tree
from reachmeter.framework.progress import objectives_progress
from reachmeter.scoring.compute import as_of_end
from reachmeter.scoring.flags import ObservationRow, find_count_jumps
from reachmeter.scoring.load import counted_event_filter, load_outputs, roots
from reachmeter.scoring.profiles import load_profile
from reachmeter.store import Store
from reachmeter.store.catalog import CatalogError, find_person, normalize_output_type
from reachmeter.store.schema import (
    Authorship,
    Event,
    EventMatch,
    Group,
    Meta,
    Observation,
    Output,
    OutputIdentifier,
    PersonGroup,
    Run,
    Score,
)
from reachmeter.store.schema import Source as SourceRow
from reachmeter.store.schema_monitor import Alert, AlertDelivery, AlertRule, SavedFilter

__all__ = [
    "ALERT_KINDS",
    "FREQUENCIES",
    "AlertError",
    "add_filter",
    "add_rule",
    "list_alerts",
    "list_rules",
    "raise_alerts",
]

ALERT_KINDS = ("mentions", "spike", "milestone", "data-quality", "objective")
FREQUENCIES = ("immediate", "daily", "weekly")
SPIKE_MIN_MENTIONS = 10
SPIKE_FACTOR = 5.0
BASELINE_DAYS = 28
SCORE_THRESHOLDS = (10, 25, 50, 100, 250, 500, 1000, 2500)
MILESTONE_KINDS = {
    "news": "news story",
    "policy": "policy citation",
    "wikipedia": "Wikipedia reference",
}
DIGEST_MENTIONS_SHOWN = 20
DROP_RUNS = 5
DROP_MIN_STORED = 10
FILTER_KEYS = ("type", "source", "group", "person", "title")
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
_MILESTONE_CURSOR = "monitor.milestones.last_match_id"
_COUNTS_CURSOR = "monitor.counts.last_observation_id"


class AlertError(ValueError):
    """A rule or filter that cannot be recorded as given."""


# -- rules and saved filters ------------------------------------------------------------------


def _as_list(value: Any, key: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise AlertError(f"filter key {key!r} takes a text or a list of texts")


def add_filter(store: Store, name: str, query: dict[str, Any]) -> int:
    """Save a named selection of outputs: ``type`` (output types), ``source`` (mention
    sources), ``group`` (group names, with their subgroups), ``person`` (ids, ORCIDs or
    names: their outputs), ``title`` (words the title contains)."""
    unknown = sorted(set(query) - set(FILTER_KEYS))
    if unknown:
        raise AlertError(
            f"unknown filter key(s) {', '.join(unknown)}; use {', '.join(FILTER_KEYS)}"
        )
    if not query:
        raise AlertError("a filter needs at least one of " + ", ".join(FILTER_KEYS))
    clean: dict[str, list[str]] = {key: _as_list(value, key) for key, value in query.items()}
    with store.session() as session:
        if "type" in clean:
            try:
                clean["type"] = [normalize_output_type(t) for t in clean["type"]]
            except CatalogError as exc:
                raise AlertError(str(exc)) from exc
        for name_ in clean.get("group", []):
            if session.scalars(select(Group.id).where(Group.name == name_)).first() is None:
                raise AlertError(f"no group {name_!r} in the store")
        for ref in clean.get("person", []):
            if _find_person(session, ref) is None:
                raise AlertError(f"no person {ref!r} in the store")
        if session.scalars(select(SavedFilter).where(SavedFilter.name == name)).first():
            raise AlertError(f"a filter named {name!r} already exists")
        row = SavedFilter(name=name, query=clean)
        session.add(row)
        session.flush()
        return int(row.id)


def _find_person(session: Session, ref: str) -> Any:
    try:
        return find_person(session, ref)
    except CatalogError as exc:
        raise AlertError(str(exc)) from exc


def _parse_rule_scope(session: Session, scope: str) -> tuple[str, int | None]:
    kind, _, ref = scope.strip().partition(":")
    kind = kind.strip().lower()
    ref = ref.strip()
    if kind == "all" and not ref:
        return "all", None
    if kind == "person" and ref:
        person = _find_person(session, ref)
        if person is None:
            raise AlertError(f"no person {ref!r} in the store")
        return "person", int(person.id)
    if kind == "group" and ref:
        group = session.scalars(
            select(Group).where(func.lower(Group.name) == ref.lower())
        ).first() or (session.get(Group, int(ref)) if ref.isdigit() else None)
        if group is None:
            raise AlertError(f"no group {ref!r} in the store")
        return "group", int(group.id)
    if kind == "filter" and ref:
        saved = session.scalars(select(SavedFilter).where(SavedFilter.name == ref)).first()
        if saved is None:
            raise AlertError(
                f"no saved filter {ref!r}; add it with `reachmeter alerts filters add`"
            )
        return "filter", int(saved.id)
    raise AlertError(f"unknown scope {scope!r}: use all, person:REF, group:NAME or filter:NAME")


def add_rule(
    store: Store,
    name: str,
    *,
    scope: str = "all",
    kinds: Collection[str] = ALERT_KINDS,
    frequency: str = "daily",
    email: str | None = None,
    webhook: str | None = None,
) -> int:
    """Subscribe ``email`` recipients (commas) and/or a ``webhook`` URL to alerts of
    ``kinds`` about ``scope``, sent ``frequency`` (immediate, daily or weekly)."""
    problems = []
    if not name.strip():
        problems.append("a rule needs a name")
    bad_kinds = sorted(set(kinds) - set(ALERT_KINDS))
    if bad_kinds or not kinds:
        problems.append(
            f"unknown alert kind(s) {', '.join(bad_kinds) or '(none given)'}; "
            f"use {', '.join(ALERT_KINDS)}"
        )
    if frequency not in FREQUENCIES:
        problems.append(f"unknown frequency {frequency!r}; use {', '.join(FREQUENCIES)}")
    if frequency == "immediate" and "mentions" in kinds:
        problems.append("the mentions digest is daily or weekly, not immediate")
    recipients = [a.strip() for a in (email or "").split(",") if a.strip()]
    problems += [f"{a!r} is not an e-mail address" for a in recipients if not _EMAIL.match(a)]
    if webhook and not re.match(r"^https?://[^\s/]+", webhook):
        problems.append(f"webhook {webhook!r} is not an http(s) URL")
    if not recipients and not webhook:
        problems.append("give --email recipients or a --webhook URL (or both)")
    if problems:
        raise AlertError("; ".join(problems))
    with store.session() as session:
        if session.scalars(select(AlertRule).where(AlertRule.name == name.strip())).first():
            raise AlertError(f"a rule named {name.strip()!r} already exists")
        scope_kind, scope_id = _parse_rule_scope(session, scope)
        rule = AlertRule(
            name=name.strip(),
            scope_kind=scope_kind,
            scope_id=scope_id,
            kinds=[k for k in ALERT_KINDS if k in kinds],
            frequency=frequency,
            email_to=", ".join(recipients) or None,
            webhook_url=webhook or None,
            enabled=True,
        )
        session.add(rule)
        session.flush()
        return int(rule.id)


def list_rules(store: Store) -> list[dict[str, Any]]:
    with store.session() as session:
        return [
            {
                "id": r.id,
                "name": r.name,
                "scope": r.scope_kind + (f":{r.scope_id}" if r.scope_id is not None else ""),
                "kinds": list(r.kinds),
                "frequency": r.frequency,
                "email": r.email_to,
                "webhook": r.webhook_url,
                "enabled": r.enabled,
                "covered_until": r.covered_until,
            }
            for r in session.scalars(select(AlertRule).order_by(AlertRule.id))
        ]


def list_alerts(store: Store, *, limit: int = 50, kind: str | None = None) -> list[dict[str, Any]]:
    """The latest alerts with how their deliveries went."""
    with store.session() as session:
        query = select(Alert).order_by(Alert.raised_at.desc(), Alert.id.desc()).limit(limit)
        if kind:
            query = query.where(Alert.kind == kind)
        alerts = list(session.scalars(query))
        deliveries: dict[int, list[dict[str, Any]]] = defaultdict(list)
        if alerts:
            for d in session.scalars(
                select(AlertDelivery)
                .where(AlertDelivery.alert_id.in_([a.id for a in alerts]))
                .order_by(AlertDelivery.id)
            ):
                deliveries[d.alert_id].append(
                    {
                        "channel": d.channel,
                        "target": d.target,
                        "status": d.status,
                        "attempts": d.attempts,
                        "last_error": d.last_error,
                        "sent_at": d.sent_at,
                    }
                )
        return [
            {
                "id": a.id,
                "kind": a.kind,
                "subject": a.subject,
                "title": a.title,
                "detail": a.detail,
                "raised_at": a.raised_at,
                "deliveries": deliveries.get(a.id, []),
            }
            for a in alerts
        ]


# -- raising --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _NewAlert:
    kind: str
    dedup_key: str
    subject: str
    title: str
    detail: dict[str, Any]
    output_id: int | None = None
    rule_id: int | None = None


def _insert(connection: Connection, alert: _NewAlert, now: dt.datetime) -> int | None:
    """Insert an alert unless its key is known; the new id, or None."""
    values = {
        "kind": alert.kind,
        "dedup_key": alert.dedup_key[:300],
        "subject": alert.subject[:300],
        "title": alert.title,
        "detail": alert.detail,
        "output_id": alert.output_id,
        "rule_id": alert.rule_id,
        "raised_at": now,
    }
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(Alert)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(Alert.id)
    )
    found = connection.execute(statement).scalar()
    return int(found) if found is not None else None


def _get_cursor(connection: Connection, key: str) -> int:
    value = connection.execute(select(Meta.value).where(Meta.key == key)).scalar()
    return int(value) if value else 0


def _set_cursor(connection: Connection, key: str, value: int) -> None:
    known = connection.execute(select(Meta.key).where(Meta.key == key)).first()
    table = Meta.__table__
    if known is None:
        connection.execute(insert(Meta).values(key=key, value=str(value)))
    else:
        connection.execute(table.update().where(table.c.key == key).values(value=str(value)))  # type: ignore[attr-defined]


def _titles(connection: Connection, output_ids: Iterable[int]) -> dict[int, str]:
    ids = sorted(set(output_ids))
    if not ids:
        return {}
    return {
        int(i): t or f"output {i}"
        for i, t in connection.execute(select(Output.id, Output.title).where(Output.id.in_(ids)))
    }


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def find_spikes(
    daily: dict[int, dict[dt.date, int]], days: Iterable[dt.date]
) -> list[tuple[int, dt.date, int, float]]:
    """(output, day, mentions, baseline) for each day that is a spike (see module docs)."""
    found = []
    wanted = sorted(days)
    for output_id, counts in daily.items():
        for day in wanted:
            count = counts.get(day, 0)
            if count < SPIKE_MIN_MENTIONS:
                continue
            before = sum(
                counts.get(day - dt.timedelta(days=n), 0) for n in range(1, BASELINE_DAYS + 1)
            )
            baseline = before / BASELINE_DAYS
            if count >= SPIKE_FACTOR * baseline:
                found.append((output_id, day, count, round(baseline, 3)))
    return found


def _spikes(connection: Connection, now: dt.datetime, lookback: int) -> list[_NewAlert]:
    today = now.date()
    first = today - dt.timedelta(days=lookback)
    low = _day_start(first - dt.timedelta(days=BASELINE_DAYS))
    root = roots(load_outputs(connection))
    rows = connection.execute(
        select(EventMatch.output_id, Event.occurred_at)
        .join(Event, Event.id == EventMatch.event_id)
        .where(*counted_event_filter(as_of_end(today), ()), Event.occurred_at >= low)
        .distinct()
    )
    daily: dict[int, dict[dt.date, int]] = defaultdict(lambda: defaultdict(int))
    for output_id, occurred_at in rows:
        daily[root.get(int(output_id), int(output_id))][occurred_at.date()] += 1
    days = [first + dt.timedelta(days=n) for n in range(lookback + 1)]
    spikes = find_spikes(daily, days)
    titles = _titles(connection, (s[0] for s in spikes))
    return [
        _NewAlert(
            "spike",
            f"spike:{output_id}:{day.isoformat()}",
            f"output:{output_id}",
            f"Spike: {count} mentions of {titles.get(output_id, output_id)!s} on {day} "
            f"(usually {baseline:g} a day)",
            {"day": day.isoformat(), "mentions": count, "baseline_per_day": baseline},
            output_id,
        )
        for output_id, day, count, baseline in spikes
    ]


def _first_mentions(connection: Connection, now: dt.datetime, lookback: int) -> list[_NewAlert]:
    profile = load_profile("default")
    cursor = _get_cursor(connection, _MILESTONE_CURSOR)
    last = int(connection.execute(select(func.max(EventMatch.id))).scalar() or 0)
    _set_cursor(connection, _MILESTONE_CURSOR, last)
    if last <= cursor:
        return []
    low = now - dt.timedelta(days=lookback)
    root = roots(load_outputs(connection))
    candidates: dict[tuple[int, str], dt.datetime] = {}
    rows = connection.execute(
        select(EventMatch.output_id, Event.source_id, Event.occurred_at)
        .join(Event, Event.id == EventMatch.event_id)
        .where(
            EventMatch.id > cursor,
            EventMatch.id <= last,
            Event.occurred_at >= low,
            *counted_event_filter(now + dt.timedelta(days=1), ()),
        )
    )
    for output_id, source_id, occurred_at in rows:
        kind = profile.kind_of_source(source_id)
        if kind in MILESTONE_KINDS:
            key = (root.get(int(output_id), int(output_id)), kind)
            if key not in candidates or occurred_at < candidates[key]:
                candidates[key] = occurred_at
    if not candidates:
        return []
    outputs = sorted({o for o, _ in candidates})
    members = [m for m, r in root.items() if r in set(outputs)]
    earliest: dict[tuple[int, str], dt.datetime] = {}
    for output_id, source_id, occurred_at in connection.execute(
        select(EventMatch.output_id, Event.source_id, Event.occurred_at)
        .join(Event, Event.id == EventMatch.event_id)
        .where(
            EventMatch.output_id.in_(members), *counted_event_filter(now + dt.timedelta(days=1), ())
        )
    ):
        kind = profile.kind_of_source(source_id)
        key = (root.get(int(output_id), int(output_id)), kind)
        if kind in MILESTONE_KINDS and (key not in earliest or occurred_at < earliest[key]):
            earliest[key] = occurred_at
    titles = _titles(connection, outputs)
    alerts = []
    for (output_id, kind), occurred_at in sorted(candidates.items()):
        if earliest.get((output_id, kind)) != occurred_at:
            continue
        what = MILESTONE_KINDS[kind]
        alerts.append(
            _NewAlert(
                "milestone",
                f"milestone:first-{kind}:{output_id}",
                f"output:{output_id}",
                f"First {what}: {titles.get(output_id, output_id)!s}",
                {"milestone": f"first {what}", "occurred_at": occurred_at.isoformat()},
                output_id,
            )
        )
    return alerts


def _score_milestones(connection: Connection, now: dt.datetime) -> list[_NewAlert]:
    days = list(
        connection.execute(
            select(Score.as_of)
            .where(Score.profile_name == "default", Score.as_of <= now.date())
            .distinct()
            .order_by(Score.as_of.desc())
            .limit(2)
        ).scalars()
    )
    if len(days) < 2:
        return []
    latest, previous = days
    before = dict(
        connection.execute(
            select(Score.output_id, Score.score).where(
                Score.profile_name == "default", Score.as_of == previous
            )
        ).all()
    )
    passed: dict[int, tuple[float, float, int]] = {}
    for output_id, score in connection.execute(
        select(Score.output_id, Score.score).where(
            Score.profile_name == "default", Score.as_of == latest
        )
    ):
        old = float(before.get(output_id, 0.0))
        crossed = [t for t in SCORE_THRESHOLDS if old < t <= float(score)]
        if crossed:
            passed[int(output_id)] = (old, float(score), max(crossed))
    titles = _titles(connection, passed)
    return [
        _NewAlert(
            "milestone",
            f"milestone:score-{threshold}:{output_id}",
            f"output:{output_id}",
            f"Attention score passed {threshold}: {titles.get(output_id, output_id)!s} "
            f"({old:g} on {previous}, {new:g} on {latest})",
            {"milestone": f"score {threshold}", "from": old, "to": new, "as_of": str(latest)},
            output_id,
        )
        for output_id, (old, new, threshold) in sorted(passed.items())
    ]


def _source_problems(connection: Connection, now: dt.datetime, lookback: int) -> list[_NewAlert]:
    alerts = []
    low = now - dt.timedelta(days=lookback)
    for run_id, source_id, started_at, detail in connection.execute(
        select(Run.id, Run.source_id, Run.started_at, Run.detail).where(
            Run.kind == "collect", Run.status == "failed", Run.started_at >= low
        )
    ):
        errors = (detail or {}).get("errors") or []
        alerts.append(
            _NewAlert(
                "data-quality",
                f"source-failed:{run_id}",
                f"source:{source_id}",
                f"Source {source_id} failed (run {run_id}, {started_at:%Y-%m-%d %H:%M} UTC)",
                {"source_id": source_id, "run_id": run_id, "errors": errors[:5]},
            )
        )
    for source_id, reason in connection.execute(
        select(SourceRow.id, SourceRow.paused_reason).where(SourceRow.enabled.is_(False))
    ):
        last_failed = connection.execute(
            select(func.max(Run.id)).where(Run.source_id == source_id, Run.status == "failed")
        ).scalar()
        alerts.append(
            _NewAlert(
                "data-quality",
                f"source-paused:{source_id}:{last_failed or 0}",
                f"source:{source_id}",
                f"Source {source_id} is paused: {reason or 'disabled'}",
                {"source_id": source_id, "reason": reason},
            )
        )
    return alerts


def _collection_drops(connection: Connection, now: dt.datetime, lookback: int) -> list[_NewAlert]:
    """Runs that stored nothing where the source's previous runs stored plenty."""
    alerts = []
    low = now - dt.timedelta(days=lookback)
    for run_id, source_id, started_at in connection.execute(
        select(Run.id, Run.source_id, Run.started_at).where(
            Run.kind == "collect",
            Run.status.in_(("ok", "partial")),
            Run.stored == 0,
            Run.started_at >= low,
        )
    ):
        before = [
            int(n or 0)
            for (n,) in connection.execute(
                select(Run.stored)
                .where(
                    Run.kind == "collect",
                    Run.source_id == source_id,
                    Run.id < run_id,
                    Run.status.in_(("ok", "partial")),
                )
                .order_by(Run.id.desc())
                .limit(DROP_RUNS)
            )
        ]
        if len(before) < DROP_RUNS or sum(before) / len(before) < DROP_MIN_STORED:
            continue
        average = sum(before) / len(before)
        alerts.append(
            _NewAlert(
                "data-quality",
                f"collection-drop:{run_id}",
                f"source:{source_id}",
                f"Source {source_id} stored nothing in run {run_id} "
                f"({started_at:%Y-%m-%d %H:%M} UTC); its previous {DROP_RUNS} runs stored "
                f"{average:g} on average",
                {"source_id": source_id, "run_id": run_id, "previous_average": average},
            )
        )
    return alerts


def _count_jumps(connection: Connection) -> list[_NewAlert]:
    cursor = _get_cursor(connection, _COUNTS_CURSOR)
    last = int(connection.execute(select(func.max(Observation.id))).scalar() or 0)
    _set_cursor(connection, _COUNTS_CURSOR, last)
    if last <= cursor:
        return []
    series = (
        select(Observation.obj_scheme, Observation.obj_value, Observation.metric)
        .where(
            Observation.id > cursor,
            Observation.cumulative.is_(True),
            Observation.obj_value.is_not(None),
        )
        .distinct()
        .subquery()
    )
    rows = connection.execute(
        select(
            Observation.id, OutputIdentifier.output_id, Observation.metric,
            Observation.source_id, Observation.value, Observation.observed_at,
        )
        .join(series, (series.c.obj_scheme == Observation.obj_scheme)
              & (series.c.obj_value == Observation.obj_value)
              & (series.c.metric == Observation.metric))
        .join(OutputIdentifier, (OutputIdentifier.scheme == Observation.obj_scheme)
              & (OutputIdentifier.value == Observation.obj_value))
        .where(Observation.cumulative.is_(True))
    )  # fmt: skip
    points = [ObservationRow(int(i), int(o), m, s, float(v), t) for i, o, m, s, v, t in rows]
    rules = load_profile("default").flags
    jumps = [f for f in find_count_jumps(points, rules) if (f.observation_id or 0) > cursor]
    titles = _titles(connection, (f.output_id for f in jumps if f.output_id is not None))
    alerts = []
    for flag in jumps:
        d = flag.detail
        verb = "fell" if d["direction"] == "fall" else "rose too fast"
        alerts.append(
            _NewAlert(
                "data-quality",
                f"count-jump:{flag.observation_id}",
                f"output:{flag.output_id}",
                f"{d['metric'].capitalize()} of {titles.get(flag.output_id or 0, flag.output_id)!s}"
                f" {verb}: {d['from']:g} to {d['to']:g} in {d['days']:g} days "
                f"(source {flag.source_id})",
                {**d, "source_id": flag.source_id, "observation_id": flag.observation_id},
                flag.output_id,
            )
        )
    return alerts


def _objective_alerts(store: Store, now: dt.datetime) -> list[_NewAlert]:
    year, week, _ = now.date().isocalendar()
    alerts = []
    for p in objectives_progress(store, now.date()):
        if p.status not in ("at risk", "behind") or now.date() > p.deadline + dt.timedelta(days=7):
            continue
        current = "nothing measured" if p.current is None else f"{p.current:g}"
        projected = "-" if p.projected is None else f"{p.projected:g}"
        alerts.append(
            _NewAlert(
                "objective",
                f"objective:{p.id}:{p.status}:{year}-W{week:02d}",
                f"objective:{p.id}",
                f"Objective {p.status}: {p.title} ({p.kpi} {current} of {p.target:g}, "
                f"projected {projected} by {p.deadline})",
                {
                    "objective_id": p.id,
                    "status": p.status,
                    "current": p.current,
                    "projected": p.projected,
                    "target": p.target,
                    "deadline": p.deadline.isoformat(),
                    "owner": p.owner,
                },
            )
        )
    return alerts


# -- scopes of rules ---------------------------------------------------------------------------


def _rule_outputs(connection: Connection, rule: AlertRule) -> set[int] | None:
    """The output ids (all members of merges) a rule is about; None: all."""
    people: set[int] | None = None
    query: dict[str, list[str]] = {}
    if rule.scope_kind == "all":
        return None
    if rule.scope_kind == "person":
        people = {int(rule.scope_id or 0)}
    elif rule.scope_kind == "group":
        groups = group_tree(connection, [int(rule.scope_id or 0)])
        people = _members(connection, groups)
    elif rule.scope_kind == "filter":
        saved = connection.execute(
            select(SavedFilter.query).where(SavedFilter.id == rule.scope_id)
        ).scalar()
        query = dict(saved or {})
    selected = select(Output.id)
    if people is not None:
        selected = selected.where(
            Output.id.in_(select(Authorship.output_id).where(Authorship.person_id.in_(people)))
        )
    if query.get("type"):
        selected = selected.where(Output.type.in_(query["type"]))
    for word in query.get("title", []):
        selected = selected.where(func.lower(Output.title).contains(word.lower()))
    if query.get("group") or query.get("person"):
        wanted: set[int] = set()
        if query.get("group"):
            ids = connection.execute(select(Group.id).where(Group.name.in_(query["group"])))
            wanted |= _members(connection, group_tree(connection, [int(g) for (g,) in ids]))
        with Session(bind=connection) as session:
            for ref in query.get("person", []):
                person = find_person(session, ref)
                if person is not None:
                    wanted.add(int(person.id))
        selected = selected.where(
            Output.id.in_(select(Authorship.output_id).where(Authorship.person_id.in_(wanted)))
        )
    kept = {int(o) for (o,) in connection.execute(selected)}
    root = roots(load_outputs(connection))
    return {m for m, r in root.items() if r in kept or m in kept}


def _members(connection: Connection, groups: set[int]) -> set[int]:
    return {
        int(p)
        for (p,) in connection.execute(
            select(PersonGroup.person_id).where(PersonGroup.group_id.in_(sorted(groups)))
        )
    }


def _rule_sources(connection: Connection, rule: AlertRule) -> list[str] | None:
    if rule.scope_kind != "filter":
        return None
    saved = connection.execute(
        select(SavedFilter.query).where(SavedFilter.id == rule.scope_id)
    ).scalar()
    sources = (saved or {}).get("source")
    return list(sources) if sources else None


def _matches(alert: _NewAlert, rule: AlertRule, outputs: set[int] | None) -> bool:
    if alert.kind not in rule.kinds:
        return False
    if alert.output_id is None:
        return rule.scope_kind == "all"
    return outputs is None or alert.output_id in outputs


# -- digests -----------------------------------------------------------------------------------


def period_floor(moment: dt.datetime, frequency: str) -> dt.datetime:
    """The start of the daily or weekly (Monday) period holding ``moment`` (UTC)."""
    day = moment.astimezone(dt.UTC).date()
    if frequency == "weekly":
        day -= dt.timedelta(days=day.weekday())
    return _day_start(day)


def _digest(
    connection: Connection, rule: AlertRule, start: dt.datetime, end: dt.datetime
) -> _NewAlert | None:
    outputs = _rule_outputs(connection, rule)
    sources = _rule_sources(connection, rule)
    mentions: list[dict[str, Any]] = []
    total = 0
    if "mentions" in rule.kinds and (outputs is None or outputs):
        conditions = [
            EventMatch.matched_at >= start,
            EventMatch.matched_at < end,
            # Not deleted, whenever it occurred: "new" is when it was matched.
            *counted_event_filter(end + dt.timedelta(days=36500), ()),
        ]
        if outputs is not None:
            conditions.append(EventMatch.output_id.in_(sorted(outputs)))
        if sources:
            conditions.append(Event.source_id.in_(sources))
        base = (
            select(Event.id, Event.source_id, Event.subj_id, Event.subj_author,
                   Event.occurred_at, EventMatch.output_id, Output.title)
            .join(EventMatch, EventMatch.event_id == Event.id)
            .join(Output, Output.id == EventMatch.output_id)
            .where(*conditions)
        )  # fmt: skip
        total = int(
            connection.execute(select(func.count()).select_from(base.subquery())).scalar() or 0
        )
        by_source: dict[str, int] = defaultdict(int)
        for source_id, count in connection.execute(
            select(Event.source_id, func.count())
            .join(EventMatch, EventMatch.event_id == Event.id)
            .where(*conditions)
            .group_by(Event.source_id)
        ):
            by_source[source_id] = int(count)
        for _id, source_id, subj_id, author, occurred_at, output_id, title in connection.execute(
            base.order_by(Event.occurred_at.desc(), Event.id.desc()).limit(DIGEST_MENTIONS_SHOWN)
        ):
            mentions.append(
                {
                    "source_id": source_id,
                    "subj_id": subj_id,
                    "author": author,
                    "occurred_at": occurred_at.isoformat(),
                    "output_id": int(output_id),
                    "output": title,
                }
            )
    others = []
    for alert in connection.execute(
        select(Alert.id, Alert.kind, Alert.title, Alert.output_id, Alert.subject)
        .where(Alert.raised_at >= start, Alert.raised_at < end, Alert.rule_id.is_(None))
        .order_by(Alert.id)
    ):
        candidate = _NewAlert(alert.kind, "", alert.subject, alert.title, {}, alert.output_id)
        if _matches(candidate, rule, outputs):
            others.append({"id": alert.id, "kind": alert.kind, "title": alert.title})
    if not total and not others:
        return None
    label = "Weekly" if rule.frequency == "weekly" else "Daily"
    last_day = (end - dt.timedelta(seconds=1)).date()
    span = f"{start.date()}" if start.date() == last_day else f"{start.date()} to {last_day}"
    title = f"{label} digest for {rule.name}, {span}: {total} new mention(s)"
    if others:
        title += f", {len(others)} alert(s)"
    return _NewAlert(
        "mentions",
        f"digest:{rule.id}:{end.isoformat()}",
        f"rule:{rule.id}",
        title,
        {
            "rule": rule.name,
            "period": [start.isoformat(), end.isoformat()],
            "mentions": total,
            "by_source": dict(sorted(by_source.items())) if total else {},
            "latest": mentions,
            "alerts": others,
        },
        rule_id=rule.id,
    )


def _queue(connection: Connection, alert_id: int, rule: AlertRule, now: dt.datetime) -> int:
    queued = 0
    targets = []
    if rule.email_to:
        targets.append(("email", rule.email_to))
    if rule.webhook_url:
        targets.append(("webhook", rule.webhook_url))
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    for channel, target in targets:
        statement = (
            dialect.insert(AlertDelivery)
            .values(
                alert_id=alert_id,
                rule_id=rule.id,
                channel=channel,
                target=target,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["alert_id", "rule_id", "channel"])
            .returning(AlertDelivery.id)
        )
        queued += len(connection.execute(statement).all())
    return queued


@dataclass
class RaiseSummary:
    """What a check raised and queued."""

    raised: dict[str, int]
    queued: int = 0

    @property
    def total(self) -> int:
        return sum(self.raised.values())


def raise_alerts(
    store: Store, now: dt.datetime | None = None, *, lookback: int = 7
) -> RaiseSummary:
    """Raise every alert due at ``now`` (default: the present), queue their deliveries to
    the rules that want them, and make the digests of rules whose period has ended."""
    now = now or dt.datetime.now(dt.UTC)
    summary = RaiseSummary(raised=dict.fromkeys(ALERT_KINDS, 0))
    objective_alerts = _objective_alerts(store, now)
    with store.session() as session:
        rules = list(
            session.scalars(
                select(AlertRule).where(AlertRule.enabled.is_(True)).order_by(AlertRule.id)
            )
        )
    with store.begin() as connection:
        candidates = [
            *_spikes(connection, now, lookback),
            *_first_mentions(connection, now, lookback),
            *_score_milestones(connection, now),
            *_source_problems(connection, now, lookback),
            *_collection_drops(connection, now, lookback),
            *_count_jumps(connection),
            *objective_alerts,
        ]
        immediate = [r for r in rules if r.frequency == "immediate"]
        scopes = {r.id: _rule_outputs(connection, r) for r in immediate}
        for alert in candidates:
            alert_id = _insert(connection, alert, now)
            if alert_id is None:
                continue
            summary.raised[alert.kind] += 1
            for rule in immediate:
                if _matches(alert, rule, scopes[rule.id]):
                    summary.queued += _queue(connection, alert_id, rule, now)
    # Digests see the alerts just raised, so they are made after those are committed.
    for rule in rules:
        if rule.frequency == "immediate":
            continue
        with store.begin() as connection:
            end = period_floor(now, rule.frequency)
            start = rule.covered_until or period_floor(rule.created_at, rule.frequency)
            if start >= end:
                continue
            digest = _digest(connection, rule, start, end)
            if digest is not None:
                alert_id = _insert(connection, digest, now)
                if alert_id is not None:
                    summary.raised["mentions"] += 1
                    summary.queued += _queue(connection, alert_id, rule, now)
            table = AlertRule.__table__
            connection.execute(
                table.update().where(table.c.id == rule.id).values(covered_until=end)  # type: ignore[attr-defined]
            )
    return summary
