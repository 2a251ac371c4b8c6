"""Accounts and the analytics exports people download: ``accounts``, ``import export``."""

from __future__ import annotations

from reachmeter.cli.app import app  # noqa: F401  (commands register on it)
