"""Benchmark: context (rank, percentile, count, mean in four groups) of generated outputs.

A million outputs by default: scores of two decimals skewed low (many ties), a quarter
without mentions, 2,000 venues (a tenth with none) and publication dates over ten years
(one in twenty with none). Prints the time of the full context of every output, of the
context of a few outputs against all the others (an incremental run, from a stored table:
``from_bytes``, ``updated`` with their fresh scores, ``context_of``; also with scores of
more than six decimals, which no scoring gives), and of the table's conversions. Usage:
``python bench/context.py [OUTPUTS] [FEW]``.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import time

from reachmeter.scoring.compute import ContextInput, ContextTable, context, context_of


def generate(count: int, seed: int = 5) -> list[ContextInput]:
    rng = random.Random(seed)
    start = dt.date(2016, 11, 1)
    return [
        ContextInput(
            number,
            round(rng.random() ** 3 * 500, 2),
            rng.choice([0, 1, 1, 2]),
            f"J{rng.randrange(2000)}" if rng.random() > 0.1 else None,
            start + dt.timedelta(days=rng.randrange(3650)) if rng.random() > 0.05 else None,
        )
        for number in range(count)
    ]


def timed(label: str, seconds: float, note: str = "") -> None:
    print(f"{label:<44} {seconds:8.3f} s  {note}")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    few = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    inputs = generate(count)
    rng = random.Random(6)
    only = set(rng.sample(range(count), min(few, count)))
    print(f"{count:,} outputs, context of {len(only):,} of them in the incremental run")

    started = time.perf_counter()
    everything = context(inputs)
    timed("context(all outputs)", time.perf_counter() - started, f"{len(everything):,} results")
    del everything

    started = time.perf_counter()
    some = context(inputs, only=only)
    timed("context(few outputs) from ContextInputs", time.perf_counter() - started)

    started = time.perf_counter()
    table = ContextTable.from_inputs(inputs)
    timed("ContextTable.from_inputs", time.perf_counter() - started)
    started = time.perf_counter()
    data = table.to_bytes()
    timed("ContextTable.to_bytes", time.perf_counter() - started, f"{len(data) / 1e6:.1f} MB")

    started = time.perf_counter()
    stored = ContextTable.from_bytes(data)
    loaded = time.perf_counter() - started
    timed("ContextTable.from_bytes", loaded)
    # Fresh scores have six decimals at most, as scoring gives them (``_tidy``).
    fresh = [
        row._replace(score=round(row.score + 1.0, 6)) for row in inputs if row.output_id in only
    ]
    started = time.perf_counter()
    current = stored.updated(fresh)
    timed("ContextTable.updated (their fresh scores)", time.perf_counter() - started)
    started = time.perf_counter()
    result = context_of(current, only=only)
    timed("context_of(table, few outputs)", time.perf_counter() - started)
    assert len(result) == len(some)
    # Scores of more than six decimals have to be ranked: the slower way of the few.
    rough = stored.updated([row._replace(score=row.score + 1 / 3) for row in fresh])
    started = time.perf_counter()
    context_of(rough, only=only)
    timed("context_of(table, few), more decimals", time.perf_counter() - started)


if __name__ == "__main__":
    main()
