"""Load the demo's files through the real pipeline: the importers, then the ingest.

Nothing here writes events or observations itself: the demo goes in exactly as a library's
own files would, so what the demo shows is what the pipeline does with real data.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select, update

from reachmeter.demo.generate import DemoFiles
from reachmeter.framework import load_framework
from reachmeter.imports import ImportSummary
from reachmeter.imports.outputs import import_outputs
from reachmeter.imports.people import import_people
from reachmeter.ingest import IngestSummary, ingest_paths
from reachmeter.monitor.alerts import raise_alerts
from reachmeter.scoring import ScoreRun, builtin_profiles, compute_scores, load_profile
from reachmeter.store import Store
from reachmeter.store.catalog import add_account
from reachmeter.store.schema import (
    Account,
    Event,
    Group,
    Observation,
    Output,
    OutputIdentifier,
    Person,
)

__all__ = ["DemoSummary", "LoadProgress", "load_demo", "summarise_store"]

#: The demo library's aims, objectives and staffing (docs/framework.md).
FRAMEWORK_FILE = Path(__file__).with_name("framework.toml")

# Called with a stage name, records done and records expected in that stage.
LoadProgress = Callable[[str, int, int], None]


@dataclass
class DemoSummary:
    """What the demo store holds, read back from the store after loading."""

    outputs_by_type: dict[str, int] = field(default_factory=dict)
    people: int = 0
    groups: int = 0
    accounts: int = 0
    mentions_by_source: dict[str, int] = field(default_factory=dict)
    observations_by_metric: dict[str, int] = field(default_factory=dict)
    top_outputs: list[tuple[str, str, int]] = field(default_factory=list)
    first_mention_at: dt.datetime | None = None
    last_mention_at: dt.datetime | None = None
    imports: list[ImportSummary] = field(default_factory=list)
    ingest: IngestSummary | None = None
    scores: list[ScoreRun] = field(default_factory=list)

    @property
    def outputs(self) -> int:
        return sum(self.outputs_by_type.values())

    @property
    def mentions(self) -> int:
        return sum(self.mentions_by_source.values())

    @property
    def observations(self) -> int:
        return sum(self.observations_by_metric.values())

    @property
    def quarantined(self) -> int:
        found = sum(s.quarantined for s in self.imports)
        return found + (self.ingest.quarantined if self.ingest else 0)


def _lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def _add_org_accounts(store: Store, path: Path) -> int:
    """Register the organisation's own accounts listed in ``path`` (platform, handle)."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with store.session() as session:
        for row in rows:
            add_account(session, row["platform"], row["handle"], owner=None, org=True)
    return len(rows)


def _mark_demo(store: Store) -> None:
    with store.session() as session:
        for model in (Output, Person, Group, Account):
            session.execute(update(model).values(is_demo=True))
    store.set_meta("demo", "true")


def load_demo(
    store: Store,
    files: DemoFiles,
    *,
    progress: LoadProgress | None = None,
    meta: dict[str, str] | None = None,
    score_as_of: dt.date | None = None,
) -> DemoSummary:
    """Import and ingest the demo ``files`` into ``store`` and mark every row as demo data.

    ``meta`` is kept in the store's meta table (seed, scale, reference time). With
    ``score_as_of``, every shipped scoring profile is computed as of that date, as
    ``reachmeter score`` would.
    """

    def report(stage: str, done: int, total: int) -> None:
        if progress:
            progress(stage, done, total)

    imports: list[ImportSummary] = []
    people_total = _lines(files.people) - 1
    report("people", 0, people_total)
    imports.append(import_people(store, files.people))
    report("people", people_total, people_total)

    outputs_total = _lines(files.outputs) - 1
    report("outputs", 0, outputs_total)
    imports.append(import_outputs(store, files.outputs))
    report("outputs", outputs_total, outputs_total)

    accounts_total = _lines(files.accounts) - 1
    report("accounts", 0, accounts_total)
    _add_org_accounts(store, files.accounts)
    report("accounts", accounts_total, accounts_total)

    facts_total = _lines(files.mentions) + _lines(files.observations)
    report("mentions and observations", 0, facts_total)
    ingest = ingest_paths(
        store,
        [files.mentions, files.observations],
        progress=lambda done: report("mentions and observations", done, facts_total),
    )
    report("mentions and observations", facts_total, facts_total)

    report("framework", 0, 1)
    load_framework(store, FRAMEWORK_FILE)
    report("framework", 1, 1)

    _mark_demo(store)
    for key, value in sorted((meta or {}).items()):
        store.set_meta(f"demo_{key}", value)
    scores: list[ScoreRun] = []
    if score_as_of is not None:
        names = builtin_profiles()
        for done, name in enumerate(names):
            report("scores", done, len(names))
            scores.append(compute_scores(store, load_profile(name), as_of=score_as_of))
        report("scores", len(names), len(names))
        # The alerts the worker would have raised on the demo's day (docs/monitoring.md).
        raise_alerts(store, dt.datetime.combine(score_as_of, dt.time(12), tzinfo=dt.UTC))
    summary = summarise_store(store)
    summary.imports = imports
    summary.ingest = ingest
    summary.scores = scores
    return summary


def summarise_store(store: Store, *, top: int = 5) -> DemoSummary:
    """Counts of what a (demo) store holds, and its most mentioned outputs."""
    summary = DemoSummary()
    with store.session() as session:
        live = Output.merged_into_id.is_(None)
        summary.outputs_by_type = {
            kind: count
            for kind, count in session.execute(
                select(Output.type, func.count()).where(live).group_by(Output.type)
            )
        }
        summary.people = session.scalar(select(func.count()).select_from(Person)) or 0
        summary.groups = session.scalar(select(func.count()).select_from(Group)) or 0
        summary.accounts = session.scalar(select(func.count()).select_from(Account)) or 0
        summary.mentions_by_source = {
            source: count
            for source, count in session.execute(
                select(Event.source_id, func.count()).group_by(Event.source_id)
            )
        }
        summary.observations_by_metric = {
            metric: count
            for metric, count in session.execute(
                select(Observation.metric, func.count()).group_by(Observation.metric)
            )
        }
        mentions = func.count(Event.id).label("mentions")
        summary.top_outputs = [
            (title, kind, count)
            for title, kind, count in session.execute(
                select(Output.title, Output.type, mentions)
                .join(OutputIdentifier, OutputIdentifier.output_id == Output.id)
                .join(
                    Event,
                    (Event.obj_scheme == OutputIdentifier.scheme)
                    & (Event.obj_value == OutputIdentifier.value),
                )
                .group_by(Output.id, Output.title, Output.type)
                .order_by(mentions.desc(), Output.id)
                .limit(top)
            )
        ]
        first, last = session.execute(
            select(func.min(Event.occurred_at), func.max(Event.occurred_at))
        ).one()
        summary.first_mention_at, summary.last_mention_at = first, last
    return summary
