"""``reachmeter demo``: build the demo organisation into a fresh SQLite file and show it."""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from reachmeter.cli.app import app, console, err_console
from reachmeter.demo.generate import DEFAULT_AS_OF, DEFAULT_SEED, generate_demo
from reachmeter.demo.load import DemoSummary, load_demo
from reachmeter.store import StoreError, open_store

_SIDECARS = ("", "-wal", "-shm", "-journal")


def _is_demo_store(path: Path) -> bool:
    """Whether ``path`` is a SQLite store whose meta says it holds demo data (read-only)."""
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        row = connection.execute("SELECT value FROM meta WHERE key = 'demo'").fetchone()
    except sqlite3.Error:
        return False
    finally:
        connection.close()
    return row is not None and row[0] == "true"


def _remove_store(path: Path) -> None:
    for suffix in _SIDECARS:
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _print_summary(summary: DemoSummary, db: Path, seconds: float) -> None:
    counts = Table(title="Catalogue", show_header=True, header_style="bold")
    counts.add_column("what")
    counts.add_column("count", justify="right")
    for kind, count in sorted(summary.outputs_by_type.items(), key=lambda kv: (-kv[1], kv[0])):
        counts.add_row(f"outputs: {kind}", f"{count:,}")
    counts.add_row("[bold]outputs[/bold]", f"[bold]{summary.outputs:,}[/bold]")
    counts.add_row("people", f"{summary.people:,}")
    counts.add_row("groups", f"{summary.groups:,}")
    counts.add_row("accounts", f"{summary.accounts:,}")

    sources = Table(title="Mentions by source", header_style="bold")
    sources.add_column("source_id")
    sources.add_column("mentions", justify="right")
    for source, count in sorted(summary.mentions_by_source.items(), key=lambda kv: -kv[1]):
        sources.add_row(source, f"{count:,}")
    sources.add_row("[bold]all[/bold]", f"[bold]{summary.mentions:,}[/bold]")

    metrics = Table(title="Observations by metric", header_style="bold")
    metrics.add_column("metric")
    metrics.add_column("observations", justify="right")
    for metric, count in sorted(summary.observations_by_metric.items()):
        metrics.add_row(metric, f"{count:,}")
    metrics.add_row("[bold]all[/bold]", f"[bold]{summary.observations:,}[/bold]")

    top = Table(title="Most mentioned outputs", header_style="bold")
    top.add_column("#", justify="right")
    top.add_column("output")
    top.add_column("type")
    top.add_column("mentions", justify="right")
    for rank, (title, kind, count) in enumerate(summary.top_outputs, start=1):
        top.add_row(str(rank), title, kind, f"{count:,}")

    span = "no mentions"
    if summary.first_mention_at and summary.last_mention_at:
        span = f"{summary.first_mention_at:%Y-%m-%d} to {summary.last_mention_at:%Y-%m-%d}"
    console.print(
        Panel.fit(
            f"[bold]DEMO DATA[/bold]: a fictional university library, generated, not real.\n"
            f"Store: {db}\nMentions from {span}. Built in {seconds:.1f} s.",
            title="[bold yellow]DEMO DATA[/bold yellow]",
            border_style="yellow",
        )
    )
    console.print(counts)
    for run in summary.scores:
        console.print(
            f"Scored {run.scored:,} of {run.outputs:,} outputs with profile "
            f"[bold]{run.profile}[/bold] {run.version} as of {run.as_of}."
        )
    console.print(sources)
    console.print(metrics)
    console.print(top)
    if summary.quarantined:
        err_console.print(
            f"[yellow]warning:[/yellow] {summary.quarantined} demo records were quarantined"
        )


@app.command()
def demo(
    db: Annotated[
        Path, typer.Option("--db", help="The SQLite file to build the demo into.")
    ] = Path("demo.db"),
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Only build and summarise; do not serve.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the generator.")] = DEFAULT_SEED,
    scale: Annotated[
        float, typer.Option(min=0.01, max=20.0, help="Size relative to the standard demo.")
    ] = 1.0,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the file even if it is not a demo store.")
    ] = False,
    host: Annotated[str, typer.Option(help="Address the dashboard listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the dashboard.")] = 8000,
) -> None:
    """Build a fictional university library (DEMO DATA) through the real import pipeline,
    then serve its dashboard (unless --no-serve).

    The demo is written as ordinary input files and loaded by the real importers and
    ingest into a fresh SQLite file. An existing demo store is replaced; any other existing
    file is left alone unless --force is given.
    """
    if "://" in str(db):
        err_console.print("[red]error:[/red] the demo builds into a SQLite file path, not a URL")
        raise typer.Exit(2)
    if db.exists() and not force and not _is_demo_store(db):
        err_console.print(
            f"[red]error:[/red] {db} exists and is not a demo store; "
            "choose another --db or pass --force to replace it"
        )
        raise typer.Exit(2)
    started = time.perf_counter()
    partial = db.with_name(f"{db.name}.partial")
    _remove_store(partial)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with (
            tempfile.TemporaryDirectory(prefix="reachmeter-demo-") as tmp,
            Progress(*columns, console=err_console, transient=True) as progress,
        ):
            task = progress.add_task("generating files", total=None)
            data, files = generate_demo(Path(tmp), seed=seed, scale=scale, as_of=DEFAULT_AS_OF)
            progress.update(task, total=1, completed=1)
            tasks: dict[str, TaskID] = {}

            def on_progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = progress.add_task(f"loading {stage}", total=total)
                progress.update(tasks[stage], completed=done, total=total)

            store = open_store(partial)
            try:
                summary = load_demo(
                    store,
                    files,
                    progress=on_progress,
                    meta={
                        "seed": str(seed),
                        "scale": str(scale),
                        "as_of": data.as_of.isoformat(),
                    },
                    score_as_of=data.as_of.date(),
                )
            finally:
                store.close()
    except (StoreError, OSError, ValueError) as exc:
        _remove_store(partial)
        err_console.print(f"[red]error:[/red] cannot build the demo: {exc}")
        raise typer.Exit(1) from exc
    _remove_store(db)
    partial.replace(db)
    for suffix in _SIDECARS[1:]:
        with contextlib.suppress(FileNotFoundError):
            Path(f"{partial}{suffix}").replace(Path(f"{db}{suffix}"))
    _print_summary(summary, db, time.perf_counter() - started)
    if not no_serve:
        from reachmeter.cli.web import serve_store
        from reachmeter.settings import Settings

        # The demo is fictional: anyone may read it, no login needed.
        settings = Settings().model_copy(update={"public_dashboard": True})
        store = open_store(db)
        try:
            serve_store(store, host, port, settings, demo=True)
        finally:
            store.close()
