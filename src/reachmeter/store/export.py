"""Writing events and outputs out: CSV, JSON Lines and Crossref Event Data JSON.

Exported events carry everything ingest needs to store them again unchanged, including
their latest correction (as Event Data's ``updated`` fields).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from typing import IO, Any

import orjson
from sqlalchemy import select

from reachmeter.matching.identifiers import SCHEME_ORDER
from reachmeter.store import Store
from reachmeter.store.schema import Correction, Event, Output, OutputIdentifier

__all__ = ["EVENT_CSV_COLUMNS", "EXPORT_FORMATS", "export_events", "export_outputs"]

EXPORT_FORMATS = ("csv", "jsonl", "eventdata")
EVENT_CSV_COLUMNS = (
    "id",
    "subj_id",
    "relation_type_id",
    "obj_id",
    "source_id",
    "occurred_at",
    "timestamp",
    "subj_author",
    "subj",
    "evidence_record",
    "license",
    "updated",
    "updated_reason",
    "updated_date",
)
OUTPUT_SCHEMES = ("doi", "pmid", "pmcid", "arxiv", "isbn", "handle", "urn", "ssrn", "url")
OUTPUT_CSV_COLUMNS = (
    "id",
    "type",
    "title",
    "venue",
    "published_on",
    *OUTPUT_SCHEMES,
    "identifiers",
)


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _corrections(store: Store) -> dict[str, Correction]:
    latest: dict[str, Correction] = {}
    with store.session() as session:
        for correction in session.scalars(
            select(Correction)
            .where(Correction.target_kind == "event")
            .order_by(Correction.corrected_at, Correction.id)
        ):
            latest[correction.target_key] = correction
    return latest


def _event_dicts(store: Store) -> Iterator[dict[str, Any]]:
    corrections = _corrections(store)
    with store.session() as session:
        rows = session.execute(select(Event).order_by(Event.id).execution_options(yield_per=5000))
        for (event,) in rows:
            record: dict[str, Any] = {
                "id": event.event_key,
                "subj_id": event.subj_id,
                "relation_type_id": event.relation_type_id,
                "obj_id": event.obj_id,
                "source_id": event.source_id,
                "occurred_at": _time(event.occurred_at),
                "timestamp": _time(event.collected_at),
            }
            if event.subj_author:
                record["subj_author"] = event.subj_author
            if event.subj is not None:
                record["subj"] = event.subj
            if event.evidence_url:
                record["evidence_record"] = event.evidence_url
            if event.license:
                record["license"] = event.license
            correction = corrections.get(event.event_key)
            if correction is not None:
                record["updated"] = correction.action
                record["updated_reason"] = correction.reason
                record["updated_date"] = _time(correction.corrected_at)
            yield record


def export_events(store: Store, stream: IO[bytes], fmt: str) -> int:
    """Write every event to ``stream``; returns how many."""
    count = 0
    if fmt == "jsonl":
        for record in _event_dicts(store):
            stream.write(orjson.dumps(record) + b"\n")
            count += 1
    elif fmt == "eventdata":
        stream.write(b'{"status":"ok","message-type":"event-list","message":{"events":[')
        for record in _event_dicts(store):
            stream.write((b",\n" if count else b"\n") + orjson.dumps(record))
            count += 1
        stream.write(b'\n],"total-results":' + str(count).encode() + b"}}\n")
    elif fmt == "csv":
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="", write_through=True)
        writer = csv.DictWriter(text, fieldnames=EVENT_CSV_COLUMNS, extrasaction="raise")
        writer.writeheader()
        for record in _event_dicts(store):
            if "subj" in record:
                record["subj"] = orjson.dumps(record["subj"]).decode()
            writer.writerow(record)
            count += 1
        text.detach()
    else:
        raise ValueError(f"unknown export format {fmt!r}")
    return count


def _output_dicts(store: Store) -> Iterator[dict[str, Any]]:
    with store.session() as session:
        identifiers: dict[int, list[tuple[str, str]]] = {}
        for output_id, scheme, value in session.execute(
            select(
                OutputIdentifier.output_id, OutputIdentifier.scheme, OutputIdentifier.value
            ).order_by(OutputIdentifier.id)
        ):
            identifiers.setdefault(output_id, []).append((scheme, value))
        for output in session.scalars(
            select(Output).where(Output.merged_into_id.is_(None)).order_by(Output.id)
        ):
            record: dict[str, Any] = {
                "id": output.id,
                "type": output.type,
                "title": output.title,
                "venue": output.venue or "",
                "published_on": output.published_on.isoformat() if output.published_on else "",
            }
            own = sorted(identifiers.get(output.id, []), key=_identifier_order)
            for scheme in OUTPUT_SCHEMES:
                record[scheme] = next((value for s, value in own if s == scheme), "")
            record["identifiers"] = " ".join(_spelling(s, v) for s, v in own)
            yield record


# How each scheme is written so that reading it back gives the same identifier.
_PREFIXES = {"doi": "doi:", "handle": "hdl:", "pmid": "pmid:", "arxiv": "arXiv:", "ssrn": "ssrn:"}


def _identifier_order(identifier: tuple[str, str]) -> tuple[int, str]:
    scheme, value = identifier
    rank = SCHEME_ORDER.index(scheme) if scheme in SCHEME_ORDER else len(SCHEME_ORDER)
    return rank, value


def _spelling(scheme: str, value: str) -> str:
    return _PREFIXES.get(scheme, "") + value


def export_outputs(store: Store, stream: IO[bytes], fmt: str) -> int:
    """Write every (unmerged) output with its identifiers; returns how many."""
    count = 0
    if fmt == "jsonl":
        for record in _output_dicts(store):
            stream.write(orjson.dumps(record) + b"\n")
            count += 1
    elif fmt == "csv":
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="", write_through=True)
        writer = csv.DictWriter(text, fieldnames=OUTPUT_CSV_COLUMNS)
        writer.writeheader()
        for record in _output_dicts(store):
            writer.writerow(record)
            count += 1
        text.detach()
    else:
        raise ValueError(f"outputs export as {fmt!r} is not supported: use csv or jsonl")
    return count
