"""The report's charts, as Vega-Lite specs built on ``reachmeter.charts`` and drawn to SVG
(vector graphics, no browser) by ``reachmeter.charts.to_svg``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reachmeter.charts import Spec, series_over_time, source_donut

__all__ = ["attention_donut", "comparison_bars", "mentions_over_time"]

WIDTH = 600
# The report's own font: the chart's text is measured (by Vega) and drawn (by the browser or
# WeasyPrint) with the same face, so labels are not clipped.
FONT = "DejaVu Sans"


def _styled(spec: Spec) -> Spec:
    spec["config"] = {"font": FONT, "view": {"stroke": None}}
    return spec


def mentions_over_time(rows: Sequence[Mapping[str, Any]], unit: str) -> Spec:
    """Mentions per source, per ``unit`` (day, week or month) of the period, stacked."""
    spec = series_over_time(
        rows,
        title=f"Mentions by source, per {unit}",
        y_title="Mentions",
        width=WIDTH,
        height=200,
    )
    # One bar per bin, labelled by its first day: an ordinal axis draws the bins as wide
    # bars, where a temporal one would draw them as thin ticks.
    spec["encoding"]["x"] = {
        "field": "period",
        "type": "ordinal",
        "title": f"{unit} starting",
        "axis": {"labelAngle": -45},
    }
    spec["encoding"]["tooltip"][0] = {"field": "period", "type": "ordinal"}
    return _styled(spec)


def attention_donut(points: Mapping[str, float]) -> Spec:
    """The attention score's points by source as of the period's end."""
    return _styled(source_donut(points, size=150))


def comparison_bars(
    rows: Sequence[Mapping[str, Any]], *, label: str, value: str, title: str, limit: int = 12
) -> Spec:
    """Horizontal bars of ``value`` per ``label`` (the first ``limit`` rows, in order)."""
    shown = [{"label": str(row[label]), "value": row[value]} for row in rows[:limit]]
    return _styled(
        {
            "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
            "title": title,
            "width": WIDTH - 200,
            "height": {"step": 16},
            "data": {"values": shown},
            "mark": {"type": "bar", "color": "#2e5f8a"},
            "encoding": {
                "y": {
                    "field": "label",
                    "type": "nominal",
                    "sort": None,
                    "title": None,
                    "axis": {"labelLimit": 190},
                },
                "x": {"field": "value", "type": "quantitative", "title": value.replace("_", " ")},
                "tooltip": [
                    {"field": "label", "type": "nominal"},
                    {"field": "value", "type": "quantitative"},
                ],
            },
        }
    )
