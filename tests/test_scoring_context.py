"""Context (rank, percentile, count and mean in four groups) against a reference.

The reference below is the score-by-score Python computation that ``context`` replaced,
kept here unchanged as the oracle: the columnar ``context_of`` must give exactly its
results (the same dicts, floats equal to the last bit) for every kind of input.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import io
import math
import random
import struct
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import numpy as np
import pytest

from reachmeter.scoring import compute
from reachmeter.scoring.compute import (
    AGE_WINDOW_DAYS,
    ALONE,
    NO_DATE,
    NO_MENTIONS,
    NO_VENUE,
    ContextInput,
    ContextTable,
    context,
    context_of,
)

# --- the reference -----------------------------------------------------------------------


def _tidy(value: float) -> float:
    return round(value, 6) + 0.0


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


def reference_context(
    outputs: Iterable[ContextInput], only: Collection[int] | None = None
) -> dict[int, dict[str, Any]]:
    """The reference: ``context`` as it was computed score by score in Python."""
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


# --- inputs --------------------------------------------------------------------------------

START = dt.date(2020, 1, 1)


def _score(rng: random.Random, style: str) -> float:
    if style == "ties":
        return rng.randrange(0, 40) / 4
    if style == "cubic":
        return round(rng.random() ** 3 * 500, 2)
    if style == "six":
        return round(rng.random() * 100, 6)
    if style == "whole":
        return float(rng.randrange(4))
    if style == "raw":  # more than six decimals: sums as they come, and some exact ties
        return rng.choice([0.1 + 0.2, 0.3, 1 / 3, 2.675, 7.0]) * rng.randrange(1, 4) + (
            rng.random() * 30 if rng.random() < 0.5 else 0.0
        )
    return round(rng.choice([0.0, 0.1, 0.2, 1 / 3, 2.675, 0.125, 1e-6]) * rng.randrange(1, 9), 6)


def _inputs(
    seed: int, size: int, venues: int, spread: int, style: str, *, clusters: int = 0
) -> list[ContextInput]:
    """Outputs with shuffled ids, some without mentions, venue or date (an empty venue
    counts as none); dates spread over ``spread`` days or bunched round a few days."""
    rng = random.Random(seed)  # noqa: S311  (test data, not secrets)
    names: list[str | None] = [f"Journal {k}" for k in range(venues)]
    centres = [rng.randrange(spread) for _ in range(clusters)]
    rows = []
    for output_id in rng.sample(range(size * 10 + 10), size):
        if centres:
            day: int = rng.choice(centres) + rng.randrange(-50, 51)
        else:
            day = rng.randrange(spread)
        rows.append(
            ContextInput(
                output_id,
                _score(rng, style),
                rng.choice([0, 1, 1, 2, 7]),
                rng.choice([*names, None, ""]) if rng.random() > 0.1 else None,
                START + dt.timedelta(days=day) if rng.random() > 0.08 else None,
            )
        )
    return rows


def _same(result: dict[int, dict[str, Any]], expected: dict[int, dict[str, Any]]) -> None:
    """Equal, and equal in every bit: ``repr`` shows key order, float bits and -0.0."""
    assert result == expected
    assert repr(result) == repr(expected)


CASES = [
    # seed, size, venues, spread (days), score style, date clusters
    (1, 1, 1, 10, "ties", 0),
    (2, 2, 1, 10, "ties", 0),
    (3, 5, 2, 60, "whole", 0),
    (4, 30, 3, 100, "ties", 0),
    (5, 300, 4, 400, "mixed", 0),
    (6, 300, 80, 3000, "six", 0),
    (7, 3000, 3, 1500, "ties", 0),
    (8, 3000, 400, 200, "cubic", 3),
    (9, 3000, 2, 5000, "mixed", 5),
    (10, 20_000, 50, 3650, "cubic", 0),
    (11, 20_000, 5000, 900, "ties", 4),
    (12, 3000, 30, 700, "raw", 2),
    (13, 20_000, 200, 2000, "raw", 0),
]


@pytest.fixture(params=["chosen", "rows", "days", "levels"])
def method(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Count windows the way ``context_of`` chooses, or force each of the three ways."""
    if request.param != "chosen":
        costs = dict.fromkeys(compute._COSTS, math.inf)
        costs[request.param] = 1.0
        monkeypatch.setattr(compute, "_COSTS", costs)
    return str(request.param)


@pytest.fixture(params=["searched", "whole"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Work out the context of some outputs (``only``) always by searching sorted keys
    (``_few_context``, which ``context_of`` takes for a few), or always the way for all."""
    monkeypatch.setattr(compute, "_FEW", 0 if request.param == "searched" else 10**18)
    return str(request.param)


@functools.cache
def _case(
    seed: int, size: int, venues: int, spread: int, style: str, clusters: int
) -> tuple[list[ContextInput], list[tuple[set[int] | None, dict[int, dict[str, Any]]]]]:
    """A case's inputs, and the reference's context of all of them and of a few (worked
    out once for the ways of counting)."""
    inputs = _inputs(seed, size, venues, spread, style, clusters=clusters)
    rng = random.Random(seed)  # noqa: S311
    asked: list[set[int] | None] = [None]
    for share in (1, 20, 200):
        wanted = {row.output_id for row in inputs if rng.randrange(share) == 0}
        asked.append(wanted | {-5, 10**12})  # not outputs: no results for them
    return inputs, [(only, reference_context(inputs, only=only)) for only in asked]


@pytest.mark.parametrize(("seed", "size", "venues", "spread", "style", "clusters"), CASES)
def test_context_is_the_reference_context(
    method: str, way: str, seed: int, size: int, venues: int, spread: int, style: str, clusters: int
) -> None:
    inputs, expected = _case(seed, size, venues, spread, style, clusters)
    for only, reference in expected:
        _same(context(inputs, only=only), reference)


def test_windows_counted_in_small_passes_give_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = _inputs(12, 3000, 5, 800, "ties", clusters=2)
    wanted = {row.output_id for row in inputs[::7]}
    expected = reference_context(inputs, only=wanted)
    for way in ("rows", "days"):
        costs = dict.fromkeys(compute._COSTS, math.inf)
        costs[way] = 1.0
        monkeypatch.setattr(compute, "_COSTS", costs)
        for block, cells in ((1, 1 << 22), (3, 1 << 22), (64, 50), (1 << 14, 1)):
            monkeypatch.setattr(compute, "_BLOCK", block)
            monkeypatch.setattr(compute, "_CELLS", cells)
            _same(context(inputs, only=wanted), expected)
            _same(context(inputs), reference_context(inputs))


def test_edges_of_the_age_window_and_of_the_groups(way: str) -> None:
    day = dt.date(2024, 5, 1)
    span = dt.timedelta(days=AGE_WINDOW_DAYS)
    inputs = [
        ContextInput(1, 2.0, 1, "A", day),
        ContextInput(2, 2.0, 1, "A", day + span),  # in 1's window, tied with it
        ContextInput(3, 1.0, 1, "A", day - span - dt.timedelta(days=1)),  # just out
        ContextInput(4, 2.0, 1, "B", day),  # same day, other venue
        ContextInput(5, 9.0, 0, "A", day),  # no mentions: not counted anywhere
        ContextInput(6, 0.0, 1, "", day),  # an empty venue is no venue
        ContextInput(7, -0.0, 1, None, None),  # -0.0 ties with 0.0
        ContextInput(8, 3.0, 1, "A", dt.date(1900, 1, 1)),
        ContextInput(9, 3.0, 1, "A", dt.date(2199, 12, 31)),
    ]
    result = context(inputs)
    _same(result, reference_context(inputs))
    everyone = {row.output_id for row in inputs}
    _same(context(inputs, only=everyone), result)
    assert result[1]["venue_similar_age"] == {
        "count": 2,
        "mean": 2.0,
        "rank": 1,
        "higher_than": 0,
        "pct": 100.0,
    }
    assert result[4]["venue_similar_age"]["reason"] == ALONE
    assert result[5]["all"] == {"reason": NO_MENTIONS}
    assert result[6]["venue"] == {"reason": NO_VENUE}
    assert result[7]["similar_age"] == {"reason": NO_DATE}
    assert (result[7]["all"]["higher_than"], result[7]["all"]["rank"]) == (0, 7)


def test_the_first_and_last_days_there_are(way: str) -> None:
    """The reference could not reach six weeks beyond them; the table can."""
    inputs = [
        ContextInput(1, 3.0, 1, "A", dt.date.max),
        ContextInput(2, 1.0, 1, "A", dt.date.max - dt.timedelta(days=AGE_WINDOW_DAYS)),
        ContextInput(3, 3.0, 1, "A", dt.date.min),
    ]
    result = context(inputs)
    _same(context(inputs, only={1, 2, 3}), result)
    assert result[1]["venue_similar_age"] == {
        "count": 2,
        "mean": 2.0,
        "rank": 1,
        "higher_than": 1,
        "pct": 100.0,
    }
    assert result[3]["similar_age"]["reason"] == ALONE


def test_huge_scores_are_summed_exactly_too(way: str) -> None:
    """Window totals too large for exact float sums of millionths are added as Python ints
    (which the searched way leaves to the way for all)."""
    rng = random.Random(3)  # noqa: S311
    inputs = [
        ContextInput(n, 1e10 + rng.randrange(100) / 8, 1, rng.choice(["A", "B"]), START)
        for n in range(200)
    ]
    inputs += [ContextInput(1000, 3e16, 1, "A", START), ContextInput(1001, 0.1, 1, "C", START)]
    _same(context(inputs), reference_context(inputs))
    _same(context(inputs, only={5, 1000}), reference_context(inputs, only={5, 1000}))


def test_means_that_fall_on_a_half_millionth_round_as_python_rounds(way: str) -> None:
    """Sixteen and thirty-two scores of two decimals average to halves of a millionth,
    where the float's last bits decide the rounding."""
    rng = random.Random(4)  # noqa: S311
    inputs = []
    for group in range(300):
        size = rng.choice([16, 32, 64])
        venue = f"V{group}"
        for k in range(size):
            score = rng.randrange(1, 10_000) / 100
            inputs.append(ContextInput(group * 100 + k, score, 1, venue, START))
    _same(context(inputs), reference_context(inputs))
    wanted = {row.output_id for row in inputs[::3]}
    _same(context(inputs, only=wanted), reference_context(inputs, only=wanted))


def test_no_outputs() -> None:
    assert context([]) == {}
    assert context([], only={1}) == {}
    assert context([ContextInput(1, 1.0, 0, None, None)], only=set()) == {}


# --- exact rounding --------------------------------------------------------------------------


def _bits(values: Iterable[float]) -> list[bytes]:
    return [struct.pack("<d", value) for value in values]


@pytest.mark.parametrize("places", [2, 6])
def test_round_places_is_pythons_round(places: int) -> None:
    rng = random.Random(places)  # noqa: S311
    scale = 10**places
    values = [0.0, -0.0, 0.125, 0.375, 2.675, 0.025, 1.0000005, 0.0000005, 2.5e-7, 1e-300]
    for _ in range(20_000):
        k = rng.randrange(-(10**9), 10**9)
        half = (k + 0.5) / scale  # the float nearest a tie: a hair above or below, or on it
        values += [half, math.nextafter(half, math.inf), math.nextafter(half, -math.inf)]
        values.append(rng.uniform(-1000, 1000))
        values.append(rng.random() * 10.0 ** rng.randrange(-9, 16))
        values.append(k / 2 ** rng.randrange(1, 40))  # binary fractions: exact ties too
    values += [2.0**50, 3e15, -7e12 - 0.5, 1e300]  # too large for the float method
    got = compute._round_places(np.array(values), places)
    expected = [round(value, places) + 0.0 for value in values]
    assert _bits(got.tolist()) == _bits(expected)


def test_percentiles_round_as_python_rounds() -> None:
    """Every ``100 * (up_to - 1) / (count - 1)`` of small groups, and of groups where it
    falls on ties (0.025 is not one in binary, 3.125 is)."""
    shares = []
    counts = [*range(2, 600), 33, 161, 4001, 20_001, 40_001, 100_001]
    for count in counts:
        up_to = np.arange(1, count + 1)
        shares.append(100.0 * (up_to - 1) / (count - 1))
    share = np.concatenate(shares)
    got = compute._round_places(compute._round_places(share, 2), 6)
    expected = [_tidy(round(value, 2)) for value in share.tolist()]
    assert _bits(got.tolist()) == _bits(expected)


# --- the table ---------------------------------------------------------------------------------


def test_table_keeps_the_inputs() -> None:
    inputs = _inputs(21, 500, 30, 900, "six")
    table = ContextTable.from_inputs(iter(inputs))
    assert len(table) == 500
    assert table.inputs() == [row._replace(venue=row.venue or None) for row in inputs]
    assert (table.days.dtype, table.output_ids.dtype) == (np.int32, np.int64)


def test_table_bytes_round_trip() -> None:
    inputs = _inputs(22, 2000, 40, 900, "cubic")
    inputs.append(ContextInput(99_999, 1.5, 2, "Zeitschrift für\nÖkologie ✓", START))
    table = ContextTable.from_inputs(inputs)
    data = table.to_bytes()
    back = ContextTable.from_bytes(data)
    assert back.venue_names == table.venue_names
    assert back.inputs() == table.inputs()
    _same(context_of(back), reference_context(inputs))
    empty = ContextTable.from_bytes(ContextTable.from_inputs([]).to_bytes())
    assert (len(empty), context_of(empty)) == (0, {})


def test_bytes_that_are_not_a_table_are_refused() -> None:
    table = ContextTable.from_inputs(_inputs(23, 50, 3, 100, "ties"))
    data = table.to_bytes()
    with pytest.raises(ValueError, match="not a stored context table"):
        ContextTable.from_bytes(b"\x93NUMPY" + data)
    with pytest.raises(ValueError, match="cannot be read"):
        ContextTable.from_bytes(data[: len(data) // 2])
    header = compute._FORMAT
    newer = io.BytesIO()
    newer.write(header)
    np.lib.format.write_array(newer, np.array([2, 0, 0], np.int64))
    with pytest.raises(ValueError, match="format version 2, expected 1"):
        ContextTable.from_bytes(newer.getvalue())
    pickled = io.BytesIO()
    pickled.write(header)
    np.lib.format.write_array(pickled, np.array([1, 1, 0], np.int64))
    np.lib.format.write_array(pickled, np.array([object()], object), allow_pickle=True)
    with pytest.raises(ValueError, match="cannot be read"):
        ContextTable.from_bytes(pickled.getvalue())


def test_table_refuses_repeated_outputs_and_scores_that_are_not_numbers() -> None:
    with pytest.raises(ValueError, match="output 7 appears more than once"):
        ContextTable.from_inputs([ContextInput(7, 1.0, 1, None, None)] * 2)
    with pytest.raises(ValueError, match="output 8: score nan is not a finite number"):
        ContextTable.from_inputs([ContextInput(8, math.nan, 1, None, None)])


def test_updated_table_gives_the_context_of_the_changed_outputs(way: str) -> None:
    """The incremental run: a stored table, some outputs' fresh scores (one new output, in a
    new venue), and the context of those outputs against all the others."""
    inputs = _inputs(24, 5000, 20, 1200, "ties", clusters=2)
    stored = ContextTable.from_bytes(ContextTable.from_inputs(inputs).to_bytes())
    rng = random.Random(24)  # noqa: S311
    changed = [
        row._replace(score=row.score + 0.25, mentions=row.mentions + 1)
        for row in rng.sample(inputs, 40)
    ]
    changed.append(ContextInput(10**9, 3.25, 1, "A new journal", START))
    table = stored.updated(changed)
    fresh = {row.output_id: row for row in changed}
    now = [fresh.pop(row.output_id, row) for row in inputs] + list(fresh.values())
    assert table.inputs() == [row._replace(venue=row.venue or None) for row in now]
    wanted = {row.output_id for row in changed}
    _same(context_of(table, only=wanted), reference_context(now, only=wanted))
    assert len(stored) == 5000  # the stored table itself is left as it was


@pytest.mark.parametrize("seed", [31, 32, 33])
def test_changed_tables_give_a_fresh_tables_context(way: str, seed: int) -> None:
    """A table changed by ``updated`` (new scores with ties, mentions gained and lost,
    venues and dates given and taken away, outputs added) and cut by ``where`` gives the
    context of a table made afresh from its rows, and the reference's."""
    rng = random.Random(seed)  # noqa: S311
    inputs = _inputs(seed, 4000, 12, 600, rng.choice(["ties", "cubic", "raw"]), clusters=2)
    table = ContextTable.from_bytes(ContextTable.from_inputs(inputs).to_bytes())
    for _ in range(3):
        changed = [
            row._replace(
                score=rng.choice([row.score, 0.0, 2.5, rng.randrange(400) / 8]),
                mentions=rng.choice([0, row.mentions, 3]),
                venue=rng.choice([row.venue, None, "Journal 1", "A new journal"]),
                published_on=rng.choice([row.published_on, None, START]),
            )
            for row in rng.sample(table.inputs(), 60)
        ]
        changed += [
            ContextInput(10**8 + rng.randrange(10**6), 1.25, 1, "Journal 2", START)
            for _ in range(5)
        ]
        table = table.updated({row.output_id: row for row in changed}.values())
        table = table.where(table.output_ids % 11 != 3)
        now = table.inputs()
        wanted = {row.output_id for row in changed} | {-1}
        expected = reference_context(now, only=wanted)
        _same(context_of(table, only=wanted), expected)
        _same(context_of(ContextTable.from_inputs(now), only=wanted), expected)


def test_outputs_all_of_one_score_or_without_venues_or_dates(way: str) -> None:
    rng = random.Random(41)  # noqa: S311
    rows = [
        ContextInput(n, 4.5, rng.choice([0, 1]), rng.choice(["A", "B"]), START) for n in range(300)
    ]
    alone = [ContextInput(n, rng.randrange(9) / 4, 1, None, None) for n in range(300)]
    for inputs in (rows, alone):
        wanted = {row.output_id for row in inputs[::5]}
        _same(context(inputs, only=wanted), reference_context(inputs, only=wanted))


def test_sums_add_up_as_pythons_sum(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sum in order and each venue's sum in row order are Python's, also where the order
    changes the result (numpy's running sums are Python's only while it adds one by one)."""
    rng = random.Random(42)  # noqa: S311
    values = [rng.choice([1e16, -1e16, 1.0, 0.1, -0.0, 3.3, 1e-9]) for _ in range(5000)]
    codes = [rng.randrange(7) for _ in values]
    expected_means = [0.0] * 8
    for code in range(7):
        mine = [value for value, c in zip(values, codes, strict=True) if c == code]
        expected_means[code] = round(sum(mine) / len(mine), 6) + 0.0
    ways = [True, False] if compute._ONE_BY_ONE else [False]  # as this Python adds
    for one_by_one in ways:
        monkeypatch.setattr(compute, "_ONE_BY_ONE", one_by_one)
        assert _bits([compute._sum_in_order(np.array(values))]) == _bits([sum(values)])
        assert compute._sum_in_order(np.array([-0.0, -0.0])) == 0.0
        means = compute._venue_means(np.array(values), np.array(codes), 8)
        assert _bits(means.tolist()) == _bits(expected_means)


@pytest.mark.parametrize("case", [CASES[5], CASES[9], CASES[12]])
def test_context_without_numpys_running_sums(
    way: str, case: tuple[int, int, int, int, str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where Python's sum does not add one by one (3.12 on), its own sums are used."""
    monkeypatch.setattr(compute, "_ONE_BY_ONE", False)
    inputs, expected = _case(*case)
    for only, reference in expected:
        _same(context(inputs, only=only), reference)


@pytest.mark.parametrize("start", [0, 7, -50, 10**15])
@pytest.mark.parametrize("spread", [1, 3, 1000])
def test_rows_of_the_ids_asked_for(start: int, spread: int) -> None:
    rng = np.random.default_rng(abs(start) % 97 + spread)
    ids = start + rng.permutation(np.arange(0, 500 * spread, spread))
    asked = np.concatenate((rng.choice(ids, 40), [start - 1, start + 500 * spread, -(2**62)]))
    expected = np.flatnonzero(np.isin(ids, asked))
    assert compute._rows_of(ids, asked).tolist() == expected.tolist()
    assert compute._rows_of(ids, asked[:0]).tolist() == []
