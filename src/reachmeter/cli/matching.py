"""``reachmeter ids extract`` and ``reachmeter match``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, TextIO

import orjson
import typer

from reachmeter.cli.app import DbOption, app, console, err_console, open_cli_store
from reachmeter.matching.extract import MAX_HTML_CHARS, Found, extract_found, extract_html
from reachmeter.matching.landing import read_landing_page
from reachmeter.matching.match import match_events, normalize_output_urls

ids_app = typer.Typer(help="Identifiers: extract and normalise.", no_args_is_help=True)
app.add_typer(ids_app, name="ids")


def _row(found: Found) -> dict[str, str]:
    return {
        "scheme": found.identifier.scheme,
        "value": found.identifier.value,
        "found_as": found.how,
        "raw": found.raw,
    }


def _open(source: str) -> TextIO:
    if source == "-":
        return sys.stdin
    return Path(source).open(encoding="utf-8", errors="replace")


@ids_app.command("extract")
def ids_extract(
    source: Annotated[
        str, typer.Argument(help="A text file with one text per line, or - for stdin.")
    ] = "-",
    html: Annotated[
        bool, typer.Option("--html", help="Read SOURCE as one HTML page, not lines of text.")
    ] = False,
    url: Annotated[
        str | None,
        typer.Option("--url", help="The page's URL (with --html): resolves relative links."),
    ] = None,
) -> None:
    """Print the identifiers in each input as one JSON object per line.

    Each object has ``identifiers``: ``scheme`` (idutils' name), ``value`` (normalised),
    ``found_as`` (literal, url-pattern, in-url, url) and ``raw`` (the text it came from).
    With ``--html``, the object also has the page's ``doi`` (from its meta tags),
    ``doi_tag``, ``canonical_url`` and ``og_url``.
    """
    try:
        handle = _open(source)
    except OSError as exc:
        err_console.print(f"[red]error:[/red] cannot read {source}: {exc}")
        raise typer.Exit(2) from exc
    out = sys.stdout.buffer
    try:
        if html:
            page_text = handle.read(MAX_HTML_CHARS)
            row: dict[str, object] = {
                "identifiers": [_row(f) for f in extract_html(page_text, url)],
            }
            if url:
                page = read_landing_page(page_text, url)
                row.update(
                    doi=page.doi,
                    doi_tag=page.doi_tag,
                    canonical_url=page.canonical_url,
                    og_url=page.og_url,
                )
            out.write(orjson.dumps(row) + b"\n")
            return
        for number, line in enumerate(handle, start=1):
            text = line.rstrip("\n")
            found = [_row(f) for f in extract_found(text)]
            out.write(orjson.dumps({"line": number, "identifiers": found}) + b"\n")
    finally:
        out.flush()
        if handle is not sys.stdin:
            handle.close()


@app.command("match")
def match(db: DbOption = None) -> None:
    """Match every stored event to the tracked outputs again (after outputs were added).

    Output URLs are rewritten in their normalised form first. Matches already recorded
    stay; running it twice adds nothing the second time.
    """
    store = open_cli_store(db)
    try:
        with store.begin() as connection:
            changed, problems = normalize_output_urls(connection)
            summary = match_events(connection)
    finally:
        store.close()
    for problem in problems[:20]:
        err_console.print(f"[yellow]warning:[/yellow] {problem}", highlight=False)
    console.print(
        f"{summary.events:,} events read, {summary.matched:,} matched to outputs, "
        f"{summary.new_matches:,} new matches; {changed:,} output URLs normalised.",
        highlight=False,
    )
