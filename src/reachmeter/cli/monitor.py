"""Monitoring: the ``run`` worker, alerts, and the framework of aims, objectives and staffing."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from reachmeter.cli.app import DbOption, app, console, err_console, open_cli_store
from reachmeter.framework import (
    KPIS,
    FrameworkError,
    add_aim,
    add_objective,
    add_staffing,
    list_aims,
    list_objectives,
    list_staffing,
    objectives_progress,
)
from reachmeter.http import redact_url
from reachmeter.monitor.alerts import (
    ALERT_KINDS,
    AlertError,
    add_filter,
    add_rule,
    list_alerts,
    list_rules,
    raise_alerts,
)
from reachmeter.monitor.deliver import deliver_pending, retry_failed
from reachmeter.monitor.worker import (
    TickSummary,
    Worker,
    WorkerBusyError,
    list_schedules,
    parse_every,
    set_schedule,
)
from reachmeter.settings import Settings
from reachmeter.sources.runner import SourceError

aims_app = typer.Typer(help="Aims: why the organisation is on social media.", no_args_is_help=True)
objectives_app = typer.Typer(
    help="Objectives: a metric, a scope, a target and a deadline; their progress.",
    no_args_is_help=True,
)
staffing_app = typer.Typer(help="Staffing: who runs which account.", no_args_is_help=True)
app.add_typer(aims_app, name="aims")
app.add_typer(objectives_app, name="objectives")
app.add_typer(staffing_app, name="staffing")

_STATUS_STYLE = {
    "achieved": "green",
    "on track": "green",
    "at risk": "yellow",
    "behind": "red",
    "not started": "dim",
}


def _fail(message: str) -> typer.Exit:
    err_console.print(Text.assemble(("error:", "red"), " ", message), soft_wrap=True)
    return typer.Exit(2)


def _date(value: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise _fail(f"{what} {value!r} is not a date (YYYY-MM-DD)") from exc


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


@aims_app.command("add")
def aims_add(
    title: Annotated[str, typer.Argument(help="The aim, in a sentence.")],
    description: Annotated[str, typer.Option(help="Why, at more length.")] = "",
    db: DbOption = None,
) -> None:
    """Record an aim."""
    store = open_cli_store(db)
    try:
        aim_id = add_aim(store, title, description)
    except FrameworkError as exc:
        raise _fail(str(exc)) from exc
    finally:
        store.close()
    console.print(f"aim {aim_id} added")


@aims_app.command("list")
def aims_list(db: DbOption = None) -> None:
    """Every aim, with how many objectives serve it."""
    store = open_cli_store(db)
    table = Table(title="aims")
    for column in ("id", "aim", "objectives"):
        table.add_column(column)
    for aim in list_aims(store):
        table.add_row(str(aim["id"]), Text(aim["title"]), str(aim["objectives"]))
    store.close()
    console.print(table)


@objectives_app.command("add")
def objectives_add(
    title: Annotated[str, typer.Argument(help="What the objective is, in a sentence.")],
    kpi: Annotated[str, typer.Option("--kpi", help="The metric (see `objectives metrics`).")],
    over: Annotated[
        str,
        typer.Option(
            "--over",
            help="accounts|outputs|people|groups, optionally :REF,REF "
            "(accounts:x:ourlibrary, groups:Public Health, people:0000-0002-1825-0097).",
        ),
    ],
    target: Annotated[float, typer.Option("--target", help="The value to reach.")],
    start: Annotated[str, typer.Option("--start", help="First day counted (YYYY-MM-DD).")],
    deadline: Annotated[str, typer.Option("--deadline", help="Last day (YYYY-MM-DD).")],
    owner: Annotated[str | None, typer.Option("--owner", help="Who answers for it.")] = None,
    aim: Annotated[
        str | None, typer.Option("--aim", help="The aim it serves (id or title).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Record an objective: a metric over a scope, a target, a start and a deadline."""
    start_day, deadline_day = _date(start, "start"), _date(deadline, "deadline")
    store = open_cli_store(db)
    try:
        objective_id = add_objective(
            store,
            title=title,
            kpi=kpi,
            over=over,
            target=target,
            start=start_day,
            deadline=deadline_day,
            owner=owner,
            aim=aim,
        )
    except FrameworkError as exc:
        raise _fail(str(exc)) from exc
    finally:
        store.close()
    console.print(f"objective {objective_id} added")


@objectives_app.command("metrics")
def objectives_metrics() -> None:
    """The metrics an objective can be set on."""
    table = Table(title="metrics")
    for column in ("metric", "over", "shape", "definition"):
        table.add_column(column)
    for kpi in KPIS.values():
        table.add_row(kpi.name, kpi.over, kpi.shape, kpi.description)
    console.print(table)


def _progress_table(as_of: dt.date, db: str | None, title: str) -> None:
    store = open_cli_store(db)
    try:
        rows = objectives_progress(store, as_of)
    finally:
        store.close()
    table = Table(title=f"{title} as of {as_of}")
    for column in ("id", "objective", "metric", "target", "current", "projected", "deadline",
                   "status"):  # fmt: skip
        table.add_column(column)
    aim: str | None = ""
    for row in sorted(rows, key=lambda r: (r.aim or "~", r.id)):
        if row.aim != aim:
            aim = row.aim
            table.add_row("", Text(row.aim or "no aim", style="bold"))
        style = _STATUS_STYLE[row.status]
        cell = Text(row.title)
        cell.append(f"\n{row.scope}; owner {row.owner or '-'}", style="dim")
        table.add_row(
            str(row.id), cell, row.kpi, _number(row.target), _number(row.current),
            _number(row.projected), str(row.deadline), f"[{style}]{row.status}[/{style}]",
        )  # fmt: skip
    console.print(table)
    flagged = [r for r in rows if r.status in ("at risk", "behind")]
    for row in flagged:
        err_console.print(
            Text.assemble(
                (row.status, _STATUS_STYLE[row.status]),
                f": objective {row.id} {row.title!r}: {_number(row.current)} of "
                f"{_number(row.target)} {row.kpi}, projected {_number(row.projected)} "
                f"by {row.deadline}",
            ),
            soft_wrap=True,
        )


AsOfOption = Annotated[
    str | None, typer.Option("--as-of", help="Measure up to this day (default today, UTC).")
]


@objectives_app.command("list")
def objectives_list(db: DbOption = None) -> None:
    """Every objective as it was set: metric, scope, target, dates, owner, aim."""
    store = open_cli_store(db)
    rows = list_objectives(store)
    store.close()
    table = Table(title="objectives")
    for column in ("id", "objective", "metric", "over", "target", "start", "deadline", "owner"):
        table.add_column(column, overflow="fold")
    for row in rows:
        cell = Text(row["title"])
        if row["aim"]:
            cell.append(f"\naim: {row['aim']}", style="dim")
        table.add_row(
            str(row["id"]), cell, row["kpi"], Text(row["scope"]), _number(row["target"]),
            str(row["start"]), str(row["deadline"]), Text(row["owner"] or "-"),
        )  # fmt: skip
    console.print(table)


@objectives_app.command("progress")
def objectives_progress_command(as_of: AsOfOption = None, db: DbOption = None) -> None:
    """Progress of every objective, projected to its deadline; at-risk ones called out."""
    day = _date(as_of, "--as-of") if as_of else dt.datetime.now(dt.UTC).date()
    _progress_table(day, db, "progress")


@staffing_app.command("add")
def staffing_add(
    account: Annotated[str, typer.Argument(help="Account id or PLATFORM:HANDLE.")],
    person: Annotated[str, typer.Argument(help="Person id, ORCID or name.")],
    role: Annotated[str, typer.Option("--role", help="Their role on the account.")],
    hours: Annotated[float, typer.Option("--hours", help="Hours per week.")],
    db: DbOption = None,
) -> None:
    """Record who runs an account, in what role, for how many hours a week."""
    store = open_cli_store(db)
    try:
        add_staffing(store, account=account, person=person, role=role, hours=hours)
    except FrameworkError as exc:
        raise _fail(str(exc)) from exc
    finally:
        store.close()
    console.print(f"{person} on {account} as {role}, {hours:g} h/week")


@staffing_app.command("list")
def staffing_list(db: DbOption = None) -> None:
    """Who runs which account, and the hours per account."""
    store = open_cli_store(db)
    rows = list_staffing(store)
    store.close()
    table = Table(title="staffing")
    for column in ("account", "person", "role", "hours/week"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            Text(row.account), Text(row.person), Text(row.role), _number(row.hours_per_week)
        )
    console.print(table)
    console.print(f"{sum(r.hours_per_week for r in rows):g} hours a week in all")


# -- the worker -------------------------------------------------------------------------------

schedule_app = typer.Typer(help="When the worker collects each source.", no_args_is_help=True)
alerts_app = typer.Typer(help="Alerts: list, rules, saved filters, send.", no_args_is_help=True)
rules_app = typer.Typer(help="Alert rules: who gets which alerts, how often.", no_args_is_help=True)
filters_app = typer.Typer(help="Saved filters of outputs, for alert rules.", no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")
app.add_typer(alerts_app, name="alerts")
alerts_app.add_typer(rules_app, name="rules")
alerts_app.add_typer(filters_app, name="filters")


def _when(value: dt.datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else "-"


@app.command("run")
def run_worker(
    once: Annotated[
        bool, typer.Option("--once", help="Run everything due now once, then exit.")
    ] = False,
    db: DbOption = None,
) -> None:
    """The worker: collect each scheduled source, update scores, raise and send alerts.

    Runs until SIGTERM or Ctrl-C (it stops after the page in hand and resumes from there
    next time). Only one worker runs at a time on a store.
    """
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    for quiet in ("apscheduler", "httpx", "alembic"):
        logging.getLogger(quiet).setLevel(logging.WARNING)
    store = open_cli_store(db)
    worker = Worker(store, Settings())
    try:
        if once:
            try:
                summary = worker.run_due()
            finally:
                worker.release()  # only ever this worker's own lease
            _print_tick(summary)
        else:
            worker.run_forever()
    except WorkerBusyError as exc:
        raise _fail(str(exc)) from exc
    finally:
        store.close()


def _print_tick(summary: TickSummary) -> None:
    if not summary.runs and not summary.skipped:
        console.print("no source was due (reachmeter schedule list)")
    table = Table(title="run")
    for column in ("job", "status", "fetched", "stored", "errors"):
        table.add_column(column)
    for run in summary.runs:
        table.add_row(
            run.source_id, run.status, str(run.fetched), str(run.stored), str(len(run.errors))
        )
    for skipped in summary.skipped:
        table.add_row(skipped.split(":", 1)[0], "skipped", "-", "-", Text(skipped.split(":", 1)[1]))
    if summary.runs or summary.skipped:
        console.print(table)
    if summary.interrupted:
        console.print(f"stopped during {summary.interrupted}; it resumes from its cursors")
    if summary.alerts is not None:
        raised = ", ".join(f"{k} {v}" for k, v in summary.alerts.raised.items() if v) or "none"
        console.print(f"scores updated: {summary.scored}; alerts raised: {raised}")
    if summary.delivery is not None:
        d = summary.delivery
        console.print(f"alerts sent: {d.sent}, to retry: {d.retrying}, failed: {d.failed}")
        for error in d.errors[:10]:
            err_console.print(Text(error, style="yellow"), soft_wrap=True)


@schedule_app.command("set")
def schedule_set(
    job: Annotated[str, typer.Argument(help="A source id, or `alerts` (the alert check).")],
    every: Annotated[str, typer.Option("--every", help="30m, 6h, 1d, 1w ...")] = "1d",
    off: Annotated[bool, typer.Option("--off", help="Stop running it.")] = False,
    db: DbOption = None,
) -> None:
    """Schedule a source (a new one is due at once) or change its interval."""
    try:
        seconds = parse_every(every)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    store = open_cli_store(db)
    try:
        set_schedule(store, job, seconds, enabled=not off)
    except SourceError as exc:
        raise _fail(str(exc)) from exc
    finally:
        store.close()
    console.print(f"{job}: {'off' if off else f'every {every}'}")


@schedule_app.command("list")
def schedule_list(db: DbOption = None) -> None:
    """Every scheduled job: interval, next run, last run and how it went."""
    store = open_cli_store(db)
    rows = list_schedules(store)
    store.close()
    table = Table(title="schedule")
    for column in ("job", "every", "on", "next run", "last run", "last status"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["job"], f"{row['every_seconds'] // 60} min", "yes" if row["enabled"] else "no",
            _when(row["next_run_at"]), _when(row["last_started_at"]), row["last_status"] or "-",
        )  # fmt: skip
    console.print(table)


# -- alerts -----------------------------------------------------------------------------------


@alerts_app.command("list")
def alerts_list(
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    limit: Annotated[int, typer.Option(help="How many, latest first.")] = 50,
    db: DbOption = None,
) -> None:
    """The latest alerts and how their deliveries went."""
    if kind is not None and kind not in ALERT_KINDS:
        raise _fail(f"unknown alert kind {kind!r}; use {', '.join(ALERT_KINDS)}")
    store = open_cli_store(db)
    rows = list_alerts(store, limit=limit, kind=kind)
    store.close()
    table = Table(title="alerts")
    for column in ("id", "raised", "kind", "alert", "deliveries"):
        table.add_column(column)
    for row in rows:
        sent = ", ".join(
            f"{d['channel']} {d['status']}" + (f" ({d['attempts']} tries)" if d["attempts"] else "")
            for d in row["deliveries"]
        )
        table.add_row(
            str(row["id"]), _when(row["raised_at"]), row["kind"], Text(row["title"]), sent or "-"
        )
    console.print(table)


@alerts_app.command("send")
def alerts_send(
    check: Annotated[
        bool, typer.Option("--check/--no-check", help="Raise due alerts first.")
    ] = True,
    retry_failed_: Annotated[
        bool, typer.Option("--retry-failed", help="Queue deliveries that gave up again.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Raise the alerts due now and send every pending delivery."""
    store = open_cli_store(db)
    try:
        if retry_failed_:
            console.print(f"{retry_failed(store)} failed deliveries queued again")
        if check:
            raised = raise_alerts(store)
            shown = ", ".join(f"{k} {v}" for k, v in raised.raised.items() if v) or "none"
            console.print(f"alerts raised: {shown}")
        summary = deliver_pending(store, Settings())
    finally:
        store.close()
    console.print(f"sent: {summary.sent}, to retry: {summary.retrying}, failed: {summary.failed}")
    for error in summary.errors[:20]:
        err_console.print(Text(error, style="yellow"), soft_wrap=True)
    if summary.errors and not summary.sent:
        raise typer.Exit(1)


@rules_app.command("add")
def rules_add(
    name: Annotated[str, typer.Argument(help="A name for the rule.")],
    scope: Annotated[
        str, typer.Option(help="all, person:ID|ORCID|NAME, group:NAME or filter:NAME.")
    ] = "all",
    kinds: Annotated[
        str, typer.Option(help=f"Alert kinds, comma-separated: {', '.join(ALERT_KINDS)}.")
    ] = ",".join(ALERT_KINDS),
    frequency: Annotated[str, typer.Option(help="immediate, daily or weekly.")] = "daily",
    email: Annotated[str | None, typer.Option(help="Recipients, comma-separated.")] = None,
    webhook: Annotated[str | None, typer.Option(help="A URL to POST JSON to.")] = None,
    db: DbOption = None,
) -> None:
    """Subscribe e-mail recipients or a webhook to alerts."""
    store = open_cli_store(db)
    try:
        rule_id = add_rule(
            store,
            name,
            scope=scope,
            kinds=[k.strip() for k in kinds.split(",") if k.strip()],
            frequency=frequency,
            email=email,
            webhook=webhook,
        )
    except AlertError as exc:
        raise _fail(str(exc)) from exc
    finally:
        store.close()
    console.print(f"rule {rule_id} added")


@rules_app.command("list")
def rules_list(db: DbOption = None) -> None:
    """Every alert rule."""
    store = open_cli_store(db)
    rows = list_rules(store)
    store.close()
    table = Table(title="alert rules")
    for column in ("id", "name", "scope", "kinds", "how often", "to", "covered until"):
        table.add_column(column)
    for row in rows:
        to = ", ".join(
            x for x in (row["email"], row["webhook"] and redact_url(row["webhook"])) if x
        )
        table.add_row(
            str(row["id"]), Text(row["name"]), row["scope"], ", ".join(row["kinds"]),
            row["frequency"], Text(to), _when(row["covered_until"]),
        )  # fmt: skip
    console.print(table)


@filters_app.command("add")
def filters_add(
    name: Annotated[str, typer.Argument(help="A name for the filter.")],
    conditions: Annotated[
        list[str], typer.Argument(help="KEY=VALUE[,VALUE]: type, source, group, person, title.")
    ],
    db: DbOption = None,
) -> None:
    """Save a filter of outputs (e.g. ``type=dataset source=newsfeed,policy``)."""
    query: dict[str, Any] = {}
    for pair in conditions:
        key, sep, value = pair.partition("=")
        if not sep or not value.strip():
            raise _fail(f"{pair!r} is not KEY=VALUE")
        query.setdefault(key.strip(), []).extend(v.strip() for v in value.split(",") if v.strip())
    store = open_cli_store(db)
    try:
        filter_id = add_filter(store, name, query)
    except AlertError as exc:
        raise _fail(str(exc)) from exc
    finally:
        store.close()
    console.print(f"filter {filter_id} saved")
