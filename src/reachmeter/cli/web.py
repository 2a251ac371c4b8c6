"""The web dashboard, REST API and badges: ``serve``."""

from __future__ import annotations

from reachmeter.cli.app import app  # noqa: F401  (commands register on it)
