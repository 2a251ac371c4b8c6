"""Explain a score: every number behind it, down to each event and observation and its evidence.

The explanation recomputes the score from the events and observations it lists, with the same
pure functions as ``compute_scores``, and shows the stored score beside it: the two agree
unless facts arrived after the score was stored.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, select

from reachmeter.scoring.accounts import account_report
from reachmeter.scoring.compute import ObservationPoint, as_of_end, attention, observation_totals
from reachmeter.scoring.load import author_expr, load_merged, members_of
from reachmeter.scoring.profiles import Profile
from reachmeter.scoring.reach import reach_report
from reachmeter.scoring.run import read_score
from reachmeter.store import Store
from reachmeter.store.schema import (
    Correction,
    Event,
    EventMatch,
    Evidence,
    Observation,
    Output,
    OutputIdentifier,
    ScoreFlag,
)

__all__ = ["ExplainError", "explain_account", "explain_output", "explain_person"]


class ExplainError(LookupError):
    """The thing to explain is not in the store."""


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _evidence(connection: Connection, ids: set[int]) -> dict[int, dict[str, Any]]:
    rows = connection.execute(
        select(
            Evidence.id,
            Evidence.source_id,
            Evidence.source_version,
            Evidence.request_url,
            Evidence.payload_sha256,
            Evidence.collected_at,
        ).where(Evidence.id.in_(sorted(ids)))
    )
    return {
        int(i): {
            "id": int(i),
            "source_id": s,
            "source_version": v,
            "request_url": u,
            "payload_sha256": h,
            "collected_at": _iso(c),
        }
        for i, s, v, u, h, c in rows
    }


def explain_output(
    store: Store, output_id: int, profile: Profile, as_of: dt.date | None = None
) -> dict[str, Any]:
    """Everything behind an output's score under ``profile`` as of a date (default: stored)."""
    stored = read_score(store, output_id, profile.name, as_of)
    if as_of is None:
        as_of = dt.date.fromisoformat(stored["as_of"]) if stored else dt.datetime.now(dt.UTC).date()
    end = as_of_end(as_of)
    with store.engine.connect() as connection:
        output = connection.execute(
            select(
                Output.id,
                Output.title,
                Output.type,
                Output.venue,
                Output.published_on,
                Output.merged_into_id,
            ).where(Output.id == output_id)
        ).first()
        if output is None:
            raise ExplainError(f"no output with id {output_id}")
        members = sorted(members_of(load_merged(connection), [output_id]))
        identifiers = [
            f"{scheme}:{value}"
            for scheme, value in connection.execute(
                select(OutputIdentifier.scheme, OutputIdentifier.value)
                .where(OutputIdentifier.output_id.in_(members))
                .order_by(OutputIdentifier.scheme, OutputIdentifier.value)
            )
        ]
        events = connection.execute(
            select(
                Event.id,
                Event.event_key,
                Event.source_id,
                author_expr.label("author"),
                Event.subj_id,
                Event.relation_type_id,
                Event.occurred_at,
                Event.evidence_id,
                Event.evidence_url,
                Event.subj,
                EventMatch.output_id,
                EventMatch.method,
                EventMatch.verification,
                EventMatch.identifier,
            )
            .join(EventMatch, EventMatch.event_id == Event.id)
            .where(EventMatch.output_id.in_(members))
            .order_by(Event.occurred_at, Event.id)
        ).all()
        keys = [row.event_key for row in events]
        deleted = {
            key
            for (key,) in connection.execute(
                select(Correction.target_key).where(
                    Correction.target_kind == "event",
                    Correction.action == "deleted",
                    Correction.target_key.in_(keys),
                )
            )
        }
        flags: dict[int, list[dict[str, Any]]] = defaultdict(list)
        all_flags: list[dict[str, Any]] = []
        for kind, event_id, observation_id, source_id, author, detail in connection.execute(
            select(
                ScoreFlag.kind,
                ScoreFlag.event_id,
                ScoreFlag.observation_id,
                ScoreFlag.source_id,
                ScoreFlag.subj_author,
                ScoreFlag.detail,
            )
            .where(ScoreFlag.output_id.in_(members))
            .order_by(ScoreFlag.id)
        ):
            flag = {
                "kind": kind,
                "event_id": event_id,
                "observation_id": observation_id,
                "source_id": source_id,
                "author": author,
                "detail": detail,
                "applied": kind in profile.flags.exclude,
            }
            all_flags.append(flag)
            if event_id is not None:
                flags[int(event_id)].append(flag)
        observations = connection.execute(
            select(
                Observation.id,
                Observation.observation_key,
                Observation.metric,
                Observation.qualifier,
                Observation.source_id,
                Observation.value,
                Observation.cumulative,
                Observation.period_start,
                Observation.period_end,
                Observation.observed_at,
                Observation.evidence_id,
            )
            .join(
                OutputIdentifier,
                (OutputIdentifier.scheme == Observation.obj_scheme)
                & (OutputIdentifier.value == Observation.obj_value),
            )
            .where(OutputIdentifier.output_id.in_(members))
            .order_by(Observation.metric, Observation.observed_at, Observation.id)
        ).all()
        deleted_observations = {
            key
            for (key,) in connection.execute(
                select(Correction.target_key).where(
                    Correction.target_kind == "observation",
                    Correction.action == "deleted",
                    Correction.target_key.in_([o.observation_key for o in observations]),
                )
            )
        }
        evidence = _evidence(
            connection,
            {int(r.evidence_id) for r in events} | {int(o.evidence_id) for o in observations},
        )

    firsts: dict[tuple[str, str], dt.datetime] = {}
    listed: list[dict[str, Any]] = []
    for row in events:
        kind = profile.kind_of_source(row.source_id)
        reasons: list[str] = []
        if row.event_key in deleted:
            reasons.append("deleted (a correction says so)")
        if row.occurred_at >= end:
            reasons.append(f"occurred after {as_of.isoformat()}")
        for flag in flags.get(int(row.id), []):
            if flag["applied"]:
                reasons.append(f"flagged {flag['kind']} (the profile excludes it)")
        counted = not reasons
        if counted:
            key = (kind, row.author)
            if key in firsts:
                counted = False
                reasons.append("this author was already counted for this source")
            else:
                firsts[key] = row.occurred_at
        subj = row.subj if isinstance(row.subj, dict) else {}
        listed.append(
            {
                "event_id": int(row.id),
                "event_key": row.event_key,
                "source_id": row.source_id,
                "kind": kind,
                "author": row.author,
                "subj_id": row.subj_id,
                "relation_type_id": row.relation_type_id,
                "occurred_at": _iso(row.occurred_at),
                "text": subj.get("title") if isinstance(subj.get("title"), str) else None,
                "counted": counted,
                "why_not": reasons,
                "points": profile.weight(kind) if counted else 0.0,
                "flags": [f["kind"] for f in flags.get(int(row.id), [])],
                "match": {
                    "output_id": int(row.output_id),
                    "identifier": row.identifier,
                    "method": row.method,
                    "verification": row.verification,
                },
                "evidence": {**evidence.get(int(row.evidence_id), {}), "url": row.evidence_url},
            }
        )
    first_seen: dict[str, list[dt.datetime]] = defaultdict(list)
    for (kind, _author), first in firsts.items():
        first_seen[kind].append(first)
    for times in first_seen.values():
        times.sort()
    points = [
        ObservationPoint(
            o.metric,
            o.source_id,
            float(o.value),
            bool(o.cumulative),
            o.observed_at,
            o.period_start,
            o.qualifier,
        )
        for o in observations
        if o.observation_key not in deleted_observations
    ]
    recomputed = attention(first_seen, observation_totals(points, end), profile, end)
    return {
        "kind": "output",
        "output": {
            "id": int(output.id),
            "title": output.title,
            "type": output.type,
            "venue": output.venue,
            "published_on": _iso(output.published_on),
            "merged_into_id": output.merged_into_id,
            "merged_from": [m for m in members if m != output_id],
            "identifiers": identifiers,
        },
        "profile": {
            "name": profile.name,
            "version": profile.version,
            "sha256": profile.sha256,
            "excluded_flags": sorted(profile.flags.exclude),
        },
        "as_of": as_of.isoformat(),
        "score": recomputed.score,
        "stored": stored,
        "breakdown": recomputed.breakdown(),
        "events": listed,
        "observations": [
            {
                "observation_id": int(o.id),
                "observation_key": o.observation_key,
                "metric": o.metric,
                "qualifier": o.qualifier,
                "source_id": o.source_id,
                "value": o.value,
                "cumulative": bool(o.cumulative),
                "period": [_iso(o.period_start), _iso(o.period_end)],
                "observed_at": _iso(o.observed_at),
                "counted": o.observation_key not in deleted_observations and o.observed_at < end,
                "evidence": evidence.get(int(o.evidence_id), {}),
            }
            for o in observations
        ],
        "flags": all_flags,
    }


def _observation_details(connection: Connection, ids: set[int]) -> dict[int, dict[str, Any]]:
    """Observations by id, each with its evidence record."""
    if not ids:
        return {}
    rows = connection.execute(
        select(
            Observation.id,
            Observation.observation_key,
            Observation.metric,
            Observation.source_id,
            Observation.value,
            Observation.period_start,
            Observation.period_end,
            Observation.observed_at,
            Observation.evidence_id,
        ).where(Observation.id.in_(sorted(ids)))
    ).all()
    evidence = _evidence(connection, {int(r.evidence_id) for r in rows})
    return {
        int(r.id): {
            "observation_id": int(r.id),
            "observation_key": r.observation_key,
            "metric": r.metric,
            "source_id": r.source_id,
            "value": r.value,
            "period": [_iso(r.period_start), _iso(r.period_end)],
            "observed_at": _iso(r.observed_at),
            "evidence": evidence.get(int(r.evidence_id), {}),
        }
        for r in rows
    }


def _event_details(connection: Connection, ids: set[int]) -> dict[int, dict[str, Any]]:
    """Events by id, each with its evidence record."""
    if not ids:
        return {}
    rows = connection.execute(
        select(
            Event.id,
            Event.event_key,
            Event.source_id,
            author_expr.label("author"),
            Event.subj_id,
            Event.obj_id,
            Event.occurred_at,
            Event.evidence_id,
            Event.evidence_url,
        ).where(Event.id.in_(sorted(ids)))
    ).all()
    evidence = _evidence(connection, {int(r.evidence_id) for r in rows})
    return {
        int(r.id): {
            "event_id": int(r.id),
            "event_key": r.event_key,
            "source_id": r.source_id,
            "author": r.author,
            "subj_id": r.subj_id,
            "obj_id": r.obj_id,
            "occurred_at": _iso(r.occurred_at),
            "evidence": {**evidence.get(int(r.evidence_id), {}), "url": r.evidence_url},
        }
        for r in rows
    }


def explain_person(
    store: Store, person_id: int, profile_name: str, as_of: dt.date
) -> dict[str, Any]:
    """A person's reach, component by component, down to the observations and events (with
    their evidence) each component was computed from, and the stored score of each output."""
    report = reach_report(store, profile_name, as_of, person_id=person_id)
    inputs: dict[str, list[int]] = report.pop("inputs")
    observation_ids = {i for name, ids in inputs.items() if "events" not in name for i in ids}
    event_ids = {i for name, ids in inputs.items() if "events" in name for i in ids}
    output_ids = [int(o["output_id"]) for o in report["outputs"]]
    with store.engine.connect() as connection:
        observations = _observation_details(connection, observation_ids)
        events = _event_details(connection, event_ids)
        titles = {
            int(i): t
            for i, t in connection.execute(
                select(Output.id, Output.title).where(Output.id.in_(output_ids))
            )
        }
    for output in report["outputs"]:
        output["title"] = titles.get(int(output["output_id"]))
        output["explain"] = f"reachmeter explain output:{output['output_id']}"
    report["inputs"] = {
        name: [
            (events if "events" in name else observations)[i]
            for i in ids
            if i in (events if "events" in name else observations)
        ]
        for name, ids in inputs.items()
    }
    return report


def explain_account(store: Store, account_id: int, start: dt.date, end: dt.date) -> dict[str, Any]:
    """An account's KPIs per month, with each observation's evidence and the mentions of
    tracked outputs it posted (its share of voice)."""
    report = account_report(store, account_id, start, end)
    ids = {int(point["observation_id"]) for point in report["observations"]}
    with store.engine.connect() as connection:
        details = _observation_details(connection, ids)
        mentions = _event_details(connection, set(report.pop("own_mention_event_ids")))
    report["own_mentions"] = [mentions[i] for i in sorted(mentions)]
    for point in report["observations"]:
        point["evidence"] = details[int(point["observation_id"])]["evidence"]
        for key in ("period_start", "period_end", "observed_at"):
            point[key] = _iso(point[key])
    return report
