"""``reachmeter feeds add|list|remove`` and ``reachmeter import opml``."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.markup import escape
from rich.table import Column, Table
from sqlalchemy import select

from reachmeter.cli.app import DbOption, app, console, err_console, import_app, open_cli_store
from reachmeter.imports import ImportFileError
from reachmeter.imports.opml import add_feed, import_opml
from reachmeter.sources.feeds import FeedsSource, configured, cursor_stream, feed_key
from reachmeter.sources.runner import ensure_source
from reachmeter.store.catalog import CatalogError, find_person
from reachmeter.store.schema import Person, SourceCursor

feeds_app = typer.Typer(
    help="RSS / Atom feeds of blogs and news outlets: add, list, remove.", no_args_is_help=True
)
app.add_typer(feeds_app, name="feeds")


class FeedKindChoice(enum.StrEnum):
    blog = "blog"
    news = "news"


KindOption = Annotated[
    FeedKindChoice,
    typer.Option("--kind", help="blog or news: the source of the mentions it gives."),
]
OwnerOption = Annotated[
    str | None,
    typer.Option(
        "--owner",
        help="The person whose own blog this is (id, ORCID or exact name); their entries "
        "count for their blogging regularity.",
        show_default=False,
    ),
]


@feeds_app.command("add")
def feeds_add(
    url: Annotated[str, typer.Argument(help="The feed's URL (RSS, Atom or JSON Feed).")],
    kind: KindOption = FeedKindChoice.blog,
    owner: OwnerOption = None,
    db: DbOption = None,
) -> None:
    """Add a feed to read; with --owner, it is that person's blog."""
    store = open_cli_store(db)
    try:
        with store.session() as session:
            person = None
            if owner is not None:
                person = find_person(session, owner)
                if person is None:
                    err_console.print(
                        f"[red]error:[/red] no person {escape(owner)!r} "
                        "(give an id, ORCID or exact name)",
                        soft_wrap=True,
                    )
                    raise typer.Exit(2)
            outcome = add_feed(session, url, kind=kind.value, owner=person)
    except CatalogError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from exc
    finally:
        store.close()
    if outcome.created:
        whose = f", the blog of {person.name}" if person is not None else ""
        console.print(f"feed {escape(url)} added ({kind.value}{escape(whose)})", soft_wrap=True)
    elif outcome.changed:
        console.print(
            f"feed {escape(url)} is now the blog of {escape(person.name if person else '')}"
        )
    else:
        console.print(f"feed {escape(url)} was already configured", soft_wrap=True)


@feeds_app.command("list")
def feeds_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = None,
) -> None:
    """The configured feeds, with their kind, owner and when each was last read."""
    store = open_cli_store(db)
    try:
        with store.session() as session:
            row = ensure_source(session, FeedsSource)
            feeds = configured(row.settings)
            names = {
                int(i): str(n)
                for i, n in session.execute(
                    select(Person.id, Person.name).where(
                        Person.id.in_([f.owner for f in feeds if f.owner is not None])
                    )
                )
            }
            cursors = {
                c.stream: c.updated_at
                for c in session.scalars(
                    select(SourceCursor).where(SourceCursor.source_id == FeedsSource.id)
                )
            }
    finally:
        store.close()
    if as_json:
        rows = [
            {
                "url": feed.url,
                "kind": feed.kind,
                "owner": feed.owner,
                "owner_name": names.get(feed.owner) if feed.owner is not None else None,
                "title": feed.title,
                "last_read": (
                    read.isoformat() if (read := cursors.get(cursor_stream(feed.url))) else None
                ),
            }
            for feed in feeds
        ]
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    table = Table(
        Column("url", overflow="fold", ratio=3),
        Column("kind"),
        Column("owner", overflow="fold", ratio=1),
        Column("title", overflow="fold", ratio=2),
        Column("last read", no_wrap=True),
        title="feeds",
    )
    for feed in feeds:
        read = cursors.get(cursor_stream(feed.url))
        table.add_row(
            escape(feed.url),
            feed.kind,
            escape(names.get(feed.owner, str(feed.owner))) if feed.owner is not None else "",
            escape(feed.title or ""),
            f"{read:%Y-%m-%d %H:%M}" if read else ("per DOI" if feed.is_search else "never"),
        )
    console.print(table)
    if not feeds:
        err_console.print("no feeds yet: add one with `reachmeter feeds add URL --kind blog`")


@feeds_app.command("remove")
def feeds_remove(
    url: Annotated[str, typer.Argument(help="The feed's URL.")], db: DbOption = None
) -> None:
    """Stop reading a feed (the mentions it gave stay)."""
    store = open_cli_store(db)
    try:
        with store.session() as session:
            row = ensure_source(session, FeedsSource)
            feeds = configured(row.settings)
            kept = [f for f in feeds if feed_key(f.url) != feed_key(url)]
            if len(kept) != len(feeds):
                row.settings = {
                    **(row.settings or {}),
                    "feeds": [f.model_dump(mode="json", exclude_none=True) for f in kept],
                }
    finally:
        store.close()
    if len(kept) == len(feeds):
        err_console.print(f"[red]error:[/red] no feed {escape(url)} is configured", soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"feed {escape(url)} removed", soft_wrap=True)


@import_app.command("opml")
def import_opml_command(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, show_default=False)
    ],
    kind: KindOption = FeedKindChoice.blog,
    owner: OwnerOption = None,
    db: DbOption = None,
) -> None:
    """Add the feeds an OPML file lists (nested outlines read, duplicates merged)."""
    store = open_cli_store(db)
    try:
        summary = import_opml(store, file, kind=kind.value, owner=owner)
    except ImportFileError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from exc
    finally:
        store.close()
    table = Table(Column("file", overflow="fold"), "feeds read", "added", "updated", "quarantined")
    table.add_row(
        escape(summary.origin),
        str(summary.read),
        str(summary.created),
        str(summary.updated),
        str(summary.quarantined),
    )
    console.print(table)
    for problem in summary.problems:
        err_console.print(f"[yellow]{escape(summary.origin)}:[/yellow] {escape(problem)}")
    if summary.read == 0:
        err_console.print("[red]error:[/red] the file lists no feeds")
        raise typer.Exit(1)
