"""Dashboard pages of monitoring: the alerts, and the framework (objectives with their
progress, aims, staffing) with a form for editors to add an objective.

Alert titles and objective names are untrusted text like any other: the templates
autoescape them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi.responses import RedirectResponse

from reachmeter.framework import (
    KPIS,
    FrameworkError,
    add_objective,
    list_aims,
    list_staffing,
    objectives_progress,
)
from reachmeter.monitor.alerts import ALERT_KINDS, list_alerts, list_rules
from reachmeter.store import Store
from reachmeter.store.schema_web import User
from reachmeter.web import auth
from reachmeter.web.pages import Reader, render

router = APIRouter()

_SCOPE_HELP = (
    "accounts, outputs, people or groups, optionally :REF,REF "
    "(accounts:x:ourlibrary, groups:School of Law)"
)


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


@router.get("/alerts")
def alerts_page(request: Request, user: Reader) -> Response:
    """The latest alerts with their deliveries, and the rules that send them."""
    kind = request.query_params.get("kind") or None
    if kind is not None and kind not in ALERT_KINDS:
        raise HTTPException(404, f"no alert kind {kind!r}; kinds: {', '.join(ALERT_KINDS)}")
    store = _store(request)
    alerts = list_alerts(store, limit=200, kind=kind)
    rules = list_rules(store) if auth.has_role(user, "editor") else []
    return render(
        request,
        "monitor/alerts.html",
        {"title": "Alerts", "alerts": alerts, "rules": rules, "kinds": ALERT_KINDS, "kind": kind},
    )


def _framework_context(
    request: Request, as_of: dt.date, form: dict[str, Any], error: str | None
) -> dict[str, Any]:
    store = _store(request)
    progress = objectives_progress(store, as_of)
    staffing = list_staffing(store)
    hours: dict[str, float] = {}
    for row in staffing:
        hours[row.account] = hours.get(row.account, 0.0) + row.hours_per_week
    return {
        "title": "Objectives",
        "as_of": as_of,
        "progress": progress,
        "flagged": [p for p in progress if p.status in ("at risk", "behind")],
        "aims": list_aims(store),
        "staffing": staffing,
        "hours": hours,
        "total_hours": sum(hours.values()),
        "kpis": list(KPIS.values()),
        "scope_help": _SCOPE_HELP,
        "form": form,
        "error": error,
        "added": request.query_params.get("added"),
    }


def _day(text: str | None, default: dt.date) -> dt.date:
    if not text:
        return default
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise HTTPException(404, f"{text!r} is not a date (YYYY-MM-DD)") from None


@router.get("/objectives")
def objectives_page(request: Request, user: Reader) -> Response:
    """Objectives with their progress and projection, at-risk ones first; aims; staffing."""
    today = dt.datetime.now(dt.UTC).date()
    as_of = _day(request.query_params.get("as_of"), today)
    return render(request, "monitor/objectives.html", _framework_context(request, as_of, {}, None))


@router.post("/objectives")
def objectives_add(
    request: Request,
    user: Annotated[User, Depends(auth.require_role("editor"))],
    title: Annotated[str, Form(max_length=500)] = "",
    kpi: Annotated[str, Form(max_length=100)] = "",
    over: Annotated[str, Form(max_length=2000)] = "",
    target: Annotated[str, Form(max_length=50)] = "",
    start: Annotated[str, Form(max_length=20)] = "",
    deadline: Annotated[str, Form(max_length=20)] = "",
    owner: Annotated[str, Form(max_length=300)] = "",
    aim: Annotated[str, Form(max_length=300)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Add an objective; bad input shows the form again with the reason, nothing stored."""
    auth.verify_csrf(request, csrf_token)
    form = {
        "title": title, "kpi": kpi, "over": over, "target": target, "start": start,
        "deadline": deadline, "owner": owner, "aim": aim,
    }  # fmt: skip
    error: str | None = None
    try:
        value = float(target)
    except ValueError:
        error = f"the target {target!r} is not a number"
    try:
        start_day, deadline_day = dt.date.fromisoformat(start), dt.date.fromisoformat(deadline)
    except ValueError:
        error = error or "give the start and the deadline as dates (YYYY-MM-DD)"
    if error is None:
        try:
            objective_id = add_objective(
                _store(request),
                title=title,
                kpi=kpi,
                over=over,
                target=value,
                start=start_day,
                deadline=deadline_day,
                owner=owner or None,
                aim=aim or None,
            )
        except FrameworkError as exc:
            error = str(exc)
        else:
            return RedirectResponse(f"/objectives?added={objective_id}", status_code=303)
    today = dt.datetime.now(dt.UTC).date()
    return render(
        request,
        "monitor/objectives.html",
        _framework_context(request, today, form, error),
        status_code=400,
    )
