"""Progress of objectives: what was measured, projected linearly to the deadline.

Status, in this order:

- ``not started``: the day measured is before the objective's start.
- ``achieved``: the current value has reached the target.
- ``behind``: the deadline has passed without reaching the target, or the projection
  reaches less than ``AT_RISK_SHARE`` of the way to the target (nothing measured at all
  counts as no progress).
- ``at risk``: the projection reaches at least ``AT_RISK_SHARE`` of the way, but not the
  target.
- ``on track``: the projection reaches the target by the deadline.

"Of the way" is measured from the value at the start for a ``level`` KPI (followers at the
start are not progress) and from zero for a ``flow`` or ``ratio`` KPI.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, select

from reachmeter.framework.kpis import KPIS, Scope, measure
from reachmeter.store import Store
from reachmeter.store.schema_monitor import Aim, Objective

__all__ = ["AT_RISK_SHARE", "ObjectiveProgress", "Status", "objectives_progress", "project"]

Status = Literal["achieved", "on track", "at risk", "behind", "not started"]
AT_RISK_SHARE = 0.8


@dataclass(frozen=True, slots=True)
class ObjectiveProgress:
    """One objective as measured on a day: its current value, its projection to the
    deadline and its status (see the module docs)."""

    id: int
    aim: str | None
    title: str
    kpi: str
    scope: str
    target: float
    start: dt.date
    deadline: dt.date
    current: float | None
    projected: float | None
    status: Status
    owner: str | None


def project(
    shape: str,
    start: dt.date,
    deadline: dt.date,
    day: dt.date,
    current: float | None,
    baseline: float | None,
) -> float | None:
    """The value expected at the deadline if things go on as they went from the start to
    ``day``: a flow at its daily rate, a level by its change since ``baseline``, a ratio as
    it is."""
    if current is None:
        return None
    if day >= deadline or shape == "ratio":
        return current
    elapsed = (day - start).days + 1
    total = (deadline - start).days + 1
    if elapsed <= 0:
        return None
    if shape == "flow":
        return round(current * total / elapsed, 4)
    base = baseline if baseline is not None else current
    return round(base + (current - base) * total / elapsed, 4)


def _status(
    shape: str,
    target: float,
    start: dt.date,
    deadline: dt.date,
    day: dt.date,
    current: float | None,
    projected: float | None,
    baseline: float | None,
) -> Status:
    if day < start:
        return "not started"
    if current is not None and current >= target:
        return "achieved"
    if day > deadline or projected is None:
        return "behind"
    if projected >= target:
        return "on track"
    origin = baseline if shape == "level" and baseline is not None else 0.0
    needed = target - origin
    share = (projected - origin) / needed if needed > 0 else 0.0
    return "at risk" if share >= AT_RISK_SHARE else "behind"


def progress_of(
    connection: Connection, objective: Objective, aim: str | None, day: dt.date
) -> ObjectiveProgress:
    """The progress of one objective on ``day``."""
    kpi = KPIS[objective.kpi]
    scope = Scope(objective.scope_kind, tuple(objective.scope_ids or ()))
    current: float | None = None
    projected: float | None = None
    baseline: float | None = None
    if day >= objective.start_on:
        measured_day = min(day, objective.deadline)
        current = measure(connection, kpi, scope, objective.start_on, measured_day)
        if kpi.shape == "level":
            before = objective.start_on - dt.timedelta(days=1)
            baseline = measure(connection, kpi, scope, objective.start_on, before)
        projected = project(
            kpi.shape, objective.start_on, objective.deadline, measured_day, current, baseline
        )
    status = _status(
        kpi.shape,
        objective.target,
        objective.start_on,
        objective.deadline,
        day,
        current,
        projected,
        baseline,
    )
    return ObjectiveProgress(
        id=objective.id,
        aim=aim,
        title=objective.title,
        kpi=objective.kpi,
        scope=objective.scope_text or objective.scope_kind,
        target=objective.target,
        start=objective.start_on,
        deadline=objective.deadline,
        current=current,
        projected=projected,
        status=status,
        owner=objective.owner,
    )


def objectives_progress(store: Store, as_of: dt.date) -> list[ObjectiveProgress]:
    """Every objective's progress as measured up to the end of ``as_of``, by id."""
    with store.session() as session:
        aims = {a.id: a.title for a in session.scalars(select(Aim))}
        objectives = list(session.scalars(select(Objective).order_by(Objective.id)))
        connection = session.connection()
        return [
            progress_of(connection, o, aims.get(o.aim_id) if o.aim_id is not None else None, as_of)
            for o in objectives
        ]
