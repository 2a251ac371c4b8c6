"""Running sources: the shared code every source relies on, written once.

``run_source`` loads a source plugin with its settings and cursors, gives it the shared
HTTP client, and stores each ``Page`` it yields in one transaction: the evidence record,
the catalogue records, the facts (through ``FactWriter``) and the cursors the page
advances. A run that fails keeps every page already stored and resumes from its cursors.
Every run is logged (``runs``: fetched, stored, quarantined, errors with their requests);
a source that fails ``PAUSE_AFTER`` runs in a row is paused, with the reason shown.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import Connection, Table, select
from sqlalchemy.orm import Session

from reachmeter import __version__
from reachmeter.http import HttpClient, HttpError
from reachmeter.matching.match import match_new_events
from reachmeter.settings import Settings
from reachmeter.sources.base import Page, Skipped, Source, SourceContext, SourceSettings
from reachmeter.store import Store
from reachmeter.store.catalog import CatalogError, upsert_output, upsert_person
from reachmeter.store.runs import finish_run, start_run
from reachmeter.store.schema import Account, Output, OutputIdentifier, SourceCursor
from reachmeter.store.schema import Source as SourceRow
from reachmeter.store.writer import FactWriter, Quarantine, ensure_evidence

__all__ = [
    "ENTRY_POINT_GROUP",
    "PAUSE_AFTER",
    "RunSummary",
    "SourceError",
    "available_sources",
    "ensure_source",
    "load_source",
    "run_source",
    "update_settings",
]

ENTRY_POINT_GROUP = "reachmeter.sources"
PAUSE_AFTER = 5
# Evidence keeps the payload itself up to this size (its hash always).
_MAX_PAYLOAD_KEPT = 1024 * 1024
_MAX_ERRORS_KEPT = 50


class SourceError(ValueError):
    """A source cannot be run as asked: unknown, paused, or misconfigured."""


def available_sources() -> dict[str, type[Source]]:
    """Every installed source plugin by id, built-ins included (all through entry points)."""
    found: dict[str, type[Source]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        loaded = entry.load()
        if not (isinstance(loaded, type) and issubclass(loaded, Source)):
            raise SourceError(f"entry point {entry.name!r} is not a Source subclass")
        if loaded.id != entry.name:
            raise SourceError(f"entry point {entry.name!r} names source {loaded.id!r}")
        found[entry.name] = loaded
    return dict(sorted(found.items()))


def load_source(source_id: str) -> type[Source]:
    sources = available_sources()
    if source_id not in sources:
        raise SourceError(f"unknown source {source_id!r}; known: {', '.join(sources) or 'none'}")
    return sources[source_id]


def ensure_source(session: Session, cls: type[Source]) -> SourceRow:
    """The ``sources`` row of a plugin, created with its default settings."""
    row = session.get(SourceRow, cls.id)
    if row is None:
        row = SourceRow(
            id=cls.id,
            name=cls.name,
            kind=cls.kind,
            enabled=True,
            settings=cls.settings_model().model_dump(mode="json"),
            consecutive_failures=0,
        )
        session.add(row)
        session.flush()
    return row


def update_settings(store: Store, source_id: str, values: dict[str, Any]) -> SourceSettings:
    """Validate and save new settings of a source (unknown or invalid keys raise)."""
    cls = load_source(source_id)
    with store.session() as session:
        row = ensure_source(session, cls)
        try:
            settings = cls.settings_model.model_validate({**(row.settings or {}), **values})
        except ValidationError as exc:
            raise SourceError(f"invalid settings for {source_id}: {exc}") from exc
        row.settings = settings.model_dump(mode="json")
        return settings


@dataclass(slots=True)
class RunSummary:
    """What one run of a source did (also kept in the ``runs`` table)."""

    source_id: str
    run_id: int | None = None
    status: str = "running"
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    outputs: int = 0
    skipped: int = 0
    matched: int = 0
    errors: list[str] = field(default_factory=list)
    paused_reason: str | None = None


class _BoundStore:
    """A store whose ``begin`` joins a transaction already open (so the writer's batch, the
    evidence and the cursor commit together)."""

    def __init__(self, store: Store, connection: Connection) -> None:
        self.engine = store.engine
        self.dialect = store.dialect
        self._connection = connection

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        yield self._connection


def _targets(store: Store) -> Callable[[str], list[str]]:
    cache: dict[str, list[str]] = {}

    def targets(scheme: str) -> list[str]:
        if scheme not in cache:
            with store.engine.connect() as connection:
                cache[scheme] = list(
                    connection.execute(
                        select(OutputIdentifier.value)
                        .join(Output, Output.id == OutputIdentifier.output_id)
                        .where(OutputIdentifier.scheme == scheme, Output.merged_into_id.is_(None))
                        .order_by(OutputIdentifier.value)
                    ).scalars()
                )
        return cache[scheme]

    return targets


def _accounts(store: Store) -> Callable[[str], list[str]]:
    cache: dict[str, list[str]] = {}

    def accounts(platform: str) -> list[str]:
        if platform not in cache:
            with store.engine.connect() as connection:
                cache[platform] = list(
                    connection.execute(
                        select(Account.handle)
                        .where(Account.platform == platform, Account.is_demo.is_(False))
                        .order_by(Account.handle)
                    ).scalars()
                )
        return cache[platform]

    return accounts


def _redact_text(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "REDACTED")
    return text


def _store_page(
    store: Store,
    cls: type[Source],
    page: Page,
    run_id: int,
    collected_at: dt.datetime,
    secrets: list[str],
    summary: RunSummary,
) -> None:
    payload_text = _redact_text(page.payload.decode("utf-8", errors="replace"), secrets)
    with store.begin() as connection:
        evidence_id = ensure_evidence(
            connection,
            source_id=cls.id,
            source_version=f"{cls.id}/{cls.version} reachmeter/{__version__}",
            request_url=page.request_url,
            payload_sha256=hashlib.sha256(payload_text.encode()).hexdigest(),
            collected_at=collected_at,
            run_id=run_id,
            payload=payload_text if len(payload_text) <= _MAX_PAYLOAD_KEPT else None,
        )
        problems = [Quarantine(page.request_url, 0, reason, raw) for reason, raw in page.problems]
        if page.outputs:
            with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
                for record in page.outputs:
                    try:
                        with session.begin_nested():
                            if record.create_people:
                                for author in record.authors:
                                    if author.orcid:
                                        upsert_person(session, name=author.name, orcid=author.orcid)
                            upsert_output(
                                session,
                                identifiers=record.identifiers,
                                title=record.title,
                                type=record.type,
                                venue=record.venue,
                                published_on=record.published_on,
                                extra=record.extra,
                                authors=record.authors,
                            )
                        summary.outputs += 1
                    except CatalogError as exc:
                        raw = ", ".join(map(str, record.identifiers))
                        problems.append(Quarantine(page.request_url, 0, str(exc), raw))
                session.commit()
        writer = FactWriter(cast(Store, _BoundStore(store, connection)), run_id=run_id)
        items = [(page.request_url, 0, fact) for fact in page.facts]
        result = writer.write(items, problems, evidence_id)
        summary.stored += result.events + result.observations + result.corrections
        summary.duplicates += result.duplicates
        summary.quarantined += result.quarantined
        for stream, value in page.cursors.items():
            cursor = connection.execute(
                select(SourceCursor.stream).where(
                    SourceCursor.source_id == cls.id, SourceCursor.stream == stream
                )
            ).first()
            now = dt.datetime.now(dt.UTC)
            table = cast(Table, SourceCursor.__table__)
            if cursor is None:
                connection.execute(
                    table.insert().values(
                        source_id=cls.id, stream=stream, value=value, updated_at=now
                    )
                )
            else:
                connection.execute(
                    table.update()
                    .where(table.c.source_id == cls.id, table.c.stream == stream)
                    .values(value=value, updated_at=now)
                )


def run_source(
    store: Store,
    source_id: str,
    *,
    http: HttpClient | None = None,
    settings: Settings | None = None,
    progress: Callable[[RunSummary], None] | None = None,
    force: bool = False,
) -> RunSummary:
    """Run one source once and return what it did.

    A paused source is not run unless ``force``. Raises ``SourceError`` for an unknown
    source or invalid settings; upstream failures do not raise: they are in the summary.
    """
    cls = load_source(source_id)
    summary = RunSummary(source_id=source_id)
    with store.session() as session:
        row = ensure_source(session, cls)
        if not row.enabled and not force:
            raise SourceError(f"source {source_id} is paused: {row.paused_reason or 'disabled'}")
        try:
            source_settings = cls.settings_model.model_validate(row.settings or {})
        except ValidationError as exc:
            raise SourceError(f"invalid settings for {source_id}: {exc}") from exc
        cursors = {
            c.stream: c.value
            for c in session.scalars(select(SourceCursor).where(SourceCursor.source_id == cls.id))
        }
    summary.run_id = start_run(store, "collect", source_id, detail={"source_version": cls.version})
    source = cls(source_settings)
    secrets = source.secrets()
    own_client = http is None
    client = http if http is not None else HttpClient(settings)
    for host, per_second in cls.rate_limits.items():
        client.set_rate_limit(host, per_second)
    collected_at = dt.datetime.now(dt.UTC)
    ctx = SourceContext(
        http=client,
        settings=source_settings,
        cursors=cursors,
        targets=_targets(store),
        accounts=_accounts(store),
        collected_at=collected_at,
        secrets=secrets,
    )
    fatal: str | None = None
    failed_requests: list[dict[str, Any]] = []
    try:
        for item in source.collect(ctx):
            if isinstance(item, Skipped):
                summary.skipped += 1
                message = _redact_text(f"{item.request_url}: {item.reason}", secrets)
                summary.errors.append(message)
                failed_requests.append(
                    {"url": item.request_url, "status": item.status, "error": item.reason}
                )
            else:
                summary.fetched += 1
                _store_page(store, cls, item, summary.run_id, collected_at, secrets, summary)
            if progress:
                progress(summary)
    except HttpError as exc:
        fatal = _redact_text(f"{exc.url or 'request'}: {exc}", secrets)
        failed_requests.append({"url": exc.url, "error": str(exc)})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # A response whose shape changed: the page is not understood, nothing guessed.
        fatal = _redact_text(f"response not understood ({type(exc).__name__}: {exc})", secrets)
    finally:
        if own_client:
            client.close()
    if summary.stored:
        # Link the new events to the outputs they are about, as an ingest does (unmatched
        # ones are kept, and `reachmeter match` links them once their output is tracked).
        with store.begin() as connection:
            summary.matched = match_new_events(connection).matched
    if fatal:
        summary.errors.append(fatal)
    summary.status = "ok" if not summary.errors else ("failed" if fatal else "partial")
    if fatal and (summary.stored or summary.outputs):
        summary.status = "partial"
    _finish(store, cls, summary, failed_requests, fatal)
    return summary


def _finish(
    store: Store,
    cls: type[Source],
    summary: RunSummary,
    failed_requests: list[dict[str, Any]],
    fatal: str | None,
) -> None:
    secrets_free = [
        {key: value for key, value in request.items() if value is not None}
        for request in failed_requests[:_MAX_ERRORS_KEPT]
    ]
    if summary.run_id is not None:
        finish_run(
            store,
            summary.run_id,
            summary.status,
            read=summary.fetched,
            stored=summary.stored,
            duplicates=summary.duplicates,
            quarantined=summary.quarantined,
            errors=len(summary.errors),
            detail={
                "outputs": summary.outputs,
                "skipped": summary.skipped,
                "matched": summary.matched,
                "failed_requests": secrets_free,
                "errors": summary.errors[:_MAX_ERRORS_KEPT],
            },
        )
    with store.session() as session:
        row = session.get(SourceRow, cls.id)
        if row is None:  # pragma: no cover - written at the start
            return
        if summary.status == "failed":
            row.consecutive_failures = (row.consecutive_failures or 0) + 1
            if row.consecutive_failures >= PAUSE_AFTER:
                row.enabled = False
                row.paused_reason = (
                    f"paused after {row.consecutive_failures} failed runs in a row; "
                    f"last error: {fatal}"
                )
                summary.paused_reason = row.paused_reason
        else:
            row.consecutive_failures = 0


def resume_source(store: Store, source_id: str) -> None:
    """Un-pause a source (after its problem was fixed)."""
    cls = load_source(source_id)
    with store.session() as session:
        row = ensure_source(session, cls)
        row.enabled = True
        row.paused_reason = None
        row.consecutive_failures = 0
