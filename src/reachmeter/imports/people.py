"""Importing people, their groups and their accounts from a CSV file."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from reachmeter.imports import (
    ImportFileError,
    ImportSummary,
    Outcome,
    Parsed,
    SourceRecord,
    read_csv_table,
    read_text,
    record_label,
    run_import,
)
from reachmeter.store import Store
from reachmeter.store.catalog import (
    PLATFORMS,
    CatalogError,
    find_person,
    normalize_account,
    normalize_orcid,
    person_accounts,
    person_groups,
    upsert_person,
)

__all__ = ["PEOPLE_COLUMNS", "PersonRecord", "import_people", "read_people_csv"]

PEOPLE_COLUMNS = ("name", "orcid", "email", "role", "groups", "accounts", *PLATFORMS)


@dataclass
class PersonRecord:
    """One person as the file describes them (ORCID and accounts already normalised)."""

    name: str
    orcid: str | None = None
    email: str | None = None
    role: str | None = None
    groups: list[str] = field(default_factory=list)
    accounts: list[tuple[str, str]] = field(default_factory=list)


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(";") if part.strip()]


def _person(values: dict[str, str]) -> PersonRecord:
    accounts: list[tuple[str, str]] = []
    for entry in _split(values.get("accounts")):
        platform, colon, handle = entry.partition(":")
        if not colon or not handle.strip():
            raise CatalogError(f"account {entry!r} is not platform:handle (e.g. x:alice)")
        accounts.append(normalize_account(platform, handle))
    for platform in PLATFORMS:
        accounts += [normalize_account(platform, handle) for handle in _split(values.get(platform))]
    name = values.get("name") or ""
    if not name:
        raise CatalogError("no name")
    return PersonRecord(
        name=name,
        orcid=normalize_orcid(values["orcid"]) if values.get("orcid") else None,
        email=values.get("email") or None,
        role=values.get("role") or None,
        groups=_split(values.get("groups")),
        accounts=list(dict.fromkeys(accounts)),
    )


def read_people_csv(path: Path, text: str) -> tuple[list[Parsed[PersonRecord]], list[str]]:
    """The records of a people CSV file, and notes about its header (ignored columns)."""
    header, rows, unknown = read_csv_table(path, text, PEOPLE_COLUMNS)
    if "name" not in header:
        raise ImportFileError(f"{path}: no name column")
    notes = [f"{path}: ignored unknown columns: {', '.join(unknown)}"] if unknown else []
    parsed: list[Parsed[PersonRecord]] = []
    for line, raw, values, error in rows:
        record = SourceRecord(
            line=line, raw=raw, label=record_label(line, values.get("name") if values else None)
        )
        if values is None:
            parsed.append(Parsed(record, error=error))
            continue
        try:
            parsed.append(Parsed(record, value=_person(values)))
        except CatalogError as exc:
            parsed.append(Parsed(record, error=str(exc)))
    return parsed, notes


def _snapshot(session: Session, record: PersonRecord) -> tuple[Any, ...] | None:
    person = find_person(session, record.orcid or record.name)
    if person is None:
        return None
    return (
        person.id,
        person.name,
        person.orcid,
        person.email,
        person.role,
        person_groups(session, person),
        person_accounts(session, person),
    )


def _store_person(session: Session, record: PersonRecord) -> Outcome:
    before = _snapshot(session, record)
    person, created = upsert_person(
        session,
        name=record.name,
        orcid=record.orcid,
        email=record.email,
        role=record.role,
        groups=record.groups,
        accounts=record.accounts,
    )
    after = _snapshot(session, PersonRecord(name=person.name, orcid=person.orcid))
    return Outcome(created=created, changed=created or before != after)


def import_people(store: Store, path: str | os.PathLike[str]) -> ImportSummary:
    """Import the people in a CSV file, with their groups and accounts.

    People are matched by ORCID, else by exact name; bad rows (invalid ORCID, an account
    owned by someone else, ...) are quarantined and the rest still go in. Raises
    ``ImportFileError`` when the file cannot be read at all.
    """
    notes: list[str] = []

    def parse(file: Path) -> Iterable[Parsed[PersonRecord]]:
        records, header_notes = read_people_csv(file, read_text(file))
        notes.extend(header_notes)
        return records

    summary = run_import(store, path, "import-people", parse, _store_person)
    summary.problems[:0] = notes
    return summary
