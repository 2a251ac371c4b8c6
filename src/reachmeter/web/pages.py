"""The dashboard pages, server-rendered with Jinja2.

Every number comes from the functions the CLI calls (``scoring``, ``store.stats``,
``store.catalog``); a page only chooses what to show. Every table can be downloaded as CSV
with ``?format=csv`` (and ``&table=NAME`` where a page has several). Mention text, author
names and links are untrusted: templates autoescape everything, and only ``http(s)`` links
become ``href``s.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import bindparam, func, literal, select
from sqlalchemy.sql.elements import ColumnElement
from starlette.concurrency import run_in_threadpool

from reachmeter import charts
from reachmeter.scoring import (
    builtin_profiles,
    methods_log,
    reach,
    read_score,
    top_scores,
)
from reachmeter.scoring.accounts import account_report
from reachmeter.scoring.explain import ExplainError, explain_output
from reachmeter.scoring.flags import flags_of
from reachmeter.scoring.load import author_expr
from reachmeter.scoring.profiles import Profile, load_profile
from reachmeter.scoring.reach import COMPONENTS
from reachmeter.sources.runner import SourceError, available_sources
from reachmeter.store import Store
from reachmeter.store.schema import (
    Account,
    Authorship,
    Correction,
    Event,
    EventMatch,
    Evidence,
    Group,
    Output,
    OutputIdentifier,
    Person,
    PersonGroup,
    QuarantinedRecord,
    Run,
    Score,
)
from reachmeter.store.schema import Source as SourceRow
from reachmeter.store.schema_web import CorrectionRequest, User
from reachmeter.store.stats import store_counts
from reachmeter.web import auth, queries
from reachmeter.web.scheduling import run_read

router = APIRouter(include_in_schema=False)
T = TypeVar("T")
logger = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).parent / "templates"
PAGE_SIZE = 50
COUNT_CAP = 10_000
COUNT_TTL = 5.0  # seconds the outputs list's count of a set of filters is kept
FACETS_TTL = 60.0
SUMMARY_TTL = 300.0
MENTIONS_SHOWN = 200  # the newest, on an output page; all with ?mentions=all and in the CSV
DEFAULT_PROFILE = "default"
NAV: list[tuple[str, str]] = [
    ("/", "Overview"),
    ("/outputs", "Outputs"),
    ("/people", "People"),
    ("/groups", "Groups"),
    ("/accounts", "Accounts"),
    ("/objectives", "Objectives"),
    ("/alerts", "Alerts"),
    ("/sources", "Sources"),
    ("/methods", "Methods"),
]
SECURITY_HEADERS = {
    # Vega compiles its expressions with Function(): 'unsafe-eval', but no inline script.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' "
        "'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'self'; "
        "form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
SORTS: dict[str, Any] = {
    "score": Score.score,
    "mentions": Score.mentions,
    "title": Output.title,
    "published": Output.published_on,
    "type": Output.type,
}


def _safe_url(value: object) -> str | None:
    """``value`` when it is an http(s) URL, else ``None``: no ``javascript:`` in an href."""
    if isinstance(value, str) and value.lower().startswith(("https://", "http://")):
        return value
    return None


def _number(value: object, digits: int = 2) -> str:
    if value is None:
        return "\u2013"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "\u2013"
        text = f"{value:,.{digits}f}".rstrip("0").rstrip(".")
        return text or "0"
    return str(value)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # The templates ship with the package: never looked at again for changes.
        auto_reload=False,
    )
    env.filters["safe_url"] = _safe_url
    env.filters["number"] = _number
    env.globals["nav"] = NAV
    env.globals["colour"] = charts.source_colour
    return env


templates = Jinja2Templates(env=_environment())


# Shared helpers.


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _is_demo(request: Request) -> bool:
    state = request.app.state
    if not hasattr(state, "is_demo"):
        state.is_demo = _store(request).is_demo
    return bool(state.is_demo)


def login_url(next_path: str) -> str:
    return "/login?" + urlencode({"next": next_path})


def _local_path(value: str | None) -> str:
    """A redirect target on this site only."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return "/"


class _LazyCsrfToken:
    """The session's CSRF token, created when a template shows it (``{{ csrf_token }}`` or
    ``{{ csrf_token() }}``)."""

    def __init__(self, request: Request) -> None:
        self.request = request

    def __call__(self) -> str:
        return auth.csrf_token(self.request)

    def __str__(self) -> str:
        return self()


def render(
    request: Request, template: str, context: Mapping[str, Any], status_code: int = 200
) -> HTMLResponse:
    """A page: the template with the common context, the security headers, and the
    session cookie when this request changed it."""
    user = getattr(request.state, "user", None)
    full = {
        "request": request,
        "user": user,
        "is_demo": _is_demo(request),
        # Made only by the templates that have a form, so other pages set no cookie.
        "csrf_token": _LazyCsrfToken(request),
        "can_edit": auth.has_role(user, "editor"),
        "public": request.app.state.settings.public_dashboard,
        "query": dict(request.query_params),
        **context,
    }
    response = templates.TemplateResponse(request, template, full, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    auth.save_session(request, response)
    return response


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    titles = {403: "Not allowed", 404: "Not found"}
    return render(
        request,
        "error.html",
        {"title": titles.get(status_code, "Error"), "message": message},
        status_code,
    )


def _csv_cell(value: object) -> object:
    # Spreadsheets run cells that start with these as formulas; mention text is untrusted.
    if isinstance(value, str) and value[:1] in {"=", "+", "-", "@", "\t", "\r"}:
        return "'" + value
    if isinstance(value, dict | list):
        return str(value)
    return value


def csv_response(name: str, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(column)) for column in columns])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def _export(
    request: Request, name: str, tables: Mapping[str, tuple[Sequence[str], Sequence[Any]]]
) -> Response | None:
    """The CSV of one of the page's ``tables`` when ``?format=csv`` asks for it."""
    if request.query_params.get("format") != "csv":
        return None
    wanted = request.query_params.get("table") or next(iter(tables))
    if wanted not in tables:
        raise HTTPException(404, f"no table {wanted!r} on this page")
    columns, rows = tables[wanted]
    prefix = "demo-" if _is_demo(request) else ""
    suffix = "" if wanted == next(iter(tables)) else f"-{wanted}"
    return csv_response(f"{prefix}{name}{suffix}", columns, rows)


def csv_link(request: Request, table: str | None = None) -> str:
    params = {k: v for k, v in request.query_params.items() if k not in {"page", "format"}}
    params["format"] = "csv"
    if table:
        params["table"] = table
    return f"{request.url.path}?{urlencode(params)}"


def _profile(request: Request) -> Profile:
    name = request.query_params.get("profile") or DEFAULT_PROFILE
    if name not in builtin_profiles():
        raise HTTPException(404, f"no scoring profile {name!r}")
    return _load_profile(name)


@functools.cache
def _load_profile(name: str) -> Profile:
    return load_profile(name)


def _scored_day(request: Request, profile: Profile) -> dt.date | None:
    """The latest day the profile's scores were stored for, remembered as the API does."""
    return queries.latest_day(_store(request), profile.name)


def _month_expr(dialect: str, column: Any) -> ColumnElement[str]:
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-01")
    return func.strftime("%Y-%m-01", column)


@functools.cache
def _monthly_mentions(dialect: str, of_outputs: bool) -> Any:
    """The statement counting matched mentions per month and source (of the outputs bound
    as ``members``), built once per database kind: building it cost more than running it
    for an output with few mentions."""
    month = _month_expr(dialect, Event.occurred_at)
    query = (
        select(month.label("period"), Event.source_id, func.count(func.distinct(Event.id)))
        .join(EventMatch, EventMatch.event_id == Event.id)
        .group_by(month, Event.source_id)
        .order_by(month, Event.source_id)
    )
    if of_outputs:
        query = query.where(EventMatch.output_id.in_(bindparam("members", expanding=True)))
    return query


def _mentions_by_month(
    store: Store, output_ids: Sequence[int] | None = None, months: int = 24
) -> list[dict[str, Any]]:
    """Matched mentions per month and source (the last ``months`` months with mentions)."""
    query = _monthly_mentions(store.dialect, output_ids is not None)
    bound = {} if output_ids is None else {"members": list(output_ids)}
    with store.engine.connect() as connection:
        rows: list[dict[str, Any]] = [
            {"period": str(period), "source": str(source), "value": int(count)}
            for period, source, count in connection.execute(query, bound)
        ]
    periods = sorted({str(row["period"]) for row in rows})[-months:]
    keep = set(periods)
    return [row for row in rows if row["period"] in keep]


def _chart(spec: dict[str, Any], chart_id: str, label: str) -> dict[str, Any]:
    return {"id": chart_id, "spec": spec, "label": label}


def _group_tree(store: Store) -> dict[int, tuple[str, int | None, str]]:
    with store.engine.connect() as connection:
        return {
            int(i): (str(n), int(p) if p is not None else None, str(k))
            for i, n, p, k in connection.execute(
                select(Group.id, Group.name, Group.parent_id, Group.kind)
            )
        }


def _descendants(tree: Mapping[int, tuple[str, int | None, str]], group_id: int) -> set[int]:
    found = {group_id}
    changed = True
    while changed:
        changed = False
        for gid, (_, parent, _kind) in tree.items():
            if parent in found and gid not in found:
                found.add(gid)
                changed = True
    return found


def source_health(store: Store) -> list[dict[str, Any]]:
    """Each source's health and last run, as ``reachmeter sources list`` shows it."""
    try:
        registered = available_sources()
    except (ImportError, AttributeError, SourceError) as exc:
        # A broken plugin must not take the dashboard down: show the sources the store knows.
        logger.warning("cannot load the source plugins: %s", exc)
        registered = {}
    with store.session() as session:
        rows = {row.id: row for row in session.scalars(select(SourceRow))}
        last_runs: dict[str, Run] = {}
        latest = select(func.max(Run.id)).where(Run.source_id.is_not(None)).group_by(Run.source_id)
        for found in session.scalars(select(Run).where(Run.id.in_(latest))):
            if found.source_id:
                last_runs[found.source_id] = found
        result = []
        for source_id in sorted(set(registered) | set(rows)):
            row = rows.get(source_id)
            run = last_runs.get(source_id)
            if row is not None and not row.enabled:
                health, detail = "paused", row.paused_reason or "disabled"
            elif row is not None and row.consecutive_failures:
                health, detail = "failing", f"{row.consecutive_failures} failed run(s) in a row"
            elif run is None:
                health, detail = "never run", ""
            else:
                health, detail = "ok", ""
            cls = registered.get(source_id)
            result.append(
                {
                    "source": source_id,
                    "name": (cls.name if cls else (row.name if row else "")) or source_id,
                    "health": health,
                    "detail": detail,
                    "last_run_at": run.started_at.isoformat(timespec="minutes") if run else None,
                    "last_status": run.status if run else None,
                    "fetched": run.read if run else None,
                    "stored": run.stored if run else None,
                    "quarantined": run.quarantined if run else None,
                    "errors": run.errors if run else None,
                }
            )
    return result


# Access.

Reader = Annotated[User | None, Depends(auth.require_reader)]


@router.get("/static/vega.js")
def vega_bundle() -> Response:
    """Vega, Vega-Lite and vega-embed, served by the dashboard itself (no CDN)."""
    return Response(
        charts.javascript_bundle(),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    return render(request, "login.html", {"title": "Log in", "next": _local_path(next)})


@router.post("/login")
def login(
    request: Request,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    auth.verify_csrf(request, csrf_token)
    user = auth.authenticate(_store(request), email, password)
    if user is None:
        return render(
            request,
            "login.html",
            {
                "title": "Log in",
                "next": _local_path(next),
                "error": "Wrong e-mail address or password.",
                "email": email,
            },
            status_code=400,
        )
    auth.log_in(request, user)
    response = RedirectResponse(_local_path(next), status_code=303)
    auth.save_session(request, response)
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    auth.verify_csrf(request, csrf_token)
    auth.log_out(request)
    response = RedirectResponse("/", status_code=303)
    auth.save_session(request, response)
    return response


# Overview.


def _kept(
    request: Request, key: tuple[Any, ...], compute: Callable[[], T], ttl: float = SUMMARY_TTL
) -> T:
    """``compute()``, kept per application for ``ttl`` seconds under ``key``."""
    state = request.app.state
    kept: dict[tuple[Any, ...], tuple[float, Any]] = getattr(state, "kept", None) or {}
    now = time.monotonic()
    found = kept.get(key)
    if found is not None and found[0] > now:
        value: T = found[1]
        return value
    value = compute()
    state.kept = {
        **{k: v for k, v in kept.items() if v[0] > now},
        key: (now + ttl, value),
    }
    return value


def _summary(request: Request) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The store's counts and its mentions per month, kept for a few minutes: both read
    every event, which on a large store takes seconds."""
    state = request.app.state
    cached: tuple[float, tuple[dict[str, Any], list[dict[str, Any]]]] | None = getattr(
        state, "summary", None
    )
    now = time.monotonic()
    if cached is not None and cached[0] > now:
        return cached[1]
    store = _store(request)
    summary = (store_counts(store), _mentions_by_month(store))
    state.summary = (now + SUMMARY_TTL, summary)
    return summary


def _latest_mentions(store: Store, limit: int) -> list[dict[str, Any]]:
    """The newest matched mentions: the newest of each source (through the events' index on
    source and time), merged."""
    found: list[dict[str, Any]] = []
    with store.engine.connect() as connection:
        sources = [
            str(s) for (s,) in connection.execute(select(Event.source_id).group_by(Event.source_id))
        ]
        for source in sources:
            found.extend(
                dict(row._mapping)
                for row in connection.execute(
                    select(
                        Event.id.label("event_id"),
                        Event.occurred_at,
                        Event.source_id,
                        Event.subj_author.label("author"),
                        Event.subj_id,
                        EventMatch.output_id,
                        Output.title,
                    )
                    .join(EventMatch, EventMatch.event_id == Event.id)
                    .join(Output, Output.id == EventMatch.output_id)
                    .where(Event.source_id == source)
                    .order_by(Event.occurred_at.desc(), Event.id.desc())
                    .limit(limit)
                )
            )
    found.sort(key=lambda m: (m["occurred_at"], m["event_id"]), reverse=True)
    return found[:limit]


@router.get("/")
def overview(request: Request, user: Reader) -> Response:
    store = _store(request)
    profile = _profile(request)
    day = _scored_day(request, profile)
    counts, series = _summary(request)
    top = top_scores(store, profile.name, day, 10) if day else []
    health = source_health(store)
    latest = _latest_mentions(store, 10)
    totals = [
        {"what": name.replace("_", " "), "count": counts["tables"][name]}
        for name in (
            "outputs",
            "people",
            "groups",
            "accounts",
            "events",
            "events_matched",
            "observations",
            "scores",
        )
    ]
    top_rows = [
        {
            "rank": rank,
            "output_id": row["output_id"],
            "title": row["title"],
            "score": row["score"],
            "mentions": row["mentions"],
        }
        for rank, row in enumerate(top, start=1)
    ]
    exported = _export(
        request,
        "overview",
        {
            "totals": (["what", "count"], totals),
            "top": (["rank", "output_id", "title", "score", "mentions"], top_rows),
            "latest": (
                ["event_id", "occurred_at", "source_id", "author", "subj_id", "output_id", "title"],
                latest,
            ),
            "attention": (["period", "source", "value"], series),
            "sources": (
                ["source", "health", "detail", "last_run_at", "last_status", "errors"],
                health,
            ),
        },
    )
    if exported:
        return exported
    chart = _chart(
        charts.series_over_time(series, y_title="Mentions"),
        "chart-attention",
        "Mentions of tracked outputs per month, by source",
    )
    return render(
        request,
        "overview.html",
        {
            "title": "Overview",
            "profile": profile,
            "as_of": day,
            "totals": totals,
            "top": top_rows,
            "latest": latest,
            "health": health,
            "attention_chart": chart,
            "series": series,
            "exports": {n: csv_link(request, n) for n in ("totals", "top", "latest", "sources")},
        },
    )


# Outputs.


def _int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise HTTPException(400, f"{name} must be a whole number, not {value!r}") from None


def _float_param(request: Request, name: str) -> float | None:
    value = request.query_params.get(name, "").strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise HTTPException(400, f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise HTTPException(400, f"{name} must be a finite number")
    return number


def _date_param(request: Request, name: str) -> dt.date | None:
    value = request.query_params.get(name, "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, f"{name} must be a date like 2026-01-31, not {value!r}") from None


def outputs_query(request: Request, profile: Profile, day: dt.date | None) -> Any:
    """The outputs the filters in the query string select, with their stored scores."""
    store = _store(request)
    params = request.query_params
    if day is not None:
        query = select(
            Output.id,
            Output.title,
            Output.type,
            Output.venue,
            Output.published_on,
            Score.score,
            Score.mentions,
        ).join(
            Score,
            (Score.output_id == Output.id)
            & (Score.profile_name == profile.name)
            & (Score.as_of == day),
        )
    else:
        query = select(
            Output.id,
            Output.title,
            Output.type,
            Output.venue,
            Output.published_on,
            literal(None).label("score"),
            literal(None).label("mentions"),
        )
    query = query.where(Output.merged_into_id.is_(None))
    if kind := params.get("type"):
        query = query.where(Output.type == kind)
    if text := params.get("q", "").strip():
        query = query.where(Output.title.ilike(f"%{text}%"))
    if (person := _int_param(request, "person")) is not None:
        query = query.where(
            Output.id.in_(select(Authorship.output_id).where(Authorship.person_id == person))
        )
    if (group := _int_param(request, "group")) is not None:
        groups = _descendants(_group_tree(store), group)
        query = query.where(
            Output.id.in_(
                select(Authorship.output_id)
                .join(PersonGroup, PersonGroup.person_id == Authorship.person_id)
                .where(PersonGroup.group_id.in_(sorted(groups)))
            )
        )
    if source := params.get("source"):
        query = query.where(
            Output.id.in_(
                select(EventMatch.output_id)
                .join(Event, Event.id == EventMatch.event_id)
                .where(Event.source_id == source)
            )
        )
    if (since := _date_param(request, "from")) is not None:
        query = query.where(Output.published_on >= since)
    if (until := _date_param(request, "to")) is not None:
        query = query.where(Output.published_on <= until)
    if day is not None:
        if (low := _float_param(request, "min_score")) is not None:
            query = query.where(Score.score >= low)
        if (high := _float_param(request, "max_score")) is not None:
            query = query.where(Score.score <= high)
    return query


def _sort(request: Request, day: dt.date | None) -> tuple[str, str]:
    sort = request.query_params.get("sort") or ("score" if day else "title")
    if sort not in SORTS or (day is None and sort in {"score", "mentions"}):
        raise HTTPException(400, f"cannot sort by {sort!r}: use one of {', '.join(SORTS)}")
    default_dir = "asc" if sort in {"title", "type"} else "desc"
    direction = request.query_params.get("dir") or default_dir
    if direction not in {"asc", "desc"}:
        raise HTTPException(400, "dir must be asc or desc")
    return sort, direction


def _facets(request: Request) -> dict[str, Any]:
    """The choices of the outputs filters, kept for a minute: listing the sources that have
    mentions reads the whole events index."""
    state = request.app.state
    cached: tuple[float, dict[str, Any]] | None = getattr(state, "facets", None)
    now = time.monotonic()
    if cached is not None and cached[0] > now:
        return cached[1]
    store = _store(request)
    with store.engine.connect() as connection:
        types = [
            str(t)
            for (t,) in connection.execute(
                select(Output.type).where(Output.merged_into_id.is_(None)).distinct()
            )
        ]
        people = [
            (int(i), str(n))
            for i, n in connection.execute(select(Person.id, Person.name).order_by(Person.name))
        ]
        sources = [
            str(s) for (s,) in connection.execute(select(SourceRow.id).order_by(SourceRow.id))
        ]
        event_sources = [str(s) for (s,) in connection.execute(select(Event.source_id).distinct())]
    tree = _group_tree(store)
    facets = {
        "types": sorted(types),
        "people": people,
        "groups": sorted(((gid, name) for gid, (name, _p, _k) in tree.items()), key=lambda g: g[1]),
        "sources": sorted(set(sources) | set(event_sources)),
    }
    state.facets = (now + FACETS_TTL, facets)
    return facets


async def _in_turn(request: Request, page: Callable[..., Response], *args: Any) -> Response:
    """A much-visited page, built in the event loop on SQLite (``web.scheduling``); its CSV
    export, which reads every row, on a worker thread."""
    if request.query_params.get("format") == "csv":
        return await run_in_threadpool(page, request, *args)
    return await run_read(_store(request), page, request, *args)


@router.get("/outputs")
async def outputs(request: Request, user: Reader) -> Response:
    return await _in_turn(request, _outputs_page)


def _outputs_page(request: Request) -> Response:
    store = _store(request)
    profile = _profile(request)
    day = _scored_day(request, profile)
    sort, direction = _sort(request, day)
    query = outputs_query(request, profile, day)
    column = SORTS[sort]
    ordered = column.asc().nulls_last() if direction == "asc" else column.desc().nulls_last()
    query = query.order_by(ordered, Output.id)
    columns = ["output_id", "title", "type", "venue", "published_on", "score", "mentions"]

    def as_row(row: Any) -> dict[str, Any]:
        return {
            "output_id": row.id,
            "title": row.title,
            "type": row.type,
            "venue": row.venue,
            "published_on": row.published_on.isoformat() if row.published_on else None,
            "score": row.score,
            "mentions": row.mentions,
        }

    if request.query_params.get("format") == "csv":
        with store.engine.connect() as connection:
            rows = [as_row(row) for row in connection.execute(query)]
        return _export(request, "outputs", {"outputs": (columns, rows)}) or Response()
    page = max(_int_param(request, "page") or 1, 1)
    base = {k: v for k, v in request.query_params.items() if k != "page"}

    def count() -> int:
        # Counted up to a cap: an exact count of a large store costs more than the page.
        counted = query.with_only_columns(Output.id).order_by(None).limit(COUNT_CAP + 1)
        with store.engine.connect() as connection:
            found = connection.execute(select(func.count()).select_from(counted.subquery()))
            return int(found.scalar() or 0)

    # The same filters are counted once every few seconds, not on every page turn or sort.
    filters = tuple(sorted((k, v) for k, v in base.items() if k not in {"sort", "dir"}))
    total = _kept(request, ("outputs-count", profile.name, day, filters), count, COUNT_TTL)
    with store.engine.connect() as connection:
        fetched = [
            as_row(row)
            for row in connection.execute(query.limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE))
        ]
    rows = fetched[:PAGE_SIZE]
    more = len(fetched) > PAGE_SIZE
    pages = max(math.ceil(min(total, COUNT_CAP) / PAGE_SIZE), 1)

    def page_link(number: int) -> str:
        return "/outputs?" + urlencode({**base, "page": number})

    def sort_link(name: str) -> str:
        flip = "asc" if (sort == name and direction == "desc") else "desc"
        if sort != name:
            flip = "asc" if name in {"title", "type"} else "desc"
        params = {k: v for k, v in base.items() if k not in {"sort", "dir"}}
        return "/outputs?" + urlencode({**params, "sort": name, "dir": flip})

    return render(
        request,
        "outputs.html",
        {
            "title": "Outputs",
            "profile": profile,
            "as_of": day,
            "rows": rows,
            "total": min(total, COUNT_CAP),
            "more_than": total > COUNT_CAP,
            "page": page,
            "pages": pages,
            "prev_link": page_link(page - 1) if page > 1 else None,
            "next_link": page_link(page + 1) if more else None,
            "sort": sort,
            "direction": direction,
            "sort_link": sort_link,
            "facets": _facets(request),
            "exports": csv_link(request),
        },
    )


# The output page's statements, built once (building one costs more than running it); values
# are bound when they run.
_IDENTIFIERS = (
    select(OutputIdentifier.scheme, OutputIdentifier.value)
    .where(OutputIdentifier.output_id.in_(bindparam("ids", expanding=True)))
    .order_by(OutputIdentifier.scheme, OutputIdentifier.value)
)
_AUTHORS = (
    select(Person.id, Person.name)
    .join(Authorship, Authorship.person_id == Person.id)
    .where(Authorship.output_id == bindparam("output_id"))
    .order_by(Authorship.position.nulls_last(), Person.name)
)
_MENTIONS = (
    select(
        Event.id,
        Event.event_key,
        Event.source_id,
        author_expr.label("author"),
        Event.subj_id,
        Event.relation_type_id,
        Event.occurred_at,
        Event.subj,
        Event.evidence_url,
        EventMatch.method,
        EventMatch.verification,
        EventMatch.identifier,
        Evidence.source_id.label("evidence_source"),
        Evidence.request_url,
        Evidence.payload_sha256,
        Evidence.collected_at,
    )
    .join(EventMatch, EventMatch.event_id == Event.id)
    .join(Evidence, Evidence.id == Event.evidence_id)
    .where(EventMatch.output_id.in_(bindparam("members", expanding=True)))
    .order_by(Event.occurred_at.desc(), Event.id.desc())
)
_NEWEST_MENTIONS = _MENTIONS.limit(bindparam("rows"))
_MENTIONS_COUNTED = select(func.count(func.distinct(EventMatch.event_id))).where(
    EventMatch.output_id.in_(bindparam("members", expanding=True))
)
_DELETED_EVENTS = select(Correction.target_key).where(
    Correction.target_kind == "event",
    Correction.action == "deleted",
    Correction.target_key.in_(bindparam("keys", expanding=True)),
)
_OPEN_REQUESTS = select(func.count()).where(CorrectionRequest.output_id == bindparam("output_id"))


def _output_facts(store: Store, output_id: int) -> tuple[dict[str, Any], list[int]]:
    """The output, its identifiers and authors, and its members (itself and the outputs
    merged into it); 404 when there is no such output."""
    with store.engine.connect() as connection:
        row = connection.execute(queries.OUTPUT_ROW, {"output_id": output_id}).first()
        if row is None:
            raise HTTPException(404, f"no output with id {output_id}")
        members = queries.members(connection, output_id)
        identifiers = [
            f"{scheme}:{value}"
            for scheme, value in connection.execute(_IDENTIFIERS, {"ids": members})
        ]
        authors = [
            {"person_id": int(i), "name": str(n)}
            for i, n in connection.execute(_AUTHORS, {"output_id": output_id})
        ]
    output = {
        "id": int(row.id),
        "title": row.title,
        "type": row.type,
        "venue": row.venue,
        "published_on": row.published_on.isoformat() if row.published_on else None,
        "merged_into_id": row.merged_into_id,
        "merged_from": [m for m in members if m != output_id],
        "identifiers": identifiers,
        "authors": authors,
    }
    return output, members


def _score_tables(stored: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    sources = (stored.get("breakdown") or {}).get("sources", {})
    part_keys = ("count", "weight", "points", "capped", "category")
    context_keys = ("count", "mean", "rank", "higher_than", "pct", "reason")
    return {
        "breakdown": [
            {"source": name, **{key: part.get(key) for key in part_keys}}
            for name, part in sorted(
                sources.items(), key=lambda kv: (-float(kv[1].get("points") or 0.0), kv[0])
            )
        ],
        "context": [
            {"group": name, **{key: values.get(key) for key in context_keys}}
            for name, values in (stored.get("context") or {}).items()
        ],
        "history": [
            {"period": name, "change": value}
            for name, value in (stored.get("history") or {}).items()
        ],
    }


MENTION_COLUMNS = [
    "event_id",
    "occurred_at",
    "source_id",
    "author",
    "text",
    "subj_id",
    "relation_type_id",
    "flags",
    "deleted",
    "method",
    "verification",
    "identifier",
    "evidence_source",
    "evidence_request",
    "evidence_url",
    "evidence_sha256",
    "collected_at",
]


def _mentions(
    store: Store, members: Sequence[int], limit: int | None
) -> tuple[list[dict[str, Any]], int, list[dict[str, Any]]]:
    """The output's matched mentions, newest first (``limit`` of them), how many there are,
    and the output's stored flags (``scoring.flags.flags_of``, as ``explain`` shows them)."""
    bound = {"members": list(members)}
    with store.engine.connect() as connection:
        if limit is None:
            rows = connection.execute(_MENTIONS, bound).all()
        else:
            rows = connection.execute(_NEWEST_MENTIONS, {**bound, "rows": limit}).all()
        total = (
            len(rows)
            if limit is None or len(rows) < limit
            else int(connection.execute(_MENTIONS_COUNTED, bound).scalar() or 0)
        )
        flags = flags_of(connection, list(members))
        deleted = {
            str(key)
            for (key,) in connection.execute(_DELETED_EVENTS, {"keys": [r.event_key for r in rows]})
        }
    by_event: dict[int, list[str]] = defaultdict(list)
    for flag in flags:
        if flag["event_id"] is not None:
            by_event[int(flag["event_id"])].append(str(flag["kind"]))
    mentions = []
    for r in rows:
        subj = r.subj if isinstance(r.subj, dict) else {}
        title = subj.get("title")
        mentions.append(
            {
                "event_id": int(r.id),
                "occurred_at": r.occurred_at.isoformat(),
                "source_id": r.source_id,
                "author": r.author,
                "text": title if isinstance(title, str) else None,
                "subj_id": r.subj_id,
                "relation_type_id": r.relation_type_id,
                "flags": ", ".join(by_event.get(int(r.id), [])),
                "deleted": r.event_key in deleted,
                "method": r.method,
                "verification": r.verification,
                "identifier": r.identifier,
                "evidence_source": r.evidence_source,
                "evidence_request": r.request_url,
                "evidence_url": r.evidence_url,
                "evidence_sha256": r.payload_sha256,
                "collected_at": r.collected_at.isoformat(),
            }
        )
    return mentions, total, flags


@router.get("/outputs/{output_id}")
async def output_page(request: Request, output_id: int, user: Reader) -> Response:
    return await _in_turn(request, _output_page, output_id)


def _output_page(request: Request, output_id: int) -> Response:
    store = _store(request)
    profile = _profile(request)
    day = _scored_day(request, profile)
    output, members = _output_facts(store, output_id)
    stored = (read_score(store, output_id, profile.name, day) if day else None) or {}
    tables = _score_tables(stored)
    show_all = request.query_params.get("mentions") == "all" or (
        request.query_params.get("format") == "csv"
    )
    mentions, total, flags = _mentions(store, members, None if show_all else MENTIONS_SHOWN)
    flag_rows = [
        {
            "kind": f["kind"],
            "event_id": f["event_id"],
            "source_id": f["source_id"],
            "author": f["subj_author"],
            "applied": f["kind"] in profile.flags.exclude,
            "detail": f["detail"],
        }
        for f in flags
    ]
    exported = _export(
        request,
        f"output-{output_id}",
        {
            "mentions": (MENTION_COLUMNS, mentions),
            "breakdown": (
                ["source", "count", "weight", "points", "capped", "category"],
                tables["breakdown"],
            ),
            "context": (
                ["group", "count", "mean", "rank", "higher_than", "pct", "reason"],
                tables["context"],
            ),
            "history": (["period", "change"], tables["history"]),
            "flags": (["kind", "event_id", "source_id", "author", "applied", "detail"], flag_rows),
        },
    )
    if exported:
        return exported
    with store.engine.connect() as connection:
        requests = int(connection.execute(_OPEN_REQUESTS, {"output_id": output_id}).scalar() or 0)
    if total > MENTIONS_SHOWN:  # a much-mentioned output: its timeline reads thousands of rows
        series = _kept(
            request,
            ("output-timeline", output_id),
            lambda: _mentions_by_month(store, members, months=10_000),
        )
    else:
        series = _mentions_by_month(store, members, months=10_000)
    donut = _chart(
        charts.source_donut(
            {row["source"]: float(row["points"] or 0.0) for row in tables["breakdown"]}
        ),
        "chart-donut",
        "Score breakdown by source",
    )
    over_time = _chart(
        charts.series_over_time(series, y_title="Mentions"),
        "chart-timeline",
        "Mentions per month, by source",
    )
    params = {k: v for k, v in request.query_params.items() if k != "mentions"}
    return render(
        request,
        "output.html",
        {
            "title": output["title"] or f"Output {output_id}",
            "output": output,
            "authors": output["authors"],
            "profile": profile,
            "stored": stored,
            **tables,
            "mentions": mentions,
            "mentions_total": total,
            "all_mentions_link": None
            if show_all or total <= len(mentions)
            else f"/outputs/{output_id}?{urlencode({**params, 'mentions': 'all'})}",
            "explain_link": f"/outputs/{output_id}/explain"
            + (f"?{urlencode(params)}" if params else ""),
            "flags": flag_rows,
            "donut": donut,
            "timeline": over_time,
            "requests": requests,
            "reported": request.query_params.get("reported") == "1",
            "exports": {
                n: csv_link(request, n) for n in ("mentions", "breakdown", "context", "flags")
            },
        },
    )


EXPLAIN_COLUMNS = [
    "event_id",
    "occurred_at",
    "source_id",
    "kind",
    "author",
    "counted",
    "points",
    "why_not",
    "flags",
]


@router.get("/outputs/{output_id}/explain")
def output_explain(request: Request, output_id: int, user: Reader) -> Response:
    """Every number behind a score, as ``reachmeter explain`` gives it: which mentions and
    observations counted, for how many points, and why the others did not."""
    store = _store(request)
    profile = _profile(request)
    try:
        explained = explain_output(store, output_id, profile, _scored_day(request, profile))
    except ExplainError as exc:
        raise HTTPException(404, str(exc)) from exc
    events = [
        {
            "event_id": e["event_id"],
            "occurred_at": e["occurred_at"],
            "source_id": e["source_id"],
            "kind": e["kind"],
            "author": e["author"],
            "counted": e["counted"],
            "points": e["points"],
            "why_not": "; ".join(e["why_not"]),
            "flags": ", ".join(e["flags"]),
        }
        for e in explained["events"]
    ]
    observations = [
        {
            "observation_id": o["observation_id"],
            "metric": o["metric"],
            "qualifier": o["qualifier"],
            "source_id": o["source_id"],
            "value": o["value"],
            "period_start": o["period"][0],
            "period_end": o["period"][1],
            "counted": o["counted"],
        }
        for o in explained["observations"]
    ]
    exported = _export(
        request,
        f"output-{output_id}-explain",
        {
            "events": (EXPLAIN_COLUMNS, events),
            "observations": (
                list(observations[0]) if observations else ["observation_id"],
                observations,
            ),
        },
    )
    if exported:
        return exported
    return render(
        request,
        "explain.html",
        {
            "title": f"Explain: {explained['output']['title'] or output_id}",
            "output": explained["output"],
            "explained": explained,
            "events": events,
            "observations": observations,
            "exports": {n: csv_link(request, n) for n in ("events", "observations")},
        },
    )


@router.post("/outputs/{output_id}/report")
def report_wrong_match(
    request: Request,
    output_id: int,
    user: Annotated[User, Depends(auth.require_role("viewer"))],
    reason: Annotated[str, Form(max_length=5000)] = "",
    event_id: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Record a reported wrong match as a correction request for an editor to review."""
    auth.verify_csrf(request, csrf_token)
    store = _store(request)
    event: int | None = None
    if event_id.strip():
        try:
            event = int(event_id)
        except ValueError:
            raise HTTPException(400, "event_id must be a mention's number") from None
    with store.session() as session:
        if session.get(Output, output_id) is None:
            raise HTTPException(404, f"no output with id {output_id}")
        if event is not None:
            matched = session.scalar(
                select(EventMatch.id).where(
                    EventMatch.event_id == event, EventMatch.output_id == output_id
                )
            )
            if matched is None:
                raise HTTPException(400, f"mention {event} is not matched to output {output_id}")
        session.add(
            CorrectionRequest(
                output_id=output_id,
                event_id=event,
                kind="wrong_match",
                reason=reason.strip(),
                user_id=user.id,
            )
        )
    return RedirectResponse(f"/outputs/{output_id}?reported=1#report", status_code=303)


# People.


@router.get("/people")
def people(request: Request, user: Reader) -> Response:
    store = _store(request)
    text = request.query_params.get("q", "").strip()
    group = _int_param(request, "group")
    count = func.count(Authorship.output_id)
    query = (
        select(Person.id, Person.name, Person.orcid, Person.role, count.label("outputs"))
        .outerjoin(Authorship, Authorship.person_id == Person.id)
        .group_by(Person.id, Person.name, Person.orcid, Person.role)
        .order_by(Person.name, Person.id)
    )
    if text:
        query = query.where(Person.name.ilike(f"%{text}%"))
    if group is not None:
        groups = _descendants(_group_tree(store), group)
        query = query.where(
            Person.id.in_(
                select(PersonGroup.person_id).where(PersonGroup.group_id.in_(sorted(groups)))
            )
        )
    with store.engine.connect() as connection:
        rows = [
            {
                "person_id": int(r.id),
                "name": r.name,
                "orcid": r.orcid,
                "role": r.role,
                "outputs": int(r.outputs),
            }
            for r in connection.execute(query)
        ]
        memberships: dict[int, list[str]] = defaultdict(list)
        for person_id, name in connection.execute(
            select(PersonGroup.person_id, Group.name)
            .join(Group, Group.id == PersonGroup.group_id)
            .order_by(Group.name)
        ):
            memberships[int(person_id)].append(str(name))
    for row in rows:
        row["groups"] = "; ".join(memberships.get(row["person_id"], []))
    columns = ["person_id", "name", "orcid", "role", "groups", "outputs"]
    exported = _export(request, "people", {"people": (columns, rows)})
    if exported:
        return exported
    tree = _group_tree(store)
    return render(
        request,
        "people.html",
        {
            "title": "People",
            "rows": rows,
            "groups": sorted(((g, v[0]) for g, v in tree.items()), key=lambda g: g[1]),
            "exports": csv_link(request),
        },
    )


def _components(result: Mapping[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    components = result["components"]
    labels = sorted({k for c in components.values() for k in c if k.startswith("pct_")})
    rows = [
        {"component": name, "value": entry["value"], "reason": entry.get("reason"), **entry}
        for name, entry in components.items()
    ]
    return labels, rows


def _titles(store: Store, ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted(set(ids))
    with store.engine.connect() as connection:
        return {
            int(i): str(t)
            for i, t in connection.execute(
                select(Output.id, Output.title).where(Output.id.in_(wanted))
            )
        }


# Reach: the same computation as ``reachmeter reach`` (``scoring.reach.reach_report``), with
# the organisation-wide data it starts from loaded once and kept for a few minutes, so a
# group page and the benchmarking of its sub-groups do not each read the whole store.


def _reach_basis(request: Request, profile_name: str, day: dt.date) -> reach.ReachBasis:
    state = request.app.state
    cache: dict[tuple[str, dt.date], tuple[float, reach.ReachBasis]] = (
        getattr(state, "reach", None) or {}
    )
    now = time.monotonic()
    found = cache.get((profile_name, day))
    if found is not None and found[0] > now:
        return found[1]
    basis = reach.ReachBasis(_store(request), profile_name, day)
    state.reach = {**cache, (profile_name, day): (now + SUMMARY_TTL, basis)}
    return basis


def person_reach(
    request: Request, profile_name: str, day: dt.date, person_id: int
) -> dict[str, Any]:
    """``reach_report(..., person_id=...)``, from the kept basis."""
    return _reach_basis(request, profile_name, day).person(person_id)


def group_reach(
    request: Request, profile_name: str, day: dt.date, group_ids: Sequence[int]
) -> dict[int, dict[str, Any]]:
    """``reach_report(..., group_id=...)`` of each group, from the kept basis."""
    basis = _reach_basis(request, profile_name, day)
    return {group_id: basis.group(group_id) for group_id in group_ids}


@router.get("/people/{person_id}")
def person_page(request: Request, person_id: int, user: Reader) -> Response:
    store = _store(request)
    profile = _profile(request)
    day = _scored_day(request, profile)
    with store.session() as session:
        person = session.get(Person, person_id)
        if person is None:
            raise HTTPException(404, f"no person with id {person_id}")
        accounts = [
            {
                "account_id": a.id,
                "platform": a.platform,
                "handle": a.handle,
                "url": a.url,
            }
            for a in session.scalars(
                select(Account).where(Account.owner_person_id == person_id).order_by(Account.id)
            )
        ]
    result: dict[str, Any] | None = None
    labels: list[str] = []
    components: list[dict[str, Any]] = []
    if day is not None:
        result = person_reach(request, profile.name, day, person_id)
        labels, components = _components(result)
    with store.engine.connect() as connection:
        output_ids = [
            int(i)
            for (i,) in connection.execute(
                select(Authorship.output_id).where(Authorship.person_id == person_id)
            )
        ]
    scores = {int(o["output_id"]): o["score"] for o in (result or {}).get("outputs", [])}
    titles = _titles(store, output_ids)
    ordered = sorted(output_ids, key=lambda i: (-float(scores.get(i) or 0.0), i))
    outputs_rows = [
        {"output_id": i, "title": titles.get(i, ""), "score": scores.get(i)} for i in ordered
    ]
    group_names = {
        f"pct_group_{g['id']}": g["name"]
        for g in ((result or {}).get("person") or {}).get("groups", [])
    }
    exported = _export(
        request,
        f"person-{person_id}",
        {
            "components": (["component", "value", "reason", *labels], components),
            "outputs": (["output_id", "title", "score"], outputs_rows),
            "accounts": (["account_id", "platform", "handle", "url"], accounts),
        },
    )
    if exported:
        return exported
    series = _mentions_by_month(store, output_ids) if output_ids else []
    return render(
        request,
        "person.html",
        {
            "title": person.name,
            "person": person,
            "profile": profile,
            "as_of": day,
            "labels": labels,
            "label_names": {
                "pct_organisation": "% organisation",
                **{k: f"% {v}" for k, v in group_names.items()},
            },
            "components": components,
            "outputs": outputs_rows,
            "accounts": accounts,
            "groups": ((result or {}).get("person") or {}).get("groups", []),
            "timeline": _chart(
                charts.series_over_time(series, y_title="Mentions"),
                "chart-person-timeline",
                "Mentions of their outputs per month, by source",
            ),
            "exports": {n: csv_link(request, n) for n in ("components", "outputs", "accounts")},
        },
    )


# Groups.


@router.get("/groups")
def groups(request: Request, user: Reader) -> Response:
    store = _store(request)
    tree = _group_tree(store)
    with store.engine.connect() as connection:
        direct = dict(
            connection.execute(
                select(PersonGroup.group_id, func.count()).group_by(PersonGroup.group_id)
            ).all()
        )
    children: dict[int | None, list[int]] = defaultdict(list)
    for gid, (_name, parent, _kind) in sorted(tree.items(), key=lambda kv: kv[1][0]):
        children[parent if parent in tree else None].append(gid)
    rows: list[dict[str, Any]] = []

    def walk(parent: int | None, depth: int) -> None:
        for gid in children.get(parent, []):
            name, parent_id, kind = tree[gid]
            rows.append(
                {
                    "group_id": gid,
                    "name": name,
                    "kind": kind,
                    "parent_id": parent_id,
                    "depth": depth,
                    "members": int(direct.get(gid, 0)),
                }
            )
            walk(gid, depth + 1)

    walk(None, 0)
    exported = _export(
        request, "groups", {"groups": (["group_id", "name", "kind", "parent_id", "members"], rows)}
    )
    if exported:
        return exported
    return render(
        request, "groups.html", {"title": "Groups", "rows": rows, "exports": csv_link(request)}
    )


@router.get("/groups/{group_id}")
def group_page(request: Request, group_id: int, user: Reader) -> Response:
    store = _store(request)
    profile = _profile(request)
    day = _scored_day(request, profile)
    tree = _group_tree(store)
    if group_id not in tree:
        raise HTTPException(404, f"no group with id {group_id}")
    name, parent, kind = tree[group_id]
    subgroups = sorted(
        (gid for gid, (_n, p, _k) in tree.items() if p == group_id), key=lambda g: tree[g][0]
    )
    labels: list[str] = []
    components: list[dict[str, Any]] = []
    benchmark: list[dict[str, Any]] = []
    output_ids: list[int] = []
    if day is not None:
        reports = group_reach(request, profile.name, day, [group_id, *subgroups])
        result = reports[group_id]
        labels, components = _components(result)
        output_ids = [int(o) for o in result["outputs"]]
        for gid in subgroups:
            sub = reports[gid]
            benchmark.append(
                {
                    "group_id": gid,
                    "name": tree[gid][0],
                    "outputs": len(sub["outputs"]),
                    **{c: sub["components"][c]["value"] for c in COMPONENTS},
                    **{f"pct_{c}": sub["components"][c].get("pct_groups") for c in COMPONENTS},
                }
            )
    exported = _export(
        request,
        f"group-{group_id}",
        {
            "components": (["component", "value", "reason", *labels], components),
            "subgroups": (["group_id", "name", "outputs", *COMPONENTS], benchmark),
        },
    )
    if exported:
        return exported
    series = _kept(
        request,
        ("group-timeline", group_id),
        lambda: _mentions_by_month(store, output_ids) if output_ids else [],
    )
    bench_chart = None
    if benchmark:
        spec = charts.series_over_time(
            [{"group": b["name"], "value": b["attention_total"] or 0} for b in benchmark],
            x="group",
            colour=None,
            y_title="Attention (sum of scores)",
            height=200,
        )
        spec["encoding"]["x"] = {"field": "group", "type": "nominal", "title": None, "sort": "-y"}
        spec["encoding"]["tooltip"][0] = {"field": "group", "type": "nominal"}
        bench_chart = _chart(
            spec,
            "chart-benchmark",
            "Attention of each subgroup",
        )
    return render(
        request,
        "group.html",
        {
            "title": name,
            "group": {"id": group_id, "name": name, "kind": kind, "parent_id": parent},
            "parent_name": tree[parent][0] if parent in tree else None,
            "profile": profile,
            "as_of": day,
            "labels": labels,
            "components": components,
            "benchmark": benchmark,
            "component_names": COMPONENTS,
            "outputs_count": len(output_ids),
            "bench_chart": bench_chart,
            "timeline": _chart(
                charts.series_over_time(series, y_title="Mentions"),
                "chart-group-timeline",
                "Mentions of the group's outputs per month, by source",
            ),
            "exports": {n: csv_link(request, n) for n in ("components", "subgroups")},
        },
    )


# Accounts.


@router.get("/accounts")
def accounts(request: Request, user: Reader) -> Response:
    store = _store(request)
    with store.engine.connect() as connection:
        rows = [
            {
                "account_id": int(r.id),
                "platform": r.platform,
                "handle": r.handle,
                "url": r.url,
                "owner": r.name or ("organisation" if r.owned_by_org else ""),
                "owner_person_id": r.owner_person_id,
            }
            for r in connection.execute(
                select(
                    Account.id,
                    Account.platform,
                    Account.handle,
                    Account.url,
                    Account.owned_by_org,
                    Account.owner_person_id,
                    Person.name,
                )
                .outerjoin(Person, Person.id == Account.owner_person_id)
                .order_by(Account.platform, Account.handle)
            )
        ]
    if platform := request.query_params.get("platform"):
        rows = [r for r in rows if r["platform"] == platform]
    columns = ["account_id", "platform", "handle", "url", "owner", "owner_person_id"]
    exported = _export(request, "accounts", {"accounts": (columns, rows)})
    if exported:
        return exported
    return render(
        request, "accounts.html", {"title": "Accounts", "rows": rows, "exports": csv_link(request)}
    )


KPI_NAMES = {
    "engagement_rate_impr": "Engagement rate (impressions) %",
    "engagement_rate_reach": "Engagement rate (reach) %",
    "engagement_rate_followers": "Engagement rate (followers) %",
    "follower_growth_rate": "Follower growth %",
    "posting_frequency": "Posts per day",
    "average_reach_per_post": "Average reach per post",
    "share_of_voice": "Share of voice %",
}


@router.get("/accounts/{account_id}")
def account_page(request: Request, account_id: int, user: Reader) -> Response:
    store = _store(request)
    end = _date_param(request, "to") or dt.datetime.now(dt.UTC).date()
    start = _date_param(request, "from") or end - dt.timedelta(days=364)
    if start > end:
        raise HTTPException(400, "from must not be after to")
    try:
        report = account_report(store, account_id, start, end)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc
    kpis = [
        {"period": row["period"][0][:7], **{k: row.get(k) for k in KPI_NAMES}}
        for row in report["kpis"]
    ]
    exported = _export(request, f"account-{account_id}", {"kpis": (["period", *KPI_NAMES], kpis)})
    if exported:
        return exported
    chosen = request.query_params.get("kpi") or "engagement_rate_followers"
    if chosen not in KPI_NAMES:
        raise HTTPException(400, f"no KPI {chosen!r}")
    series = [
        {"period": row["period"] + "-01", "value": row[chosen]}
        for row in kpis
        if row[chosen] is not None
    ]
    account = report["account"]
    owner = None
    if account.get("owner_person_id"):
        with store.session() as session:
            person = session.get(Person, account["owner_person_id"])
            owner = {"id": person.id, "name": person.name} if person else None
    return render(
        request,
        "account.html",
        {
            "title": f"{account['platform']} {account['handle']}",
            "account": account,
            "owner": owner,
            "kpis": kpis,
            "kpi_names": KPI_NAMES,
            "chosen": chosen,
            "start": start,
            "end": end,
            "kpi_chart": _chart(
                charts.series_over_time(series, colour=None, y_title=KPI_NAMES[chosen]),
                "chart-kpi",
                f"{KPI_NAMES[chosen]} per month",
            ),
            "exports": csv_link(request, "kpis"),
        },
    )


# Sources and methods.


@router.get("/sources")
def sources(request: Request, user: Reader) -> Response:
    store = _store(request)
    health = source_health(store)
    with store.session() as session:
        runs = [
            {
                "run_id": r.id,
                "kind": r.kind,
                "source_id": r.source_id,
                "started_at": r.started_at.isoformat(timespec="seconds"),
                "finished_at": r.finished_at.isoformat(timespec="seconds")
                if r.finished_at
                else None,
                "status": r.status,
                "read": r.read,
                "stored": r.stored,
                "duplicates": r.duplicates,
                "quarantined": r.quarantined,
                "errors": r.errors,
                "error": str((r.detail or {}).get("error") or ""),
            }
            for r in session.scalars(select(Run).order_by(Run.id.desc()).limit(50))
        ]
        quarantined = [
            {
                "origin": q.origin,
                "line": q.line,
                "reason": q.reason,
                "recorded_at": q.recorded_at.isoformat(timespec="seconds"),
            }
            for q in session.scalars(
                select(QuarantinedRecord).order_by(QuarantinedRecord.id.desc()).limit(50)
            )
        ]
    errors = [r for r in runs if r["errors"] or r["status"] not in {"ok", "running", "done"}]
    exported = _export(
        request,
        "sources",
        {
            "health": (list(health[0]) if health else ["source"], health),
            "runs": (list(runs[0]) if runs else ["run_id"], runs),
            "quarantine": (["origin", "line", "reason", "recorded_at"], quarantined),
        },
    )
    if exported:
        return exported
    return render(
        request,
        "sources.html",
        {
            "title": "Sources",
            "health": health,
            "runs": runs,
            "errors": errors,
            "quarantined": quarantined,
            "exports": {n: csv_link(request, n) for n in ("health", "runs", "quarantine")},
        },
    )


@router.get("/methods")
def methods(request: Request, user: Reader) -> Response:
    log = methods_log(_store(request))
    columns = ["profile", "version", "sha256", "changed_at", "description"]
    exported = _export(request, "methods", {"methods": (columns, log)})
    if exported:
        return exported
    return render(
        request,
        "methods.html",
        {
            "title": "Methods log",
            "rows": log,
            "profiles": builtin_profiles(),
            "exports": csv_link(request),
        },
    )
