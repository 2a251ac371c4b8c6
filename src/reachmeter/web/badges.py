"""Embeddable SVG badges: ``/badge/{scheme}/{id}.svg``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
