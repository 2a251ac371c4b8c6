"""Settings read from the environment (``REACHMETER_*``) and the command line."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DB_PATH = Path("reachmeter.db")


class Settings(BaseSettings):
    """Process-wide settings; every field can be set as ``REACHMETER_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="REACHMETER_", extra="ignore")

    database_url: str = Field(
        default=str(DEFAULT_DB_PATH),
        description="A SQLite file path, a sqlite:/// URL or a postgresql:// URL.",
    )
    contact_email: str = Field(
        default="",
        description="Contact address sent in the User-Agent of every outgoing request.",
    )
    ingest_batch_size: int = Field(default=10_000, ge=1, le=1_000_000)
    ingest_parallel_bytes: int = Field(
        default=64 * 1024 * 1024,
        description=(
            "JSON Lines files at least this large are read and stored by two worker processes."
        ),
    )
    counter_parallel_bytes: int = Field(
        default=8 * 1024 * 1024,
        description="COUNTER report files at least this large are read in a second process.",
    )
    max_line_bytes: int = Field(
        default=16 * 1024 * 1024,
        description="A JSON Lines record longer than this is quarantined, not parsed.",
    )
    http_timeout: float = Field(
        default=30.0, gt=0, description="Seconds an outgoing HTTP request may take."
    )
    http_max_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1,
        description="A response body larger than this is refused (ResponseTooLargeError).",
    )
    http_max_attempts: int = Field(
        default=4, ge=1, le=20, description="Tries of a request that fails retriably."
    )
    http_backoff: float = Field(
        default=1.0, ge=0, description="First wait, in seconds, before a retry; doubles each time."
    )
    http_max_wait: float = Field(
        default=300.0,
        ge=0,
        description="Longest wait before a retry, even if Retry-After asks more.",
    )
    http_cache_ttl: float = Field(
        default=86400.0, ge=0, description="Seconds a cached response is reused."
    )
    secret_key: str = Field(
        default="",
        repr=False,
        description="Signs the dashboard's session cookies; generated and kept in the store "
        "when empty.",
    )
    web_threads: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Requests each server process works on at once; more threads would only "
        "take turns on Python's interpreter lock.",
    )
    public_dashboard: bool = Field(
        default=False,
        description="Let anonymous visitors read the dashboard and API; otherwise log in.",
    )
    session_max_age: int = Field(
        default=14 * 86400, ge=60, description="Seconds a dashboard login lasts."
    )
    # -- monitoring: the worker and alert delivery (docs/monitoring.md) --------------------
    smtp_host: str = Field(default="", description="SMTP server for alert e-mail (empty: none).")
    smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP port.")
    smtp_security: str = Field(
        default="starttls",
        pattern="^(starttls|ssl|none)$",
        description="starttls, ssl (implicit TLS, port 465) or none (a local relay).",
    )
    smtp_user: str = Field(default="", description="SMTP login (empty: no login).")
    smtp_password: str = Field(default="", description="SMTP password; never logged.")
    smtp_timeout: float = Field(default=30.0, gt=0, description="Seconds an SMTP session may take.")
    alert_from: str = Field(
        default="reachmeter@localhost", description="The From address of alert e-mail."
    )
    alert_attempts: int = Field(
        default=3, ge=1, le=10, description="Tries of one delivery within one send, with backoff."
    )
    alert_backoff: float = Field(
        default=2.0, ge=0, description="First wait, in seconds, between tries; doubles each time."
    )
    alert_give_up_after: int = Field(
        default=20, ge=1, description="Failed tries after which a delivery is marked failed."
    )
    webhook_timeout: float = Field(default=10.0, gt=0, description="Seconds a webhook may take.")
    webhook_allow_private: bool = Field(
        default=False,
        description="Let webhooks reach private and loopback addresses (an admin's own hooks).",
    )
    worker_tick: float = Field(
        default=60.0, gt=0, description="Seconds between the worker's looks for due jobs."
    )
    worker_lease: float = Field(
        default=300.0, gt=0, description="Seconds a worker's lease lasts unless renewed."
    )
    worker_profiles: str = Field(
        default="default", description="Scoring profiles the worker keeps up to date (commas)."
    )

    def environment(self) -> dict[str, str]:
        """``REACHMETER_*`` variables that give ``Settings()`` these values (for processes
        started from this one)."""
        found: dict[str, str] = {}
        for name, value in self.model_dump(mode="json").items():
            text = value if isinstance(value, str) else json.dumps(value)
            found[f"REACHMETER_{name.upper()}"] = text
        return found
