"""Keeping ``first_mentions`` up to date: when each author first mentioned each output on
each source.

Every match carries its event's output, source, author and time (``event_matches``); the
first mention of an (output, source, author) is the earliest of their matches. New matches
can only move it earlier, so adding them is an upsert that keeps the minimum; a removed
match may have been the first, so its triple is worked out again from the matches left.

``mention_totals`` counts the first mentions per output and source: adding matches adds
the triples not there before to it; redoing triples counts their pairs again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, delete, exists, func, insert, select, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from reachmeter.store.schema import Event, EventMatch, FirstMention, MentionTotal

__all__ = ["add_first_mentions", "event_author", "redo_first_mentions"]

# Who wrote an event: its author, else its subject (a post without a known author counts
# as an author of its own). Matches copy it as ``author``.
event_author = func.coalesce(Event.subj_author, Event.subj_id)

_CHUNK = 300


# On PostgreSQL, transactions adding first mentions take turns (a lock held until each
# commits): two at once could both see a triple missing and count it twice in the totals.
# SQLite has one writer at a time anyway.
_TOTALS_LOCK = text("SELECT pg_advisory_xact_lock(7264919375012)")


def add_first_mentions(connection: Connection, after_match: int | None = None) -> None:
    """Fold the matches with an id above ``after_match`` (all, with None) into
    ``first_mentions`` and ``mention_totals``: two statements, however many matches."""
    # SQLite needs a WHERE before an upsert's ON CONFLICT when it inserts a SELECT.
    chosen = EventMatch.id > (after_match if after_match is not None else -1)
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        connection.execute(_TOTALS_LOCK)
    new = _firsts(chosen).subquery("new")
    fresh = (
        select(new.c.output_id, new.c.source_id, func.count())
        .where(
            ~exists().where(
                FirstMention.output_id == new.c.output_id,
                FirstMention.source_id == new.c.source_id,
                FirstMention.author == new.c.author,
            )
        )
        .group_by(new.c.output_id, new.c.source_id)
    )
    upsert = postgresql.insert if postgres else sqlite.insert
    earlier = func.least if postgres else func.min  # the smaller of two values
    totals: Any = upsert(MentionTotal).from_select(["output_id", "source_id", "authors"], fresh)
    connection.execute(
        totals.on_conflict_do_update(
            index_elements=["output_id", "source_id"],
            set_={"authors": MentionTotal.authors + totals.excluded.authors},
        )
    )
    firsts: Any = upsert(FirstMention).from_select(
        ["output_id", "source_id", "author", "first_at"], _firsts(chosen)
    )
    connection.execute(
        firsts.on_conflict_do_update(
            index_elements=["output_id", "source_id", "author"],
            set_={"first_at": earlier(FirstMention.first_at, firsts.excluded.first_at)},
        )
    )


def redo_first_mentions(connection: Connection, triples: Iterable[tuple[int, str, str]]) -> None:
    """Work the first mentions of these (output, source, author) out again from their
    matches (after a match is removed), and the totals of their outputs and sources."""
    wanted = sorted(set(triples))
    key = tuple_(FirstMention.output_id, FirstMention.source_id, FirstMention.author)
    match_key = tuple_(EventMatch.output_id, EventMatch.source_id, EventMatch.author)
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        connection.execute(delete(FirstMention).where(key.in_(chunk)))
        rows = [
            {"output_id": o, "source_id": s, "author": a, "first_at": first}
            for o, s, a, first in connection.execute(_firsts(match_key.in_(chunk)))
        ]
        if rows:
            connection.execute(insert(FirstMention), rows)
    pairs = sorted({(output_id, source_id) for output_id, source_id, _ in wanted})
    pair = tuple_(MentionTotal.output_id, MentionTotal.source_id)
    first_pair = tuple_(FirstMention.output_id, FirstMention.source_id)
    for start in range(0, len(pairs), _CHUNK):
        some = pairs[start : start + _CHUNK]
        connection.execute(delete(MentionTotal).where(pair.in_(some)))
        connection.execute(
            insert(MentionTotal).from_select(
                ["output_id", "source_id", "authors"],
                select(FirstMention.output_id, FirstMention.source_id, func.count())
                .where(first_pair.in_(some))
                .group_by(FirstMention.output_id, FirstMention.source_id),
            )
        )


def _firsts(*conditions: Any) -> Any:
    """Each (output, source, author) of the matches meeting ``conditions``, with the time of
    its earliest match."""
    return (
        select(
            EventMatch.output_id,
            EventMatch.source_id,
            EventMatch.author,
            func.min(EventMatch.occurred_at),
        )
        .where(*conditions)
        .group_by(EventMatch.output_id, EventMatch.source_id, EventMatch.author)
    )
