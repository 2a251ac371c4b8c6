"""The REST API under ``/api/v1``: the same numbers as the CLI and the pages."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
