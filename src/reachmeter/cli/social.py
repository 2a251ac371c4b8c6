"""Accounts and the analytics exports people download: ``accounts``, ``import export``."""

from __future__ import annotations

import datetime as dt
import enum
import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from reachmeter.cli.app import (
    DbOption,
    console,
    err_console,
    import_app,
    open_cli_store,
    progress_bar,
)
from reachmeter.cli.catalog import accounts_app
from reachmeter.imports.accounts import account_rows, observe_account
from reachmeter.imports.exports import (
    ExportFileError,
    ExportSummary,
    MappingError,
    builtin_mapping_text,
    import_export,
)
from reachmeter.imports.lagotto import import_lagotto
from reachmeter.store.catalog import CatalogError


class ExportPlatform(enum.StrEnum):
    x = "x"
    linkedin = "linkedin"
    meta = "meta"
    gsc = "gsc"


Files = Annotated[
    list[Path],
    typer.Argument(exists=True, dir_okay=False, readable=True, show_default=False),
]


def _error(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"error: {message}", soft_wrap=True, markup=False, style="red")
    return typer.Exit(code)


def _print_summaries(summaries: list[ExportSummary]) -> None:
    table = Table("file", "platform", "account", "rows", "observations", "mentions", "already")
    table.add_column("quarantined")
    for summary in summaries:
        table.add_row(
            Path(summary.origin).name,
            summary.platform,
            summary.account,
            *(
                f"{value:,}"
                for value in (
                    summary.rows,
                    summary.observations,
                    summary.events,
                    summary.duplicates,
                    summary.quarantined,
                )
            ),
        )
    console.print(table)
    for summary in summaries:
        for note in [*summary.notes, *summary.problems]:
            err_console.print(note, soft_wrap=True, markup=False, style="yellow")


@import_app.command("export")
def import_export_command(
    files: Files,
    platform: Annotated[
        ExportPlatform | None,
        typer.Option(help="Whose export it is (default: detected from the columns)."),
    ] = None,
    account: Annotated[
        str | None,
        typer.Option(help="The account's handle or URL, when the file does not name it."),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="A TOML or YAML column mapping over the built-in."
        ),
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option(help="The files' text encoding (default: UTF-8, or UTF-16 by its mark)."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Import analytics exports: X Analytics, LinkedIn, Meta Business Suite, Search Console.

    Account and post figures become observations, links in posts become mentions; bad rows
    are quarantined and re-importing a file adds nothing. See docs/analytics-exports.md.
    """
    store = open_cli_store(db)
    summaries: list[ExportSummary] = []
    failed = 0
    try:
        with progress_bar("{task.completed:,} of {task.total:,} files") as bar:
            task = bar.add_task("importing exports", total=len(files))
            for file in files:
                bar.update(task, description=f"importing {file.name}")
                try:
                    summaries.append(
                        import_export(
                            store,
                            file,
                            platform=platform.value if platform else None,
                            account=account,
                            mapping_file=mapping,
                            encoding=encoding,
                        )
                    )
                except MappingError as exc:
                    raise _error(str(exc)) from exc
                except ExportFileError as exc:
                    failed += 1
                    err_console.print(f"error: {exc}", soft_wrap=True, markup=False, style="red")
                bar.advance(task)
    finally:
        store.close()
    if summaries:
        _print_summaries(summaries)
    if failed:
        raise typer.Exit(1)


@import_app.command("lagotto")
def import_lagotto_command(
    files: Files,
    doi: Annotated[
        str | None,
        typer.Option(help="The DOI the payloads are about, when a payload does not name it."),
    ] = None,
    observed_at: Annotated[
        dt.datetime | None,
        typer.Option(
            "--observed-at",
            help="When the figures were observed (UTC), when a payload does not say.",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"],
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Import archived PLOS ALM (Lagotto) payloads: Twitter searches, Facebook link stats,
    Wikipedia pages. See docs/lagotto.md."""
    when = observed_at.replace(tzinfo=dt.UTC) if observed_at is not None else None
    store = open_cli_store(db)
    try:
        summary = import_lagotto(store, files, doi=doi, observed_at=when)
    finally:
        store.close()
    console.print(
        f"{summary.files:,} files: {summary.events:,} mentions, "
        f"{summary.observations:,} observations, {summary.duplicates:,} already stored, "
        f"{summary.quarantined:,} quarantined"
    )
    for note in summary.notes:
        err_console.print(note, soft_wrap=True, markup=False, style="yellow")
    for error in summary.errors:
        err_console.print(f"error: {error}", soft_wrap=True, markup=False, style="red")
    if summary.errors and not summary.files:
        raise typer.Exit(1)


@import_app.command("export-mapping")
def export_mapping_command(
    platform: Annotated[ExportPlatform, typer.Argument(help="x, linkedin, meta or gsc.")],
) -> None:
    """Print a platform's built-in export column mapping (TOML), to copy and adapt."""
    sys.stdout.write(builtin_mapping_text(platform.value))


@accounts_app.command("list")
def accounts_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = None,
) -> None:
    """List accounts with their owner, latest follower count and number of observations."""
    store = open_cli_store(db)
    try:
        rows = account_rows(store)
    finally:
        store.close()
    if as_json:
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    table = Table("id", "platform", "handle", "owner", "followers", "as of", "observations")
    for row in rows:
        followers = row["followers"]
        table.add_row(
            str(row["id"]),
            row["platform"],
            row["handle"],
            row["owner"] or "",
            f"{followers:,.0f}" if followers is not None else "",
            (row["followers_at"] or "")[:10],
            f"{row['observations']:,}",
        )
    console.print(table)


@accounts_app.command("observe")
def accounts_observe(
    platform: Annotated[str, typer.Argument(help="bluesky, mastodon, x, linkedin, ...")],
    handle: Annotated[str, typer.Argument(help="Handle or profile URL.")],
    followers: Annotated[
        int | None, typer.Option(min=0, help="Followers shown on the profile.")
    ] = None,
    following: Annotated[int | None, typer.Option(min=0, help="Accounts it follows.")] = None,
    on: Annotated[
        str | None, typer.Option(help="The day the counts were seen, YYYY-MM-DD (default: today).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Record an account's follower count as seen on its profile, for follower growth.

    For platforms whose exports give no follower total (X, LinkedIn); sources that read
    profiles (Bluesky, Mastodon, YouTube) record it themselves.
    """
    values = {
        metric: float(value)
        for metric, value in (("followers", followers), ("following", following))
        if value is not None
    }
    if not values:
        raise _error("give --followers and/or --following")
    try:
        day = dt.date.fromisoformat(on) if on else dt.datetime.now(dt.UTC).date()
    except ValueError as exc:
        raise _error(f"--on {on!r} is not a date (YYYY-MM-DD)") from exc
    store = open_cli_store(db)
    try:
        account, stored = observe_account(store, platform, handle, values, day)
    except CatalogError as exc:
        raise _error(str(exc), 1) from exc
    finally:
        store.close()
    what = ", ".join(f"{metric} {value:,.0f}" for metric, value in values.items())
    state = "recorded" if stored else "already recorded"
    console.print(f"{account[0]}:{account[1]} on {day}: {what} ({state})", markup=False)
