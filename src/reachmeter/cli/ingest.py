"""``reachmeter ingest``, ``stats`` and ``export``."""

from __future__ import annotations
