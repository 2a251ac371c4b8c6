"""The tables of the store.

Events, observations, corrections and quarantined records are facts: rows are appended and
never updated in place. Outputs, people, groups and accounts are the catalogue: they are
edited, and merged rather than doubled. Every time is timezone-aware UTC.

The migrations in ``migrations/versions`` create exactly these tables; a contract test
compares the two.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, validates
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no zone itself)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: times in the store are UTC-aware")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# SQLite keeps BIGINT primary keys as plain integers only when the type is INTEGER.
IdType = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Meta(Base):
    """Key/value facts about the store itself (schema notes, whether it holds demo data)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Output(Base):
    """Anything that receives attention: article, dataset, book, report, briefing, web page."""

    __tablename__ = "outputs"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(40), default="article")
    title: Mapped[str] = mapped_column(Text, default="")
    venue: Mapped[str | None] = mapped_column(Text)
    published_on: Mapped[dt.date | None] = mapped_column(Date)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("outputs.id"))
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now, onupdate=_now)


# Lists of outputs sorted by publication date read this index instead of the whole table.
Index("ix_outputs_published", Output.published_on, Output.id)


class OutputIdentifier(Base):
    """One normalised identifier (idutils scheme name and value) of one output."""

    __tablename__ = "output_identifiers"
    __table_args__ = (UniqueConstraint("scheme", "value"),)
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    output_id: Mapped[int] = mapped_column(ForeignKey("outputs.id", ondelete="CASCADE"), index=True)
    scheme: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(String(2000))


class Group(Base):
    """Department, faculty, practice area or team; groups nest through ``parent_id``."""

    __tablename__ = "groups"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(40), default="group")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"), index=True)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)


def name_key(name: str) -> str:
    """How a person's name is looked up: trimmed, spaces collapsed, case-folded (so
    ``ANA lima`` finds ``Ana Lima`` in every script and on every database)."""
    return " ".join(name.split()).casefold()


def _name_key_default(context: Any) -> str:
    return name_key(str(context.get_current_parameters().get("name") or ""))


class Person(Base):
    """Researcher, lawyer, student or librarian."""

    __tablename__ = "people"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(300))
    # Kept in step with ``name``: set with it on the object, and by default on a Core insert.
    name_key: Mapped[str | None] = mapped_column(String(300), index=True, default=_name_key_default)
    orcid: Mapped[str | None] = mapped_column(String(19), unique=True)
    email: Mapped[str | None] = mapped_column(String(300))
    role: Mapped[str | None] = mapped_column(String(100))
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)

    @validates("name")
    def _keep_name_key(self, _key: str, value: str) -> str:
        self.name_key = name_key(value or "")
        return value


class PersonGroup(Base):
    __tablename__ = "person_groups"
    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Authorship(Base):
    """A person is an author (or other contributor) of an output."""

    __tablename__ = "authorships"
    output_id: Mapped[int] = mapped_column(
        ForeignKey("outputs.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int | None] = mapped_column(Integer)


class Account(Base):
    """One presence on one platform, owned by a person or by the organisation."""

    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("platform", "handle"),)
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(40))
    handle: Mapped[str] = mapped_column(String(500))
    url: Mapped[str | None] = mapped_column(Text)
    owner_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    owned_by_org: Mapped[bool] = mapped_column(Boolean, default=False)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)


class Source(Base):
    """A connector to one platform or database, or an upstream file format."""

    __tablename__ = "sources"
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(40), default="upstream")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    paused_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)


class SourceCursor(Base):
    """Where a source got to, per stream; saved in the transaction that stores what it covers."""

    __tablename__ = "source_cursors"
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id"), primary_key=True)
    stream: Mapped[str] = mapped_column(String(500), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now, onupdate=_now)


class Run(Base):
    """One run of a collection, an ingest or an import, with its counts."""

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))
    source_id: Mapped[str | None] = mapped_column(String(100), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20), default="running")
    read: Mapped[int] = mapped_column(Integer, default=0)
    stored: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    quarantined: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Evidence(Base):
    """What a source saw: which source and version, from which request, when, and its hash."""

    __tablename__ = "evidence"
    __table_args__ = (UniqueConstraint("source_id", "request_url", "payload_sha256"),)
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    source_id: Mapped[str] = mapped_column(String(100))
    source_version: Mapped[str] = mapped_column(String(100))
    request_url: Mapped[str] = mapped_column(Text)
    payload_sha256: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str | None] = mapped_column(Text)
    collected_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))


class Event(Base):
    """A mention, in Crossref Event Data's shape. Appended, never edited."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    # Deduplication goes through a 64-bit hash of the key: a narrow unique index is much
    # cheaper to maintain on ingest than one on the text. A hash collision is detected
    # (same hash, other key) and quarantined, never silently dropped.
    key_hash: Mapped[int] = mapped_column(BigInteger, unique=True)
    event_key: Mapped[str] = mapped_column(String(200))
    subj_id: Mapped[str] = mapped_column(Text)
    relation_type_id: Mapped[str] = mapped_column(String(100))
    obj_id: Mapped[str] = mapped_column(Text)
    obj_scheme: Mapped[str] = mapped_column(String(20))
    obj_value: Mapped[str] = mapped_column(String(2000))
    source_id: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    collected_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    subj_author: Mapped[str | None] = mapped_column(Text)
    subj: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence.id"))
    evidence_url: Mapped[str | None] = mapped_column(Text)
    license: Mapped[str | None] = mapped_column(Text)


class EventMatch(Base):
    """An event matched to a tracked output, with how (Event Data's ``method``) and how
    sure (``verification``). Unmatched events have no row and are matched again later."""

    __tablename__ = "event_matches"
    __table_args__ = (
        UniqueConstraint("event_id", "output_id"),
        # Scoring counts each output's distinct authors per source, and finds an author's
        # earlier posts about an output, from this index alone.
        Index(
            "ix_event_matches_mention",
            "output_id",
            "source_id",
            "author",
            "occurred_at",
            "event_id",
        ),
    )
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    output_id: Mapped[int] = mapped_column(ForeignKey("outputs.id", ondelete="CASCADE"))
    identifier: Mapped[str] = mapped_column(String(2000))
    method: Mapped[str] = mapped_column(String(40))
    verification: Mapped[str] = mapped_column(String(40))
    matched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)
    # The event's source, author (``subj_author``, else ``subj_id``) and time, copied when
    # it is matched: events are never edited, so the copies never go stale.
    source_id: Mapped[str] = mapped_column(String(100))
    author: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class FirstMention(Base):
    """When each author first mentioned each output on each source: the earliest
    ``occurred_at`` of their matches, kept up to date as matches come and go
    (``store.mentions``). A full scoring run counts distinct authors from it."""

    __tablename__ = "first_mentions"
    __table_args__ = {"sqlite_with_rowid": False}  # noqa: RUF012  (SQLAlchemy's form)
    output_id: Mapped[int] = mapped_column(
        ForeignKey("outputs.id", ondelete="CASCADE"), primary_key=True
    )
    source_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    author: Mapped[str] = mapped_column(Text, primary_key=True)
    first_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


# An incremental scoring run reads the changed outputs' recent first mentions alone.
Index("ix_first_mentions_recent", FirstMention.output_id, FirstMention.first_at)


class MentionTotal(Base):
    """How many authors mentioned each output on each source: the count of its
    ``first_mentions`` rows, kept with them (``store.mentions``), so that counting an
    output's authors reads one row per source instead of one per author."""

    __tablename__ = "mention_totals"
    __table_args__ = {"sqlite_with_rowid": False}  # noqa: RUF012  (SQLAlchemy's form)
    output_id: Mapped[int] = mapped_column(
        ForeignKey("outputs.id", ondelete="CASCADE"), primary_key=True
    )
    source_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    authors: Mapped[int] = mapped_column(Integer)


# The events' secondary indexes, which a large ingest drops and rebuilds once at the end.
DEFERRABLE_INDEXES = (
    Index("ix_events_obj", Event.obj_scheme, Event.obj_value),
    Index("ix_events_source_occurred", Event.source_id, Event.occurred_at),
)


class Observation(Base):
    """A metric's value at a time, for a period, with its evidence. Appended, never edited."""

    __tablename__ = "observations"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    observation_key: Mapped[str] = mapped_column(String(200), unique=True)
    obj_id: Mapped[str | None] = mapped_column(Text)
    obj_scheme: Mapped[str | None] = mapped_column(String(20))
    obj_value: Mapped[str | None] = mapped_column(String(2000))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    metric: Mapped[str] = mapped_column(String(100))
    qualifier: Mapped[str] = mapped_column(String(200), default="")
    value: Mapped[float] = mapped_column(Float)
    cumulative: Mapped[bool] = mapped_column(Boolean, default=False)
    period_start: Mapped[dt.date | None] = mapped_column(Date)
    period_end: Mapped[dt.date | None] = mapped_column(Date)
    observed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    source_id: Mapped[str] = mapped_column(String(100))
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence.id"))


Index("ix_observations_obj", Observation.obj_scheme, Observation.obj_value, Observation.metric)
# Only the observations that belong to an account (most belong to none).
# Merged outputs are few: scoring finds them all by this index, not by reading every output.
Index(
    "ix_outputs_merged",
    Output.merged_into_id,
    sqlite_where=Output.merged_into_id.is_not(None),
    postgresql_where=Output.merged_into_id.is_not(None),
)

Index(
    "ix_observations_account_id",
    Observation.account_id,
    sqlite_where=Observation.account_id.is_not(None),
    postgresql_where=Observation.account_id.is_not(None),
)


class Correction(Base):
    """A deletion or change of an event or observation, or a reported wrong match."""

    __tablename__ = "corrections"
    __table_args__ = (UniqueConstraint("target_kind", "target_key", "action", "corrected_at"),)
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    target_kind: Mapped[str] = mapped_column(String(20))
    target_key: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text, default="")
    corrected_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)
    evidence_id: Mapped[int | None] = mapped_column(ForeignKey("evidence.id"))


class QuarantinedRecord(Base):
    """A record that could not be used, kept with where it came from and why."""

    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("origin", "line", "raw_sha256"),)
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    origin: Mapped[str] = mapped_column(Text)
    line: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text, default="")
    raw_sha256: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))


# Scores are views: recomputed from the facts above by a versioned profile, replaced on
# every recompute, never edited by hand.


class ScoringMethod(Base):
    """The methods log: each distinct content of a named scoring profile, from when it was used."""

    __tablename__ = "scoring_methods"
    __table_args__ = (UniqueConstraint("profile_name", "profile_sha256"),)
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    profile_name: Mapped[str] = mapped_column(String(100))
    profile_version: Mapped[str] = mapped_column(String(40))
    profile_sha256: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)
    description: Mapped[str] = mapped_column(Text, default="")
    profile_text: Mapped[str] = mapped_column(Text, default="")


class Score(Base):
    """An output's attention score under one profile as of one date, with all its parts."""

    __tablename__ = "scores"
    __table_args__ = (UniqueConstraint("profile_name", "as_of", "output_id"),)
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    output_id: Mapped[int] = mapped_column(ForeignKey("outputs.id", ondelete="CASCADE"), index=True)
    profile_name: Mapped[str] = mapped_column(String(100))
    profile_version: Mapped[str] = mapped_column(String(40))
    as_of: Mapped[dt.date] = mapped_column(Date)
    score: Mapped[float] = mapped_column(Float)
    mentions: Mapped[int] = mapped_column(Integer, default=0)
    breakdown: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    history: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    flags: Mapped[int] = mapped_column(Integer, default=0)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)


Index("ix_scores_rank", Score.profile_name, Score.as_of, Score.score)


class ScoreSnapshot(Base):
    """The scores of one profile and date in columns (``compute.ContextTable``): what an
    incremental run compares the changed outputs with, read at once instead of row by row.
    Part 0 holds every output with mentions; each later part, the rows an incremental run
    changed, applied in order."""

    __tablename__ = "score_snapshots"
    __table_args__ = (UniqueConstraint("profile_name", "as_of", "part"),)
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    profile_name: Mapped[str] = mapped_column(String(100))
    as_of: Mapped[dt.date] = mapped_column(Date)
    # 0: every output, from a full run; 1, 2...: the rows incremental runs changed since.
    part: Mapped[int] = mapped_column(Integer, default=0)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    saved_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)


class ScoreFlag(Base):
    """A data-quality or gaming flag on an event, an author or an observation."""

    __tablename__ = "score_flags"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))
    output_id: Mapped[int | None] = mapped_column(
        ForeignKey("outputs.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    observation_id: Mapped[int | None] = mapped_column(
        ForeignKey("observations.id", ondelete="CASCADE")
    )
    source_id: Mapped[str | None] = mapped_column(String(100))
    subj_author: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    detected_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)


# The tables of the other parts, declared in their own modules on the same metadata.
from reachmeter.store import schema_monitor, schema_social, schema_web  # noqa: E402, F401
