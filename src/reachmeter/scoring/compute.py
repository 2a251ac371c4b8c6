"""The pure arithmetic of scoring: attention, breakdowns, history and context.

Nothing here touches the store. Inputs are plain values that ``scoring.load`` reads:

* per output, for each kind, the time each distinct author first mentioned it (counted
  mentions only: not deleted, not excluded by a flag the profile applies);
* per output, observation rows (readers, citations, usage) with their times.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from reachmeter.scoring.kinds import CATEGORIES, KINDS, OBSERVATION_KINDS, category_of
from reachmeter.scoring.profiles import Profile

__all__ = [
    "AGE_WINDOW_DAYS",
    "HISTORY_PERIODS",
    "Attention",
    "ContextInput",
    "ObservationPoint",
    "as_of_end",
    "attention",
    "context",
    "history",
    "observation_totals",
    "score_counts",
]

AGE_WINDOW_DAYS = 42  # "published within six weeks either side"
HISTORY_PERIODS: dict[str, dt.timedelta | None] = {
    "1d": dt.timedelta(days=1),
    "1w": dt.timedelta(days=7),
    "1m": dt.timedelta(days=30),
    "3m": dt.timedelta(days=91),
    "6m": dt.timedelta(days=182),
    "1y": dt.timedelta(days=365),
    "at": None,
}


def as_of_end(as_of: dt.date) -> dt.datetime:
    """The first instant after the ``as_of`` day (UTC): facts strictly before it count."""
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


class ObservationPoint(NamedTuple):
    """One observation of an output: its metric, source, value and when it applies."""

    metric: str
    source_id: str
    value: float
    cumulative: bool
    observed_at: dt.datetime
    period_start: dt.date | None = None
    qualifier: str = ""


def observation_totals(points: Iterable[ObservationPoint], before: dt.datetime) -> dict[str, float]:
    """Per kind, the value as known before ``before``.

    Per source: a cumulative metric's latest value, or the sum over periods of a periodic
    metric's values. A periodic figure reported again for the same period (a corrected
    re-issue of a usage report) replaces the earlier one (the latest observation wins), and
    the same period in two kinds of report (an item in an IR and in a TR) counts once (the
    larger). Across sources the largest is taken, so two sources of the same citations are
    not added up.
    """
    latest: dict[tuple[str, str, str], tuple[dt.datetime, float]] = {}
    periodic: dict[tuple[str, str, str, Any, str], tuple[dt.datetime, float]] = {}
    for number, point in enumerate(points):
        kind = OBSERVATION_KINDS.get(point.metric)
        if kind is None or point.observed_at >= before:
            continue
        key = (kind, point.metric, point.source_id)
        if point.cumulative:
            known = latest.get(key)
            if known is None or point.observed_at >= known[0]:
                latest[key] = (point.observed_at, point.value)
        else:
            # Without a period, each observation is a period of its own.
            period: Any = point.period_start if point.period_start is not None else -number
            figure = (*key, period, point.qualifier)
            seen = periodic.get(figure)
            if seen is None or point.observed_at >= seen[0]:
                periodic[figure] = (point.observed_at, point.value)
    per_period: dict[tuple[str, str, str, Any], float] = {}
    for (kind, metric, source, period, _qualifier), (_at, value) in periodic.items():
        slot = (kind, metric, source, period)
        per_period[slot] = max(per_period.get(slot, value), value)
    sums: dict[tuple[str, str, str], float] = defaultdict(float)
    for (kind, metric, source, _period), value in per_period.items():
        sums[(kind, metric, source)] += value
    per_metric: dict[tuple[str, str], float] = defaultdict(float)
    for (kind, metric, _source), (_at, value) in latest.items():
        per_metric[(kind, metric)] = max(per_metric[(kind, metric)], value)
    for (kind, metric, _source), value in sums.items():
        per_metric[(kind, metric)] = max(per_metric[(kind, metric)], value)
    totals: dict[str, float] = defaultdict(float)
    for (kind, _metric), value in per_metric.items():
        totals[kind] += value  # views and downloads are both usage
    return dict(totals)


@dataclass(frozen=True)
class Attention:
    """An output's score, the distinct authors counted, and its breakdowns."""

    score: float
    mentions: int
    sources: dict[str, dict[str, Any]]
    categories: dict[str, float]

    def breakdown(self) -> dict[str, Any]:
        """The JSON form stored with a score."""
        return {"sources": self.sources, "categories": self.categories}


def _tidy(value: float) -> float:
    return round(value, 6) + 0.0


def attention(
    first_seen: Mapping[str, Sequence[dt.datetime]],
    observations: Mapping[str, float],
    profile: Profile,
    before: dt.datetime | None = None,
) -> Attention:
    """The attention score: per kind, weight x distinct authors (capped), summed.

    ``first_seen[kind]`` is sorted: when each distinct author first mentioned the output.
    With ``before``, only authors whose first mention is earlier count.
    """
    sources: dict[str, dict[str, Any]] = {}
    categories = dict.fromkeys(CATEGORIES, 0.0)
    total = 0.0
    mentions = 0
    for kind in sorted(first_seen):
        times = first_seen[kind]
        count = len(times) if before is None else bisect.bisect_left(times, before)
        if count == 0:
            continue
        mentions += count
        sources[kind] = _part(kind, count, profile)
        total += sources[kind]["points"]
        categories[category_of(kind)] += count
    for kind in sorted(observations):
        value = observations[kind]
        if value <= 0:
            continue
        sources[kind] = _part(kind, value, profile)
        total += sources[kind]["points"]
        categories[KINDS.get(kind, category_of(kind))] += value
    return Attention(
        score=_tidy(total),
        mentions=mentions,
        sources=sources,
        categories={k: _tidy(v) for k, v in categories.items()},
    )


def _part(kind: str, count: float, profile: Profile) -> dict[str, Any]:
    weight = profile.weight(kind)
    points = profile.points(kind, count)
    return {
        "count": _tidy(count),
        "weight": weight,
        "points": _tidy(points),
        "capped": points < weight * count,
        "category": category_of(kind),
    }


def history(
    first_seen: Mapping[str, Sequence[dt.datetime]],
    observations_at: Mapping[str, Mapping[str, float]],
    profile: Profile,
    as_of: dt.date,
) -> dict[str, float]:
    """The change of the score over each period up to the end of ``as_of``.

    ``observations_at[period]`` holds the observation totals at the start of that period
    (and at ``"now"``); ``"at"`` is the all-time change, which is the score itself.
    """
    end = as_of_end(as_of)
    now = attention(first_seen, observations_at.get("now", {}), profile, end).score
    changes: dict[str, float] = {}
    for period, length in HISTORY_PERIODS.items():
        if length is None:
            changes[period] = now
            continue
        then = attention(first_seen, observations_at.get(period, {}), profile, end - length)
        changes[period] = _tidy(now - then.score)
    return changes


def score_counts(
    counts: Mapping[str, Sequence[int]],
    observations_at: Mapping[str, Mapping[str, float]],
    profile: Profile,
) -> tuple[Attention, dict[str, float]]:
    """Score and history from counts of distinct authors per kind, now and at each period.

    ``counts[kind]`` holds the number of counted authors whose first mention is before the
    end of the day, then before the start of each period of ``HISTORY_PERIODS`` (in order,
    ``"at"`` excluded). Gives exactly what ``attention`` and ``history`` give from the
    first-mention times, without the times: the store can count them in SQL.
    """
    now_counts = {kind: values[0] for kind, values in counts.items() if values[0] > 0}
    result = _attention_from_counts(now_counts, observations_at.get("now", {}), profile)
    then = [0.0] * (len(_PERIODS))
    weights, caps = profile.weights, profile.caps
    for kind, values in counts.items():
        weight = weights.get(kind, 0.0)
        if not weight:
            continue
        cap = caps.get(kind)
        for index in range(len(_PERIODS)):
            count = values[index + 1]
            if count:
                points = weight * count
                then[index] += points if cap is None or points < cap else cap
    for index, period in enumerate(_PERIODS):
        for kind, value in observations_at.get(period, {}).items():
            if value > 0:
                then[index] += profile.points(kind, value)
    changes = {period: _tidy(result.score - _tidy(then[i])) for i, period in enumerate(_PERIODS)}
    changes["at"] = result.score
    return result, changes


_PERIODS = tuple(period for period, length in HISTORY_PERIODS.items() if length is not None)


def _attention_from_counts(
    counts: Mapping[str, int], observations: Mapping[str, float], profile: Profile
) -> Attention:
    sources: dict[str, dict[str, Any]] = {}
    categories = dict.fromkeys(CATEGORIES, 0.0)
    total = 0.0
    mentions = 0
    for kind in sorted(counts):
        count = counts[kind]
        mentions += count
        sources[kind] = part = _part(kind, count, profile)
        total += part["points"]
        categories[category_of(kind)] += count
    for kind in sorted(observations):
        value = observations[kind]
        if value <= 0:
            continue
        sources[kind] = part = _part(kind, value, profile)
        total += part["points"]
        categories[category_of(kind)] += value
    return Attention(
        score=_tidy(total),
        mentions=mentions,
        sources=sources,
        categories={k: _tidy(v) for k, v in categories.items()},
    )


class ContextInput(NamedTuple):
    """What context needs of one output."""

    output_id: int
    score: float
    mentions: int
    venue: str | None
    published_on: dt.date | None


NO_MENTIONS = "no mentions: only outputs with at least one mention are compared"
NO_VENUE = "no venue: the output has no journal or other venue to compare within"
NO_DATE = "no publication date: outputs of similar age cannot be found"
ALONE = "no other output with mentions in this group to compare with"


def _stats(score: float, ordered: Sequence[float], total: float) -> dict[str, Any]:
    return _stats_of(
        score,
        len(ordered),
        total,
        bisect.bisect_left(ordered, score),
        bisect.bisect_right(ordered, score),
    )


def _stats_of(score: float, count: int, total: float, below: int, up_to: int) -> dict[str, Any]:
    """Stats of ``score`` in a group of ``count`` scores summing to ``total``, of which
    ``below`` are lower and ``up_to`` are lower or equal."""
    result: dict[str, Any] = {
        "count": count,
        "mean": _tidy(total / count),
        "rank": count - up_to + 1,
        "higher_than": below,
        "pct": None,
    }
    if count > 1:
        result["pct"] = _tidy(round(100.0 * (up_to - 1) / (count - 1), 2))
    else:
        result["reason"] = ALONE
    return result


def _windowed(
    items: list[tuple[dt.date, float, int]], only: Collection[int] | None = None
) -> dict[int, dict[str, Any]]:
    """Stats of each item against the items published within six weeks either side."""
    items.sort()
    if only is not None and sum(1 for item in items if item[2] in only) * 8 < len(items):
        return _windowed_few(items, only)
    results: dict[int, dict[str, Any]] = {}
    window: list[float] = []
    total = 0  # in millionths: exact, so that every way of summing a window agrees
    low = high = 0  # window = items[low:high]
    span = dt.timedelta(days=AGE_WINDOW_DAYS)
    index = 0
    while index < len(items):
        day = items[index][0]
        while high < len(items) and items[high][0] <= day + span:
            bisect.insort(window, items[high][1])
            total += _units(items[high][1])
            high += 1
        while items[low][0] < day - span:
            window.pop(bisect.bisect_left(window, items[low][1]))
            total -= _units(items[low][1])
            low += 1
        while index < len(items) and items[index][0] == day:
            _, score, output_id = items[index]
            if only is None or output_id in only:
                results[output_id] = _stats(score, window, total / _UNIT)
            index += 1
    return results


_UNIT = 1_000_000  # scores have at most six decimals (_tidy)


def _units(score: float) -> int:
    return round(score * _UNIT)


_BLOCK = 512


def _windowed_few(
    items: list[tuple[dt.date, float, int]], only: Collection[int]
) -> dict[int, dict[str, Any]]:
    """``_windowed`` for a few of many items (an incremental run): each one's window is
    found by date and counted block by block (whole blocks by their sorted scores, the
    ends one by one), instead of sliding a sorted window over every item."""
    days = [item[0] for item in items]
    scores = [item[1] for item in items]
    sums = [0]
    for score in scores:
        sums.append(sums[-1] + _units(score))
    blocks = [sorted(scores[start : start + _BLOCK]) for start in range(0, len(scores), _BLOCK)]
    span = dt.timedelta(days=AGE_WINDOW_DAYS)

    def lower(score: float, low: int, high: int, equal: bool) -> int:
        """How many of ``scores[low:high]`` are below ``score`` (or equal, with ``equal``)."""
        found = 0
        first, last = -(-low // _BLOCK), high // _BLOCK  # the whole blocks inside
        if first >= last:
            part = scores[low:high]
            return sum(map(score.__ge__ if equal else score.__gt__, part))
        edge = bisect.bisect_right if equal else bisect.bisect_left
        for block in blocks[first:last]:
            found += edge(block, score)
        ends = scores[low : first * _BLOCK] + scores[last * _BLOCK : high]
        return found + sum(map(score.__ge__ if equal else score.__gt__, ends))

    results: dict[int, dict[str, Any]] = {}
    for day, score, output_id in items:
        if output_id not in only:
            continue
        low = bisect.bisect_left(days, day - span)
        high = bisect.bisect_right(days, day + span)
        results[output_id] = _stats_of(
            score,
            high - low,
            (sums[high] - sums[low]) / _UNIT,
            lower(score, low, high, equal=False),
            lower(score, low, high, equal=True),
        )
    return results


def context(
    outputs: Iterable[ContextInput], only: Collection[int] | None = None
) -> dict[int, dict[str, Any]]:
    """Rank, percentile, count and mean of each output against four groups of outputs.

    The groups: all outputs, the same venue, similar age (published within six weeks
    either side) and the same venue and similar age; only outputs with at least one
    mention are counted. Where a comparison is missing, the group says why. With
    ``only``, results are worked out for those outputs alone (against all the others).
    """
    rows = list(outputs)
    ranked = [row for row in rows if row.mentions > 0]
    everyone = sorted(row.score for row in ranked)
    everyone_total = sum(everyone)
    by_venue: dict[str, list[float]] = defaultdict(list)
    aged: list[tuple[dt.date, float, int]] = []
    venue_aged: dict[str, list[tuple[dt.date, float, int]]] = defaultdict(list)
    for row in ranked:
        if row.venue:
            by_venue[row.venue].append(row.score)
        if row.published_on is not None:
            aged.append((row.published_on, row.score, row.output_id))
            if row.venue:
                venue_aged[row.venue].append((row.published_on, row.score, row.output_id))
    venue_totals = {venue: sum(scores) for venue, scores in by_venue.items()}
    for scores in by_venue.values():
        scores.sort()
    age_stats = _windowed(aged, only)
    venue_age_stats: dict[int, dict[str, Any]] = {}
    wanted_venues = None if only is None else {r.venue for r in rows if r.output_id in only}
    for venue, items in venue_aged.items():
        if wanted_venues is None or venue in wanted_venues:
            venue_age_stats.update(_windowed(items, only))

    results: dict[int, dict[str, Any]] = {}
    for row in rows:
        if only is not None and row.output_id not in only:
            continue
        if row.mentions <= 0:
            reason = {"reason": NO_MENTIONS}
            results[row.output_id] = {
                "all": reason,
                "venue": reason,
                "similar_age": reason,
                "venue_similar_age": reason,
            }
            continue
        entry: dict[str, Any] = {"all": _stats(row.score, everyone, everyone_total)}
        if row.venue:
            entry["venue"] = _stats(row.score, by_venue[row.venue], venue_totals[row.venue])
        else:
            entry["venue"] = {"reason": NO_VENUE}
        if row.published_on is None:
            entry["similar_age"] = {"reason": NO_DATE}
        else:
            entry["similar_age"] = age_stats[row.output_id]
        if not row.venue:
            entry["venue_similar_age"] = {"reason": NO_VENUE}
        elif row.published_on is None:
            entry["venue_similar_age"] = {"reason": NO_DATE}
        else:
            entry["venue_similar_age"] = venue_age_stats[row.output_id]
        results[row.output_id] = entry
    return results
