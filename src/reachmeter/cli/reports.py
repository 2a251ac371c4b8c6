"""Reports: ``report``."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated

import typer

from reachmeter.cli.app import DbOption, app, err_console, open_cli_store
from reachmeter.reports import (
    PeriodError,
    ScopeError,
    build_report,
    parse_period,
    render_csv,
    render_html,
    render_pdf,
    resolve_scope,
)
from reachmeter.scoring import ProfileError, load_profile


class ReportFormat(enum.StrEnum):
    html = "html"
    pdf = "pdf"
    csv = "csv"


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", soft_wrap=True, markup=True, highlight=False)
    return typer.Exit(2)


@app.command()
def report(
    period: Annotated[
        str,
        typer.Option(
            "--period",
            help="2025-Q3 (a quarter), 2025-07 (a month), 2025 (a year) or "
            "2025-07-01..2025-09-30 (days, both included).",
            show_default=False,
        ),
    ],
    scope: Annotated[
        str, typer.Option("--scope", help="org, group:NAME (or group:ID) or person:ID.")
    ] = "org",
    format_: Annotated[
        ReportFormat, typer.Option("--format", help="html, pdf or csv.")
    ] = ReportFormat.html,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="File to write (default: standard output)."),
    ] = None,
    profile: Annotated[
        str,
        typer.Option("--profile", help="A shipped profile (default, altmetric-like) or a .toml."),
    ] = "default",
    db: DbOption = None,
) -> None:
    """A report for managers: headline figures against the previous period, top outputs and
    mentions, attention by source over time, people and groups, accounts' KPIs, objectives,
    data quality and the methods used.

    Figures are as of the period's end (stored scores of that day, computed first when
    missing), so a past period's report is the same every time it is rendered.
    """
    try:
        chosen_period = parse_period(period)
        chosen_profile = load_profile(profile)
    except (PeriodError, ProfileError) as exc:
        raise _fail(str(exc)) from exc
    if format_ is ReportFormat.pdf and out is None and sys.stdout.isatty():
        raise _fail("a PDF goes to a file: give --out PATH")
    store = open_cli_store(db)
    try:
        try:
            chosen_scope = resolve_scope(store, scope)
            built = build_report(store, chosen_scope, chosen_period, chosen_profile)
        except (PeriodError, ScopeError) as exc:
            raise _fail(str(exc)) from exc
    finally:
        store.close()
    if format_ is ReportFormat.pdf:
        data = render_pdf(built)
        if out is None:
            sys.stdout.buffer.write(data)
        else:
            out.write_bytes(data)
    else:
        text = render_html(built) if format_ is ReportFormat.html else render_csv(built)
        if out is None:
            sys.stdout.write(text)
        else:
            out.write_text(text, encoding="utf-8", newline="")
    if out is not None:
        state = "" if built.has_data else " (no data in the period)"
        err_console.print(
            f"wrote the {format_.value} report of {built.scope.label}, {built.period.label}"
            f"{state} to {out}",
            soft_wrap=True,
            markup=False,
            highlight=False,
        )
