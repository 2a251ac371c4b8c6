"""Importing the analytics exports people download: X Analytics, LinkedIn Page analytics,
Meta Business Suite (Facebook, Instagram) and Google Search Console.

``import_export`` reads a file (CSV, Excel workbook or ZIP of CSVs), recognises each table by
its columns under a configurable mapping (``mapping.py``, ``mappings/*.toml``), checks that it
is the declared platform's export and the declared account's, and stores account and post
observations and the posts' mentions of outputs (``convert.py``), with the file as evidence
and a ``Run`` row. Bad rows are quarantined with file, line and reason; the rest goes in.
Re-importing a file stores nothing twice. A figure for a period that differs from the one
already stored (a later export revising a day) is quarantined with both values, and the
stored figure is kept: facts are never overwritten.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from reachmeter import __version__
from reachmeter.matching.match import match_new_events
from reachmeter.records import ObservationRecord
from reachmeter.store import Store
from reachmeter.store.catalog import CatalogError, normalize_account
from reachmeter.store.schema import Account, Observation, Run
from reachmeter.store.writer import FactWriter, Quarantine, ensure_evidence

from .convert import Record, check_platform, convert, file_account
from .mapping import PLATFORMS, MappingError, PlatformMapping, builtin_mapping_text, load_mappings
from .readers import ExportFileError, read_tables

__all__ = [
    "PLATFORMS",
    "ExportFileError",
    "ExportSummary",
    "MappingError",
    "builtin_mapping_text",
    "import_export",
    "load_mappings",
]

_BATCH = 5000
_MAX_PROBLEMS_KEPT = 1000


@dataclass
class ExportSummary:
    """What one export import did. ``rows`` counts data rows read, good or bad."""

    origin: str
    platform: str = ""
    account: str = ""
    layouts: list[str] = field(default_factory=list)
    rows: int = 0
    observations: int = 0
    events: int = 0
    duplicates: int = 0
    quarantined: int = 0
    matched: int = 0
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    run_id: int | None = None


def _resolve_account(
    store: Store,
    path: Path,
    mapping: PlatformMapping,
    account_platform: str,
    declared: str | None,
    named: str | None,
) -> tuple[str, str]:
    try:
        wanted = normalize_account(account_platform, declared) if declared else None
        found = normalize_account(account_platform, named) if named else None
    except CatalogError as exc:
        raise ExportFileError(f"{path}: {exc}") from exc
    if wanted and found and wanted != found:
        raise ExportFileError(
            f"{path}: this is an export of {found[0]}:{found[1]}, not of the declared "
            f"{wanted[0]}:{wanted[1]}"
        )
    account = wanted or found
    if account is None:
        raise ExportFileError(
            f"{path}: the {mapping.title} export does not say whose it is; give the "
            f"account with --account (a {account_platform} handle or URL)"
        )
    with store.engine.connect() as connection:
        known = connection.execute(
            select(Account.id).where(Account.platform == account[0], Account.handle == account[1])
        ).scalar()
    if known is None:
        raise ExportFileError(
            f"{path}: the account {account[0]}:{account[1]} is not known; add it first with "
            f"`reachmeter accounts add {account[0]} {account[1]} --owner PERSON|org`"
        )
    return account


def _revised(
    store: Store, items: list[tuple[str, int, Record]]
) -> tuple[list[tuple[str, int, Record]], list[Quarantine]]:
    """Split off observations whose key is stored (or repeated) with another value."""
    wanted: dict[str, float] = {}
    for _origin, _line, record in items:
        if isinstance(record, ObservationRecord):
            wanted.setdefault(record.observation_key, record.value)
    stored: dict[str, float] = {}
    keys = list(wanted)
    with store.engine.connect() as connection:
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = connection.execute(
                select(Observation.observation_key, Observation.value).where(
                    Observation.observation_key.in_(chunk)
                )
            )
            stored.update((str(key), float(value)) for key, value in rows)
    kept: list[tuple[str, int, Record]] = []
    problems: list[Quarantine] = []
    for origin, line, record in items:
        if isinstance(record, ObservationRecord):
            earlier = stored.get(record.observation_key, wanted[record.observation_key])
            if abs(earlier - record.value) > 1e-9:
                subject = (
                    f"{record.account[0]}:{record.account[1]}" if record.account else record.obj_id
                )
                period = (
                    f" for {record.period_start}..{record.period_end}"
                    if record.period_start
                    else f" as of {record.observed_at.date()}"
                )
                problems.append(
                    Quarantine(
                        origin,
                        line,
                        f"line {line}: {record.metric} of {subject}{period} is {record.value:g} "
                        f"here but {earlier:g} is already stored (from an earlier export or "
                        "row); the stored figure is kept",
                        record.observation_key,
                    )
                )
                continue
        kept.append((origin, line, record))
    return kept, problems


def _file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def import_export(
    store: Store,
    path: str | os.PathLike[str],
    *,
    platform: str | None = None,
    account: str | None = None,
    mapping_file: str | os.PathLike[str] | None = None,
    encoding: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ExportSummary:
    """Import one analytics export file; see the module docstring.

    ``platform`` (``x``, ``linkedin``, ``meta``, ``gsc``) is detected from the columns when
    omitted; ``account`` is the account's handle or URL when the file does not name it.
    Raises ``ExportFileError`` (nothing stored) when the file cannot be imported as a whole:
    unreadable, another platform's or account's export, no known layout, an unknown account;
    ``MappingError`` for a bad mapping file.
    """
    file = Path(path)
    if platform is not None and platform not in PLATFORMS:
        raise ExportFileError(f"unknown platform {platform!r}; use one of {', '.join(PLATFORMS)}")
    mappings = load_mappings(Path(mapping_file) if mapping_file else None)
    started_at = dt.datetime.now(dt.UTC)
    try:
        tables = read_tables(file, encoding)
        mapping, recognised, notes = check_platform(file, tables, mappings, platform)
        account_platform = next(
            (
                found.layout.account_platform
                for found in recognised
                if found.layout.kind != "ignore"
            ),
            mapping.account_platform,
        )
        owner = _resolve_account(
            store, file, mapping, account_platform, account, file_account(file, recognised)
        )
        converted = convert(file, mapping, recognised, owner, collected_at=started_at)
    except ExportFileError as exc:
        with store.session() as session:
            session.add(
                Run(
                    kind="import-export",
                    source_id=mappings[platform].source_id if platform else None,
                    started_at=started_at,
                    finished_at=dt.datetime.now(dt.UTC),
                    status="failed",
                    errors=1,
                    detail={"file": str(file.resolve()), "error": str(exc)},
                )
            )
        raise
    summary = ExportSummary(
        origin=str(path),
        platform=mapping.platform,
        account=f"{owner[0]}:{owner[1]}",
        layouts=[f"{found.table.origin}: {found.layout.label}" for found in recognised],
        rows=converted.rows,
        notes=notes,
    )
    items, revised = _revised(store, converted.items)
    problems = [*converted.problems, *revised]
    with store.session() as session:
        run = Run(
            kind="import-export",
            source_id=mapping.source_id,
            started_at=started_at,
            detail={"file": str(file.resolve()), "account": summary.account},
        )
        session.add(run)
        session.flush()
        summary.run_id = run.id
    with store.begin() as connection:
        evidence_id = ensure_evidence(
            connection,
            source_id=mapping.source_id,
            source_version=f"reachmeter {__version__}",
            request_url=file.resolve().as_uri(),
            payload_sha256=_file_sha256(file),
            collected_at=started_at,
            run_id=summary.run_id,
        )
    writer = FactWriter(store, run_id=summary.run_id)
    status = "failed"
    try:
        for start in range(0, max(len(items), len(problems), 1), _BATCH):
            result = writer.write(
                items[start : start + _BATCH], problems[start : start + _BATCH], evidence_id
            )
            summary.observations += result.observations
            summary.events += result.events
            summary.duplicates += result.duplicates
            summary.quarantined += result.quarantined
            room = _MAX_PROBLEMS_KEPT - len(summary.problems)
            summary.problems.extend(
                f"{problem.origin}: {problem.reason}" for problem in result.problems[:room]
            )
            if progress:
                progress(min(start + _BATCH, len(items)))
        with store.begin() as connection:
            summary.matched = match_new_events(connection).matched
        stored = summary.observations + summary.events + summary.duplicates
        status = "ok" if not summary.quarantined else "partial" if stored else "failed"
    finally:
        with store.session() as session:
            row = session.get(Run, summary.run_id)
            if row is not None:
                row.finished_at = dt.datetime.now(dt.UTC)
                row.status = status
                row.read = summary.rows
                row.stored = summary.observations + summary.events
                row.duplicates = summary.duplicates
                row.quarantined = summary.quarantined
                row.detail = {
                    **row.detail,
                    "platform": summary.platform,
                    "layouts": summary.layouts,
                    "observations": summary.observations,
                    "events": summary.events,
                    "matched": summary.matched,
                }
    return summary
