"""Charts as Vega-Lite specifications: drawn in the browser by vega-embed on the dashboard,
and rendered to SVG without a browser (vl-convert) for reports and tests.

A chart is built once, as a plain ``dict`` spec, by the functions here; every surface draws
the same spec, so a chart in a PDF report and on the dashboard cannot disagree.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import vl_convert

VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
VEGA_LITE_VERSION = "5.20"

Spec = dict[str, Any]

# The source colours of the donut, the breakdown tables and the badges. A source without its
# own colour gets one from the fallback cycle, chosen by its name so it never changes.
SOURCE_COLOURS: Mapping[str, str] = {
    "news": "#b60000",
    "blogs": "#e89500",
    "policy": "#3b2a3d",
    "patent": "#21140e",
    "twitter": "#2f90b9",
    "bluesky": "#1185fe",
    "mastodon": "#6364ff",
    "facebook": "#071d70",
    "reddit": "#d1b3d8",
    "wikipedia": "#c7c7c7",
    "stackexchange": "#f48024",
    "hackernews": "#ff6600",
    "youtube": "#ff0000",
    "f1000": "#cb2d2d",
    "hypothesis": "#bd1c2b",
    "web": "#8c8c8c",
    "crossref": "#2e5f8a",
    "datacite": "#1a6b4f",
    "usage": "#4d9221",
    "citations": "#7b3294",
}
_FALLBACK = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d")


def source_colour(source: str) -> str:
    """The colour of ``source``: its own, or a stable one from the fallback cycle."""
    if source in SOURCE_COLOURS:
        return SOURCE_COLOURS[source]
    return _FALLBACK[sum(source.encode()) % len(_FALLBACK)]


def _base(title: str | None, width: int | str, height: int) -> Spec:
    spec: Spec = {"$schema": VEGA_LITE_SCHEMA, "width": width, "height": height}
    if title:
        spec["title"] = title
    return spec


def source_donut(
    breakdown: Mapping[str, float], *, title: str | None = None, size: int = 160
) -> Spec:
    """A donut of a score's breakdown by source, in the sources' colours."""
    sources = [name for name, value in breakdown.items() if value > 0]
    spec = _base(title, size, size)
    spec.update(
        {
            "data": {"values": [{"source": s, "value": breakdown[s]} for s in sources]},
            "mark": {"type": "arc", "innerRadius": size // 4},
            "encoding": {
                "theta": {"field": "value", "type": "quantitative", "stack": True},
                "color": {
                    "field": "source",
                    "type": "nominal",
                    "scale": {"domain": sources, "range": [source_colour(s) for s in sources]},
                    "legend": {"title": "Source"},
                },
                "tooltip": [
                    {"field": "source", "type": "nominal"},
                    {"field": "value", "type": "quantitative"},
                ],
            },
        }
    )
    return spec


def series_over_time(
    rows: Sequence[Mapping[str, Any]],
    *,
    x: str = "period",
    y: str = "value",
    colour: str | None = "source",
    title: str | None = None,
    y_title: str = "Count",
    width: int | str = "container",
    height: int = 220,
    stacked: bool = True,
) -> Spec:
    """Values over time (``rows`` of ``{x: ISO date, y: number, colour: name}``) as a
    stacked bar chart, coloured by source when ``colour`` names the sources' field."""
    spec = _base(title, width, height)
    encoding: Spec = {
        "x": {"field": x, "type": "temporal", "title": None},
        "y": {
            "field": y,
            "type": "quantitative",
            "title": y_title,
            "stack": "zero" if stacked else None,
        },
        "tooltip": [
            {"field": x, "type": "temporal"},
            {"field": y, "type": "quantitative"},
        ],
    }
    if colour is not None:
        names = sorted({str(row[colour]) for row in rows})
        encoding["color"] = {
            "field": colour,
            "type": "nominal",
            "scale": {"domain": names, "range": [source_colour(n) for n in names]},
            "legend": {"title": colour.replace("_", " ").capitalize()},
        }
        encoding["tooltip"].append({"field": colour, "type": "nominal"})
    spec.update({"data": {"values": [dict(row) for row in rows]}, "mark": "bar"})
    spec["encoding"] = encoding
    return spec


def to_svg(spec: Spec) -> str:
    """``spec`` rendered to an SVG document, without a browser. A ``"container"`` width
    (which only a page can resolve) is drawn 600 pixels wide."""
    if spec.get("width") == "container":
        spec = {**spec, "width": 600}
    svg: str = vl_convert.vegalite_to_svg(spec, vl_version=VEGA_LITE_VERSION)
    return svg


@functools.cache
def javascript_bundle() -> str:
    """The vega-embed JavaScript (with Vega and Vega-Lite) that draws the specs in a page,
    served by the dashboard itself so no page needs a third-party CDN. Built once."""
    bundle: str = vl_convert.javascript_bundle(
        "window.vegaEmbed = vegaEmbed; window.vega = vega;", vl_version=VEGA_LITE_VERSION
    )
    return bundle
