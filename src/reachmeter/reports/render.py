"""Rendering a report: HTML (Jinja2, autoescaped, charts inlined as SVG), PDF (WeasyPrint,
from the same HTML, so the charts stay vector graphics) and CSV (the report's tables)."""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Sequence
from typing import Any

import jinja2
import markupsafe

from reachmeter.charts import to_svg
from reachmeter.reports.build import Report
from reachmeter.reports.charts import attention_donut, comparison_bars, mentions_over_time

__all__ = ["Table", "render_csv", "render_html", "render_pdf", "tables"]

DEMO_LABEL = "DEMO DATA: a fictional organisation, generated; not real figures."


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reachmeter.reports", "templates"),
        autoescape=True,  # mention texts, names and titles come from the web: always escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = format_number
    env.filters["signed"] = format_change
    return env


def format_number(value: Any) -> str:
    """A figure for people: thousands separated, at most two decimals, "-" when missing."""
    if value is None or value == "":
        return "\u2013"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        text = f"{value:,.2f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    return str(value)


def format_change(value: Any) -> str:
    """A change with its sign (``+3``, ``-1.5``, ``0``)."""
    if value is None or value == "":
        return "\u2013"
    text = format_number(value)
    return f"+{text}" if value > 0 else text


def _charts(report: Report) -> dict[str, str]:
    charts: dict[str, str] = {}
    if report.series:
        charts["series"] = to_svg(mentions_over_time(report.series, report.series_unit))
    if report.attention_by_kind:
        charts["donut"] = to_svg(attention_donut(report.attention_by_kind))
    compared = report.groups if report.scope.kind == "org" else report.people
    if any(row["attention"] for row in compared):
        label = "name"
        title = "Attention score by group" if compared is report.groups else "Attention by person"
        charts["compare"] = to_svg(
            comparison_bars(compared, label=label, value="attention", title=title)
        )
    return charts


def _html_svg(svg: str) -> str:
    """An SVG document as an element to inline in HTML (its XML declaration dropped)."""
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else ""


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page (styles and charts inline)."""
    charts = dict.fromkeys(("series", "donut", "compare"), "")
    charts.update({name: _html_svg(svg) for name, svg in _charts(report).items()})
    template = _environment().get_template("report.html.j2")
    return template.render(
        report=report,
        # Vega draws every text of a chart (names too) as escaped SVG text: safe to inline.
        charts={name: markupsafe.Markup(svg) for name, svg in charts.items()},  # noqa: S704
        demo_label=DEMO_LABEL,
        tables=tables(report),
    )


def render_pdf(report: Report, html: str | None = None) -> bytes:
    """The report as PDF, laid out by WeasyPrint from the report's HTML."""
    import weasyprint  # type: ignore[import-untyped]  # heavy: imported for PDF only

    document = weasyprint.HTML(string=html if html is not None else render_html(report))
    pdf: bytes = document.write_pdf()
    return pdf


Table = tuple[str, str, Sequence[str], list[Sequence[Any]]]


def _kpi(row: dict[str, Any], which: str, key: str) -> Any:
    value = row[which].get(key)
    return "" if value is None else value


def tables(report: Report) -> list[Table]:
    """The report's tables: name, title, column names and rows (plain values)."""
    result: list[Table] = []
    meta = [
        ("report", report.title),
        ("scope", report.scope.key),
        ("scope_name", report.scope.name),
        ("period", report.period.label),
        ("period_start", report.period.start.isoformat()),
        ("period_end", report.period.end.isoformat()),
        ("as_of", report.as_of.isoformat()),
        ("previous_period", report.previous.label),
        ("previous_as_of", report.previous_as_of.isoformat()),
        ("profile", report.profile["name"]),
        ("profile_version", report.profile["version"]),
        ("profile_sha256", report.profile["sha256"]),
        ("has_data", "yes" if report.has_data else "no"),
        ("demo_data", "yes" if report.demo else "no"),
        ("reachmeter_version", report.version),
    ]
    meta.extend(("note", note) for note in report.notes)
    result.append(("report", "About this report", ("field", "value"), [list(m) for m in meta]))
    result.append(
        (
            "headline",
            "Headline figures",
            ("figure", "label", "value", "previous", "change", "change_pct"),
            [
                [r["key"], r["label"], r["value"], r["previous"], r["change"], r["change_pct"]]
                for r in report.headline
            ],
        )
    )
    result.append(
        (
            "sources",
            "Attention by source",
            ("kind", "category", "mentions", "previous", "change", "counted_authors", "points"),
            [
                [
                    s["kind"],
                    s["category"],
                    s["mentions"],
                    s["previous"],
                    s["change"],
                    s["counted"],
                    s["points"],
                ]
                for s in report.sources
            ],
        )
    )
    result.append(
        (
            "mentions_over_time",
            f"Mentions by source per {report.series_unit}",
            ("period_start", "kind", "mentions"),
            [[r["period"], r["source"], r["value"]] for r in report.series],
        )
    )
    result.append(
        (
            "top_outputs",
            "Top outputs",
            ("rank", "output_id", "title", "type", "venue", "published_on", "identifier",
             "score", "change", "mentions", "pct_all"),
            [
                [o["rank"], o["output_id"], o["title"], o["type"], o["venue"],
                 o["published_on"], o["identifier"], o["score"], o["change"], o["mentions"],
                 o["pct_all"]]
                for o in report.top_outputs
            ],
        )
    )  # fmt: skip
    result.append(
        (
            "top_mentions",
            "Top mentions",
            ("occurred_at", "source", "kind", "author", "text", "url", "output_id", "output"),
            [
                [m["occurred_at"], m["source"], m["kind"], m["author"], m["text"], m["url"],
                 m["output_id"], m["output"]]
                for m in report.top_mentions
            ],
        )
    )  # fmt: skip
    compared = ("outputs", "attention", "change", "h_index", "mentions", "citations", "usage")
    if report.scope.kind != "person":
        result.append(
            (
                "groups",
                "Groups compared",
                ("group_id", "name", "parent", "people", *compared),
                [
                    [g["group_id"], g["name"], g["parent"], g["people"],
                     *(g[c] for c in compared)]
                    for g in report.groups
                ],
            )
        )  # fmt: skip
        result.append(
            (
                "people",
                "People compared",
                ("person_id", "name", "groups", *compared),
                [
                    [p["person_id"], p["name"], p["groups"], *(p[c] for c in compared)]
                    for p in report.people
                ],
            )
        )
    else:
        result.append(
            (
                "reach",
                "Reach, component by component (percentiles)",
                ("component", "value", "reason", *(f"pct_{x}" for x in report.reach_labels)),
                [
                    [r["component"], r["value"], r["reason"], *r["percentiles"]]
                    for r in report.reach
                ],
            )
        )
    kpis = ("followers_end", "follower_growth_rate", "posts", "engagements", "impressions",
            "reach", "engagement_rate_impr", "engagement_rate_reach",
            "engagement_rate_followers", "posting_frequency", "average_reach_per_post",
            "share_of_voice")  # fmt: skip
    result.append(
        (
            "accounts",
            "Accounts' KPIs (this period; previous period)",
            ("account_id", "platform", "handle", "owner", *kpis,
             *(f"previous_{k}" for k in kpis)),
            [
                [a["account_id"], a["platform"], a["handle"], a["owner"],
                 *(_kpi(a, "current", k) for k in kpis),
                 *(_kpi(a, "previous", k) for k in kpis)]
                for a in report.accounts
            ],
        )
    )  # fmt: skip
    objective_columns = ("id", "aim", "title", "kpi", "scope", "target", "start", "deadline",
                         "current", "projected", "status", "owner")  # fmt: skip
    result.append(
        (
            "objectives",
            "Objectives' progress",
            objective_columns,
            [[o[c] for c in objective_columns] for o in report.objectives],
        )
    )
    quality = report.quality
    rows: list[Sequence[Any]] = [
        ["flag", f["kind"], f["mentions"], "excluded" if f["excluded"] else "shown, counted"]
        for f in quality["flags"]
    ]
    rows.append(["count-jump", "observations", quality["count_jumps"], ""])
    rows.append(["deleted", "mentions deleted at their source", quality["deleted"], ""])
    rows.extend(
        ["runs", r["source"], r["runs"],
         f"ok {r['ok']}, partial {r['partial']}, failed {r['failed']}. {r['last_error']}".strip()]
        for r in quality["runs"]
    )  # fmt: skip
    rows.extend(["paused", p["source"], "", p["reason"]] for p in quality["paused"])
    rows.append(["quarantined", "records quarantined in the period", quality["quarantined"], ""])
    result.append(("data_quality", "Data quality", ("what", "item", "count", "detail"), rows))
    result.append(
        (
            "profile_weights",
            f"Scoring profile {report.profile['name']} {report.profile['version']}",
            ("kind", "category", "weight", "cap"),
            [[w["kind"], w["category"], w["weight"], w["cap"]] for w in report.profile["weights"]],
        )
    )
    return result


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        # Text from the web is data: a spreadsheet must not read it as a formula.
        return "'" + value
    if isinstance(value, float) and value == int(value) and abs(value) < 1e15:
        return int(value)
    return value


def render_csv(report: Report) -> str:
    """The report's tables in one CSV file: each table starts with a ``# name: title`` line
    and its header row, and tables are separated by an empty line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for number, (name, title, columns, rows) in enumerate(tables(report)):
        if number:
            out.write("\n")
        if report.demo and number == 0:
            out.write(f"# {DEMO_LABEL}\n")
        out.write(f"# {name}: {title}\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(v) for v in row])
    return out.getvalue()
