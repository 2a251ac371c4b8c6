"""The Typer applications every command module registers on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from reachmeter.settings import Settings
from reachmeter.store import Store, StoreError, open_store

app = typer.Typer(
    name="reachmeter",
    help="ReachMeter: open altmetrics and social-media impact measurement.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
import_app = typer.Typer(
    help="Import outputs, people and other catalogue files.", no_args_is_help=True
)
outputs_app = typer.Typer(help="Tracked outputs: add, list.", no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(outputs_app, name="outputs")

console = Console()
err_console = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="SQLite path or PostgreSQL URL (default: $REACHMETER_DATABASE_URL or reachmeter.db).",
        show_default=False,
    ),
]


def open_cli_store(db: str | Path | None) -> Store:
    """Open the store named by ``--db``, the environment, or the default; exit 2 on failure."""
    target = db if db is not None else Settings().database_url
    try:
        return open_store(target)
    except (StoreError, OSError) as exc:
        err_console.print(f"[red]error:[/red] cannot open the store {target}: {exc}")
        raise typer.Exit(2) from exc


def progress_bar(counter: str, *, auto_refresh: bool = True) -> Progress:
    """The progress bar of long commands, on stderr: description, bar, ``counter``, time.

    ``counter`` is a Rich format for the count column, e.g. ``"{task.completed:,} records"``.
    Without ``auto_refresh`` it runs no thread of its own and is redrawn as it is updated
    (so that other processes can be forked: ``reachmeter.reading``).
    """
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn(counter),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        auto_refresh=auto_refresh,
    )
