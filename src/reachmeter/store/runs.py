"""The run log: one row per collection, ingest or import, opened when it starts and closed
with its counts when it ends (also when it fails)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from reachmeter.store import Store
from reachmeter.store.schema import Run

__all__ = ["finish_run", "start_run"]


def start_run(
    store: Store, kind: str, source_id: str | None = None, detail: dict[str, Any] | None = None
) -> int:
    """Open a run (status ``running``) in its own transaction; returns its id."""
    with store.session() as session:
        run = Run(kind=kind, source_id=source_id, detail=detail or {})
        session.add(run)
        session.flush()
        return int(run.id)


def finish_run(
    store: Store,
    run_id: int,
    status: str,
    *,
    read: int = 0,
    stored: int = 0,
    duplicates: int = 0,
    quarantined: int = 0,
    errors: int = 0,
    detail: dict[str, Any] | None = None,
) -> None:
    """Close a run with its status and counts; ``detail`` is merged into what it had."""
    with store.session() as session:
        run = session.get(Run, run_id)
        if run is None:  # pragma: no cover - written by start_run
            return
        run.finished_at = dt.datetime.now(dt.UTC)
        run.status = status
        run.read = read
        run.stored = stored
        run.duplicates = duplicates
        run.quarantined = quarantined
        run.errors = errors
        run.detail = {**(run.detail or {}), **(detail or {})}
