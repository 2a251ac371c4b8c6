"""``reachmeter score``, ``scores export|methods`` and ``explain``."""

from __future__ import annotations

import datetime as dt
import enum
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from reachmeter.cli.app import DbOption, app, console, err_console, import_app, open_cli_store
from reachmeter.imports.altmetric import import_altmetric
from reachmeter.matching.identifiers import IdentifierError, normalize
from reachmeter.scoring import (
    Profile,
    ProfileError,
    compute_scores,
    latest_as_of,
    load_profile,
    methods_log,
    top_scores,
    update_scores,
)
from reachmeter.scoring.accounts import account_report
from reachmeter.scoring.altmetric import compare_with_altmetric
from reachmeter.scoring.explain import (
    ExplainError,
    explain_account,
    explain_output,
    explain_person,
)
from reachmeter.scoring.export import write_scores
from reachmeter.scoring.reach import reach_report
from reachmeter.store import Store

scores_app = typer.Typer(help="Stored scores: export, methods log.", no_args_is_help=True)
app.add_typer(scores_app, name="scores")
reach_app = typer.Typer(
    help="Reach of people and groups, component by component.", no_args_is_help=True
)
app.add_typer(reach_app, name="reach")

ProfileOption = Annotated[
    str,
    typer.Option(
        "--profile", help="A shipped profile (default, altmetric-like) or a profile .toml file."
    ),
]
AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="Count facts up to the end of this day (YYYY-MM-DD, UTC)."),
]


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", soft_wrap=True)
    return typer.Exit(2)


def _profile(name: str) -> Profile:
    try:
        return load_profile(name)
    except ProfileError as exc:
        raise _fail(f"{exc} (nothing was recomputed)") from exc


def _as_of(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise _fail(f"--as-of {value!r} is not a date (YYYY-MM-DD)") from exc


@app.command()
def score(
    profile: ProfileOption = "default",
    as_of: AsOfOption = None,
    top: Annotated[int, typer.Option(help="How many top outputs to print.")] = 10,
    incremental: Annotated[
        bool,
        typer.Option(help="Rescore only outputs with events added since the last run."),
    ] = False,
    no_flags: Annotated[
        bool, typer.Option("--no-flags", help="Keep the stored flags; do not detect again.")
    ] = False,
    db: DbOption = None,
) -> None:
    """(Re)compute and store every output's score, then print the top outputs."""
    chosen = _profile(profile)
    day = _as_of(as_of)
    store = open_cli_store(db)
    try:
        if incremental:
            run = update_scores(store, chosen, day)
        else:
            run = compute_scores(store, chosen, day, flags=not no_flags)
        rows = top_scores(store, chosen.name, run.as_of, top)
    finally:
        store.close()
    if run.new_method:
        console.print(f"methods log: new entry for profile {chosen.name} {chosen.version}")
    console.print(
        f"scored {run.scored} outputs with {chosen.name} {chosen.version} as of "
        f"{run.as_of.isoformat()} ({run.flags} flags) in {run.seconds.get('total', 0):.2f} s"
    )
    table = Table("#", "id", "score", "mentions", "title", "pct (all)")
    for number, row in enumerate(rows, start=1):
        pct = row["context"].get("all", {}).get("pct")
        table.add_row(
            str(number),
            str(row["output_id"]),
            f"{row['score']:g}",
            str(row["mentions"]),
            row["title"] or "",
            "-" if pct is None else f"{pct:g}",
        )
    console.print(table)


class ExportFormat(enum.StrEnum):
    csv = "csv"
    jsonl = "jsonl"


@scores_app.command("export")
def scores_export(
    profile: ProfileOption = "default",
    as_of: AsOfOption = None,
    format_: Annotated[ExportFormat, typer.Option("--format", help="csv or jsonl.")] = (
        ExportFormat.csv
    ),
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Write the stored scores of a profile (latest date by default) as CSV or JSON Lines."""
    name = _profile(profile).name
    day = _as_of(as_of)
    store = open_cli_store(db)
    try:
        day = day or latest_as_of(store, name)
        if day is None:
            raise _fail(f"no stored scores for profile {name}: run `reachmeter score` first")
        if output is None:
            count = write_scores(store, name, day, format_.value, sys.stdout)
        else:
            with output.open("w", encoding="utf-8", newline="") as handle:
                count = write_scores(store, name, day, format_.value, handle)
    finally:
        store.close()
    if output is not None:
        err_console.print(f"wrote {count} scores ({name}, {day.isoformat()}) to {output}")


@scores_app.command("methods")
def scores_methods(
    json_: Annotated[bool, typer.Option("--json", help="JSON Lines output.")] = False,
    db: DbOption = None,
) -> None:
    """The methods log: every profile content used for scoring, with the date it first was."""
    store = open_cli_store(db)
    try:
        entries = methods_log(store)
    finally:
        store.close()
    if json_:
        for entry in entries:
            sys.stdout.write(orjson.dumps(entry).decode() + "\n")
        return
    table = Table("changed at", "profile", "version", "sha256", "description")
    for entry in entries:
        table.add_row(
            entry["changed_at"],
            entry["profile"],
            entry["version"],
            entry["sha256"][:12],
            entry["description"],
        )
    console.print(table)


def _output_id(store: Store, target: str) -> int:
    from sqlalchemy import select

    from reachmeter.store.schema import OutputIdentifier

    text = target.removeprefix("output:")
    if text.isdigit():
        return int(text)
    try:
        identifier = normalize(text)
    except IdentifierError as exc:
        raise _fail(f"{target!r} is not an output id or identifier: {exc}") from exc
    with store.engine.connect() as connection:
        found = connection.execute(
            select(OutputIdentifier.output_id).where(
                OutputIdentifier.scheme == identifier.scheme,
                OutputIdentifier.value == identifier.value,
            )
        ).scalar()
    if found is None:
        raise _fail(f"no tracked output is known by {identifier}")
    return int(found)


@app.command()
def explain(
    target: Annotated[
        str,
        typer.Argument(
            help="An output (id, output:ID, DOI or other identifier).", show_default=False
        ),
    ],
    profile: ProfileOption = "default",
    as_of: AsOfOption = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the explanation as JSON.")] = False,
    db: DbOption = None,
) -> None:
    """List every number behind a score, down to each event and observation and its evidence.

    TARGET is an output (id, ``output:ID``, DOI or other identifier), ``person:ID``,
    ``group:ID`` or ``account:ID``.
    """
    chosen = _profile(profile)
    day = _as_of(as_of)
    kind, _, number = target.partition(":")
    store = open_cli_store(db)
    try:
        if kind in ("person", "group", "account") and number.isdigit():
            result = _explain_other(store, kind, int(number), chosen.name, day)
        else:
            output_id = _output_id(store, target)
            try:
                result = explain_output(store, output_id, chosen, day)
            except ExplainError as exc:
                raise _fail(str(exc)) from exc
    finally:
        store.close()
    if json_:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if result["kind"] == "output":
        _print_explanation(result)
    elif result["kind"] == "account":
        _print_kpis(result)
    else:
        _print_reach(result)


def _scored_day(store: Store, profile_name: str, day: dt.date | None) -> dt.date:
    found = day or latest_as_of(store, profile_name)
    if found is None:
        raise _fail(f"no stored scores for profile {profile_name}: run `reachmeter score` first")
    return found


def _explain_other(
    store: Store, kind: str, number: int, profile_name: str, day: dt.date | None
) -> dict[str, Any]:
    try:
        if kind == "account":
            end = day or dt.datetime.now(dt.UTC).date()
            return explain_account(store, number, end - dt.timedelta(days=364), end)
        scored = _scored_day(store, profile_name, day)
        if kind == "person":
            return explain_person(store, number, profile_name, scored)
        return reach_report(store, profile_name, scored, group_id=number)
    except LookupError as exc:
        raise _fail(str(exc)) from exc


def _print_reach(result: dict[str, Any]) -> None:
    subject = result.get("person") or result.get("group") or {}
    console.print(
        f"[bold]{subject.get('name')}[/bold] ({result['kind']} {subject.get('id')}), "
        f"profile {result['profile']}, as of {result['as_of']}"
    )
    components = result["components"]
    labels = sorted({k for c in components.values() for k in c if k.startswith("pct_")})
    table = Table("component", "value", *labels)
    for name, entry in components.items():
        value = entry["value"]
        shown = entry.get("reason", "-") if value is None else f"{value:g}"
        pcts = ["-" if entry.get(k) is None else f"{entry[k]:g}" for k in labels]
        table.add_row(name, shown, *pcts)
    console.print(table)
    console.print(f"outputs: {len(result['outputs'])}")
    if "inputs" in result:
        _print_inputs(
            [(name, item) for name, items in result["inputs"].items() for item in items],
            "what each component was computed from",
        )


def _print_inputs(items: list[tuple[str, dict[str, Any]]], title: str) -> None:
    """Observations and events behind a reach or KPI explanation, each with its evidence."""
    if not items:
        return
    table = Table("for", "id", "what", "value / date", "evidence", title=title)
    for name, item in items:
        evidence = item.get("evidence", {})
        where = f"{evidence.get('source_id', '')} {evidence.get('request_url') or ''}".strip()
        if "observation_id" in item:
            period = item.get("period") or [item.get("period_start"), None]
            shown = f"{item['value']:g} ({period[0] or item['observed_at'][:10]})"
            table.add_row(
                name, f"obs {item['observation_id']}", item["metric"], shown, escape(where)
            )
        else:
            table.add_row(
                name,
                f"event {item['event_id']}",
                escape(f"{item['source_id']} {item['author'] or item['subj_id']}"),
                (item["occurred_at"] or "")[:10],
                escape(where),
            )
    console.print(table)


def _print_kpis(result: dict[str, Any]) -> None:
    account = result["account"]
    console.print(
        f"[bold]{account['platform']} {account['handle']}[/bold] (account {account['id']})"
    )
    names = (
        "engagement_rate_impr", "engagement_rate_reach", "engagement_rate_followers",
        "follower_growth_rate", "posting_frequency", "average_reach_per_post", "share_of_voice",
    )  # fmt: skip
    labels = (
        "ER impr %",
        "ER reach %",
        "ER foll %",
        "growth %",
        "posts/day",
        "reach/post",
        "SoV %",
    )
    table = Table("period", *labels)
    for row in result["kpis"]:
        table.add_row(
            row["period"][0][:7], *("-" if row[n] is None else f"{row[n]:g}" for n in names)
        )
    console.print(table)
    if "own_mentions" in result:
        _print_inputs(
            [(p["metric"], p) for p in result["observations"] if "evidence" in p]
            + [("share_of_voice", e) for e in result["own_mentions"]],
            "observations and mentions behind the KPIs",
        )


@reach_app.command("person")
def reach_person(
    person_id: Annotated[int, typer.Argument(help="The person's id.", show_default=False)],
    profile: ProfileOption = "default",
    as_of: AsOfOption = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = None,
) -> None:
    """A person's reach: each component with its percentiles in the organisation and groups."""
    _explain_cli("person", person_id, profile, as_of, json_, db)


@reach_app.command("group")
def reach_group(
    group_id: Annotated[int, typer.Argument(help="The group's id.", show_default=False)],
    profile: ProfileOption = "default",
    as_of: AsOfOption = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = None,
) -> None:
    """A group's reach, aggregated over its members and sub-groups, ranked among groups."""
    _explain_cli("group", group_id, profile, as_of, json_, db)


@app.command()
def kpis(
    account_id: Annotated[int, typer.Argument(help="The account's id.", show_default=False)],
    since: Annotated[
        str | None, typer.Option("--from", help="First day (default: a year before --to).")
    ] = None,
    until: Annotated[str | None, typer.Option("--to", help="Last day (default: today).")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = None,
) -> None:
    """An account's KPIs per month: engagement rates, follower growth, posting, share of voice."""
    end = _as_of(until) or dt.datetime.now(dt.UTC).date()
    start = _as_of(since) or end - dt.timedelta(days=364)
    store = open_cli_store(db)
    try:
        result = account_report(store, account_id, start, end)
    except LookupError as exc:
        raise _fail(str(exc)) from exc
    finally:
        store.close()
    if json_:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _print_kpis(result)


def _explain_cli(
    kind: str, number: int, profile: str, as_of: str | None, json_: bool, db: str | None
) -> None:
    name = _profile(profile).name
    day = _as_of(as_of)
    store = open_cli_store(db)
    try:
        result = _explain_other(store, kind, number, name, day)
    finally:
        store.close()
    if json_:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _print_reach(result)


def _print_explanation(result: dict[str, Any]) -> None:
    output = result["output"]
    console.print(f"[bold]{output['title']}[/bold] (output {output['id']})", soft_wrap=True)
    console.print(
        f"{', '.join(output['identifiers'])}; venue {output['venue'] or '-'}; "
        f"published {output['published_on'] or '-'}",
        soft_wrap=True,
    )
    profile = result["profile"]
    stored = result["stored"]
    console.print(
        f"score {result['score']:g} ({profile['name']} {profile['version']}, as of "
        f"{result['as_of']}); stored: {stored['score'] if stored else 'none'}"
    )
    table = Table("source", "category", "count", "weight", "points")
    for kind, part in result["breakdown"]["sources"].items():
        capped = " (capped)" if part["capped"] else ""
        table.add_row(
            kind, part["category"], f"{part['count']:g}", f"{part['weight']:g}",
            f"{part['points']:g}{capped}",
        )  # fmt: skip
    console.print(table)
    if stored:
        for group, stats in stored["context"].items():
            if "reason" in stats and stats.get("pct") is None:
                console.print(f"context {group}: {stats['reason']}")
            else:
                console.print(
                    f"context {group}: rank {stats['rank']} of {stats['count']}, "
                    f"pct {stats['pct']}, mean {stats['mean']:g}"
                )
        console.print("history: " + ", ".join(f"{k} {v:+g}" for k, v in stored["history"].items()))
    events = Table("event", "when", "source", "author", "counted", "why not / flags", "evidence")
    for event in result["events"]:
        events.add_row(
            str(event["event_id"]),
            event["occurred_at"][:16],
            event["source_id"],
            event["author"],
            "yes" if event["counted"] else "no",
            "; ".join(event["why_not"] + [f"flag {f}" for f in event["flags"]]),
            event["evidence"].get("request_url") or event["evidence"].get("url") or "",
        )
    console.print(events)
    if result["observations"]:
        observations = Table("observation", "metric", "source", "value", "observed", "counted")
        for item in result["observations"]:
            observations.add_row(
                str(item["observation_id"]), item["metric"], item["source_id"],
                f"{item['value']:g}", item["observed_at"][:10], "yes" if item["counted"] else "no",
            )  # fmt: skip
        console.print(observations)


@import_app.command("altmetric")
def import_altmetric_command(
    files: Annotated[
        list[Path],
        typer.Argument(exists=True, dir_okay=False, readable=True, show_default=False),
    ],
    db: DbOption = None,
) -> None:
    """Import Altmetric API v1 responses and fetch records (JSON or JSON Lines)."""
    store = open_cli_store(db)
    try:
        summary = import_altmetric(store, files)
    finally:
        store.close()
    console.print(
        f"{summary.records} records: {summary.outputs} new outputs, {summary.events} events "
        f"({summary.duplicates} already stored), {summary.observations} observations, "
        f"{summary.skipped} skipped"
    )
    for problem in summary.problems:
        err_console.print(f"[yellow]skipped:[/yellow] {problem}", soft_wrap=True)
    if summary.records == 0 and summary.problems:
        raise typer.Exit(1)


@scores_app.command("compare-altmetric")
def scores_compare_altmetric(
    profile: ProfileOption = "altmetric-like",
    as_of: AsOfOption = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = None,
) -> None:
    """Compare stored scores and imported posts with Altmetric's own numbers."""
    chosen = _profile(profile)
    day = _as_of(as_of)
    store = open_cli_store(db)
    try:
        day = _scored_day(store, chosen.name, day)
        result = compare_with_altmetric(store, chosen, day)
    finally:
        store.close()
    if json_:
        sys.stdout.write(orjson.dumps(result.__dict__, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    console.print(
        f"{len(result.outputs)} outputs with an Altmetric score; per-source author counts "
        f"checked: {result.count_checks}, mismatches: {len(result.count_mismatches)}"
    )
    console.print(
        f"Spearman rank correlation: {result.spearman}; "
        f"median relative error: {result.median_relative_error}"
    )
