"""The REST API under ``/api/v1``: the same numbers as the CLI and the pages.

Reads need what the dashboard needs (anonymous on a public dashboard, else a login or an
API token); writes need the ``editor`` role and an API token (``Authorization: Bearer``):
a browser's session cookie cannot write through the API, so the API needs no CSRF token.
Scores, explanations, reach and KPIs come from the same functions as ``reachmeter score``,
``explain``, ``reach`` and ``kpis``; exports from the same writers as ``reachmeter export``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import queue
import threading
from collections.abc import Callable, Iterator
from typing import IO, Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from reachmeter.imports.outputs import parse_author, parse_published
from reachmeter.matching.identifiers import IdentifierError, normalize
from reachmeter.scoring import methods_log, read_score
from reachmeter.scoring.accounts import account_report
from reachmeter.scoring.explain import (
    explain_account,
    explain_output,
    explain_person,
)
from reachmeter.scoring.export import write_scores
from reachmeter.scoring.reach import reach_report
from reachmeter.store import Store
from reachmeter.store.catalog import CatalogError, upsert_output
from reachmeter.store.export import export_events, export_outputs
from reachmeter.store.schema import EventMatch, Output
from reachmeter.store.schema_web import CorrectionRequest, User
from reachmeter.web import queries
from reachmeter.web.auth import require_reader, require_role
from reachmeter.web.queries import (
    AccountOut,
    Breakdown,
    CursorError,
    EventOut,
    GroupOut,
    NotFoundError,
    ObservationOut,
    OutputDetail,
    OutputFilters,
    OutputSort,
    OutputSummary,
    Page,
    PersonOut,
    ScoreOut,
    Scoring,
)
from reachmeter.web.scheduling import run_read

__all__ = ["router"]

MAX_ID = 2**63 - 1
_SLUG = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"
_PROFILE = r"^[a-z0-9][a-z0-9._-]{0,99}$"
_NO_NUL = r"^[^\x00]*$"

_bearer = HTTPBearer(
    auto_error=False,
    description="An API token (`reachmeter` CLI or the dashboard's account page).",
)
router = APIRouter(dependencies=[Depends(require_reader), Depends(_bearer)])

# -- shared parameters and errors ---------------------------------------------------------

Limit = Annotated[int, Query(ge=1, le=queries.MAX_LIMIT, description="Rows per page.")]
Cursor = Annotated[
    str | None,
    Query(
        max_length=2000,
        pattern=r"^[A-Za-z0-9_-]*$",
        description="`next_cursor` of the previous page; omit for the first page.",
    ),
]
OutputId = Annotated[int, Path(ge=1, le=MAX_ID, description="The output's id.")]
ProfileName = Annotated[
    str,
    Query(
        pattern=_PROFILE,
        description="Scoring profile: a shipped one (`default`, `altmetric-like`) or one "
        "in the methods log.",
    ),
]
AsOf = Annotated[
    dt.date | None,
    Query(description="Scores stored for this day (YYYY-MM-DD); default: the latest."),
]


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Lookup failures are 404s, bad cursors and values 422s, with the reason. (The scoring
    reports raise a plain ``LookupError`` for an unknown id; a ``KeyError`` or an
    ``IndexError`` is a bug and stays a 500.)"""
    try:
        yield
    except (KeyError, IndexError):
        raise
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc
    except CursorError as exc:
        raise HTTPException(422, str(exc)) from exc


async def scoring(
    request: Request, profile: ProfileName = "default", as_of: AsOf = None
) -> Scoring:
    """The profile and date a request reads; 422 for a profile nobody knows. (Mostly from
    memory: a shipped profile and the remembered latest day need no query.)"""
    try:
        return queries.resolve_scoring(_store(request), profile, as_of)
    except NotFoundError as exc:
        raise HTTPException(422, str(exc)) from exc


ScoringDep = Annotated[Scoring, Depends(scoring)]


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _model(value: BaseModel, *, exclude_unset: bool = False) -> Response:
    """A response model serialised straight to JSON (it was validated when built)."""
    return Response(
        value.model_dump_json(exclude_unset=exclude_unset), media_type="application/json"
    )


def _json(value: Any) -> Response:
    """``value`` serialised exactly as the CLI's ``--json`` prints it (without indentation)."""
    return Response(orjson.dumps(value), media_type="application/json")


def _token_editor(request: Request, user: Annotated[User, Depends(require_role("editor"))]) -> User:
    """An editor authenticated by an API token: cookies are sent by browsers on their own,
    tokens are not, so API writes cannot be forged by another site."""
    scheme = request.headers.get("authorization", "").partition(" ")[0]
    if scheme.lower() != "bearer":
        raise HTTPException(
            403, "API writes need an API token (Authorization: Bearer), not a browser session"
        )
    return user


Editor = Annotated[User, Depends(_token_editor)]

# -- outputs --------------------------------------------------------------------------------


@router.get("/outputs", response_model=Page[OutputSummary], tags=["outputs"])
async def list_outputs(
    request: Request,
    scored: ScoringDep,
    type: Annotated[
        str | None, Query(pattern=r"^[a-z-]{1,40}$", description="Output type, e.g. `dataset`.")
    ] = None,
    group: Annotated[
        int | None,
        Query(ge=1, le=MAX_ID, description="Outputs of this group's people (and sub-groups')."),
    ] = None,
    person: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Outputs this person authored.")
    ] = None,
    source: Annotated[
        str | None,
        Query(pattern=_SLUG, description="Outputs with a mention from this `source_id`."),
    ] = None,
    published_from: Annotated[
        dt.date | None, Query(description="Published on or after this day.")
    ] = None,
    published_to: Annotated[
        dt.date | None, Query(description="Published on or before this day.")
    ] = None,
    score_min: Annotated[
        float | None, Query(allow_inf_nan=False, description="Score at least this.")
    ] = None,
    score_max: Annotated[
        float | None, Query(allow_inf_nan=False, description="Score at most this.")
    ] = None,
    sort: Annotated[
        OutputSort,
        Query(description="Sort key; `score` lists unscored outputs last."),
    ] = "score",
    order: Annotated[
        Literal["asc", "desc"] | None,
        Query(description="Default: `desc` for score and date, `asc` otherwise."),
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """Tracked outputs (merged duplicates left out) with their stored scores, filtered,
    sorted and paginated."""
    filters = OutputFilters(
        type=type,
        group_id=group,
        person_id=person,
        source_id=source,
        published_from=published_from,
        published_to=published_to,
        score_min=score_min,
        score_max=score_max,
    )
    descending = None if order is None else order == "desc"
    store = _store(request)
    return await run_read(store, _listed, store, filters, scored, sort, descending, limit, cursor)


def _listed(
    store: Store,
    filters: OutputFilters,
    scored: Scoring,
    sort: OutputSort,
    descending: bool | None,
    limit: int,
    cursor: str | None,
) -> Response:
    with _errors():
        return _model(
            queries.list_outputs(
                store, filters, scored, sort=sort, descending=descending, limit=limit, cursor=cursor
            )
        )


class NewOutput(BaseModel):
    """An output to add, or to update when one of its identifiers is already known."""

    model_config = ConfigDict(extra="forbid")

    identifiers: list[Annotated[str, Field(min_length=1, max_length=2000)]] = Field(
        min_length=1, max_length=50, description="DOI, PMID, arXiv id, ISBN, URL, ..."
    )
    title: str | None = Field(default=None, max_length=5000)
    type: str | None = Field(default=None, max_length=40, description="article, dataset, ...")
    venue: str | None = Field(default=None, max_length=2000)
    published: str | None = Field(
        default=None, max_length=10, description="YYYY-MM-DD, YYYY-MM or YYYY."
    )
    authors: list[Annotated[str, Field(max_length=500)]] | None = Field(
        default=None, max_length=500, description="`Name`, an ORCID, or `Name (ORCID)`."
    )


@router.post(
    "/outputs",
    response_model=OutputDetail,
    response_model_exclude_unset=True,
    status_code=201,
    tags=["outputs"],
    responses={200: {"description": "An existing output was updated."}},
)
def add_output(
    request: Request, response: Response, body: NewOutput, editor: Editor, scored: ScoringDep
) -> OutputDetail:
    """Add an output (201), or update the one known by any of its identifiers (200), as
    ``reachmeter outputs add`` does. Needs the editor role and an API token."""
    store = _store(request)
    try:
        identifiers = [normalize(value) for value in body.identifiers]
        extra: dict[str, Any] = {}
        published_on = None
        if body.published:
            published_on, precision = parse_published(body.published)
            extra["published_precision"] = precision
        authors = [parse_author(a) for a in body.authors] if body.authors is not None else None
        with store.session() as session:
            output, created = upsert_output(
                session,
                identifiers=identifiers,
                title=body.title,
                type=body.type,
                venue=body.venue,
                published_on=published_on,
                extra=extra,
                authors=authors,
            )
            output_id = output.id
    except (IdentifierError, CatalogError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from exc
    queries.forget_merges()
    if not created:
        response.status_code = 200
    with _errors():
        return queries.get_output(store, output_id, scored)


@router.get(
    "/outputs/lookup",
    response_model=OutputDetail,
    response_model_exclude_unset=True,
    tags=["outputs"],
)
def lookup_output(
    request: Request,
    scored: ScoringDep,
    identifier: Annotated[
        str,
        Query(
            min_length=1,
            max_length=2000,
            pattern=_NO_NUL,
            description="Any spelling of a DOI, PMID, arXiv id, ISBN, Handle, URL, ...",
        ),
    ],
) -> Response:
    """The output known by an identifier (following merges)."""
    store = _store(request)
    with _errors():
        parsed = queries.parse_identifier(identifier)
        with store.engine.connect() as connection:
            found = queries.find_output_id(connection, parsed)
        if found is None:
            raise NotFoundError(f"no tracked output is known by {parsed}")
        return _model(queries.get_output(store, found, scored), exclude_unset=True)


@router.get(
    "/outputs/{output_id}",
    response_model=OutputDetail,
    response_model_exclude_unset=True,
    tags=["outputs"],
)
async def get_output(request: Request, output_id: OutputId, scored: ScoringDep) -> Response:
    """An output with its identifiers, authors, mentions per source and stored score."""
    store = _store(request)
    return await run_read(store, _output, store, output_id, scored)


def _output(store: Store, output_id: int, scored: Scoring) -> Response:
    with _errors():
        return _model(queries.get_output(store, output_id, scored), exclude_unset=True)


@router.get(
    "/outputs/{output_id}/score",
    response_model=ScoreOut,
    response_model_exclude_unset=True,
    tags=["scores"],
)
async def get_score(request: Request, output_id: OutputId, scored: ScoringDep) -> Response:
    """The stored score with its breakdown, context and history (``read_score``)."""
    store = _store(request)
    return await run_read(store, _score, store, output_id, scored)


def _score(store: Store, output_id: int, scored: Scoring) -> Response:
    found = (
        read_score(store, output_id, scored.profile, scored.as_of)
        if scored.as_of is not None
        else None
    )
    if found is None:
        with _errors():
            queries.get_output(store, output_id, Scoring(scored.profile, None))
        day = scored.as_of.isoformat() if scored.as_of else "any day"
        raise HTTPException(
            404, f"output {output_id} has no score under {scored.profile} for {day}"
        )
    return _model(ScoreOut.model_validate(found), exclude_unset=True)


@router.get("/outputs/{output_id}/events", response_model=Page[EventOut], tags=["outputs"])
async def output_events(
    request: Request, output_id: OutputId, limit: Limit = 100, cursor: Cursor = None
) -> Response:
    """The mentions matched to the output (or to outputs merged into it), by id."""
    store = _store(request)
    return await run_read(store, _events_of, store, output_id, limit, cursor)


def _events_of(store: Store, output_id: int, limit: int, cursor: str | None) -> Response:
    with _errors():
        return _model(queries.list_events(store, output_id=output_id, limit=limit, cursor=cursor))


@router.get(
    "/outputs/{output_id}/observations", response_model=Page[ObservationOut], tags=["outputs"]
)
def output_observations(
    request: Request, output_id: OutputId, limit: Limit = 100, cursor: Cursor = None
) -> Page[ObservationOut]:
    """Observations (citations, readers, usage) of any of the output's identifiers."""
    with _errors():
        return queries.list_observations(
            _store(request), output_id=output_id, limit=limit, cursor=cursor
        )


class NewCorrectionRequest(BaseModel):
    """A report that a figure is wrong, e.g. a mention that is not about the output."""

    model_config = ConfigDict(extra="forbid")

    event_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="The mention reported; it must be matched "
        "to the output."
    )  # fmt: skip
    kind: Literal["wrong_match", "other"] = "wrong_match"
    reason: str = Field(min_length=1, max_length=5000, description="What is wrong, and why.")


class CorrectionRequestOut(BaseModel):
    id: int
    output_id: int
    event_id: int | None
    kind: str
    reason: str
    status: str
    requested_at: dt.datetime


@router.post(
    "/outputs/{output_id}/corrections",
    response_model=CorrectionRequestOut,
    status_code=201,
    tags=["outputs"],
)
def request_correction(
    request: Request, output_id: OutputId, body: NewCorrectionRequest, editor: Editor
) -> CorrectionRequestOut:
    """Record a correction request for an editor to review; nothing is changed until then."""
    store = _store(request)
    with store.session() as session:
        if session.get(Output, output_id) is None:
            raise HTTPException(404, f"no output with id {output_id}")
        if body.event_id is not None:
            with store.engine.connect() as connection:
                members = queries.members(connection, output_id)
            matched = session.execute(
                select(EventMatch.id).where(
                    EventMatch.event_id == body.event_id, EventMatch.output_id.in_(members)
                )
            ).first()
            if matched is None:
                raise HTTPException(
                    422, f"event {body.event_id} is not matched to output {output_id}"
                )
        row = CorrectionRequest(
            output_id=output_id,
            event_id=body.event_id,
            kind=body.kind,
            reason=body.reason,
            user_id=editor.id,
            status="open",
            requested_at=dt.datetime.now(dt.UTC),
        )
        session.add(row)
        session.flush()
        return CorrectionRequestOut(
            id=row.id,
            output_id=row.output_id,
            event_id=row.event_id,
            kind=row.kind,
            reason=row.reason,
            status=row.status,
            requested_at=row.requested_at,
        )


# -- scores ---------------------------------------------------------------------------------


class ProfileInfo(BaseModel):
    name: str
    latest_as_of: dt.date | None = Field(description="The latest day scores were stored for.")


@router.get("/profiles", response_model=list[ProfileInfo], tags=["scores"])
def list_profiles(request: Request) -> list[ProfileInfo]:
    """The scoring profiles known to the store and the latest day each was computed for."""
    store = _store(request)
    return [
        ProfileInfo(name=name, latest_as_of=queries.latest_day(store, name))
        for name in queries.known_profiles(store)
    ]


@router.get(
    "/scores",
    response_model=Page[ScoreOut],
    response_model_exclude_unset=True,
    tags=["scores"],
)
def list_scores(
    request: Request, scored: ScoringDep, limit: Limit = 100, cursor: Cursor = None
) -> Any:
    """Every stored score of a profile for a day, by output id (as ``scores export``)."""
    with _errors():
        return queries.list_scores(_store(request), scored, limit=limit, cursor=cursor)


class MethodEntry(BaseModel):
    profile: str
    version: str
    sha256: str
    changed_at: dt.datetime
    description: str


@router.get("/scores/methods", response_model=list[MethodEntry], tags=["scores"])
def scoring_methods(request: Request) -> Any:
    """The methods log: every profile content used for scoring, from when it was used."""
    return methods_log(_store(request))


# -- explain --------------------------------------------------------------------------------


class ExplainedEvent(BaseModel):
    event_id: int
    event_key: str
    source_id: str
    kind: str
    author: str | None
    subj_id: str
    relation_type_id: str
    occurred_at: str
    text: str | None
    counted: bool
    why_not: list[str] = Field(description="Why the mention does not count (empty: it does).")
    points: float
    flags: list[str]
    match: dict[str, Any] = Field(description="How it was matched: identifier, method, ...")
    evidence: dict[str, Any] = Field(description="Where it was seen: source, request, hash.")


class OutputExplanation(BaseModel):
    """Every number behind an output's score (``reachmeter explain ID --json``)."""

    kind: Literal["output"]
    output: dict[str, Any]
    profile: dict[str, Any]
    as_of: str
    score: float = Field(description="Recomputed from the facts listed here.")
    stored: ScoreOut | None = Field(description="The stored score, for comparison.")
    breakdown: Breakdown
    events: list[ExplainedEvent]
    observations: list[dict[str, Any]]
    flags: list[dict[str, Any]]


class ReachComponent(BaseModel):
    model_config = ConfigDict(extra="allow")

    value: float | None
    reason: str | None = Field(default=None, description="Why there is no value.")


class ReachReport(BaseModel):
    """A person's or group's reach, component by component, with percentiles (`pct_*`);
    a person's also lists the `inputs` (observations and events) of each component."""

    model_config = ConfigDict(extra="allow")

    kind: Literal["person", "group"]
    person: dict[str, Any] | None = None
    group: dict[str, Any] | None = None
    profile: str
    as_of: str
    components: dict[str, ReachComponent]
    outputs: list[Any]
    accounts: list[int] | None = None


class AccountReport(BaseModel):
    """An account's KPIs per calendar month, with the observations used (and, explained,
    their evidence and the account's own mentions of tracked outputs)."""

    model_config = ConfigDict(extra="allow")

    kind: Literal["account"]
    account: dict[str, Any]
    kpis: list[dict[str, Any]]
    observations: list[dict[str, Any]]


def _explained(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    return {200: {"model": model, "description": "Successful Response"}}


@router.get(
    "/explain/output/{output_id}",
    response_model=None,
    responses=_explained(OutputExplanation),
    tags=["explain"],
)
def explain_an_output(request: Request, output_id: OutputId, scored: ScoringDep) -> Response:
    """Everything behind an output's score: each event and observation, whether it counts
    and why not, and its evidence."""
    store = _store(request)
    with _errors():
        profile = queries.profile_object(store, scored.profile)
        return _json(explain_output(store, output_id, profile, scored.as_of))


def _scored_day(scored: Scoring) -> dt.date:
    if scored.as_of is None:
        raise HTTPException(
            404, f"no stored scores for profile {scored.profile}: run `reachmeter score` first"
        )
    return scored.as_of


@router.get(
    "/explain/person/{person_id}",
    response_model=None,
    responses=_explained(ReachReport),
    tags=["explain"],
)
@router.get(
    "/people/{person_id}/reach",
    response_model=None,
    responses=_explained(ReachReport),
    tags=["people"],
)
def person_reach(
    request: Request,
    person_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The person's id.")],
    scored: ScoringDep,
) -> Response:
    """A person's reach: each component with its percentile in the organisation and in each
    of their groups, and the observations and events behind it (``reachmeter reach person ID
    --json``)."""
    with _errors():
        return _json(
            explain_person(_store(request), person_id, scored.profile, _scored_day(scored))
        )


@router.get(
    "/explain/group/{group_id}",
    response_model=None,
    responses=_explained(ReachReport),
    tags=["explain"],
)
@router.get(
    "/groups/{group_id}/reach",
    response_model=None,
    responses=_explained(ReachReport),
    tags=["groups"],
)
def group_reach(
    request: Request,
    group_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The group's id.")],
    scored: ScoringDep,
) -> Response:
    """A group's reach over its members and sub-groups, ranked among all groups."""
    with _errors():
        return _json(
            reach_report(_store(request), scored.profile, _scored_day(scored), group_id=group_id)
        )


@router.get(
    "/explain/account/{account_id}",
    response_model=None,
    responses=_explained(AccountReport),
    tags=["explain"],
)
def explain_an_account(
    request: Request,
    account_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The account's id.")],
    as_of: Annotated[
        dt.date | None, Query(description="The last day of the year shown (default: today).")
    ] = None,
) -> Response:
    """An account's KPIs per month over a year, with each observation's evidence and the
    mentions of tracked outputs it posted (``reachmeter explain account:ID --json``)."""
    end = as_of or dt.datetime.now(dt.UTC).date()
    with _errors():
        return _json(
            explain_account(_store(request), account_id, end - dt.timedelta(days=364), end)
        )


@router.get(
    "/accounts/{account_id}/kpis",
    response_model=None,
    responses=_explained(AccountReport),
    tags=["accounts"],
)
def account_kpis(
    request: Request,
    account_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The account's id.")],
    start: Annotated[
        dt.date | None,
        Query(alias="from", description="First day (default: 364 days before `to`)."),
    ] = None,
    end: Annotated[dt.date | None, Query(alias="to", description="Last day (default: today).")] = (
        None
    ),
) -> Response:
    """An account's KPIs per calendar month (``reachmeter kpis ID --json``)."""
    last = end or dt.datetime.now(dt.UTC).date()
    first = start or last - dt.timedelta(days=364)
    if first > last:
        raise HTTPException(422, f"from {first} is after to {last}")
    if (last - first).days > 366 * 20:
        raise HTTPException(422, "ask for at most twenty years at once")
    with _errors():
        return _json(account_report(_store(request), account_id, first, last))


# -- people, groups, accounts ---------------------------------------------------------------


@router.get("/people", response_model=Page[PersonOut], tags=["people"])
def list_people(
    request: Request,
    group: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Members of this group or its sub-groups.")
    ] = None,
    name: Annotated[
        str | None,
        Query(max_length=300, pattern=_NO_NUL, description="A part of the name, any case."),
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[PersonOut]:
    """People by name, with their groups."""
    with _errors():
        return queries.list_people(
            _store(request), group_id=group, name=name, limit=limit, cursor=cursor
        )


@router.get("/people/{person_id}", response_model=PersonOut, tags=["people"])
def get_person(
    request: Request,
    person_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The person's id.")],
) -> PersonOut:
    """A person with their groups, accounts and number of outputs."""
    with _errors():
        return queries.get_person(_store(request), person_id)


@router.get("/groups", response_model=Page[GroupOut], tags=["groups"])
def list_groups(
    request: Request,
    parent: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only groups directly under this one.")
    ] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[GroupOut]:
    """Groups (departments, faculties, teams) by id, with their sub-groups."""
    with _errors():
        return queries.list_groups(_store(request), parent_id=parent, limit=limit, cursor=cursor)


@router.get("/groups/{group_id}", response_model=GroupOut, tags=["groups"])
def get_group(
    request: Request, group_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The group's id.")]
) -> GroupOut:
    """A group with its sub-groups and its members counted with theirs."""
    with _errors():
        return queries.get_group(_store(request), group_id)


@router.get("/accounts", response_model=Page[AccountOut], tags=["accounts"])
def list_accounts(
    request: Request,
    platform: Annotated[str | None, Query(pattern=_SLUG, description="e.g. `bluesky`.")] = None,
    person: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Accounts this person owns.")
    ] = None,
    organisation: Annotated[
        bool | None, Query(description="Only (or, false: no) organisation accounts.")
    ] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[AccountOut]:
    """Accounts on social platforms and blogs, by id."""
    with _errors():
        return queries.list_accounts(
            _store(request),
            platform=platform,
            person_id=person,
            organisation=organisation,
            limit=limit,
            cursor=cursor,
        )


@router.get("/accounts/{account_id}", response_model=AccountOut, tags=["accounts"])
def get_account(
    request: Request,
    account_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The account's id.")],
) -> AccountOut:
    """An account: its platform, handle, profile URL and owner."""
    with _errors():
        return queries.get_account(_store(request), account_id)


# -- events and observations ----------------------------------------------------------------


@router.get("/events", response_model=Page[EventOut], tags=["events"])
def list_events(
    request: Request,
    source: Annotated[str | None, Query(pattern=_SLUG, description="A `source_id`.")] = None,
    output: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Matched to this output.")
    ] = None,
    occurred_from: Annotated[
        dt.datetime | None, Query(description="Occurred at or after (UTC if no zone).")
    ] = None,
    occurred_to: Annotated[
        dt.datetime | None, Query(description="Occurred before (UTC if no zone).")
    ] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[EventOut]:
    """Mentions (events, in Crossref Event Data's shape) by id, with their corrections."""
    with _errors():
        return queries.list_events(
            _store(request),
            source_id=source,
            output_id=output,
            occurred_from=_utc(occurred_from),
            occurred_to=_utc(occurred_to),
            limit=limit,
            cursor=cursor,
        )


@router.get("/events/{event_id}", response_model=EventOut, tags=["events"])
def get_event(
    request: Request, event_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The event's id.")]
) -> EventOut:
    """One mention, with the outputs it matched and its latest correction."""
    with _errors():
        return queries.get_event(_store(request), event_id)


@router.get("/observations", response_model=Page[ObservationOut], tags=["observations"])
def list_observations(
    request: Request,
    metric: Annotated[str | None, Query(pattern=_SLUG, description="e.g. `citations`.")] = None,
    source: Annotated[str | None, Query(pattern=_SLUG, description="A `source_id`.")] = None,
    account: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Of this account.")] = None,
    output: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Of this output.")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[ObservationOut]:
    """Observations (a metric's value at a time, for a period) by id."""
    with _errors():
        return queries.list_observations(
            _store(request),
            metric=metric,
            source_id=source,
            account_id=account,
            output_id=output,
            limit=limit,
            cursor=cursor,
        )


# -- exports --------------------------------------------------------------------------------

_MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "eventdata": "application/json",
}
_SUFFIX = {"csv": "csv", "jsonl": "jsonl", "eventdata": "json"}
_CHUNK = 64 * 1024


class _Cancelled(Exception):
    """The client went away: stop writing."""


class _QueueWriter(io.RawIOBase):
    """A binary stream whose bytes go, in chunks, to a bounded queue read by the response."""

    def __init__(self, chunks: queue.Queue[object], cancelled: threading.Event) -> None:
        super().__init__()
        self._chunks = chunks
        self._cancelled = cancelled
        self._buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._buffer += data
        if len(self._buffer) >= _CHUNK:
            self.push()
        return len(data)

    def push(self) -> None:
        if self._buffer:
            _put(self._chunks, bytes(self._buffer), self._cancelled)
            self._buffer.clear()


def _put(chunks: queue.Queue[object], item: object, cancelled: threading.Event) -> None:
    while True:
        if cancelled.is_set():
            raise _Cancelled
        try:
            chunks.put(item, timeout=0.5)
            return
        except queue.Full:
            continue


_DONE = object()


def _streamed(write: Callable[[IO[bytes]], object]) -> Iterator[bytes]:
    """Run a writer (``export_events`` and friends) in a thread, yielding what it writes."""
    chunks: queue.Queue[object] = queue.Queue(maxsize=16)
    cancelled = threading.Event()

    def produce() -> None:
        writer = _QueueWriter(chunks, cancelled)
        try:
            write(writer)  # type: ignore[arg-type]
            writer.push()
            _put(chunks, _DONE, cancelled)
        except _Cancelled:
            return
        except Exception as exc:  # handed to the response, which ends the stream
            with contextlib.suppress(_Cancelled):
                _put(chunks, exc, cancelled)

    thread = threading.Thread(target=produce, name="reachmeter-export", daemon=True)
    thread.start()
    try:
        while True:
            item = chunks.get()
            if item is _DONE:
                return
            if isinstance(item, Exception):
                raise item
            yield item  # type: ignore[misc]
    finally:
        cancelled.set()
        thread.join(timeout=5)


def _download(name: str, fmt: str, write: Callable[[IO[bytes]], object]) -> StreamingResponse:
    return StreamingResponse(
        _streamed(write),
        media_type=_MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}.{_SUFFIX[fmt]}"'},
    )


_EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file, streamed.",
        "content": {media.split(";")[0]: {} for media in _MEDIA.values()},
    }
}


@router.get(
    "/export/events.{fmt}",
    response_class=StreamingResponse,
    responses=_EXPORT_RESPONSES,
    tags=["exports"],
)
def export_all_events(
    request: Request,
    fmt: Annotated[
        Literal["csv", "jsonl", "eventdata"],
        Path(description="`csv`, `jsonl` or `eventdata` (Crossref Event Data JSON)."),
    ],
) -> StreamingResponse:
    """Every event, with its latest correction, as ``reachmeter export events`` writes it;
    ingesting the file again adds nothing."""
    store = _store(request)
    return _download("reachmeter-events", fmt, lambda out: export_events(store, out, fmt))


@router.get(
    "/export/outputs.{fmt}",
    response_class=StreamingResponse,
    responses=_EXPORT_RESPONSES,
    tags=["exports"],
)
def export_all_outputs(
    request: Request,
    fmt: Annotated[Literal["csv", "jsonl"], Path(description="`csv` or `jsonl`.")],
) -> StreamingResponse:
    """Every (unmerged) output with its identifiers; the CSV imports again as it is."""
    store = _store(request)
    return _download("reachmeter-outputs", fmt, lambda out: export_outputs(store, out, fmt))


@router.get(
    "/export/scores.{fmt}",
    response_class=StreamingResponse,
    responses=_EXPORT_RESPONSES,
    tags=["exports"],
)
def export_scores(
    request: Request,
    scored: ScoringDep,
    fmt: Annotated[Literal["csv", "jsonl"], Path(description="`csv` or `jsonl`.")],
) -> StreamingResponse:
    """The stored scores of a profile for a day, as ``reachmeter scores export`` writes them."""
    store = _store(request)
    day = _scored_day(scored)

    def write(out: IO[bytes]) -> None:
        text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        write_scores(store, scored.profile, day, fmt, text)
        text.detach()

    name = f"reachmeter-scores-{scored.profile}-{day.isoformat()}"
    return _download(name, fmt, write)
