"""Reported wrong matches, reviewed: an editor accepts a request (the mention stops counting
for that output, for good) or rejects it. Both are kept; nothing is deleted but the match.

An accepted request becomes a ``corrections`` row (``target_kind`` ``match``, action
``wrong_match``, key ``event:ID->output:ID``) and removes that event's match to that output;
matching never links the pair again, and the next score update rescores the output.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select
from sqlalchemy.orm import Session

from reachmeter.store import Store
from reachmeter.store.mentions import redo_first_mentions
from reachmeter.store.schema import Correction, EventMatch, Output
from reachmeter.store.schema_web import CorrectionRequest

__all__ = [
    "MATCH_KEY",
    "ReviewError",
    "accept_request",
    "list_requests",
    "match_key",
    "reject_request",
    "rejected_matches",
]

MATCH_KEY = re.compile(r"^event:(\d+)->output:(\d+)$")


class ReviewError(ValueError):
    """A request that cannot be reviewed (unknown, already reviewed, or not about a mention)."""


def match_key(event_id: int, output_id: int) -> str:
    return f"event:{event_id}->output:{output_id}"


def rejected_matches(connection: Connection) -> set[tuple[int, int]]:
    """The (event, output) pairs an editor said are not a match."""
    pairs: set[tuple[int, int]] = set()
    for (key,) in connection.execute(
        select(Correction.target_key).where(
            Correction.target_kind == "match", Correction.action == "wrong_match"
        )
    ):
        found = MATCH_KEY.match(key)
        if found:
            pairs.add((int(found.group(1)), int(found.group(2))))
    return pairs


@dataclass(frozen=True)
class Review:
    request_id: int
    status: str
    correction_id: int | None
    matches_removed: int


def list_requests(store: Store, status: str | None = "open") -> list[dict[str, Any]]:
    """Correction requests (open ones by default), oldest first, with the output's title."""
    query = (
        select(CorrectionRequest, Output.title)
        .join(Output, Output.id == CorrectionRequest.output_id)
        .order_by(CorrectionRequest.id)
    )
    if status:
        query = query.where(CorrectionRequest.status == status)
    with store.session() as session:
        return [
            {
                "id": row.id,
                "output_id": row.output_id,
                "title": title,
                "event_id": row.event_id,
                "kind": row.kind,
                "reason": row.reason,
                "status": row.status,
                "requested_at": row.requested_at.isoformat(),
            }
            for row, title in session.execute(query)
        ]


def _open_request(session: Session, request_id: int) -> CorrectionRequest:
    row = session.get(CorrectionRequest, request_id)
    if row is None:
        raise ReviewError(f"no correction request with id {request_id}")
    if row.status != "open":
        raise ReviewError(f"correction request {request_id} was already {row.status}")
    return row


def accept_request(store: Store, request_id: int, reviewer: str, note: str = "") -> Review:
    """Accept a wrong-match request: record the correction and remove the match."""
    now = dt.datetime.now(dt.UTC)
    with store.session() as session:
        row = _open_request(session, request_id)
        if row.event_id is None:
            raise ReviewError(
                f"correction request {request_id} names no mention; reject it, or ask which "
                "mention is wrong"
            )
        reason = f"accepted request {request_id} (by {reviewer})"
        if row.reason:
            reason += f": {row.reason}"
        if note:
            reason += f"; {note}"
        correction = Correction(
            target_kind="match",
            target_key=match_key(row.event_id, row.output_id),
            action="wrong_match",
            reason=reason,
            corrected_at=now,
        )
        session.add(correction)
        pair = (EventMatch.event_id == row.event_id, EventMatch.output_id == row.output_id)
        triples = session.execute(
            select(EventMatch.output_id, EventMatch.source_id, EventMatch.author).where(*pair)
        ).all()
        session.execute(delete(EventMatch).where(*pair))
        # The removed match may have been its author's first mention of the output.
        redo_first_mentions(session.connection(), [(o, s, a) for o, s, a in triples])
        row.status = "accepted"
        session.flush()
        return Review(request_id, "accepted", correction.id, len(triples))


def reject_request(store: Store, request_id: int) -> Review:
    """Reject a request: the match stands; the request is kept as rejected."""
    with store.session() as session:
        row = _open_request(session, request_id)
        row.status = "rejected"
        return Review(request_id, "rejected", None, 0)
