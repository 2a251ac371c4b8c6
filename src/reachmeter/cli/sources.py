"""``reachmeter sources``, ``reachmeter collect`` and ``reachmeter import counter``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import TaskID
from rich.table import Table
from sqlalchemy import select

from reachmeter.cli.app import (
    DbOption,
    app,
    console,
    err_console,
    import_app,
    open_cli_store,
    progress_bar,
)
from reachmeter.sources.runner import (
    RunSummary,
    SourceError,
    available_sources,
    ensure_source,
    resume_source,
    run_source,
    update_settings,
)
from reachmeter.store.schema import Run
from reachmeter.usage.importer import import_counter

sources_app = typer.Typer(help="Sources: list, configure, resume.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")


def _shown_settings(values: dict[str, object], secrets: tuple[str, ...]) -> str:
    shown = {k: ("REDACTED" if k in secrets and v else v) for k, v in values.items()}
    text = json.dumps(shown, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


@sources_app.command("list")
def list_sources(db: DbOption = None) -> None:
    """Each source with its settings, health and last run."""
    store = open_cli_store(db)
    table = Table(title="sources")
    for column in ("source", "settings", "health", "last run"):
        table.add_column(column)
    with store.session() as session:
        for source_id, cls in available_sources().items():
            row = ensure_source(session, cls)
            last = session.scalars(
                select(Run).where(Run.source_id == source_id).order_by(Run.id.desc()).limit(1)
            ).first()
            if not row.enabled:
                health = f"[red]paused[/red]: {row.paused_reason or 'disabled'}"
            elif row.consecutive_failures:
                health = f"[yellow]{row.consecutive_failures} failed run(s) in a row[/yellow]"
            else:
                health = "[green]ok[/green]"
            ran = (
                f"{last.started_at:%Y-%m-%d %H:%M} {last.status}: fetched {last.read}, "
                f"stored {last.stored}, quarantined {last.quarantined}, errors {last.errors}"
                if last
                else "never"
            )
            secrets = cls.secret_fields
            if source_id == "sushi":
                secrets = (*secrets, "endpoints")
            table.add_row(
                f"{source_id}\n{cls.name}",
                _shown_settings(dict(row.settings or {}), secrets),
                health,
                ran,
            )
    console.print(table)
    store.close()


@sources_app.command("set")
def set_setting(
    source: Annotated[str, typer.Argument(help="Source id.")],
    values: Annotated[list[str], typer.Argument(help="KEY=JSON_VALUE pairs.")],
    db: DbOption = None,
) -> None:
    """Change settings of a source (values are JSON: ``lists='[{"path": "works"}]'``)."""
    parsed: dict[str, object] = {}
    for pair in values:
        key, sep, raw = pair.partition("=")
        if not sep:
            err_console.print(f"[red]error:[/red] {pair!r} is not KEY=VALUE")
            raise typer.Exit(2)
        try:
            parsed[key] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[key] = raw
    store = open_cli_store(db)
    try:
        update_settings(store, source, parsed)
    except SourceError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    finally:
        store.close()
    console.print(f"settings of {source} saved")


@sources_app.command("resume")
def resume(source: Annotated[str, typer.Argument(help="Source id.")], db: DbOption = None) -> None:
    """Un-pause a source paused after repeated failures."""
    store = open_cli_store(db)
    try:
        resume_source(store, source)
    except SourceError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    finally:
        store.close()
    console.print(f"{source} resumed")


@app.command()
def collect(
    sources: Annotated[
        list[str] | None, typer.Argument(help="Sources to run (default: every enabled one).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Run sources once, each logged as a run; a paused source is skipped."""
    store = open_cli_store(db)
    known = available_sources()
    chosen = sources or list(known)
    unknown = [s for s in chosen if s not in known]
    if unknown:
        err_console.print(f"[red]error:[/red] unknown source(s): {', '.join(unknown)}")
        raise typer.Exit(2)
    results: list[RunSummary] = []
    with progress_bar("{task.fields[detail]}") as bar:
        for source_id in chosen:
            task = bar.add_task(source_id, total=None, detail="")

            def show(summary: RunSummary, task: TaskID = task) -> None:
                bar.update(task, detail=f"{summary.fetched} fetched, {summary.stored} stored")

            try:
                results.append(run_source(store, source_id, progress=show))
            except SourceError as exc:
                err_console.print(f"[yellow]skipped[/yellow] {source_id}: {exc}")
            bar.remove_task(task)
    table = Table(title="collect")
    for column in ("source", "status", "fetched", "stored", "duplicates", "quarantined", "errors"):
        table.add_column(column)
    for summary in results:
        table.add_row(
            summary.source_id,
            summary.status,
            *(
                f"{n:,}"
                for n in (
                    summary.fetched,
                    summary.stored,
                    summary.duplicates,
                    summary.quarantined,
                    len(summary.errors),
                )
            ),
        )
        for error in summary.errors[:5]:
            err_console.print(f"[yellow]{summary.source_id}[/yellow]: {error}", soft_wrap=True)
        if summary.paused_reason:
            err_console.print(f"[red]{summary.source_id} {summary.paused_reason}[/red]")
    console.print(table)
    store.close()
    if not results or all(r.status == "failed" for r in results):
        raise typer.Exit(1)


@import_app.command("counter")
def import_counter_command(
    paths: Annotated[list[Path], typer.Argument(help="COUNTER R5 / R5.1 reports.")],
    db: DbOption = None,
) -> None:
    """Import COUNTER R5 / R5.1 reports (JSON, TSV, CSV, Excel); each whole or not at all."""
    store = open_cli_store(db)
    # Redrawn as it goes, with no thread: a large report's reading process is forked.
    with progress_bar("{task.completed:,} observations", auto_refresh=False) as bar:
        task = bar.add_task("importing", total=None)
        summary = import_counter(
            store, paths, progress=lambda done: bar.update(task, completed=done, refresh=True)
        )
    table = Table(title="COUNTER import")
    for column in ("file", "report", "status", "rows", "stored", "duplicates"):
        table.add_column(column)
    for result in summary.files:
        table.add_row(
            result.origin,
            f"{result.report_id} {result.release}".strip(),
            result.status,
            f"{result.rows:,}",
            f"{result.stored:,}",
            f"{result.duplicates:,}",
        )
        for problem in result.problems[:50]:
            err_console.print(
                f"[red]{result.origin}[/red]: {problem}", highlight=False, soft_wrap=True
            )
        if len(result.problems) > 50:
            err_console.print(f"... and {len(result.problems) - 50} more problems")
    console.print(table)
    store.close()
    if summary.nothing_imported:
        raise typer.Exit(1)
