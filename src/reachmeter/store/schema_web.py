"""Tables of the web dashboard: users, roles, API tokens, correction requests.

Imported at the end of ``reachmeter.store.schema`` so every table is on ``Base.metadata``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from reachmeter.store.schema import Base, IdType, UTCDateTime, _now


class User(Base):
    """Someone who logs in to the dashboard, with one role: ``viewer``, ``editor`` or ``admin``."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(300), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(20), default="viewer")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)


class ApiToken(Base):
    """A token a script sends as ``Authorization: Bearer``; only its SHA-256 is kept."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class CorrectionRequest(Base):
    """A reported wrong match: someone says a mention is not about an output. Reviewed by an
    editor, who records the actual correction; the request itself is never edited away."""

    __tablename__ = "correction_requests"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    output_id: Mapped[int] = mapped_column(ForeignKey("outputs.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40), default="wrong_match")
    reason: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20), default="open")
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)
