"""The dashboard pages, server-rendered with Jinja2."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
