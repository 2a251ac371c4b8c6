"""``reachmeter outputs add|list``, ``import outputs|people`` and ``accounts add``."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table
from sqlalchemy import select

from reachmeter.cli.app import (
    DbOption,
    app,
    console,
    err_console,
    import_app,
    open_cli_store,
    outputs_app,
)
from reachmeter.imports import ImportFileError, ImportSummary, import_outputs, import_people
from reachmeter.imports.outputs import parse_author, parse_published
from reachmeter.matching.identifiers import Identifier, IdentifierError, normalize
from reachmeter.store import Store
from reachmeter.store.catalog import (
    CatalogError,
    add_account,
    find_person,
    normalize_account,
    output_identifiers,
    upsert_output,
)
from reachmeter.store.schema import Output

accounts_app = typer.Typer(
    help="Accounts on social platforms: add, list, observe.", no_args_is_help=True
)
app.add_typer(accounts_app, name="accounts")


class ImportFormat(enum.StrEnum):
    csv = "csv"
    bibtex = "bibtex"
    ris = "ris"


Files = Annotated[
    list[Path],
    typer.Argument(exists=True, dir_okay=False, readable=True, show_default=False),
]


def _usage_error(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", soft_wrap=True)
    return typer.Exit(2)


@outputs_app.command("add")
def outputs_add(
    identifiers: Annotated[list[str], typer.Argument(help="DOI, PMID, arXiv id, ISBN, URL, ...")],
    title: Annotated[str | None, typer.Option(help="Title.")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="article, preprint, ...")] = None,
    venue: Annotated[str | None, typer.Option(help="Journal, publisher or site.")] = None,
    published: Annotated[
        str | None, typer.Option(help="Publication date: YYYY-MM-DD, YYYY-MM or YYYY.")
    ] = None,
    author: Annotated[
        list[str] | None,
        typer.Option(help="An author: Name, ORCID or 'Name (ORCID)'; repeat for each."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Add an output, or update the one already known by any of these identifiers."""
    try:
        normalized: list[Identifier] = [normalize(value) for value in identifiers]
        extra: dict[str, Any] = {}
        published_on = None
        if published:
            published_on, precision = parse_published(published)
            extra["published_precision"] = precision
        authors = [parse_author(value) for value in author] if author else None
    except (IdentifierError, CatalogError, ValueError) as exc:
        raise _usage_error(str(exc)) from exc
    store = open_cli_store(db)
    try:
        with store.session() as session:
            output, created = upsert_output(
                session,
                identifiers=normalized,
                title=title,
                type=type_,
                venue=venue,
                published_on=published_on,
                extra=extra,
                authors=authors,
            )
            known = ", ".join(str(identifier) for identifier in output_identifiers(session, output))
    except CatalogError as exc:
        raise _usage_error(str(exc)) from exc
    finally:
        store.close()
    verb = "created" if created else "updated"
    console.print(f"{verb} output {output.id}: {known}", soft_wrap=True)


def _output_rows(store: Store, limit: int) -> list[dict[str, Any]]:
    with store.session() as session:
        outputs = session.scalars(
            select(Output).where(Output.merged_into_id.is_(None)).order_by(Output.id).limit(limit)
        ).all()
        return [
            {
                "id": output.id,
                "type": output.type,
                "title": output.title,
                "venue": output.venue,
                "published_on": output.published_on.isoformat() if output.published_on else None,
                "identifiers": [str(item) for item in output_identifiers(session, output)],
            }
            for output in outputs
        ]


@outputs_app.command("list")
def outputs_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many outputs.")] = 100,
    db: DbOption = None,
) -> None:
    """List tracked outputs (merged duplicates are not shown), oldest first."""
    store = open_cli_store(db)
    try:
        rows = _output_rows(store, limit)
    finally:
        store.close()
    if as_json:
        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table("id", "type", "title", "published", "identifiers")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["type"],
            row["title"],
            row["published_on"] or "",
            "\n".join(row["identifiers"]),
        )
    console.print(table)


def _report(summaries: list[ImportSummary]) -> None:
    table = Table("file", "read", "created", "updated", "merged", "quarantined")
    for summary in summaries:
        table.add_row(
            summary.origin,
            *(
                str(value)
                for value in (
                    summary.read,
                    summary.created,
                    summary.updated,
                    summary.merged,
                    summary.quarantined,
                )
            ),
        )
    if summaries:
        console.print(table)
    for summary in summaries:
        for problem in summary.problems:
            err_console.print(f"[yellow]{summary.origin}:[/yellow] {problem}", soft_wrap=True)
    if not any(summary.read for summary in summaries):
        err_console.print("[red]error:[/red] nothing could be read")
        raise typer.Exit(1)


def _run_imports(files: list[Path], db: str | None, kind: str, fmt: str | None) -> None:
    store = open_cli_store(db)
    summaries: list[ImportSummary] = []
    try:
        for file in files:
            try:
                if kind == "outputs":
                    summaries.append(import_outputs(store, file, fmt=fmt))
                else:
                    summaries.append(import_people(store, file))
            except ImportFileError as exc:
                err_console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
    finally:
        store.close()
    _report(summaries)


@import_app.command("outputs")
def import_outputs_command(
    files: Files,
    fmt: Annotated[
        ImportFormat | None,
        typer.Option("--format", help="File format (default: from the extension)."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Import outputs from CSV, BibTeX or RIS files; bad records are quarantined."""
    _run_imports(files, db, "outputs", fmt.value if fmt else None)


@import_app.command("people")
def import_people_command(files: Files, db: DbOption = None) -> None:
    """Import people, their groups and accounts from CSV files."""
    _run_imports(files, db, "people", None)


@accounts_app.command("add")
def accounts_add(
    platform: Annotated[str, typer.Argument(help="bluesky, mastodon, x, linkedin, ...")],
    handle: Annotated[str, typer.Argument(help="Handle or profile URL.")],
    owner: Annotated[
        str,
        typer.Option(help="The owner: a person's id, ORCID or exact name, or 'org'."),
    ],
    db: DbOption = None,
) -> None:
    """Add an account owned by a person or by the organisation."""
    try:
        normalize_account(platform, handle)
    except CatalogError as exc:
        raise _usage_error(str(exc)) from exc
    store = open_cli_store(db)
    try:
        with store.session() as session:
            person = None
            if owner.strip().lower() != "org":
                person = find_person(session, owner)
                if person is None:
                    raise _usage_error(f"no person {owner!r} (give an id, ORCID or exact name)")
            account = add_account(session, platform, handle, owner=person, org=person is None)
            label = f"{account.platform} {account.handle}"
            whose = person.name if person else "the organisation"
    except CatalogError as exc:
        err_console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc
    finally:
        store.close()
    console.print(f"account {label} owned by {whose}", soft_wrap=True)
