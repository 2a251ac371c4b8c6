"""Monitoring: the worker that collects on a schedule, and alerts with their delivery."""

from __future__ import annotations
