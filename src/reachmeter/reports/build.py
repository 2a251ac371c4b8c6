"""Gathering a report's figures from the store: plain values, rendered by ``render``.

Every figure is as of the end of the period (or of today, for a period still running):
stored scores of that day (``reachmeter score --as-of`` semantics; computed and stored
first when missing), and mentions and observations that occurred before its end. The same
store and period give the same report, byte for byte: nothing depends on the time of the
render, and every list has a fixed order.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from sqlalchemy import Connection, and_, exists, func, or_, select

from reachmeter.framework import objectives_progress
from reachmeter.reports.period import Period, PeriodError
from reachmeter.reports.scope import Scope
from reachmeter.scoring import Profile, compute_scores, methods_log
from reachmeter.scoring.accounts import PLATFORM_SOURCES, AccountPoint, account_kpis
from reachmeter.scoring.compute import as_of_end
from reachmeter.scoring.flags import account_key
from reachmeter.scoring.kinds import KINDS, category_of
from reachmeter.scoring.load import author_expr, counted_event_filter, load_outputs, roots
from reachmeter.scoring.reach import h_index, reach_report
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
    QuarantinedRecord,
    Run,
    Score,
    ScoreFlag,
    Source,
)

__all__ = ["Report", "build_report"]

TOP = 10
PEOPLE_SHOWN = 20
TEXT_CHARS = 240

# A callable giving objectives' progress as of a date (``reachmeter.framework``).
ObjectivesReader = Callable[[Store, dt.date], Iterable[Any]]


@dataclass
class Report:
    """Everything a report shows, as plain values (the HTML, PDF and CSV show the same)."""

    scope: Scope
    period: Period
    previous: Period
    as_of: dt.date
    previous_as_of: dt.date
    in_progress: bool
    demo: bool
    has_data: bool
    profile: dict[str, Any]
    version: str
    headline: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    series: list[dict[str, Any]] = field(default_factory=list)
    series_unit: str = "week"
    attention_by_kind: dict[str, float] = field(default_factory=dict)
    top_outputs: list[dict[str, Any]] = field(default_factory=list)
    top_mentions: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    people: list[dict[str, Any]] = field(default_factory=list)
    reach: list[dict[str, Any]] = field(default_factory=list)
    reach_labels: list[str] = field(default_factory=list)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    objectives: list[dict[str, Any]] = field(default_factory=list)
    objectives_note: str = ""
    quality: dict[str, Any] = field(default_factory=dict)
    methods: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"ReachMeter report: {self.scope.label}, {self.period.label}"

    def figure(self, key: str) -> dict[str, Any]:
        """The headline row ``key`` (``mentions``, ``attention``, ...)."""
        for row in self.headline:
            if row["key"] == key:
                return row
        raise KeyError(key)


def _version() -> str:
    try:
        return metadata.version("reachmeter")
    except metadata.PackageNotFoundError:  # pragma: no cover - always installed
        return "unknown"


def _facts_before(connection: Connection, before: dt.datetime) -> bool:
    events = connection.execute(select(exists().where(Event.occurred_at < before))).scalar()
    observed = connection.execute(select(exists().where(Observation.observed_at < before))).scalar()
    return bool(events or observed)


def _ensure_scores(store: Store, profile: Profile, day: dt.date) -> bool:
    """Stored scores of ``profile`` for ``day``, computed first when there are none (the
    stored flags are kept: flags are detected by ``reachmeter score``). False when the
    store holds no facts before the end of ``day``, so there is nothing to score."""
    with store.engine.connect() as connection:
        stored = connection.execute(
            select(exists().where(Score.profile_name == profile.name, Score.as_of == day))
        ).scalar()
        if stored:
            return True
        if not _facts_before(connection, as_of_end(day)):
            return False
    compute_scores(store, profile, day, flags=False)
    return True


@dataclass
class _Catalogue:
    root: dict[int, int]
    outputs: dict[int, tuple[str, str, str | None, dt.date | None]]  # title, type, venue, date
    outputs_of: dict[int, set[int]]  # person -> kept outputs
    people: dict[int, str]
    groups: dict[int, tuple[str, int | None]]
    members: dict[int, set[int]]  # group -> direct members

    def descendants(self, group_id: int) -> set[int]:
        found = {group_id}
        changed = True
        while changed:
            changed = False
            for child, (_name, parent) in self.groups.items():
                if parent in found and child not in found:
                    found.add(child)
                    changed = True
        return found

    def people_of(self, group_id: int) -> set[int]:
        people: set[int] = set()
        for gid in self.descendants(group_id):
            people |= self.members.get(gid, set())
        return people

    def outputs_of_people(self, people: Iterable[int]) -> set[int]:
        found: set[int] = set()
        for person in people:
            found |= self.outputs_of.get(person, set())
        return found


def _catalogue(connection: Connection) -> _Catalogue:
    rows = load_outputs(connection)
    root = roots(rows)
    outputs = {
        int(i): (title or "", kind or "", venue or None, day)
        for i, title, kind, venue, day in connection.execute(
            select(Output.id, Output.title, Output.type, Output.venue, Output.published_on).where(
                Output.merged_into_id.is_(None)
            )
        )
    }
    outputs_of: dict[int, set[int]] = defaultdict(set)
    for output_id, person_id in connection.execute(
        select(Authorship.output_id, Authorship.person_id)
    ):
        outputs_of[int(person_id)].add(root.get(int(output_id), int(output_id)))
    people = {int(i): name for i, name in connection.execute(select(Person.id, Person.name))}
    groups = {
        int(i): (name, int(parent) if parent is not None else None)
        for i, name, parent in connection.execute(select(Group.id, Group.name, Group.parent_id))
    }
    members: dict[int, set[int]] = defaultdict(set)
    for person_id, group_id in connection.execute(
        select(PersonGroup.person_id, PersonGroup.group_id)
    ):
        members[int(group_id)].add(int(person_id))
    return _Catalogue(root, outputs, dict(outputs_of), people, groups, dict(members))


@dataclass(frozen=True)
class _Scored:
    score: float
    mentions: int
    citations: float
    usage: float
    sources: dict[str, Any]
    pct_all: float | None


def _scores(connection: Connection, profile: Profile, day: dt.date) -> dict[int, _Scored]:
    result: dict[int, _Scored] = {}
    for output_id, score, mentions, breakdown, context in connection.execute(
        select(Score.output_id, Score.score, Score.mentions, Score.breakdown, Score.context).where(
            Score.profile_name == profile.name, Score.as_of == day
        )
    ):
        sources = (breakdown or {}).get("sources", {})
        result[int(output_id)] = _Scored(
            float(score),
            int(mentions),
            float(sources.get("citations", {}).get("count", 0)),
            float(sources.get("usage", {}).get("count", 0)),
            sources,
            (context or {}).get("all", {}).get("pct"),
        )
    return result


@dataclass(frozen=True)
class _Mention:
    event_id: int
    outputs: tuple[int, ...]
    source_id: str
    author: str
    occurred_at: dt.datetime


def _mentions(
    connection: Connection, start: dt.datetime, end: dt.datetime, scope: Collection[int] | None,
    root: Mapping[int, int],
) -> list[_Mention]:  # fmt: skip
    """Mentions (not deleted) that occurred in [start, end), matched to outputs in scope."""
    rows = connection.execute(
        select(Event.id, EventMatch.output_id, Event.source_id, author_expr, Event.occurred_at)
        .join(EventMatch, EventMatch.event_id == Event.id)
        .where(and_(*counted_event_filter(end, ())), Event.occurred_at >= start)
        .order_by(Event.id)
    )
    found: dict[int, _Mention] = {}
    for event_id, output_id, source_id, author, occurred_at in rows:
        kept = root.get(int(output_id), int(output_id))
        if scope is not None and kept not in scope:
            continue
        known = found.get(int(event_id))
        if known is None:
            found[int(event_id)] = _Mention(
                int(event_id), (kept,), str(source_id), str(author), occurred_at
            )
        elif kept not in known.outputs:
            found[int(event_id)] = _Mention(
                known.event_id, (*known.outputs, kept), known.source_id, known.author,
                known.occurred_at,
            )  # fmt: skip
    return list(found.values())


def _event_flags(connection: Connection, event_ids: Collection[int]) -> dict[int, set[str]]:
    flags: dict[int, set[str]] = defaultdict(set)
    ids = sorted(event_ids)
    for offset in range(0, len(ids), 5000):
        chunk = ids[offset : offset + 5000]
        for event_id, kind in connection.execute(
            select(ScoreFlag.event_id, ScoreFlag.kind).where(ScoreFlag.event_id.in_(chunk))
        ):
            if event_id is not None:
                flags[int(event_id)].add(str(kind))
    return flags


def _change(value: float | None, previous: float | None) -> tuple[Any, Any]:
    if value is None or previous is None:
        return None, None
    change = round(value - previous, 6) + 0.0
    pct = round(100.0 * change / previous, 1) if previous else None
    return change, pct


def _row(key: str, label: str, value: Any, previous: Any, note: str = "") -> dict[str, Any]:
    change, pct = _change(value, previous)
    return {
        "key": key,
        "label": label,
        "value": value,
        "previous": previous,
        "change": change,
        "change_pct": pct,
        "note": note,
    }


def _bins(period: Period, as_of: dt.date) -> tuple[str, list[dt.date]]:
    """The chart's time bins: days for a month or less, weeks (from Monday) up to a quarter
    or so, months beyond."""
    days = (as_of - period.start).days + 1
    if period.days <= 62:
        return "day", [period.start + dt.timedelta(days=i) for i in range(max(days, 0))]
    if period.days <= 186:
        first = period.start - dt.timedelta(days=period.start.weekday())
        weeks = []
        while first <= as_of:
            weeks.append(max(first, period.start))
            first += dt.timedelta(days=7)
        return "week", weeks
    months = []
    current = period.start.replace(day=1)
    while current <= as_of:
        months.append(max(current, period.start))
        current = (current.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return "month", months


def _bin_of(bins: list[dt.date], day: dt.date) -> dt.date:
    chosen = bins[0]
    for start in bins:
        if start <= day:
            chosen = start
        else:
            break
    return chosen


def _identifiers(connection: Connection, output_ids: Collection[int]) -> dict[int, str]:
    preference = {"doi": 0, "pmid": 1, "arxiv": 2, "isbn": 3, "handle": 4, "url": 9}
    best: dict[int, tuple[int, str]] = {}
    for output_id, scheme, value in connection.execute(
        select(OutputIdentifier.output_id, OutputIdentifier.scheme, OutputIdentifier.value)
        .where(OutputIdentifier.output_id.in_(sorted(output_ids)))
        .order_by(OutputIdentifier.id)
    ):
        rank = preference.get(scheme, 5)
        text = value if scheme == "url" else f"{scheme}:{value}"
        if int(output_id) not in best or rank < best[int(output_id)][0]:
            best[int(output_id)] = (rank, text)
    return {key: text for key, (_rank, text) in best.items()}


def _text_of(subj: Any) -> str:
    if isinstance(subj, dict):
        text = subj.get("title") or subj.get("text") or ""
        if isinstance(text, str):
            text = " ".join(text.split())
            return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "\u2026"
    return ""


def _link(value: str | None) -> str | None:
    """A link only when it is plainly http(s); anything else is shown as text."""
    if value and value.lower().startswith(("https://", "http://")):
        return value
    return None


def _kpi_rows(
    connection: Connection, account_ids: list[int], periods: list[tuple[dt.date, dt.date]],
    people: Mapping[int, str],
) -> list[dict[str, Any]]:  # fmt: skip
    """Each account's KPIs over the previous period and this one (``account_kpis``), with
    share of voice counted as ``scoring.accounts.account_report`` counts it."""
    if not account_ids:
        return []
    accounts = connection.execute(
        select(
            Account.id, Account.platform, Account.handle, Account.url, Account.owner_person_id,
        ).where(Account.id.in_(account_ids)).order_by(Account.platform, Account.handle, Account.id)
    ).all()  # fmt: skip
    points: dict[int, list[AccountPoint]] = defaultdict(list)
    for i, account_id, m, v, c, ps, pe, t in connection.execute(
        select(
            Observation.id, Observation.account_id, Observation.metric, Observation.value,
            Observation.cumulative, Observation.period_start, Observation.period_end,
            Observation.observed_at,
        )
        .where(Observation.account_id.in_(account_ids))
        .order_by(Observation.observed_at, Observation.id)
    ):  # fmt: skip
        if account_id is not None:
            points[int(account_id)].append(AccountPoint(int(i), m, float(v), bool(c), ps, pe, t))
    low = dt.datetime.combine(periods[0][0], dt.time(), tzinfo=dt.UTC)
    high = as_of_end(periods[-1][1])
    platforms = {a.platform for a in accounts}
    sources = sorted({s for p in platforms for s in PLATFORM_SOURCES.get(p, (p,))})
    seen = connection.execute(
        select(Event.id, Event.source_id, author_expr, Event.occurred_at)
        .join(EventMatch, EventMatch.event_id == Event.id)
        .where(Event.source_id.in_(sources), Event.occurred_at >= low, Event.occurred_at < high)
        .distinct()
    ).all()
    rows: list[dict[str, Any]] = []
    for account in accounts:
        own_sources = set(PLATFORM_SOURCES.get(account.platform, (account.platform,)))
        key = account_key(account.url or account.handle)
        own: dict[dt.date, int] = defaultdict(int)
        everyone: dict[dt.date, int] = defaultdict(int)
        for _event_id, source_id, author, when in seen:
            if source_id not in own_sources:
                continue
            day = when.date()
            for start, end in periods:
                if start <= day <= end:
                    everyone[start] += 1
                    if account_key(author) == key:
                        own[start] += 1
        previous, current = account_kpis(points[int(account.id)], periods, own, everyone)
        owner = people.get(int(account.owner_person_id)) if account.owner_person_id else None
        rows.append(
            {
                "account_id": int(account.id),
                "platform": account.platform,
                "handle": account.handle,
                "owner": owner or "organisation",
                "current": current,
                "previous": previous,
            }
        )
    return rows


def build_report(
    store: Store,
    scope: Scope,
    period: Period,
    profile: Profile,
    *,
    today: dt.date | None = None,
    objectives: ObjectivesReader | None = objectives_progress,
) -> Report:
    """Gather the report of ``scope`` over ``period`` under ``profile``.

    ``today`` (default: the current UTC date) only matters for a period still running,
    whose figures are as of today. Stored scores for the period's end and the previous
    period's end are computed first when missing. ``objectives`` reads the framework's
    objectives' progress (``reachmeter.framework.objectives_progress``).
    """
    today = today or dt.datetime.now(dt.UTC).date()
    if period.start > today:
        raise PeriodError(f"period {period.label} has not started yet (today is {today})")
    previous = period.previous()
    as_of = min(period.end, today)
    scored_now = _ensure_scores(store, profile, as_of)
    scored_before = _ensure_scores(store, profile, previous.end)
    start_at = dt.datetime.combine(period.start, dt.time(), tzinfo=dt.UTC)
    before_at = dt.datetime.combine(previous.start, dt.time(), tzinfo=dt.UTC)
    end_at = as_of_end(as_of)

    with store.engine.connect() as connection:
        cat = _catalogue(connection)
        if scope.kind == "org":
            in_scope: set[int] = set(cat.outputs)
            person_ids = set(cat.people)
        elif scope.kind == "group":
            person_ids = cat.people_of(scope.number)
            in_scope = cat.outputs_of_people(person_ids)
        else:
            person_ids = {scope.number}
            in_scope = set(cat.outputs_of.get(scope.number, set()))
        in_scope &= set(cat.outputs)
        now = _scores(connection, profile, as_of) if scored_now else {}
        before = _scores(connection, profile, previous.end) if scored_before else {}
        mentions = _mentions(connection, before_at, end_at, in_scope, cat.root)
        flags = _event_flags(connection, [m.event_id for m in mentions])
        current = [m for m in mentions if m.occurred_at >= start_at]
        earlier = [m for m in mentions if m.occurred_at < start_at]
        observed = _observations_in(connection, in_scope, cat.root, start_at, end_at)
        report = Report(
            scope=scope,
            period=period,
            previous=previous,
            as_of=as_of,
            previous_as_of=previous.end,
            in_progress=as_of < period.end,
            demo=store.is_demo,
            has_data=bool(current) or observed > 0,
            profile=_profile_summary(profile),
            version=_version(),
        )
        _headline(report, cat, in_scope, now, before, current, earlier, flags)
        _by_source(report, profile, in_scope, now, current, earlier)
        _top(report, connection, profile, cat, in_scope, now, before, current, flags)
        _compare(report, store, profile, cat, scope, person_ids, now, before, current)
        account_ids = _scope_accounts(connection, scope, person_ids)
        report.accounts = _kpi_rows(
            connection, account_ids, [(previous.start, previous.end), (period.start, as_of)],
            cat.people,
        )  # fmt: skip
        report.quality = _quality(
            connection, profile, in_scope, cat.root, current, flags, start_at, end_at,
            report.in_progress,
        )  # fmt: skip
    _objectives(report, store, objectives)
    report.methods = {
        "log": [
            {k: entry[k] for k in ("changed_at", "version", "sha256", "description")}
            for entry in methods_log(store, profile.name)
        ],
    }
    if not report.has_data:
        report.notes.append(
            f"No data for {scope.label.lower()} in {period.label}: no mentions occurred and "
            "no observations were recorded in the period"
            + ("" if scored_now else ", and the store holds nothing from before its end")
            + "."
        )
    if report.in_progress:
        report.notes.append(
            f"The period is still running: figures are as of the end of {as_of.isoformat()}."
        )
    return report


def _observations_in(
    connection: Connection, in_scope: Collection[int], root: Mapping[int, int],
    start: dt.datetime, end: dt.datetime,
) -> int:  # fmt: skip
    """Observations of outputs in scope that apply to the period."""
    count = 0
    for (output_id,) in connection.execute(
        select(OutputIdentifier.output_id)
        .join(
            Observation,
            and_(
                Observation.obj_scheme == OutputIdentifier.scheme,
                Observation.obj_value == OutputIdentifier.value,
            ),
        )
        .where(Observation.observed_at >= start, Observation.observed_at < end)
    ):
        if root.get(int(output_id), int(output_id)) in in_scope:
            count += 1
    return count


def _profile_summary(profile: Profile) -> dict[str, Any]:
    weights = [
        {
            "kind": kind,
            "category": category_of(kind),
            "weight": profile.weight(kind),
            "cap": profile.caps.get(kind),
        }
        for kind in sorted(set(profile.weights) | set(KINDS))
    ]
    return {
        "name": profile.name,
        "version": profile.version,
        "sha256": profile.sha256,
        "description": profile.description,
        "excluded_flags": sorted(profile.flags.exclude),
        "weights": weights,
    }


def _headline(
    report: Report, cat: _Catalogue, in_scope: set[int], now: Mapping[int, _Scored],
    before: Mapping[int, _Scored], current: list[_Mention], earlier: list[_Mention],
    flags: Mapping[int, set[str]],
) -> None:  # fmt: skip
    period, previous = report.period, report.previous

    def tracked(day: dt.date) -> int:
        return sum(1 for o in in_scope if (cat.outputs[o][3] or day) <= day)

    def published(span: Period, last: dt.date) -> int:
        return sum(
            1 for o in in_scope if (d := cat.outputs[o][3]) is not None and span.start <= d <= last
        )

    def total(scores: Mapping[int, _Scored], part: str) -> float:
        return round(sum(float(getattr(scores[o], part)) for o in in_scope if o in scores), 6) + 0.0

    def mentioned(items: list[_Mention]) -> int:
        return len({o for m in items for o in m.outputs})

    def flagged(items: list[_Mention]) -> int:
        return sum(1 for m in items if flags.get(m.event_id))

    report.headline = [
        _row("attention", "Attention score (sum over outputs)", total(now, "score"),
             total(before, "score"), "stored scores at each period's end"),
        _row("mentions", "Mentions in the period", len(current), len(earlier),
             "posts, articles and pages that occurred in the period; deleted ones left out"),
        _row("authors", "Distinct accounts mentioning", len({m.author for m in current}),
             len({m.author for m in earlier})),
        _row("outputs_mentioned", "Outputs mentioned in the period", mentioned(current),
             mentioned(earlier)),
        _row("outputs", "Outputs tracked", tracked(report.as_of), tracked(previous.end),
             "published by the period's end, or undated"),
        _row("outputs_published", "Outputs published in the period",
             published(period, report.as_of), published(previous, previous.end)),
        _row("h_index", "Attention h-index",
             h_index(now[o].score for o in in_scope if o in now),
             h_index(before[o].score for o in in_scope if o in before),
             "h outputs with a score of at least h"),
        _row("citations", "Citations (cumulative)", total(now, "citations"),
             total(before, "citations")),
        _row("usage", "Usage: views and downloads (cumulative)", total(now, "usage"),
             total(before, "usage")),
        _row("flagged", "Flagged mentions in the period", flagged(current), flagged(earlier),
             "see data quality"),
    ]  # fmt: skip


def _by_source(
    report: Report, profile: Profile, in_scope: set[int], now: Mapping[int, _Scored],
    current: list[_Mention], earlier: list[_Mention],
) -> None:  # fmt: skip
    cur = Counter(profile.kind_of_source(m.source_id) for m in current)
    old = Counter(profile.kind_of_source(m.source_id) for m in earlier)
    points: dict[str, float] = defaultdict(float)
    authors: dict[str, float] = defaultdict(float)
    for output_id in in_scope:
        scored = now.get(output_id)
        if scored is None:
            continue
        for kind, part in scored.sources.items():
            points[kind] += float(part.get("points", 0))
            authors[kind] += float(part.get("count", 0))
    kinds = sorted(set(cur) | set(old) | {k for k, v in points.items() if v})
    rows = []
    for kind in kinds:
        change, pct = _change(cur[kind], old[kind])
        rows.append(
            {
                "kind": kind,
                "category": category_of(kind),
                "mentions": cur[kind],
                "previous": old[kind],
                "change": change,
                "change_pct": pct,
                "counted": round(authors[kind], 6) + 0.0,
                "points": round(points[kind], 6) + 0.0,
            }
        )
    rows.sort(key=lambda r: (-r["points"], -r["mentions"], r["kind"]))
    report.sources = rows
    report.attention_by_kind = {r["kind"]: r["points"] for r in rows if r["points"] > 0}
    unit, bins = _bins(report.period, report.as_of)
    report.series_unit = unit
    counts: Counter[tuple[dt.date, str]] = Counter()
    if bins:
        for mention in current:
            day = mention.occurred_at.date()
            counts[(_bin_of(bins, day), profile.kind_of_source(mention.source_id))] += 1
    report.series = [
        {"period": day.isoformat(), "source": kind, "value": count}
        for (day, kind), count in sorted(counts.items())
    ]


def _top(
    report: Report, connection: Connection, profile: Profile, cat: _Catalogue,
    in_scope: set[int], now: Mapping[int, _Scored], before: Mapping[int, _Scored],
    current: list[_Mention], flags: Mapping[int, set[str]],
) -> None:  # fmt: skip
    in_period: Counter[int] = Counter(o for m in current for o in m.outputs)
    candidates = []
    for output_id in in_scope:
        score = now[output_id].score if output_id in now else 0.0
        gain = round(score - (before[output_id].score if output_id in before else 0.0), 6)
        if gain > 0 or in_period[output_id] > 0:
            candidates.append((-gain, -in_period[output_id], -score, output_id))
    candidates.sort()
    chosen = [c[3] for c in candidates[:TOP]]
    identifiers = _identifiers(connection, chosen) if chosen else {}
    report.top_outputs = []
    for rank, output_id in enumerate(chosen, start=1):
        title, kind, venue, published = cat.outputs[output_id]
        scored = now.get(output_id)
        report.top_outputs.append(
            {
                "rank": rank,
                "output_id": output_id,
                "title": title,
                "type": kind,
                "venue": venue or "",
                "published_on": published.isoformat() if published else "",
                "identifier": identifiers.get(output_id, ""),
                "score": scored.score if scored else 0.0,
                "change": -candidates[rank - 1][0] + 0.0,
                "mentions": in_period[output_id],
                "pct_all": scored.pct_all if scored else None,
            }
        )
    excluded = profile.flags.exclude
    counted = [m for m in current if not (flags.get(m.event_id, set()) & excluded)]
    counted.sort(
        key=lambda m: (-profile.weight(profile.kind_of_source(m.source_id)), m.occurred_at,
                       m.event_id)
    )  # fmt: skip
    picked = counted[:TOP]
    subjects: dict[int, tuple[str, Any]] = {}
    if picked:
        subjects = {
            int(i): (subj_id, subj)
            for i, subj_id, subj in connection.execute(
                select(Event.id, Event.subj_id, Event.subj).where(
                    Event.id.in_([m.event_id for m in picked])
                )
            )
        }
    report.top_mentions = []
    for mention in picked:
        subj_id, subj = subjects.get(mention.event_id, ("", None))
        output_id = mention.outputs[0]
        report.top_mentions.append(
            {
                "occurred_at": mention.occurred_at.strftime("%Y-%m-%d %H:%M"),
                "source": mention.source_id,
                "kind": profile.kind_of_source(mention.source_id),
                "author": mention.author,
                "text": _text_of(subj),
                "url": subj_id,
                "link": _link(subj_id),
                "output_id": output_id,
                "output": cat.outputs[output_id][0],
                "event_id": mention.event_id,
            }
        )


def _compare(
    report: Report, store: Store, profile: Profile, cat: _Catalogue, scope: Scope,
    person_ids: set[int], now: Mapping[int, _Scored], before: Mapping[int, _Scored],
    current: list[_Mention],
) -> None:  # fmt: skip
    in_period: Counter[int] = Counter(o for m in current for o in m.outputs)
    last = report.as_of

    def figures(outputs: set[int]) -> dict[str, Any]:
        outputs = {o for o in outputs if o in cat.outputs}
        score = round(sum(now[o].score for o in outputs if o in now), 6) + 0.0
        earlier = round(sum(before[o].score for o in outputs if o in before), 6) + 0.0
        return {
            "outputs": sum(1 for o in outputs if (cat.outputs[o][3] or last) <= last),
            "attention": score,
            "change": round(score - earlier, 6) + 0.0,
            "h_index": h_index(now[o].score for o in outputs if o in now),
            "mentions": sum(in_period[o] for o in outputs),
            "citations": round(sum(now[o].citations for o in outputs if o in now), 6) + 0.0,
            "usage": round(sum(now[o].usage for o in outputs if o in now), 6) + 0.0,
        }

    if scope.kind == "person":
        if report.has_data or now:
            result = reach_report(store, profile.name, report.as_of, person_id=scope.number)
            labels = sorted(
                {k for c in result["components"].values() for k in c if k.startswith("pct_")}
            )
            names = {f"pct_group_{g['id']}": g["name"] for g in result["person"]["groups"]}
            report.reach_labels = [
                "organisation" if k == "pct_organisation" else names.get(k, k) for k in labels
            ]
            report.reach = [
                {
                    "component": name,
                    "value": entry["value"],
                    "reason": entry.get("reason", ""),
                    "percentiles": [entry.get(k) for k in labels],
                }
                for name, entry in result["components"].items()
            ]
        return
    group_ids = sorted(cat.groups if scope.kind == "org" else cat.descendants(scope.number))
    groups = []
    for gid in group_ids:
        name, parent = cat.groups[gid]
        people = cat.people_of(gid)
        groups.append(
            {
                "group_id": gid,
                "name": name,
                "parent": cat.groups[parent][0] if parent is not None else "",
                "people": len(people),
                **figures(cat.outputs_of_people(people)),
            }
        )
    groups.sort(key=lambda g: (-g["attention"], g["name"]))
    report.groups = groups
    group_names: dict[int, list[str]] = defaultdict(list)
    for gid, direct in sorted(cat.members.items()):
        for person in direct:
            group_names[person].append(cat.groups[gid][0])
    compared = []
    for person in person_ids:
        compared.append(
            {
                "person_id": person,
                "name": cat.people[person],
                "groups": "; ".join(sorted(group_names.get(person, []))),
                **figures(set(cat.outputs_of.get(person, set()))),
            }
        )
    compared.sort(key=lambda p: (-p["attention"], -p["mentions"], p["name"], p["person_id"]))
    report.people = compared[:PEOPLE_SHOWN]


def _scope_accounts(connection: Connection, scope: Scope, person_ids: set[int]) -> list[int]:
    if scope.kind == "org":
        condition: Any = Account.owned_by_org.is_(True)
    else:
        condition = Account.owner_person_id.in_(sorted(person_ids))
    return [int(i) for (i,) in connection.execute(select(Account.id).where(condition))]


def _quality(
    connection: Connection, profile: Profile, in_scope: set[int], root: Mapping[int, int],
    current: list[_Mention], flags: Mapping[int, set[str]], start: dt.datetime,
    end: dt.datetime, in_progress: bool,
) -> dict[str, Any]:  # fmt: skip
    by_kind: Counter[str] = Counter()
    for mention in current:
        for kind in flags.get(mention.event_id, set()):
            by_kind[kind] += 1
    flag_rows = [
        {"kind": kind, "mentions": count, "excluded": kind in profile.flags.exclude}
        for kind, count in sorted(by_kind.items())
    ]
    jumps = 0
    for (output_id,) in connection.execute(
        select(ScoreFlag.output_id)
        .join(Observation, Observation.id == ScoreFlag.observation_id)
        .where(Observation.observed_at >= start, Observation.observed_at < end)
    ):
        if output_id is not None and root.get(int(output_id), int(output_id)) in in_scope:
            jumps += 1
    deleted_in_period = 0
    deleted = (
        select(Correction.id)
        .where(
            Correction.target_kind == "event",
            Correction.action == "deleted",
            Correction.target_key == Event.event_key,
        )
        .exists()
    )
    for (output_id,) in connection.execute(
        select(EventMatch.output_id)
        .join(Event, Event.id == EventMatch.event_id)
        .where(deleted, Event.occurred_at >= start, Event.occurred_at < end)
    ):
        if root.get(int(output_id), int(output_id)) in in_scope:
            deleted_in_period += 1
    runs: dict[str, Counter[str]] = defaultdict(Counter)
    last_error: dict[str, str] = {}
    for source_id, kind, status, detail in connection.execute(
        select(Run.source_id, Run.kind, Run.status, Run.detail)
        .where(Run.started_at >= start, Run.started_at < end)
        .order_by(Run.started_at, Run.id)
    ):
        name = source_id or kind
        runs[name][status] += 1
        errors = (detail or {}).get("errors") or []
        if status == "failed" and errors:
            last_error[name] = str(errors[-1])[:TEXT_CHARS]
    run_rows = [
        {
            "source": name,
            "runs": sum(counts.values()),
            "ok": counts.get("ok", 0),
            "partial": counts.get("partial", 0),
            "failed": counts.get("failed", 0),
            "last_error": last_error.get(name, ""),
        }
        for name, counts in sorted(runs.items())
    ]
    paused = []
    if in_progress:
        paused = [
            {"source": source_id, "reason": reason or "disabled"}
            for source_id, reason in connection.execute(
                select(Source.id, Source.paused_reason)
                .where(or_(Source.paused_reason.is_not(None), Source.enabled.is_(False)))
                .order_by(Source.id)
            )
        ]
    quarantined = int(
        connection.execute(
            select(func.count()).select_from(QuarantinedRecord).where(
                QuarantinedRecord.recorded_at >= start, QuarantinedRecord.recorded_at < end
            )
        ).scalar() or 0
    )  # fmt: skip
    examples = [
        {"origin": origin, "line": line, "reason": reason[:TEXT_CHARS]}
        for origin, line, reason in connection.execute(
            select(QuarantinedRecord.origin, QuarantinedRecord.line, QuarantinedRecord.reason)
            .where(QuarantinedRecord.recorded_at >= start, QuarantinedRecord.recorded_at < end)
            .order_by(QuarantinedRecord.id)
            .limit(5)
        )
    ]
    return {
        "flags": flag_rows,
        "count_jumps": jumps,
        "deleted": deleted_in_period,
        "runs": run_rows,
        "paused": paused,
        "quarantined": quarantined,
        "quarantine_examples": examples,
    }


def _objectives(report: Report, store: Store, reader: ObjectivesReader | None) -> None:
    if reader is None:
        report.objectives_note = "Objectives are not available in this installation."
        return
    rows = []
    for item in reader(store, report.as_of):
        if not _objective_in_scope(str(getattr(item, "scope", "")), report.scope):
            continue
        rows.append(
            {
                "id": getattr(item, "id", None),
                "aim": getattr(item, "aim", ""),
                "title": getattr(item, "title", ""),
                "kpi": getattr(item, "kpi", ""),
                "scope": getattr(item, "scope", ""),
                "target": getattr(item, "target", None),
                "start": str(getattr(item, "start", "")),
                "deadline": str(getattr(item, "deadline", "")),
                "current": getattr(item, "current", None),
                "projected": getattr(item, "projected", None),
                "status": getattr(item, "status", ""),
                "owner": getattr(item, "owner", ""),
            }
        )
    report.objectives = rows
    if not rows:
        report.objectives_note = "No objectives are set for this scope."


def _objective_in_scope(text: str, scope: Scope) -> bool:
    """Whether an objective's scope (``groups:NAME,ID``, ``people:ID``, ``accounts``, ...)
    concerns the report's: every objective for the organisation; for a group or a person,
    those naming it by id or name."""
    if scope.kind == "org":
        return True
    kind, _, refs = text.partition(":")
    if kind.strip().lower() != ("groups" if scope.kind == "group" else "people"):
        return False
    wanted = {str(scope.id), scope.name.lower()}
    return any(ref.strip().lower() in wanted for ref in refs.split(","))
