"""Tables of monitoring: alerts and their deliveries, saved filters, and the framework
of aims, objectives and staffing.

Imported at the end of ``reachmeter.store.schema`` so every table is on ``Base.metadata``.

Alerts are facts: an alert is raised once (its ``dedup_key`` is unique) and each of its
deliveries is one row per rule and channel, so nothing is sent twice. The schedule of the
worker and its lease live here too, so a restarted worker resumes where it left off.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from reachmeter.store.schema import Base, IdType, UTCDateTime, _now


class SavedFilter(Base):
    """A named selection of outputs (type, source, group, person, words in the title)."""

    __tablename__ = "saved_filters"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    query: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)


class AlertRule(Base):
    """A subscription: which alerts, about what, how often, to whom."""

    __tablename__ = "alert_rules"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    #: ``all``, ``person``, ``group`` or ``filter``; ``scope_id`` names the one meant.
    scope_kind: Mapped[str] = mapped_column(String(20), default="all")
    scope_id: Mapped[int | None] = mapped_column(IdType)
    #: The alert kinds delivered (``mentions`` is the digest of new mentions).
    kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: ``immediate``, ``daily`` or ``weekly``.
    frequency: Mapped[str] = mapped_column(String(20), default="daily")
    email_to: Mapped[str | None] = mapped_column(Text)
    webhook_url: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)
    #: The end of the last period a digest was made for (digests resume from here).
    covered_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Alert(Base):
    """Something worth telling: a digest, a spike, a milestone, a data-quality problem, an
    objective falling behind. Raised once: ``dedup_key`` is unique."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))
    dedup_key: Mapped[str] = mapped_column(String(300), unique=True)
    subject: Mapped[str] = mapped_column(String(300))
    title: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    output_id: Mapped[int | None] = mapped_column(
        ForeignKey("outputs.id", ondelete="SET NULL"), index=True
    )
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    raised_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now, index=True)


class AlertDelivery(Base):
    """One alert sent (or to be sent) to one rule's channel; at most one row each."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (UniqueConstraint("alert_id", "rule_id", "channel"),)
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    rule_id: Mapped[int] = mapped_column(
        ForeignKey("alert_rules.id", ondelete="CASCADE"), index=True
    )
    #: ``email`` or ``webhook``.
    channel: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(Text)
    #: ``pending``, ``sending``, ``sent`` or ``failed`` (gave up; ``alerts send --retry``).
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)


class Aim(Base):
    """Why the organisation is on social media, in its own words."""

    __tablename__ = "aims"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(300), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)


class Objective(Base):
    """A KPI over chosen accounts, outputs, people or groups; a target by a deadline."""

    __tablename__ = "objectives"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    aim_id: Mapped[int | None] = mapped_column(
        ForeignKey("aims.id", ondelete="SET NULL"), index=True
    )
    title: Mapped[str] = mapped_column(Text)
    kpi: Mapped[str] = mapped_column(String(100))
    #: ``accounts``, ``outputs``, ``people`` or ``groups``; ``scope_ids`` are their ids
    #: (empty: all of them), ``scope_text`` is the scope as it was given.
    scope_kind: Mapped[str] = mapped_column(String(20))
    scope_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    scope_text: Mapped[str] = mapped_column(Text, default="")
    target: Mapped[float] = mapped_column(Float)
    start_on: Mapped[dt.date] = mapped_column(Date)
    deadline: Mapped[dt.date] = mapped_column(Date)
    owner: Mapped[str | None] = mapped_column(String(300))
    owner_person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)


class Staffing(Base):
    """Who runs which account, in what role, for how many hours a week."""

    __tablename__ = "staffing"
    __table_args__ = (UniqueConstraint("account_id", "person_id", "role"),)
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(100))
    hours_per_week: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)


class Schedule(Base):
    """When the worker runs a job next (``source:<id>``), and how it went last time."""

    __tablename__ = "schedules"
    job: Mapped[str] = mapped_column(String(200), primary_key=True)
    every_seconds: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_status: Mapped[str | None] = mapped_column(String(40))


class WorkerLease(Base):
    """A lease that one worker holds, renewed while it runs, so two never run one job."""

    __tablename__ = "worker_leases"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
