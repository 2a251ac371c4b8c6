"""Our scores against Altmetric's: per-source author counts recomputed from the imported
posts, and the ``altmetric-like`` score beside Altmetric's own (rank correlation, error).

The records come in through ``reachmeter.imports.altmetric``.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, select

from reachmeter.imports.altmetric import SOURCE, SOURCE_IDS
from reachmeter.scoring.load import author_expr
from reachmeter.scoring.profiles import Profile
from reachmeter.store import Store
from reachmeter.store.schema import Event, EventMatch, Observation, OutputIdentifier, Score

__all__ = ["AltmetricComparison", "compare_with_altmetric", "spearman"]


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None below three pairs."""
    if len(xs) != len(ys) or len(xs) < 3:
        return None

    def ranks(values: Sequence[float]) -> list[float]:
        order = sorted(range(len(values)), key=lambda i: values[i])
        result = [0.0] * len(values)
        start = 0
        while start < len(order):
            end = start
            while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
                end += 1
            for position in range(start, end + 1):
                result[order[position]] = (start + end) / 2 + 1
            start = end + 1
        return result

    rx, ry = ranks(xs), ranks(ys)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    if vx == 0 or vy == 0:
        return None
    return float(cov / (vx * vy) ** 0.5)


@dataclass
class AltmetricComparison:
    """Our numbers beside Altmetric's, per output and overall."""

    outputs: list[dict[str, Any]]
    count_checks: int
    count_mismatches: list[dict[str, Any]]
    spearman: float | None
    median_relative_error: float | None


def _output_ids_with_altmetric(connection: Connection) -> dict[int, float]:
    rows = connection.execute(
        select(OutputIdentifier.output_id, func.max(Observation.value))
        .join(
            Observation,
            and_(
                Observation.obj_scheme == OutputIdentifier.scheme,
                Observation.obj_value == OutputIdentifier.value,
            ),
        )
        .where(Observation.source_id == SOURCE, Observation.metric == "altmetric_score")
        .group_by(OutputIdentifier.output_id)
    )
    return {int(o): float(v) for o, v in rows}


def compare_with_altmetric(store: Store, profile: Profile, as_of: dt.date) -> AltmetricComparison:
    """Compare stored ``profile`` scores (as of a date) and imported posts with Altmetric's.

    Author counts are checked only for sources whose posts Altmetric listed in full
    (``posts_count`` equals the number of posts in the record).
    """
    with store.engine.connect() as connection:
        theirs = _output_ids_with_altmetric(connection)
        ours = {
            int(o): float(s)
            for o, s in connection.execute(
                select(Score.output_id, Score.score).where(
                    Score.profile_name == profile.name,
                    Score.as_of == as_of,
                    Score.output_id.in_(sorted(theirs)),
                )
            )
        }
        recorded: dict[tuple[int, str], dict[str, float]] = {}
        for output_id, metric, qualifier, value in connection.execute(
            select(
                OutputIdentifier.output_id,
                Observation.metric,
                Observation.qualifier,
                Observation.value,
            )
            .join(
                Observation,
                and_(
                    Observation.obj_scheme == OutputIdentifier.scheme,
                    Observation.obj_value == OutputIdentifier.value,
                ),
            )
            .where(
                Observation.source_id == SOURCE,
                Observation.metric.in_(["altmetric_accounts", "altmetric_posts"]),
            )
        ):
            recorded.setdefault((int(output_id), qualifier), {})[metric] = float(value)
        counted: dict[tuple[int, str], tuple[int, int]] = {}
        for output_id, source_id, authors, posts in connection.execute(
            select(
                EventMatch.output_id,
                Event.source_id,
                func.count(func.distinct(author_expr)),
                func.count(func.distinct(Event.id)),
            )
            .join(Event, Event.id == EventMatch.event_id)
            .where(Event.event_key.like(f"{SOURCE}:%"))
            .group_by(EventMatch.output_id, Event.source_id)
        ):
            counted[(int(output_id), source_id)] = (int(authors), int(posts))
    checks = 0
    mismatches: list[dict[str, Any]] = []
    for (output_id, source), values in sorted(recorded.items()):
        ours_key = (output_id, SOURCE_IDS.get(source, source))
        authors, posts = counted.get(ours_key, (0, 0))
        listed_all = values.get("altmetric_posts") == posts and posts > 0
        if not listed_all or "altmetric_accounts" not in values:
            continue
        checks += 1
        if authors != int(values["altmetric_accounts"]):
            mismatches.append(
                {
                    "output_id": output_id,
                    "source": source,
                    "ours": authors,
                    "theirs": int(values["altmetric_accounts"]),
                }
            )
    rows = [{"output_id": o, "ours": ours.get(o, 0.0), "theirs": theirs[o]} for o in sorted(theirs)]
    errors = [abs(r["ours"] - r["theirs"]) / r["theirs"] for r in rows if r["theirs"] > 0]
    return AltmetricComparison(
        outputs=rows,
        count_checks=checks,
        count_mismatches=mismatches,
        spearman=spearman([r["ours"] for r in rows], [r["theirs"] for r in rows]),
        median_relative_error=statistics.median(errors) if errors else None,
    )
