"""Reports for managers: per organisation, group or person, per period; HTML, PDF and CSV.

``build_report`` gathers the figures (as of the period's end, from stored scores),
``render_html`` / ``render_pdf`` / ``render_csv`` draw them. The same store and period
always give the same bytes.
"""

from __future__ import annotations

from reachmeter.reports.build import Report, build_report
from reachmeter.reports.period import Period, PeriodError, parse_period
from reachmeter.reports.render import render_csv, render_html, render_pdf, tables
from reachmeter.reports.scope import Scope, ScopeError, resolve_scope

__all__ = [
    "Period",
    "PeriodError",
    "Report",
    "Scope",
    "ScopeError",
    "build_report",
    "parse_period",
    "render_csv",
    "render_html",
    "render_pdf",
    "resolve_scope",
    "tables",
]
