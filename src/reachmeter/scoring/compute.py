"""The pure arithmetic of scoring: attention, breakdowns, history and context.

Nothing here touches the store. Inputs are plain values that ``scoring.load`` reads:

* per output, for each kind, the time each distinct author first mentioned it (counted
  mentions only: not deleted, not excluded by a flag the profile applies);
* per output, observation rows (readers, citations, usage) with their times.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import gc
import io
import itertools
from collections import defaultdict
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, ClassVar, Literal, NamedTuple, cast

import numpy as np
import orjson
from numpy.typing import NDArray

from reachmeter.scoring.kinds import CATEGORIES, KINDS, OBSERVATION_KINDS, category_of
from reachmeter.scoring.profiles import Profile

__all__ = [
    "AGE_WINDOW_DAYS",
    "HISTORY_PERIODS",
    "Attention",
    "ContextInput",
    "ContextTable",
    "CountScorer",
    "ObservationPoint",
    "as_of_end",
    "attention",
    "context",
    "context_of",
    "history",
    "no_collection",
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
    """``value`` to six decimals (and never ``-0.0``); a whole number is left as it is,
    which is what rounding it gives, without rounding's cost."""
    value = float(value)
    if value.is_integer():
        return value + 0.0
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
    scorer = CountScorer(profile)
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
        sources[kind] = dict(scorer.part(kind, count)[0])
        total += sources[kind]["points"]
        categories[category_of(kind)] += count
    for kind in sorted(observations):
        value = observations[kind]
        if value <= 0:
            continue
        sources[kind] = dict(scorer.part(kind, value)[0])
        total += sources[kind]["points"]
        categories[KINDS.get(kind, category_of(kind))] += value
    return Attention(
        score=_tidy(total),
        mentions=mentions,
        sources=sources,
        categories={k: _tidy(v) for k, v in categories.items()},
    )


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


_CATEGORY_SLOT = {category: slot for slot, category in enumerate(CATEGORIES)}


class CountScorer:
    """Scores and history from counts of distinct authors, under one profile.

    A run scores many outputs with the same profile, and the same few counts of a kind
    come up again and again: each kind's part for a count, the rounding of each sum and
    the categories' JSON are worked out once. ``texts`` writes the stored JSON of an
    output with no observations straight from those parts.
    """

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        # (kind, count) -> (part, points, category, the part as JSON text '"kind":{...}')
        self._parts: dict[tuple[str, float], tuple[dict[str, Any], float, str, str]] = {}
        self._tidied: dict[float, float] = {}
        self._categories: dict[tuple[float, ...], str] = {}

    def part(self, kind: str, count: float) -> tuple[dict[str, Any], float, str, str]:
        """A kind's part of a score for ``count`` authors (or units): the part, its points,
        its category and its JSON text. The part is shared: copy it to change it."""
        key = (kind, count)
        found = self._parts.get(key)
        if found is None:
            weight = self.profile.weight(kind)
            value = weight * count
            cap = self.profile.caps.get(kind)
            points = min(value, cap) if cap is not None else value
            tidied, category = _tidy(points), category_of(kind)
            part: dict[str, Any] = {
                "count": _tidy(count),
                "weight": weight,
                "points": tidied,
                "capped": points < value,
                "category": category,
            }
            text = orjson.dumps({kind: part}).decode()[1:-1]
            found = self._parts[key] = (part, tidied, category, text)
        return found

    def tidy(self, value: float) -> float:
        """``_tidy``, remembered (-0.0 and 0.0 share an entry, and both give 0.0)."""
        found = self._tidied.get(value)
        if found is None:
            if len(self._tidied) > _REMEMBERED:
                self._tidied.clear()
            found = self._tidied[value] = _tidy(value)
        return found

    def score(
        self,
        counts: Mapping[str, Sequence[int]],
        observations_at: Mapping[str, Mapping[str, float]],
    ) -> tuple[Attention, dict[str, float]]:
        """``score_counts``."""
        sources: dict[str, dict[str, Any]] = {}
        categories = dict.fromkeys(CATEGORIES, 0.0)
        total = 0.0
        mentions = 0
        for kind in sorted(counts):
            count = counts[kind][0]
            if count <= 0:
                continue
            part, points, category, _ = self.part(kind, count)
            mentions += count
            sources[kind] = dict(part)
            total += points
            categories[category] += count
        observations = observations_at.get("now", {})
        for kind in sorted(observations):
            value = observations[kind]
            if value <= 0:
                continue
            part, points, category, _ = self.part(kind, value)
            sources[kind] = dict(part)
            total += points
            categories[category] += value
        result = Attention(
            score=self.tidy(total),
            mentions=mentions,
            sources=sources,
            categories={k: self.tidy(v) for k, v in categories.items()},
        )
        return result, self.history(result.score, counts, observations_at)

    def texts(self, counts: Mapping[str, Sequence[int]]) -> tuple[float, int, str, str]:
        """``score`` of an output with counts and no observations, as it is stored: the
        score, the mentions, and the breakdown and the history as JSON text (the same text
        as ``orjson.dumps`` of ``score``'s breakdown and history)."""
        total = 0.0
        mentions = 0
        slots = [0] * len(CATEGORIES)
        pieces = []
        for kind in sorted(counts):
            count = counts[kind][0]
            if count <= 0:
                continue
            _, points, category, text = self.part(kind, count)
            mentions += count
            total += points
            slots[_CATEGORY_SLOT[category]] += count
            pieces.append(text)
        score = self.tidy(total)
        key = tuple(slots)
        categories = self._categories.get(key)
        if categories is None:
            sums = dict(zip(CATEGORIES, map(float, key), strict=True))
            categories = self._categories[key] = orjson.dumps(sums).decode()
        breakdown = '{"sources":{' + ",".join(pieces) + '},"categories":' + categories + "}"
        history = orjson.dumps(self.history(score, counts, {})).decode()
        return score, mentions, breakdown, history

    def history(
        self,
        score: float,
        counts: Mapping[str, Sequence[int]],
        observations_at: Mapping[str, Mapping[str, float]],
    ) -> dict[str, float]:
        """The history part of ``score``, given the score now.

        A kind's count at the start of a period is never more than at the start of a
        shorter one (``counts`` are of authors first seen before each start): a kind
        whose count is the same at every start adds the same points to each.
        """
        then = [0.0] * (len(_PERIODS))
        weights, caps = self.profile.weights, self.profile.caps
        periods = range(len(_PERIODS))
        for kind, values in counts.items():
            weight = weights.get(kind, 0.0)
            if not weight:
                continue
            cap = caps.get(kind)
            if values[1] == values[-1]:
                if values[1]:
                    points = weight * values[1]
                    points = points if cap is None or points < cap else cap
                    then = [sum_ + points for sum_ in then]
                continue
            for index in periods:
                count = values[index + 1]
                if count:
                    points = weight * count
                    then[index] += points if cap is None or points < cap else cap
        for index, period in enumerate(_PERIODS):
            for kind, value in observations_at.get(period, {}).items():
                if value > 0:
                    then[index] += self.profile.points(kind, value)
        tidy = self.tidy
        if then[0] == then[-1] and not observations_at:  # counts alone never grow with age
            changes = dict.fromkeys(_PERIODS, tidy(score - tidy(then[0])))
        else:
            changes = {period: tidy(score - tidy(then[i])) for i, period in enumerate(_PERIODS)}
        changes["at"] = score
        return changes


_REMEMBERED = 1 << 20  # rounded values a scorer keeps


def score_counts(
    counts: Mapping[str, Sequence[int]],
    observations_at: Mapping[str, Mapping[str, float]],
    profile: Profile,
) -> tuple[Attention, dict[str, float]]:
    """Score and history from counts of distinct authors per kind, now and at each period.

    ``counts[kind]`` holds the number of counted authors whose first mention is before the
    end of the day, then before the start of each period of ``HISTORY_PERIODS`` (in order,
    ``"at"`` excluded). Gives exactly what ``attention`` and ``history`` give from the
    first-mention times, without the times: the store can count them in SQL. To score
    many outputs, use one ``CountScorer``.
    """
    return CountScorer(profile).score(counts, observations_at)


_PERIODS = tuple(period for period, length in HISTORY_PERIODS.items() if length is not None)


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

_UNIT = 1_000_000  # scores have at most six decimals (_tidy): windows add up millionths
_BLOCK = 1 << 14  # at most this many outputs' windows are counted in one pass
_CELLS = 1 << 22  # nor (unless one alone has more) this many rows or days of their windows
_COSTS = {"rows": 1.0, "days": 12.0, "levels": 2.0}  # see _count_below
_EXACT = 2**50  # far below 2**53: integers (and sums of them) this small are exact floats
_FORMAT = b"reachmeter context table\n"
_FORMAT_VERSION = 1

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
_KINDS = {
    "output_ids": np.dtype(np.int64),
    "scores": np.dtype(np.float64),
    "mentions": np.dtype(np.int64),
    "venues": np.dtype(np.int32),
    "days": np.dtype(np.int32),
}


@dataclass(frozen=True, eq=False)
class ContextTable:
    """What context needs of every output, as columns (one row per output).

    ``venues`` index ``venue_names`` (``NO_VENUE_CODE`` for none; an empty name counts as
    none), ``days`` are ``date.toordinal()`` (``NO_DAY`` for no publication date). Output
    ids are unique and scores finite. The order of the rows matters in one place only: a
    venue's mean adds its scores up in row order, as ``context`` does in input order.
    """

    output_ids: IntArray
    scores: FloatArray
    mentions: IntArray
    venues: NDArray[np.int32]
    venue_names: tuple[str, ...]
    days: NDArray[np.int32]

    NO_VENUE_CODE: ClassVar[int] = -1
    NO_DAY: ClassVar[int] = -1

    def __post_init__(self) -> None:
        count = len(self.output_ids)
        for name, kind in _KINDS.items():
            column = getattr(self, name)
            if column.dtype != kind or column.ndim != 1 or len(column) != count:
                raise ValueError(f"context table column {name}: {count} {kind} wanted")
        if not count:
            return
        finite = np.isfinite(self.scores)
        if not finite.all():
            at = int(np.flatnonzero(~finite)[0])
            raise ValueError(
                f"output {self.output_ids[at]}: score {self.scores[at]} is not a finite number"
            )
        ordered = np.sort(self.output_ids)
        repeated = np.flatnonzero(ordered[1:] == ordered[:-1])
        if len(repeated):
            raise ValueError(f"output {ordered[repeated[0]]} appears more than once")
        if self.venues.min() < -1 or self.venues.max() >= len(self.venue_names):
            raise ValueError("context table venue codes outside its venue names")
        if self.days.min() < -1 or self.days.max() > dt.date.max.toordinal():
            raise ValueError("context table days outside the calendar")

    def __len__(self) -> int:
        return len(self.output_ids)

    @classmethod
    def from_inputs(cls, outputs: Iterable[ContextInput]) -> ContextTable:
        """The table of ``outputs``, in their order."""
        rows = outputs if isinstance(outputs, Sequence) else list(outputs)
        count = len(rows)
        venue_codes, venues = _codes(map(itemgetter(3), rows), count)
        day_codes, dates = _codes(map(itemgetter(4), rows), count)
        names = [venue for venue in venues if venue]
        index = {name: code for code, name in enumerate(names)}
        renamed = np.array([index.get(venue, -1) if venue else -1 for venue in venues], np.int32)
        ordinals = [cls.NO_DAY if date is None else date.toordinal() for date in dates]
        return cls(
            output_ids=np.fromiter(map(itemgetter(0), rows), np.int64, count),
            scores=np.fromiter(map(itemgetter(1), rows), np.float64, count),
            mentions=np.fromiter(map(itemgetter(2), rows), np.int64, count),
            venues=renamed[venue_codes] if count else np.empty(0, np.int32),
            venue_names=tuple(names),
            days=np.array(ordinals, np.int32)[day_codes] if count else np.empty(0, np.int32),
        )

    def inputs(self) -> list[ContextInput]:
        """The rows back as ``ContextInput`` (an empty venue name comes back as ``None``)."""
        names: list[str | None] = [*self.venue_names, None]  # code -1 picks the last
        return [
            ContextInput(
                output_id,
                score,
                mentions,
                names[venue],
                None if day == self.NO_DAY else dt.date.fromordinal(day),
            )
            for output_id, score, mentions, venue, day in zip(
                self.output_ids.tolist(),
                self.scores.tolist(),
                self.mentions.tolist(),
                self.venues.tolist(),
                self.days.tolist(),
                strict=True,
            )
        ]

    def updated(self, outputs: Iterable[ContextInput]) -> ContextTable:
        """This table with the rows of ``outputs`` in place of those with their output ids;
        outputs not in the table yet are added at the end, in their order."""
        fresh = ContextTable.from_inputs(outputs)
        index = {name: code for code, name in enumerate(self.venue_names)}
        codes = [index.setdefault(name, len(index)) for name in fresh.venue_names]
        venues = np.array([*codes, -1], np.int32)[fresh.venues]  # code -1 picks the last
        order = np.argsort(self.output_ids)
        known = self.output_ids[order]
        at = np.minimum(np.searchsorted(known, fresh.output_ids), max(len(known) - 1, 0))
        found = known[at] == fresh.output_ids if len(known) else np.zeros(len(fresh), bool)
        places = order[at[found]]
        added = ~found

        def merged(old: NDArray[Any], new: NDArray[Any]) -> NDArray[Any]:
            column = np.concatenate((old, new[added]))
            column[places] = new[found]
            return column

        return ContextTable(
            output_ids=merged(self.output_ids, fresh.output_ids),
            scores=merged(self.scores, fresh.scores),
            mentions=merged(self.mentions, fresh.mentions),
            venues=merged(self.venues, venues),
            venue_names=tuple(index),
            days=merged(self.days, fresh.days),
        )

    def to_bytes(self) -> bytes:
        """The table as bytes: a format line, then numpy ``.npy`` arrays (no pickles)."""
        names = [name.encode() for name in self.venue_names]
        header = np.array([_FORMAT_VERSION, len(self), len(names)], np.int64)
        lengths = np.array([len(name) for name in names], np.int64)
        text = np.frombuffer(b"".join(names), np.uint8)
        buffer = io.BytesIO()
        buffer.write(_FORMAT)
        for array in (header, *self._columns(), lengths, text):
            np.lib.format.write_array(buffer, array, allow_pickle=False)
        return buffer.getvalue()

    def where(self, wanted: NDArray[np.bool_]) -> ContextTable:
        """The rows that the boolean array ``wanted`` picks, in their order."""
        return ContextTable(
            output_ids=self.output_ids[wanted],
            scores=self.scores[wanted],
            mentions=self.mentions[wanted],
            venues=self.venues[wanted],
            venue_names=self.venue_names,
            days=self.days[wanted],
        )

    def _columns(self) -> tuple[NDArray[Any], ...]:
        return (self.output_ids, self.scores, self.mentions, self.venues, self.days)

    @classmethod
    def from_bytes(cls, data: bytes) -> ContextTable:
        """The table ``to_bytes`` gave; a clear ``ValueError`` for anything else."""
        if not data.startswith(_FORMAT):
            raise ValueError("not a stored context table")
        buffer = io.BytesIO(data)
        buffer.seek(len(_FORMAT))
        try:
            header = np.lib.format.read_array(buffer, allow_pickle=False)
            if header.shape != (3,) or header.dtype.kind != "i":
                raise ValueError("no header")
            if header[0] != _FORMAT_VERSION:
                raise ValueError(f"format version {header[0]}, expected {_FORMAT_VERSION}")
            arrays = [np.lib.format.read_array(buffer, allow_pickle=False) for _ in range(7)]
        except (ValueError, EOFError, OSError) as error:
            raise ValueError(f"stored context table cannot be read: {error}") from error
        count, named = int(header[1]), int(header[2])
        kinds = ("i", "f", "i", "i", "i", "i", "u")
        lengths = (count, count, count, count, count, named, -1)
        for array, kind, length in zip(arrays, kinds, lengths, strict=True):
            if array.dtype.kind != kind or array.ndim != 1 or length not in (-1, len(array)):
                raise ValueError("stored context table has a column of the wrong shape")
        ids, scores, mentions, venues, days, sizes, text = arrays
        if int(sizes.sum()) != len(text) or (len(sizes) and sizes.min() < 0):
            raise ValueError("stored context table has venue names of the wrong size")
        blob = text.tobytes()
        bounds = [0, *np.cumsum(sizes).tolist()]
        return cls(
            output_ids=ids.astype(np.int64),
            scores=scores.astype(np.float64),
            mentions=mentions.astype(np.int64),
            venues=venues.astype(np.int32),
            venue_names=tuple(blob[a:b].decode() for a, b in itertools.pairwise(bounds)),
            days=days.astype(np.int32),
        )


def _codes(values: Iterable[Hashable], count: int) -> tuple[NDArray[np.int32], list[Any]]:
    """Each value's number in order of first appearance, and the distinct values."""
    numbers: defaultdict[Hashable, int] = defaultdict(itertools.count().__next__)
    codes = np.fromiter(map(numbers.__getitem__, values), np.int32, count)
    return codes, list(numbers)


def context(
    outputs: Iterable[ContextInput], only: Collection[int] | None = None
) -> dict[int, dict[str, Any]]:
    """Rank, percentile, count and mean of each output against four groups of outputs.

    The groups: all outputs, the same venue, similar age (published within six weeks
    either side) and the same venue and similar age; only outputs with at least one
    mention are counted. Where a comparison is missing, the group says why. With
    ``only``, results are worked out for those outputs alone (against all the others).
    See ``context_of``, which does the work on a ``ContextTable``.
    """
    return context_of(ContextTable.from_inputs(outputs), only)


def context_of(
    table: ContextTable, only: Collection[int] | None = None
) -> dict[int, dict[str, Any]]:
    """``context`` of the outputs of ``table`` (with ``only``, of those output ids alone).

    Each group gives ``count``, ``mean`` (to six places), ``rank`` (1 = highest; equal
    scores share the best rank), ``higher_than`` (how many score lower) and ``pct`` (the
    share of the others scoring at most as much, in percent to two places; ``None`` with a
    ``reason`` when the output is alone in its group).

    The counting is done on sorted columns. Scores are replaced by their dense ranks, so
    every comparison is one between integers. The whole group and each venue count by runs
    of equal keys after one sort. Rows sorted by group and day put each window of similar
    age in one run of rows, so its count and total are differences of positions and of
    prefix sums; the scores below a score in it are counted whichever way is the least work
    (``_count_below``): one by one for small windows, by a binary search in each day of
    the window for a few large ones, or level by level over the bits of the ranks for many.
    For a few outputs (``only`` fewer than one in ``_FEW`` of those with mentions, as in an
    incremental run) ``_few_context`` does less: each group's keys are sorted once and
    searched, with no order of the rows kept (nor ranks, for scores of six decimals).

    The figures are exactly those of summing and rounding score by score in Python:
    window totals are sums of integer millionths (``round(score * 1e6)``), divided once
    and correctly rounded; the mean of everyone and of a venue adds the scores up as
    Python's ``sum`` does, in the same order (everyone's sorted, a venue's in row order;
    see ``_sum_in_order`` and ``_venue_totals``); and ``_round_places`` rounds to places
    exactly as Python's ``round`` does.
    """
    ids = table.output_ids
    if only is None:
        chosen = np.arange(len(table))
    else:
        chosen = _rows_of(ids, np.fromiter(only, np.int64, len(only)))
        few = _few_context(table, chosen)
        if few is not None:
            with no_collection():
                return _by_output(ids[chosen], [column.dicts() for column in few])
    ranked = np.flatnonzero(table.mentions > 0)
    result_of = np.full(len(table), -1, np.int64)
    result_of[chosen] = np.arange(len(chosen))
    queries = np.flatnonzero(result_of[ranked] >= 0)  # the chosen among the ranked
    slots = result_of[ranked[queries]]
    scores = table.scores[ranked]
    venues = table.venues[ranked].astype(np.int64)
    days = table.days[ranked].astype(np.int64)
    ranks, distinct, ordered = _ranks(scores)
    everyone = len(ranked)
    size = len(chosen)

    tallies = np.bincount(ranks, minlength=distinct)
    up_to = np.concatenate(([0], np.cumsum(tallies)))
    mean = _tidy(_sum_in_order(ordered) / everyone) if everyone else 0.0
    # Against everyone, the figures depend on the rank alone: one dict per rank, copied.
    present, by_rank = np.unique(ranks[queries], return_inverse=True)
    whole = _Column(len(present))
    whole.put(
        np.arange(len(present)),
        np.full(len(present), everyone, np.int64),
        np.full(len(present), mean),
        up_to[present],
        up_to[present + 1],
    )
    which = np.full(size, len(present), np.int64)  # the last dict is the one of no mentions
    which[slots] = by_rank

    wanted = np.zeros(len(table.venue_names) + 1, bool)  # the last is "no venue" (-1)
    wanted[venues[queries]] = True
    wanted[-1] = False
    with_venue = venues >= 0
    dated = days != ContextTable.NO_DAY
    venue = _Column(size)
    venue.lack(slots[~with_venue[queries]], NO_VENUE)
    has = with_venue[queries]
    venue.put(slots[has], *_venue_counts(scores, venues, ranks, distinct, wanted, queries[has]))

    age = _Column(size)
    age.lack(slots[~dated[queries]], NO_DATE)
    has = dated[queries]
    aged = np.flatnonzero(dated)
    inside = np.full(everyone, -1, np.int64)
    inside[aged] = np.arange(len(aged))
    age.put(
        slots[has],
        *_windowed(
            np.zeros(len(aged), np.int64),
            days[aged],
            ranks[aged],
            distinct,
            scores[aged],
            inside[queries[has]],
        ),
    )

    venue_age = _Column(size)
    venue_age.lack(slots[~with_venue[queries]], NO_VENUE)
    venue_age.lack(slots[with_venue[queries] & ~dated[queries]], NO_DATE)
    has = with_venue[queries] & dated[queries]
    members = np.flatnonzero(dated & wanted[venues])
    inside[members] = np.arange(len(members))
    venue_age.put(
        slots[has],
        *_windowed(
            venues[members],
            days[members],
            ranks[members],
            distinct,
            scores[members],
            inside[queries[has]],
        ),
    )

    with no_collection():
        kept = [*whole.dicts(), {"reason": NO_MENTIONS}]
        columns = [list(map(dict.copy, map(kept.__getitem__, which.tolist())))]
        columns += [column.dicts() for column in (venue, age, venue_age)]
        return _by_output(ids[chosen], columns)


_FEW = 8  # see _few_context
_BLOCK_BITS = 3  # blocks of days of _aged_windows and buckets of days of _near
_BLOCK_DAYS = 1 << _BLOCK_BITS
# Python's sum of floats added them one by one, left to right in double precision, before
# Python 3.12 (which compensates for the rounding, and so keeps the 1.0 here): numpy's
# running sums then add up the same.
_ONE_BY_ONE = sum([1e16, 1.0, -1e16]) == 0.0


def _rows_of(ids: IntArray, asked: IntArray) -> IntArray:
    """The rows whose ids are among ``asked``: by a table of the ids between the least and
    the greatest, where that is not much larger than the rows (``np.isin`` does more)."""
    if not len(ids) or not len(asked):
        return np.flatnonzero(np.isin(ids, asked))
    least, most = int(ids.min()), int(ids.max())
    base = 0 if least >= 0 and most <= 4 * len(ids) else least  # 0: no ids - base
    if most - base > 4 * len(ids):
        return np.flatnonzero(np.isin(ids, asked))
    wanted = np.zeros(most - base + 1, bool)
    wanted[asked[(asked >= base) & (asked <= most)] - base] = True
    return np.flatnonzero(wanted[ids - base if base else ids])


def _by_output(ids: IntArray, columns: list[list[dict[str, Any]]]) -> dict[int, dict[str, Any]]:
    """Each output's four groups, from the columns of all, venue, age and venue and age."""
    return {
        output_id: {"all": a, "venue": b, "similar_age": c, "venue_similar_age": d}
        for output_id, a, b, c, d in zip(ids.tolist(), *columns, strict=True)
    }


def _few_context(table: ContextTable, chosen: IntArray) -> list[_Column] | None:
    """``context_of``'s four columns for the rows ``chosen`` when they are few (fewer than
    one in ``_FEW`` of the outputs with mentions), or ``None`` for the way that suits all.

    No row order is kept here (no inverse order, no dict per rank): each group's keys
    (group, day and score key in their bits) are sorted once, in 32 bits where they fit,
    and each asked output's figures are found by binary searches in them. Where every
    score has at most six decimals, a score's key is its integer millionths (``round(score
    * 1e6)``, which keep the scores' order and ties) less the least, over their greatest
    common divisor (10,000 for scores of two decimals), so nothing has to be ranked;
    otherwise the keys are the scores' dense ranks. ``None`` where the millionths could
    add up past ``_EXACT`` or a group's keys would not fit in 62 bits.
    """
    mentioned = table.mentions > 0
    ranked = np.flatnonzero(mentioned)
    everyone = len(ranked)
    picked = mentioned[chosen]
    slots = np.flatnonzero(picked)
    queries = np.searchsorted(ranked, chosen[picked])  # their places among the ranked
    if len(queries) * _FEW >= everyone:
        return None
    scores = table.scores[ranked]
    units = scores * _UNIT
    np.rint(units, out=units)  # round(score * _UNIT), half to even as Python rounds
    least, most = float(units.min()), float(units.max())
    if not max(-least, most) * everyone < _EXACT and not float(np.abs(units).sum()) < _EXACT:
        return None
    keys: NDArray[Any]
    millionths: Callable[[NDArray[Any]], IntArray]  # of the scores of keys
    ordered: FloatArray | None = None  # the scores sorted
    above = units / _UNIT
    if np.array_equal(above, scores):  # none has more than six decimals
        np.subtract(units, least, out=above)  # whole numbers, below _EXACT
        step = int(np.gcd.reduce(above.astype(np.int64))) or 1  # 10,000 for two decimals
        if step > 1:
            above /= step  # exact: each is a multiple of step
        bits = int(above.max()).bit_length()
        keys = _narrow(above, 1 << bits)

        def millionths(key: NDArray[Any]) -> IntArray:
            found = key.astype(np.int64)
            found *= step
            found += int(least)
            return found

    else:
        keys, distinct, ordered = _ranks(scores)
        bits = (distinct - 1).bit_length()
        fresh = np.concatenate(([True], ordered[1:] != ordered[:-1]))
        millionths = np.rint(ordered[fresh] * _UNIT).astype(np.int64).__getitem__
    venues, days = table.venues[ranked], table.days[ranked]
    aged = np.flatnonzero(days != ContextTable.NO_DAY)
    aged_days = days[aged]
    width = 1
    if len(aged):
        width = int(aged_days.max()) - int(aged_days.min()) + 2 * AGE_WINDOW_DAYS + 1
    if (len(table.venue_names) + 1) * width << bits >= 2**62:
        return None
    size = len(chosen)
    whole, venue, age, venue_age = _Column(size), _Column(size), _Column(size), _Column(size)

    if 1 << bits <= 4 * everyone:  # the scores sorted from how many have each key
        tallies = np.bincount(keys, minlength=1 << bits)
        if ordered is None:
            held = np.flatnonzero(tallies)
            ordered = np.repeat(millionths(held) / _UNIT, tallies[held])
        up_to = np.concatenate(([0], np.cumsum(tallies)))
        below, up_to = up_to[keys[queries]], up_to[keys[queries] + 1]
    else:
        ordered = np.sort(scores)
        target = scores[queries]
        below, up_to = _search(ordered, target, target, target, sides=("left", "right"))
    whole.put(
        slots,
        np.full(len(queries), everyone, np.int64),
        np.full(len(queries), _tidy(_sum_in_order(ordered) / everyone)),
        below,
        up_to,
    )

    with_venue = venues[queries] >= 0
    dated = days[queries] != ContextTable.NO_DAY
    venue.lack(slots[~with_venue], NO_VENUE)
    at = queries[with_venue]
    grouped = _pack(venues, keys, bits, len(table.venue_names))  # no venue (-1) first
    asked = venues[at].astype(np.int64) << bits
    mine = asked | keys[at]
    start, end, below, up_to = _search(grouped, mine, asked, asked + (1 << bits), mine, mine + 1)
    totals = _venue_totals(scores, venues + 1, len(table.venue_names) + 1)  # 0: no venue
    venue.put(
        slots[with_venue],
        end - start,
        _round_places(totals[venues[at] + 1] / (end - start), 6),
        below - start,
        up_to - start,
    )

    age.lack(slots[~dated], NO_DATE)
    age.put(
        slots[dated],
        *_aged_windows(
            aged_days,
            keys[aged],
            bits,
            units[aged],
            np.searchsorted(aged, queries[dated]),
        ),
    )

    venue_age.lack(slots[~with_venue], NO_VENUE)
    venue_age.lack(slots[with_venue & ~dated], NO_DATE)
    at = queries[with_venue & dated]
    members = _near(venues, days, aged, aged_days, at, len(table.venue_names))
    venue_age.put(
        slots[with_venue & dated],
        *_searched_windows(
            venues[members],
            days[members],
            keys[members],
            bits,
            millionths,
            np.searchsorted(members, at),
        ),
    )
    return [whole, venue, age, venue_age]


def _near(
    venues: NDArray[Any],
    days: NDArray[Any],
    aged: IntArray,
    day: NDArray[Any],
    asked: IntArray,
    size: int,
) -> IntArray:
    """The rows of ``aged`` (rows with a date, ``day``) that the windows of similar age
    within their venue of the rows ``asked`` can reach, and a few more: those of one of
    their venues (``size`` venues) published in a bucket of ``_BLOCK_DAYS`` days that one
    of those windows reaches. When the buckets would outnumber the rows, those of their
    venues."""
    if not len(asked):
        return asked
    span = AGE_WINDOW_DAYS
    first = int(day.min())
    buckets = ((int(day.max()) - first + span) >> _BLOCK_BITS) + 2
    cells = (size + 1) * buckets + 1  # venue -1 (none) has the first buckets, never reached
    if cells > 4 * len(aged) or cells >= 2**31:
        wanted = np.zeros(size + 1, bool)  # the last is "no venue" (-1)
        wanted[venues[asked]] = True
        kept: IntArray = aged[wanted[venues[aged]]]
        return kept
    base = (venues[asked].astype(np.int64) + 1) * buckets
    reached = np.zeros(cells, np.int32)
    np.add.at(reached, base + (np.maximum(days[asked] - first - span, 0) >> _BLOCK_BITS), 1)
    np.add.at(reached, base + ((days[asked] - first + span) >> _BLOCK_BITS) + 1, -1)
    np.cumsum(reached, out=reached)  # the last bucket's -1 is still in its venue's
    cell = venues[aged].astype(np.int32, copy=False)  # fewer than 2**31 cells
    cell *= buckets
    bucket = day - (first - (buckets << _BLOCK_BITS))  # + buckets: venue v's start at v + 1
    bucket >>= _BLOCK_BITS
    cell += bucket
    return aged[(reached > 0)[cell]]


def _pack(
    high: NDArray[Any], low: NDArray[Any], bits: int, top: int, *, copy: bool = True
) -> NDArray[Any]:
    """``high << bits | low`` sorted, for ``low`` below ``1 << bits`` and ``high`` at most
    ``top``, in 32 bits where ``top + 1 << bits`` fits them (which sort and search faster).
    In one array (``high`` itself if of that type and not ``copy``): large temporary
    arrays cost more than the arithmetic."""
    packed = _narrow(high, top + 1 << bits, copy=copy)
    packed <<= bits
    packed |= low
    packed.sort()
    return packed


def _narrow(values: NDArray[Any], bound: int, *, copy: bool = False) -> NDArray[Any]:
    """``values`` (all below ``bound``, above ``-bound``) in 32 bits if ``bound`` fits."""
    return values.astype(np.int32 if bound <= 2**31 else np.int64, copy=copy)


def _search(
    keys: NDArray[Any],
    by: NDArray[Any],
    *needles: NDArray[Any],
    sides: Sequence[Literal["left", "right"]] = (),
) -> list[IntArray]:
    """``np.searchsorted(keys, n, side)`` of each of ``needles`` (on the left unless
    ``sides`` says), searched in the order of ``by``, in which every one of them is to be
    sorted: much faster in large ``keys`` than in no order."""
    order = np.argsort(by)
    results = []
    chosen: Sequence[Literal["left", "right"]] = sides or ["left"] * len(needles)
    for needle, side in zip(needles, chosen, strict=True):
        found = np.empty(len(order), np.int64)
        found[order] = np.searchsorted(keys, needle[order].astype(keys.dtype, copy=False), side)
        results.append(found)
    return results


def _searched_windows(
    groups: NDArray[Any],
    days: NDArray[Any],
    keys: NDArray[Any],
    bits: int,
    millionths: Callable[[NDArray[Any]], IntArray],
    at: IntArray,
) -> tuple[IntArray, FloatArray, IntArray, IntArray]:
    """``_windowed`` of the rows ``at`` (``keys`` of at most ``bits`` bits in the scores'
    order, whose scores' millionths ``millionths`` gives), from the rows' keys sorted by
    group, day and key, searched."""
    if not len(at):
        return _no_windows()
    span = AGE_WINDOW_DAYS
    day, width = _window_days(days)
    spots = groups.astype(np.int64)
    spots *= width
    spots += day
    asked = spots[at]
    packed = _pack(spots, keys, bits, int(spots.max()) + span + 1, copy=False)
    key = packed & ((1 << bits) - 1)
    low, high = _search(packed, asked, (asked - span) << bits, (asked + span + 1) << bits)
    below, equal = _count_below(packed >> bits, key, 1 << bits, low, high, keys[at])
    count = high - low
    sums = np.concatenate(([0], np.cumsum(millionths(key))))  # exact: below _EXACT
    return count, _round_places((sums[high] - sums[low]) / _UNIT / count, 6), below, below + equal


def _aged_windows(
    days: NDArray[Any], keys: NDArray[Any], bits: int, units: FloatArray, at: IntArray
) -> tuple[IntArray, FloatArray, IntArray, IntArray]:
    """``_searched_windows`` in one group (similar age; ``units`` are the rows' millionths).

    Counts and totals per day add up to each window's. The scores below and equal are
    counted by binary searches (``_segment_counts``) in the whole blocks of ``_BLOCK_DAYS``
    days in a window (the rows sorted by block and key) and in each day at either end that
    no whole block covers (the rows sorted by day and key): some seventeen segments for a
    window of 85 days, where ``_count_below``'s day by day way searches 85.
    """
    if not len(at):
        return _no_windows()
    span = AGE_WINDOW_DAYS
    day, width = _window_days(days)
    rows = np.concatenate(([0], np.cumsum(np.bincount(day, minlength=width))))
    asked = day[at]
    start, stop = asked - span, asked + span + 1  # days start..stop-1
    low, high = rows[start], rows[stop]
    block = _BLOCK_DAYS
    head = -(-start // block)  # the whole blocks head..tail-1
    tail = np.maximum(stop // block, head)
    whole = head < tail
    ends = np.concatenate((np.where(whole, head * block, stop), stop))
    begins = np.concatenate((start, np.where(whole, tail * block, stop)))
    targets = keys[at]
    count = len(at)
    by_day = _pack(day, keys, bits, width)
    below, equal = _segment_counts(
        by_day, 1 << bits, rows, begins, ends, np.concatenate((targets, targets))
    )
    by_block = _pack(day >> _BLOCK_BITS, keys, bits, width >> _BLOCK_BITS, copy=False)
    in_blocks = _segment_counts(by_block, 1 << bits, rows[::block], head, tail, targets)
    below = below[:count] + below[count:] + in_blocks[0]
    equal = equal[:count] + equal[count:] + in_blocks[1]
    totals = np.concatenate(([0.0], np.cumsum(np.bincount(day, units, width))))  # exact
    mean = _round_places((totals[stop] - totals[start]) / _UNIT / (high - low), 6)
    return high - low, mean, below, below + equal


_MISSING = (NO_MENTIONS, NO_VENUE, NO_DATE)  # a column's count of 0, -1, -2 says why


class _Column:
    """One group's figures for each output asked for, or the reason it has none."""

    def __init__(self, size: int) -> None:
        self.count = np.zeros(size, np.int64)  # no mentions unless told otherwise
        self.mean = np.zeros(size)
        self.below = np.zeros(size, np.int64)
        self.up_to = np.zeros(size, np.int64)

    def lack(self, slots: IntArray, reason: str) -> None:
        self.count[slots] = -_MISSING.index(reason)

    def put(
        self, slots: IntArray, count: IntArray, mean: FloatArray, below: IntArray, up_to: IntArray
    ) -> None:
        """The outputs in ``slots`` are in a group of ``count`` scores with that ``mean``,
        of which ``below`` are lower than theirs and ``up_to`` lower or equal."""
        self.count[slots] = count
        self.mean[slots] = mean
        self.below[slots] = below
        self.up_to[slots] = up_to

    def dicts(self) -> list[dict[str, Any]]:
        count = self.count
        several = count > 1
        pct = np.zeros(len(count))
        # round(share, 2) is the float nearest a multiple of 0.01 (at most 100), which
        # rounding to six places again (_tidy) leaves as it is: no second rounding here.
        share = 100.0 * (self.up_to[several] - 1) / (count[several] - 1)
        pct[several] = _round_places(share, 2)
        rank = count - self.up_to + 1
        return [
            {"count": c, "mean": m, "rank": r, "higher_than": b, "pct": p}
            if c > 1
            else {"count": c, "mean": m, "rank": r, "higher_than": b, "pct": None, "reason": ALONE}
            if c == 1
            else {"reason": _MISSING[-c]}
            for c, m, r, b, p in zip(
                count.tolist(),
                self.mean.tolist(),
                rank.tolist(),
                self.below.tolist(),
                pct.tolist(),
                strict=True,
            )
        ]


@contextlib.contextmanager
def no_collection() -> Iterator[None]:
    """No cyclic garbage collection while a million small dicts are made (none of them can
    be garbage), which would otherwise walk the ever larger heap again and again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _ranks(scores: FloatArray) -> tuple[IntArray, int, FloatArray]:
    """Each score's dense rank (0 for the lowest; equal scores share one), how many
    distinct scores there are, and the scores sorted."""
    order = np.argsort(scores)
    ordered = scores[order]
    fresh = np.ones(len(scores), bool)
    fresh[1:] = ordered[1:] != ordered[:-1]
    dense = np.cumsum(fresh) - 1
    ranks = np.empty(len(scores), np.int64)
    ranks[order] = dense
    return ranks, int(dense[-1]) + 1 if len(dense) else 0, ordered


def _runs(keys: IntArray) -> tuple[IntArray, IntArray]:
    """For each of the sorted ``keys``, where its run of equal keys starts and ends."""
    edges = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate(([0], edges))
    ends = np.concatenate((edges, [len(keys)]))
    sizes = ends - starts
    return np.repeat(starts, sizes), np.repeat(ends, sizes)


def _sum_in_order(values: FloatArray) -> float:
    """Python's ``sum`` of the values in their order: numpy's running sum where that adds
    up as Python does (``_ONE_BY_ONE``; plus 0.0, as Python starts from 0 and so never
    ends on -0.0), else Python's own (iterating a memoryview gives floats)."""
    if _ONE_BY_ONE and len(values):
        return float(np.cumsum(values)[-1]) + 0.0
    return float(sum(cast("Iterable[Any]", values.data)))


def _order(keys: IntArray) -> tuple[IntArray, IntArray]:
    """The stable order of the non-negative ``keys``, and the keys in that order.

    Sorting the keys with each one's position in its low digits is faster than an
    argsort, and stable, when that fits in 63 bits.
    """
    count = len(keys)
    shift = count.bit_length()
    if count and (int(keys.max()) + 1) << shift < 2**63:
        packed = np.sort(keys.astype(np.int64) << shift | np.arange(count))
        return packed & ((1 << shift) - 1), packed >> shift
    order = np.argsort(keys, kind="stable")
    return order, keys[order]


def _venue_counts(
    scores: FloatArray,
    venues: IntArray,
    ranks: IntArray,
    distinct: int,
    wanted: NDArray[np.bool_],
    queries: IntArray,
) -> tuple[IntArray, FloatArray, IntArray, IntArray]:
    """Count, mean, scores below and at most each query's within its venue."""
    members = np.flatnonzero(wanted[venues])
    codes = venues[members]
    by_rank, keys = _order(codes * distinct + ranks[members])
    if len(queries) * 8 < len(members):  # a few: search for them
        asked = venues[queries] * distinct
        base = np.searchsorted(keys, asked)
        count = np.searchsorted(keys, asked + distinct) - base
        below = np.searchsorted(keys, asked + ranks[queries]) - base
        up_to = np.searchsorted(keys, asked + ranks[queries] + 1) - base
    else:
        starts, ends = _runs(keys)
        first, last = _runs(keys // distinct)
        place = np.empty(len(members), np.int64)
        place[by_rank] = np.arange(len(members))
        where = np.full(len(venues), -1, np.int64)
        where[members] = np.arange(len(members))
        at = place[where[queries]]
        count, below, up_to = (last - first)[at], (starts - first)[at], (ends - first)[at]
    means = _venue_means(scores[members], codes, len(wanted))
    return count, means[venues[queries]], below, up_to


def _venue_means(scores: FloatArray, codes: NDArray[Any], size: int) -> FloatArray:
    """The mean of each venue's scores (``codes`` says whose each one is; ``size`` venues,
    0.0 for one with none), of their ``_venue_totals``."""
    tallies = np.bincount(codes, minlength=size)
    held = np.flatnonzero(tallies)
    means = np.zeros(size)
    means[held] = _round_places(_venue_totals(scores, codes, size)[held] / tallies[held], 6)
    return means


def _venue_totals(scores: FloatArray, codes: NDArray[Any], size: int) -> FloatArray:
    """The total of each venue's scores (``codes`` says whose each one is; ``size`` venues,
    0.0 for one with none), added up in row order as ``context`` added them in input order:
    where Python adds one by one (``_ONE_BY_ONE``), as ``np.bincount`` adds each weight to
    its bin in turn from 0.0."""
    if _ONE_BY_ONE:
        return cast("FloatArray", np.bincount(codes, weights=scores, minlength=size))
    in_order, grouped_codes = _order(codes)
    grouped = scores[in_order]
    edges = np.flatnonzero(grouped_codes[1:] != grouped_codes[:-1]) + 1
    bounds = np.concatenate(([0], edges, [len(codes)])).tolist()
    totals = np.zeros(size)
    if len(codes):
        totals[grouped_codes[bounds[:-1]]] = [
            _sum_in_order(grouped[a:b]) for a, b in itertools.pairwise(bounds)
        ]
    return totals
    in_order, grouped_codes = _order(codes)
    grouped = scores[in_order]
    edges = np.flatnonzero(grouped_codes[1:] != grouped_codes[:-1]) + 1
    bounds = np.concatenate(([0], edges, [len(codes)])).tolist()
    totals = np.array(
        [_sum_in_order(grouped[a:b]) for a, b in itertools.pairwise(bounds) if b > a], np.float64
    )
    heads = grouped_codes[bounds[:-1]] if len(codes) else np.empty(0, np.int64)
    means = np.zeros(size)
    means[heads] = _round_places(totals / np.diff(bounds)[: len(totals)], 6)
    return means


def _window_days(days: NDArray[Any]) -> tuple[NDArray[Any], int]:
    """Each row's day counted from ``AGE_WINDOW_DAYS`` before the earliest, and how many
    such days a group takes: ``group * width + day`` keeps every window within its group."""
    first = int(days.min())
    return days - (first - AGE_WINDOW_DAYS), int(days.max()) - first + 2 * AGE_WINDOW_DAYS + 1


def _no_windows() -> tuple[IntArray, FloatArray, IntArray, IntArray]:
    """Counts, means, below and at most for no queries."""
    empty = np.empty(0, np.int64)
    return empty, np.empty(0), empty, empty


def _windowed(
    groups: IntArray,
    days: IntArray,
    ranks: IntArray,
    distinct: int,
    scores: FloatArray,
    queries: IntArray,
) -> tuple[IntArray, FloatArray, IntArray, IntArray]:
    """Count, mean, scores below and at most each query's among the rows of its group
    published within ``AGE_WINDOW_DAYS`` either side."""
    if not len(queries):
        return _no_windows()
    span = AGE_WINDOW_DAYS
    day, width = _window_days(days)
    keys = groups * width + day
    if (int(keys.max()) + 1) * distinct < 2**62:
        order, combined = _order(keys * distinct + ranks)
        keys, ranks = np.divmod(combined, distinct)
    else:
        order = np.lexsort((ranks, keys))
        keys, ranks = keys[order], ranks[order]
    scores = scores[order]
    place = np.empty(len(order), np.int64)
    place[order] = np.arange(len(order))
    at = place[queries]
    by_place, at = _order(at)  # neighbours' windows are searched together
    low = np.searchsorted(keys, keys[at] - span, "left")
    high = np.searchsorted(keys, keys[at] + span, "right")
    below, equal = _count_below(keys, ranks, distinct, low, high, ranks[at])
    count = high - low
    back = np.empty(len(queries), np.int64)
    back[by_place] = np.arange(len(queries))
    return (
        count[back],
        _window_means(scores, low, high, count)[back],
        below[back],
        (below + equal)[back],
    )


def _window_means(scores: FloatArray, low: IntArray, high: IntArray, count: IntArray) -> FloatArray:
    """The mean of ``scores[low:high]`` per query, summed in integer millionths."""
    units = np.rint(scores * _UNIT)  # round(score * _UNIT), half to even as Python rounds
    if float(np.abs(units).sum()) < _EXACT:
        sums = np.concatenate(([0], np.cumsum(units.astype(np.int64))))
        return _round_places((sums[high] - sums[low]) / _UNIT / count, 6)
    exact = list(
        itertools.accumulate((round(score * _UNIT) for score in scores.tolist()), initial=0)
    )
    return np.array(
        [
            _tidy((exact[b] - exact[a]) / _UNIT / c)
            for a, b, c in zip(low.tolist(), high.tolist(), count.tolist(), strict=True)
        ],
        np.float64,
    )


def _count_below(
    keys: IntArray, ranks: IntArray, distinct: int, low: IntArray, high: IntArray, targets: IntArray
) -> tuple[IntArray, IntArray]:
    """How many of ``ranks[low:high]`` are below the target and how many equal it, per query,
    by the way that costs least (``_COSTS``: the work per row of a window, per day of a
    window, and per row and per query at each level of the ranks' bits).

    ``keys`` (sorted) say which day of which group a row is; each window is whole days.
    """
    levels = max(1, (distinct - 1).bit_length())
    costs = {
        "rows": _COSTS["rows"] * float((high - low).sum()),
        "levels": _COSTS["levels"] * levels * (len(ranks) + len(low)),
    }
    if costs["rows"] <= min(_COSTS["days"] * len(low), costs["levels"]):
        return _row_counts(ranks, low, high, targets)  # cheaper than a day per window
    days = np.concatenate(([0], np.cumsum(keys[1:] != keys[:-1])))
    first, last = days[low], days[high - 1] + 1
    costs = {
        "rows": costs["rows"],
        "days": _COSTS["days"] * float((last - first).sum()),
        "levels": costs["levels"],
    }
    cheapest = min(costs, key=costs.__getitem__)
    if cheapest == "rows":
        return _row_counts(ranks, low, high, targets)
    if cheapest == "days":
        return _day_counts(days, ranks, distinct, first, last, targets)
    return _wavelet_counts(ranks, levels, low, high, targets)


def _passes(sizes: IntArray) -> Iterator[slice]:
    """Consecutive queries taken together: at most ``_BLOCK`` of them, and of
    ``_CELLS`` cells (``sizes`` each) unless one alone has more."""
    ends = np.cumsum(sizes)
    begin = 0
    while begin < len(sizes):
        done = int(ends[begin - 1]) if begin else 0
        stop = int(np.searchsorted(ends, done + _CELLS, "right"))
        stop = min(max(stop, begin + 1), begin + _BLOCK)
        yield slice(begin, stop)
        begin = stop


def _row_counts(
    ranks: IntArray, low: IntArray, high: IntArray, targets: IntArray
) -> tuple[IntArray, IntArray]:
    """``_count_below`` row by row of each window (for small windows)."""
    below = np.empty(len(low), np.int64)
    equal = np.empty(len(low), np.int64)
    sizes = high - low
    for part in _passes(sizes):
        offsets = np.concatenate(([0], np.cumsum(sizes[part])[:-1]))
        cells = int(sizes[part].sum())
        rows = np.arange(cells) - np.repeat(offsets - low[part], sizes[part])
        values = ranks[rows]
        target = np.repeat(targets[part], sizes[part])
        below[part] = np.add.reduceat(values < target, offsets, dtype=np.int64)
        equal[part] = np.add.reduceat(values == target, offsets, dtype=np.int64)
    return below, equal


def _day_counts(
    days: IntArray,
    ranks: IntArray,
    distinct: int,
    first: IntArray,
    last: IntArray,
    targets: IntArray,
) -> tuple[IntArray, IntArray]:
    """``_count_below`` by a binary search in each day ``first..last-1`` of each window:
    rows are sorted by day and rank, so ``day * distinct + rank`` is sorted."""
    starts = np.flatnonzero(np.concatenate(([True], days[1:] != days[:-1])))
    return _segment_counts(days * distinct + ranks, distinct, starts, first, last, targets)


def _segment_counts(
    keys: IntArray,
    distinct: int,
    starts: IntArray,
    first: IntArray,
    last: IntArray,
    targets: IntArray,
) -> tuple[IntArray, IntArray]:
    """How many rows are below each target and how many equal it in the segments
    ``first..last-1`` (none where ``last <= first``), by a binary search in each.

    ``keys`` (sorted) are ``segment * distinct + rank`` and segment ``s`` starts at row
    ``starts[s]``, so its rows below rank ``r`` end where ``s * distinct + r`` would go.
    The searches go faster in sorted order: each carries its query's number in its low
    digits to be sorted.
    """
    below = np.empty(len(first), np.int64)
    equal = np.empty(len(first), np.int64)
    sizes = np.maximum(last - first, 0)
    for part in _passes(sizes):
        taken = len(sizes[part])
        owner = np.repeat(np.arange(taken), sizes[part])
        step = np.arange(len(owner)) - np.repeat(np.cumsum(sizes[part]) - sizes[part], sizes[part])
        needles = (step + first[part][owner]) * distinct + targets[part][owner]
        shift = taken.bit_length()
        if len(keys) and (int(keys[-1]) + 2) << shift < 2**62:
            packed = np.sort(needles << shift | owner)
            needles, owner = packed >> shift, packed & ((1 << shift) - 1)
        lower = np.searchsorted(keys, needles.astype(keys.dtype, copy=False), "left")
        upper = np.searchsorted(keys, (needles + 1).astype(keys.dtype, copy=False), "left")
        start = starts[needles // distinct]
        below[part] = np.bincount(owner, weights=lower - start, minlength=taken)
        equal[part] = np.bincount(owner, weights=upper - lower, minlength=taken)
    return below, equal


def _wavelet_counts(
    values: IntArray, levels: int, low: IntArray, high: IntArray, targets: IntArray
) -> tuple[IntArray, IntArray]:
    """``_count_below`` for many queries at once, with a wavelet matrix of ``values``.

    At each bit of the values, from the highest, the rows are split stably into those with
    the bit 0 and those with it 1 (the zeros first). A query follows its target's bits: its
    range ``start:end`` keeps the rows that agree with the target on the bits seen so far,
    and where the target has a 1, the rows of its range with a 0 are below the target. At
    the end the range holds the rows equal to the target.
    """
    narrow = len(values) < 2**31 and levels < 31
    kind: np.dtype[np.signedinteger[Any]] = np.dtype(np.int32 if narrow else np.int64)
    current: NDArray[np.signedinteger[Any]] = values.astype(kind)  # narrower is faster
    start, end, goal = low.astype(kind), high.astype(kind), targets.astype(kind)
    below = np.zeros(len(low), kind)
    ones = np.zeros(len(values) + 1, kind)
    for level in reversed(range(levels)):
        bit = 1 << level
        bits = (current & bit) != 0
        np.cumsum(bits, out=ones[1:])
        zeros = len(values) - int(ones[-1])
        high_bit = (goal & bit) != 0
        ones_start, ones_end = ones[start], ones[end]
        zeros_start, zeros_end = start - ones_start, end - ones_end
        np.add(below, zeros_end - zeros_start, out=below, where=high_bit)
        start = np.where(high_bit, ones_start + zeros, zeros_start)
        end = np.where(high_bit, ones_end + zeros, zeros_end)
        if level:
            current = np.concatenate((current[~bits], current[bits]))
    return below.astype(np.int64), (end - start).astype(np.int64)


def _round_places(values: FloatArray, places: int) -> FloatArray:
    """``round(value, places) + 0.0`` of each value, exactly as Python rounds.

    Python rounds the exact binary value to the nearest multiple of ``10**-places`` (ties
    to even) and gives the float nearest that; ``k / 10**places`` (a correctly rounded
    division of exact floats) is that float, so all that matters is the integer ``k``
    nearest to the exact product ``x = value * 10**places``. Its float ``t`` is ``x``
    rounded, and rounding keeps order; so while ``k - 0.5 < t < k + 0.5`` for ``k =
    rint(t)`` (both bounds are floats, ``|t| < 2**50``), ``x`` lies strictly between them
    too and ``k`` is right. Only where ``t`` is a half is ``x`` worked out exactly, as ``t +
    error`` (Veltkamp's split of the value into two halves of 26 bits, each of which times
    ``10**places`` (at most 14 bits for six places) is exact, then Knuth's two-sum): the
    sign of ``error`` decides, and an exact tie goes to even as ``rint`` does. Values too
    large for that (over 2**50 / 10**places) are rounded by Python itself.
    """
    scale = 10.0**places
    scaled = values * scale
    nearest = np.rint(scaled)
    rounded = nearest / scale + 0.0
    doubt = np.flatnonzero(~(np.abs(scaled - nearest) < 0.5) | ~(np.abs(values) < _EXACT / scale))
    if len(doubt):
        rounded[doubt] = _round_exactly(values[doubt], places)
    return rounded


def _round_exactly(values: FloatArray, places: int) -> FloatArray:
    """``_round_places`` for values whose product is a half: worked out exactly."""
    scale = 10.0**places
    spread = values * 134217729.0  # 2**27 + 1
    upper = spread - (spread - values)
    lower = values - upper
    first, second = upper * scale, lower * scale
    total = first + second
    second_part = total - first
    error = (first - (total - second_part)) + (second - second_part)
    nearest = np.rint(total)
    tie = (np.abs(total - nearest) == 0.5) & (error != 0)
    rounded = np.where(tie, total + np.copysign(0.5, error), nearest) / scale + 0.0
    large = ~(np.abs(values) < _EXACT / scale)
    if large.any():
        rounded[large] = [round(value, places) + 0.0 for value in values[large].tolist()]
    return rounded
