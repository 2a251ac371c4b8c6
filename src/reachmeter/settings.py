"""Settings read from the environment (``REACHMETER_*``) and the command line."""

from __future__ import annotations

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
        description="JSON Lines files at least this large are read in a second process.",
    )
    max_line_bytes: int = Field(
        default=16 * 1024 * 1024,
        description="A JSON Lines record longer than this is quarantined, not parsed.",
    )
