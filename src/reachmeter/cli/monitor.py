"""Monitoring: the ``run`` worker, alerts, and the framework of aims, objectives and staffing."""

from __future__ import annotations

from reachmeter.cli.app import app  # noqa: F401  (commands register on it)
