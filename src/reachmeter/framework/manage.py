"""Adding and listing aims, objectives and staffing, with clear errors for bad input."""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from reachmeter.framework.kpis import KPIS, SCOPE_KINDS, group_tree
from reachmeter.store import Store
from reachmeter.store.catalog import (
    CatalogError,
    find_output,
    find_person,
    normalize_account,
    upsert_person,
)
from reachmeter.store.schema import Account, Group, Person, PersonGroup
from reachmeter.store.schema_monitor import Aim, Objective, Staffing

__all__ = [
    "FrameworkError",
    "ParsedScope",
    "StaffingRow",
    "add_aim",
    "add_objective",
    "add_staffing",
    "list_aims",
    "list_objectives",
    "list_staffing",
    "load_framework",
    "parse_scope",
]


class FrameworkError(ValueError):
    """An aim, objective or staffing entry that cannot be recorded as given."""


@dataclass(frozen=True, slots=True)
class ParsedScope:
    kind: str
    ids: list[int]
    text: str


def _find_account(session: Session, ref: str) -> Account | None:
    if ref.isdigit():
        return session.get(Account, int(ref))
    platform, sep, handle = ref.partition(":")
    if not sep:
        raise FrameworkError(f"account {ref!r}: give an id or PLATFORM:HANDLE (x:ourlibrary)")
    try:
        platform, handle = normalize_account(platform, handle)
    except CatalogError as exc:
        raise FrameworkError(f"account {ref!r}: {exc}") from exc
    return session.scalars(
        select(Account).where(Account.platform == platform, Account.handle == handle)
    ).first()


def _find_group(session: Session, ref: str) -> Group | None:
    if ref.isdigit():
        return session.get(Group, int(ref))
    return session.scalars(
        select(Group).where(func.lower(Group.name) == func.lower(literal(ref)))
    ).first()


def _person(session: Session, ref: str) -> Person | None:
    try:
        return find_person(session, ref)
    except CatalogError as exc:
        raise FrameworkError(str(exc)) from exc


def parse_scope(session: Session, text: str) -> ParsedScope:
    """``accounts``, ``outputs``, ``people`` or ``groups``, optionally ``:REF,REF``.

    References: accounts by id or ``PLATFORM:HANDLE``; outputs by id or identifier
    (``doi:10.1234/x``); people by id, ORCID or name; groups by id or name. Without
    references: the organisation's own accounts, every output, everyone, every group.
    """
    kind, _, refs_text = text.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in SCOPE_KINDS:
        raise FrameworkError(
            f"unknown scope {text!r}: use {', '.join(SCOPE_KINDS)} (optionally :REF,REF)"
        )
    refs = [r.strip() for r in refs_text.split(",") if r.strip()]
    ids: list[int] = []
    for ref in refs:
        found: Any
        if kind == "accounts":
            found = _find_account(session, ref)
        elif kind == "outputs":
            found = find_output(session, ref)
        elif kind == "people":
            found = _person(session, ref)
        else:
            found = _find_group(session, ref)
        if found is None:
            raise FrameworkError(f"no {kind[:-1]} {ref!r} in the store")
        if found.id not in ids:
            ids.append(int(found.id))
    return ParsedScope(kind, ids, f"{kind}:{','.join(refs)}" if refs else kind)


def _aim_of(session: Session, ref: str | None) -> Aim | None:
    if ref is None or not ref.strip():
        return None
    ref = ref.strip()
    aim = session.get(Aim, int(ref)) if ref.isdigit() else None
    if aim is None:
        aim = session.scalars(select(Aim).where(Aim.title == ref)).first()
    if aim is None:
        raise FrameworkError(f"no aim {ref!r}; add it with `reachmeter aims add`")
    return aim


def add_aim(store: Store, title: str, description: str = "") -> int:
    """Record an aim; its title is unique. Returns its id."""
    title = title.strip()
    if not title:
        raise FrameworkError("an aim needs a title")
    with store.session() as session:
        if session.scalars(select(Aim).where(Aim.title == title)).first() is not None:
            raise FrameworkError(f"an aim titled {title!r} already exists")
        aim = Aim(title=title, description=description.strip())
        session.add(aim)
        session.flush()
        return int(aim.id)


def list_aims(store: Store) -> list[dict[str, Any]]:
    """Every aim with how many objectives serve it."""
    with store.session() as session:
        counts: dict[int | None, int] = {
            aim_id: int(count)
            for aim_id, count in session.execute(
                select(Objective.aim_id, func.count()).group_by(Objective.aim_id)
            )
        }
        return [
            {
                "id": a.id,
                "title": a.title,
                "description": a.description,
                "objectives": counts.get(a.id, 0),
            }
            for a in session.scalars(select(Aim).order_by(Aim.id))
        ]


def _check_kpi(kpi: str) -> str:
    name = kpi.strip().lower()
    if name not in KPIS:
        raise FrameworkError(f"unknown metric {kpi!r}; valid metrics: {', '.join(sorted(KPIS))}")
    return name


def add_objective(
    store: Store,
    *,
    title: str,
    kpi: str,
    over: str,
    target: float,
    start: dt.date,
    deadline: dt.date,
    owner: str | None = None,
    aim: str | None = None,
    today: dt.date | None = None,
) -> int:
    """Record an objective after checking it; ``FrameworkError`` names what is wrong.

    The metric must be known and measurable over the scope, the target a positive number,
    the start no later than the deadline, and the deadline not already past (``today``,
    default today in UTC).
    """
    name = _check_kpi(kpi)
    today = today or dt.datetime.now(dt.UTC).date()
    problems = []
    if not title.strip():
        problems.append("an objective needs a title")
    if not target > 0:
        problems.append(f"the target must be a positive number, not {target}")
    if start > deadline:
        problems.append(f"the start {start} is after the deadline {deadline}")
    if deadline < today:
        problems.append(f"the deadline {deadline} is in the past (today is {today})")
    if problems:
        raise FrameworkError("; ".join(problems))
    with store.session() as session:
        scope = parse_scope(session, over)
        if KPIS[name].over == "accounts" and scope.kind == "outputs":
            raise FrameworkError(
                f"metric {name} is measured over accounts, people or groups (their accounts), "
                "not outputs"
            )
        if KPIS[name].over == "outputs" and scope.kind == "accounts":
            raise FrameworkError(
                f"metric {name} is measured over outputs, people or groups (their outputs), "
                "not accounts"
            )
        owner_person = None
        if owner and owner.strip():
            try:
                owner_person = find_person(session, owner)
            except CatalogError:
                owner_person = None
        objective = Objective(
            aim_id=(aim_row.id if (aim_row := _aim_of(session, aim)) else None),
            title=title.strip(),
            kpi=name,
            scope_kind=scope.kind,
            scope_ids=scope.ids,
            scope_text=scope.text,
            target=float(target),
            start_on=start,
            deadline=deadline,
            owner=owner_person.name if owner_person else (owner.strip() if owner else None),
            owner_person_id=owner_person.id if owner_person else None,
        )
        session.add(objective)
        session.flush()
        return int(objective.id)


def list_objectives(store: Store) -> list[dict[str, Any]]:
    """Every objective as it was set (no measuring: see ``objectives_progress``)."""
    with store.session() as session:
        aims = {a.id: a.title for a in session.scalars(select(Aim))}
        return [
            {
                "id": o.id,
                "title": o.title,
                "aim": aims.get(o.aim_id) if o.aim_id is not None else None,
                "kpi": o.kpi,
                "scope": o.scope_text or o.scope_kind,
                "target": o.target,
                "start": o.start_on,
                "deadline": o.deadline,
                "owner": o.owner,
            }
            for o in session.scalars(select(Objective).order_by(Objective.id))
        ]


@dataclass(frozen=True, slots=True)
class StaffingRow:
    id: int
    account: str
    person: str
    role: str
    hours_per_week: float


def add_staffing(store: Store, *, account: str, person: str, role: str, hours: float) -> int:
    """Record who runs an account, in what role, for how many hours a week (updates the
    hours of an existing person and role on that account)."""
    role = role.strip()
    if not role:
        raise FrameworkError("a staffing entry needs a role (editor, community manager, ...)")
    if not 0 < hours <= 168:
        raise FrameworkError(f"hours per week must be between 0 and 168, not {hours}")
    with store.session() as session:
        found = _find_account(session, account.strip())
        if found is None:
            raise FrameworkError(f"no account {account!r} in the store")
        who = _person(session, person)
        if who is None:
            raise FrameworkError(f"no person {person!r} in the store")
        row = session.scalars(
            select(Staffing).where(
                Staffing.account_id == found.id,
                Staffing.person_id == who.id,
                Staffing.role == role,
            )
        ).first()
        if row is None:
            row = Staffing(account_id=found.id, person_id=who.id, role=role, hours_per_week=hours)
            session.add(row)
        else:
            row.hours_per_week = hours
        session.flush()
        return int(row.id)


def list_staffing(store: Store) -> list[StaffingRow]:
    """Every staffing entry, by account."""
    with store.session() as session:
        rows = session.execute(
            select(Staffing, Account.platform, Account.handle, Person.name)
            .join(Account, Account.id == Staffing.account_id)
            .join(Person, Person.id == Staffing.person_id)
            .order_by(Account.platform, Account.handle, Person.name, Staffing.role)
        )
        return [
            StaffingRow(s.id, f"{platform}:{handle}", name, s.role, s.hours_per_week)
            for s, platform, handle, name in rows
        ]


def _staff_member(store: Store, entry: dict[str, Any]) -> int:
    """The person a ``[[staff]]`` entry means: ``name`` (created if new, with ``role`` and
    ``email``), or the ``pick``-th person (default the 1st, by id) of ``group`` or its
    subgroups, those with ``role`` first."""
    with store.session() as session:
        if "name" in entry:
            try:
                person, _ = upsert_person(
                    session, name=entry["name"], role=entry.get("role"), email=entry.get("email")
                )
            except CatalogError as exc:
                raise FrameworkError(f"staff {entry['name']!r}: {exc}") from exc
            session.flush()
            return int(person.id)
        group = _find_group(session, str(entry["group"]))
        if group is None:
            raise FrameworkError(f"staff {entry['key']!r}: no group {entry['group']!r}")
        groups = group_tree(session.connection(), [group.id])
        rows = session.execute(
            select(Person.id, Person.role)
            .join(PersonGroup, PersonGroup.person_id == Person.id)
            .where(PersonGroup.group_id.in_(sorted(groups)))
            .distinct()
        ).all()
        wanted = entry.get("role")
        found = [int(i) for i, role in sorted(rows, key=lambda r: (r[1] != wanted, r[0]))]
        pick = int(entry.get("pick", 1))
        if not 1 <= pick <= len(found):
            raise FrameworkError(
                f"staff {entry['key']!r}: {entry['group']} has {len(found)} people, not {pick}"
            )
        return int(found[pick - 1])


def load_framework(store: Store, path: Path, *, today: dt.date | None = None) -> dict[str, int]:
    """Load a framework from a TOML file: ``[[aims]]``, ``[[staff]]`` (the people who run
    accounts, each under a ``key`` that owners and staffing name as ``staff:KEY``),
    ``[[objectives]]`` and ``[[staffing]]``.

    Aims and objectives already present (same title) are left as they are and staffing is
    updated in place, so loading twice adds nothing. Objectives are checked as if added on
    their start day (``today`` overrides), so a past example still loads.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise FrameworkError(f"{path}: {exc}") from exc
    added = {"aims": 0, "staff": 0, "objectives": 0, "staffing": 0}
    try:
        with store.session() as session:
            known_aims = set(session.scalars(select(Aim.title)))
            known_objectives = set(session.scalars(select(Objective.title)))
        for entry in data.get("aims", []):
            if entry["title"] not in known_aims:
                add_aim(store, entry["title"], entry.get("description", ""))
                added["aims"] += 1
        staff = {
            str(entry["key"]): str(_staff_member(store, entry)) for entry in data.get("staff", [])
        }
        added["staff"] = len(staff)

        def who(value: str | None) -> str | None:
            if value and value.startswith("staff:"):
                if value[6:] not in staff:
                    raise FrameworkError(f"{value!r} is not a [[staff]] key of the file")
                return staff[value[6:]]
            return value

        for entry in data.get("objectives", []):
            if entry["title"] in known_objectives:
                continue
            add_objective(
                store,
                title=entry["title"],
                kpi=entry["kpi"],
                over=entry["over"],
                target=float(entry["target"]),
                start=entry["start"],
                deadline=entry["deadline"],
                owner=who(entry.get("owner")),
                aim=entry.get("aim"),
                today=today or entry["start"],
            )
            added["objectives"] += 1
        for entry in data.get("staffing", []):
            add_staffing(
                store,
                account=entry["account"],
                person=who(entry["person"]) or "",
                role=entry["role"],
                hours=float(entry["hours_per_week"]),
            )
            added["staffing"] += 1
    except KeyError as exc:
        raise FrameworkError(f"{path}: an entry lacks the key {exc}") from exc
    except FrameworkError as exc:
        raise FrameworkError(f"{path}: {exc}") from exc
    return added
