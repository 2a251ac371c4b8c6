"""Report scopes: the organisation, one group (with its sub-groups) or one person."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from sqlalchemy import func, select

from reachmeter.store import Store
from reachmeter.store.schema import Group, Person

__all__ = ["Scope", "ScopeError", "resolve_scope"]

_FORMS = "org, group:NAME or person:ID"


class ScopeError(ValueError):
    """A scope that cannot be read or names nothing in the store."""


@dataclass(frozen=True)
class Scope:
    """What a report covers. ``id`` is the group's or person's id (``None`` for org)."""

    kind: str  # org, group or person
    id: int | None
    name: str

    @property
    def label(self) -> str:
        if self.kind == "org":
            return "Whole organisation"
        return f"{self.kind.capitalize()}: {self.name}"

    @property
    def number(self) -> int:
        """The group's or person's id (an organisation scope has none)."""
        if self.id is None:
            raise ValueError("the organisation scope has no id")
        return self.id

    @property
    def key(self) -> str:
        """The scope as written on the command line, with the id resolved."""
        return "org" if self.kind == "org" else f"{self.kind}:{self.id}"


def resolve_scope(store: Store, text: str) -> Scope:
    """``org``, ``group:NAME`` (a group's exact name, any case, or its id) or ``person:ID``
    (an id or an ORCID); ``ScopeError`` names what was not found, with close names."""
    value = text.strip()
    if value.lower() in ("org", "organisation", "organization"):
        return Scope("org", None, "Organisation")
    kind, sep, rest = value.partition(":")
    kind, rest = kind.strip().lower(), rest.strip()
    if not sep or kind not in ("group", "person") or not rest:
        raise ScopeError(f"scope {text!r} is not one of {_FORMS}")
    with store.session() as session:
        if kind == "group":
            group = session.scalars(select(Group).where(Group.name == rest)).first()
            if group is None:
                group = session.scalars(
                    select(Group).where(func.lower(Group.name) == rest.lower())
                ).first()
            if group is None and rest.isdigit():
                group = session.get(Group, int(rest))
            if group is None:
                names = list(session.scalars(select(Group.name).order_by(Group.name)))
                close = difflib.get_close_matches(rest, names, n=3, cutoff=0.5)
                hint = f"; did you mean {', '.join(repr(n) for n in close)}?" if close else ""
                raise ScopeError(f"scope {text!r}: no group named {rest!r}{hint}")
            return Scope("group", int(group.id), group.name)
        person = None
        if rest.isdigit():
            person = session.get(Person, int(rest))
        else:
            person = session.scalars(select(Person).where(Person.orcid == rest)).first()
        if person is None:
            raise ScopeError(f"scope {text!r}: no person with id or ORCID {rest!r}")
        return Scope("person", int(person.id), person.name)
