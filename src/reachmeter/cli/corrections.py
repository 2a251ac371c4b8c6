"""Reviewing reported wrong matches: ``corrections list|accept|reject``."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from reachmeter.cli.app import DbOption, app, console, err_console, open_cli_store
from reachmeter.store.corrections import (
    ReviewError,
    accept_request,
    list_requests,
    reject_request,
)

corrections_app = typer.Typer(
    help="Reported wrong matches: list, accept, reject.", no_args_is_help=True
)
app.add_typer(corrections_app, name="corrections")

RequestId = Annotated[int, typer.Argument(help="The correction request's id.", show_default=False)]


@corrections_app.command("list")
def corrections_list(
    status: Annotated[
        str, typer.Option(help="open, accepted, rejected, or all.", show_default=True)
    ] = "open",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = None,
) -> None:
    """List correction requests (reported wrong matches), open ones by default."""
    store = open_cli_store(db)
    try:
        rows = list_requests(store, None if status == "all" else status)
    finally:
        store.close()
    if as_json:
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    table = Table("id", "output", "event", "status", "requested", "reason")
    for row in rows:
        table.add_row(
            str(row["id"]),
            escape(f"{row['output_id']}: {row['title'][:60]}"),
            str(row["event_id"] or "-"),
            row["status"],
            row["requested_at"][:10],
            escape(row["reason"][:80]),
        )
    console.print(table)


@corrections_app.command("accept")
def corrections_accept(
    request_id: RequestId,
    note: Annotated[str, typer.Option(help="Why, kept with the correction.")] = "",
    reviewer: Annotated[
        str | None, typer.Option(help="Who reviewed it (default: the system user).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Accept a report: the mention stops counting for that output, and is never matched to
    it again. Run ``reachmeter score`` (or let the worker) to update the scores."""
    store = open_cli_store(db)
    try:
        review = accept_request(store, request_id, reviewer or getpass.getuser(), note)
    except ReviewError as exc:
        err_console.print(f"error: {exc}", markup=False, style="red")
        raise typer.Exit(2) from exc
    finally:
        store.close()
    console.print(
        f"request {review.request_id} accepted: correction {review.correction_id}, "
        f"{review.matches_removed} match removed"
    )


@corrections_app.command("reject")
def corrections_reject(request_id: RequestId, db: DbOption = None) -> None:
    """Reject a report: the match stands."""
    store = open_cli_store(db)
    try:
        review = reject_request(store, request_id)
    except ReviewError as exc:
        err_console.print(f"error: {exc}", markup=False, style="red")
        raise typer.Exit(2) from exc
    finally:
        store.close()
    console.print(f"request {review.request_id} rejected")
