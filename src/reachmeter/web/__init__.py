"""The web face of ReachMeter: dashboard pages, the REST API under ``/api/v1`` and badges."""

from __future__ import annotations

from reachmeter.web.app import create_app

__all__ = ["create_app"]
