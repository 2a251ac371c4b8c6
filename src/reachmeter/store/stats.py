"""Counts of everything in the store, for ``reachmeter stats`` and the demo summary."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from reachmeter.store import Store
from reachmeter.store.schema import (
    Account,
    Correction,
    Event,
    EventMatch,
    Evidence,
    Group,
    Observation,
    Output,
    OutputIdentifier,
    Person,
    QuarantinedRecord,
    Run,
    Score,
    ScoreFlag,
    ScoringMethod,
    Source,
)

COUNTED = {
    "outputs": Output,
    "identifiers": OutputIdentifier,
    "people": Person,
    "groups": Group,
    "accounts": Account,
    "sources": Source,
    "evidence": Evidence,
    "events": Event,
    "event_matches": EventMatch,
    "observations": Observation,
    "corrections": Correction,
    "quarantined": QuarantinedRecord,
    "runs": Run,
    "scores": Score,
    "score_flags": ScoreFlag,
    "scoring_methods": ScoringMethod,
}


def store_counts(store: Store) -> dict[str, Any]:
    """Row counts per table, events per source, and whether the store holds demo data."""
    with store.engine.connect() as connection:
        tables = {
            name: int(connection.execute(select(func.count()).select_from(model)).scalar() or 0)
            for name, model in COUNTED.items()
        }
        tables["outputs"] = int(
            connection.execute(
                select(func.count()).select_from(Output).where(Output.merged_into_id.is_(None))
            ).scalar()
            or 0
        )
        # The matcher's verdict, not a second guess by identifier join.
        matched = select(func.count(func.distinct(EventMatch.event_id)))
        tables["events_matched"] = int(connection.execute(matched).scalar() or 0)
        by_source = {
            str(source): int(count)
            for source, count in connection.execute(
                select(Event.source_id, func.count())
                .group_by(Event.source_id)
                .order_by(func.count().desc(), Event.source_id)
            )
        }
    return {"demo": store.is_demo, "tables": tables, "events_by_source": by_source}
