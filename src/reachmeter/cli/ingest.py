"""``reachmeter ingest``, ``stats`` and ``export``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from reachmeter.cli.app import DbOption, app, console, err_console, open_cli_store, progress_bar
from reachmeter.ingest import FORMATS, ingest_paths
from reachmeter.store.export import EXPORT_FORMATS, export_events, export_outputs
from reachmeter.store.stats import store_counts


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Event files to ingest.", show_default=False)],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help=f"Force a format: {', '.join(FORMATS)}.", show_default=False),
    ] = None,
    db: DbOption = None,
) -> None:
    """Ingest Event Data JSON / JSON Lines, usage reports and generic mention files.

    Each event is stored once: running it again on the same files adds nothing. Records
    that cannot be used are quarantined with their file, line and reason.
    """
    if fmt is not None and fmt not in FORMATS:
        err_console.print(
            f"[red]error:[/red] unknown format {fmt!r}; choose one of {', '.join(FORMATS)}"
        )
        raise typer.Exit(2)
    store = open_cli_store(db)
    # Redrawn at each batch, with no thread: a large file's worker processes are forked.
    with progress_bar("{task.completed:,} records", auto_refresh=False) as bar:
        task = bar.add_task("ingesting", total=None)
        summary = ingest_paths(
            store,
            paths,
            fmt=fmt,
            progress=lambda done: bar.update(task, completed=done, refresh=True),
        )
    for problem in summary.problems[:20]:
        where = f"{problem.origin}:{problem.line}" if problem.line else problem.origin
        err_console.print(
            f"[yellow]quarantined[/yellow] {where}: {problem.reason}",
            highlight=False,
            soft_wrap=True,
        )
    if summary.quarantined > 20:
        err_console.print(f"... and {summary.quarantined - 20} more (see `reachmeter stats`)")
    table = Table(title="ingest", show_header=False)
    for label, value in (
        ("files", summary.files),
        ("read", summary.read),
        ("events stored", summary.stored),
        ("observations stored", summary.observations),
        ("corrections", summary.corrections),
        ("events matched to tracked outputs", summary.matched),
        ("duplicates", summary.duplicates),
        ("quarantined", summary.quarantined),
    ):
        table.add_row(label, f"{value:,}")
    console.print(table)
    store.close()
    if summary.nothing_read:
        raise typer.Exit(1)


@app.command()
def stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = None,
) -> None:
    """Counts of everything in the store."""
    store = open_cli_store(db)
    counts = store_counts(store)
    store.close()
    if as_json:
        sys.stdout.write(orjson.dumps(counts, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if counts["demo"]:
        console.print("[bold magenta]DEMO DATA[/bold magenta]: a generated organisation, not real")
    table = Table(title="store")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, value in counts["tables"].items():
        table.add_row(key, f"{value:,}")
    console.print(table)
    if counts["events_by_source"]:
        by_source = Table(title="events by source")
        by_source.add_column("source")
        by_source.add_column("events", justify="right")
        for key, value in counts["events_by_source"].items():
            by_source.add_row(key, f"{value:,}")
        console.print(by_source)


@app.command()
def export(
    what: Annotated[str, typer.Argument(help="events or outputs")],
    fmt: Annotated[
        str, typer.Option("--format", help=f"One of {', '.join(EXPORT_FORMATS)}.")
    ] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Write events or outputs out as CSV, JSON Lines or Event Data JSON.

    Exported events can be ingested again with no loss.
    """
    if what not in {"events", "outputs"}:
        err_console.print("[red]error:[/red] export events or outputs")
        raise typer.Exit(2)
    if fmt not in EXPORT_FORMATS:
        err_console.print(f"[red]error:[/red] --format is one of {', '.join(EXPORT_FORMATS)}")
        raise typer.Exit(2)
    store = open_cli_store(db)
    stream = output.open("wb") if output else sys.stdout.buffer
    try:
        writer = export_events if what == "events" else export_outputs
        count = writer(store, stream, fmt)
    finally:
        if output:
            stream.close()
        store.close()
    err_console.print(f"exported {count:,} {what}")
