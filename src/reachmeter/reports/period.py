"""Report periods: a quarter (``2025-Q3``), a month (``2025-07``), a year (``2025``) or a span
of days (``2025-07-01..2025-09-30``), and the period before each."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

__all__ = ["Period", "PeriodError", "parse_period"]


class PeriodError(ValueError):
    """A period that cannot be read, named with the reason."""


_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")
_FORMS = "2025-Q3, 2025-07, 2025 or 2025-07-01..2025-09-30"


def _month_end(year: int, month: int) -> dt.date:
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    return following - dt.timedelta(days=1)


@dataclass(frozen=True)
class Period:
    """A closed span of whole UTC days, ``start`` to ``end`` inclusive."""

    kind: str  # quarter, month, year or days
    start: dt.date
    end: dt.date

    @property
    def label(self) -> str:
        if self.kind == "quarter":
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        if self.kind == "month":
            return f"{self.start:%Y-%m}"
        if self.kind == "year":
            return str(self.start.year)
        return f"{self.start.isoformat()}..{self.end.isoformat()}"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of the same kind just before: the previous quarter, month or year, or
        as many days ending the day before ``start``."""
        if self.kind == "quarter":
            year, month = self.start.year, self.start.month - 3
            if month < 1:
                year, month = year - 1, month + 12
            return Period("quarter", dt.date(year, month, 1), _month_end(year, month + 2))
        if self.kind == "month":
            last = self.start - dt.timedelta(days=1)
            return Period("month", last.replace(day=1), last)
        if self.kind == "year":
            year = self.start.year - 1
            return Period("year", dt.date(year, 1, 1), dt.date(year, 12, 31))
        end = self.start - dt.timedelta(days=1)
        return Period("days", end - dt.timedelta(days=self.days - 1), end)

    def contains(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


def parse_period(text: str) -> Period:
    """Read a period; ``PeriodError`` says which forms are accepted."""
    value = text.strip()
    if match := _QUARTER.match(value):
        year, quarter = int(match[1]), int(match[2])
        first = 3 * (quarter - 1) + 1
        return Period("quarter", dt.date(year, first, 1), _month_end(year, first + 2))
    if match := _MONTH.match(value):
        year, month = int(match[1]), int(match[2])
        if not 1 <= month <= 12:
            raise PeriodError(f"period {text!r}: there is no month {month:02d} (use {_FORMS})")
        return Period("month", dt.date(year, month, 1), _month_end(year, month))
    if match := _YEAR.match(value):
        year = int(match[1])
        if year < 1:
            raise PeriodError(f"period {text!r}: there is no year 0 (use {_FORMS})")
        return Period("year", dt.date(year, 1, 1), dt.date(year, 12, 31))
    if ".." in value:
        head, _, tail = value.partition("..")
        try:
            start, end = dt.date.fromisoformat(head.strip()), dt.date.fromisoformat(tail.strip())
        except ValueError as exc:
            raise PeriodError(
                f"period {text!r}: START..END must be two dates YYYY-MM-DD ({exc})"
            ) from exc
        if end < start:
            raise PeriodError(f"period {text!r}: it ends ({end}) before it starts ({start})")
        return Period("days", start, end)
    raise PeriodError(f"period {text!r} is not one of the forms {_FORMS}")
