"""The social media framework: aims, objectives with their progress, and staffing.

``objectives_progress(store, as_of)`` measures every objective from what the store holds
(events, observations, scores) and projects it to its deadline; ``reachmeter.framework.kpis``
defines the metrics an objective can target.
"""

from __future__ import annotations

from reachmeter.framework.kpis import KPIS, Kpi
from reachmeter.framework.manage import (
    FrameworkError,
    StaffingRow,
    add_aim,
    add_objective,
    add_staffing,
    list_aims,
    list_objectives,
    list_staffing,
    load_framework,
)
from reachmeter.framework.progress import AT_RISK_SHARE, ObjectiveProgress, objectives_progress

__all__ = [
    "AT_RISK_SHARE",
    "KPIS",
    "FrameworkError",
    "Kpi",
    "ObjectiveProgress",
    "StaffingRow",
    "add_aim",
    "add_objective",
    "add_staffing",
    "list_aims",
    "list_objectives",
    "list_staffing",
    "load_framework",
    "objectives_progress",
]
