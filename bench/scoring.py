"""Benchmark: scoring a generated store (outputs, events matched to them) end to end.

Times a full recompute with context percentiles, flag detection, an incremental update after
new events, and reading one output's score with breakdown and context. The store is written
straight through SQLite's ``executemany`` (the point is scoring, not ingest).

Usage: ``python bench/scoring.py [--outputs N] [--events M] [--db PATH] [--keep]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

from reachmeter.records import key_hash
from reachmeter.scoring import compute_scores, load_profile, read_score, update_scores
from reachmeter.scoring.compute import as_of_end
from reachmeter.scoring.flags import detect_flags
from reachmeter.store import open_store
from reachmeter.store.mentions import add_first_mentions

SOURCES = (
    ("twitter", 45),
    ("bluesky", 15),
    ("mastodon", 8),
    ("facebook", 6),
    ("reddit", 5),
    ("linkedin", 5),
    ("wordpressdotcom", 5),
    ("newsfeed", 4),
    ("wikipedia", 3),
    ("youtube", 2),
    ("policy", 1),
    ("stackexchange", 1),
)
AS_OF = dt.date(2026, 11, 1)
START = dt.datetime(2016, 11, 1, tzinfo=dt.UTC)
SPAN_SECONDS = int((as_of_end(AS_OF) - START).total_seconds()) - 86400


def _time_text(value: dt.datetime) -> str:
    return value.isoformat(" ", "microseconds")[:26].replace("+00:00", "")


def generate(path: Path, outputs: int, events: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    store = open_store(path)
    store.close()
    import sqlite3

    connection = sqlite3.connect(path)
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute(
        "INSERT INTO evidence (source_id, source_version, request_url, payload_sha256,"
        " collected_at) VALUES ('bench', '1', 'bench://', '0', '2026-11-01 00:00:00.000000')"
    )
    venues = [f"Journal {n}" for n in range(max(outputs // 500, 1))]
    now = "2026-11-01 00:00:00.000000"
    batch: list[tuple[object, ...]] = []
    identifiers: list[tuple[object, ...]] = []
    for number in range(1, outputs + 1):
        venue = rng.choice(venues) if rng.random() > 0.1 else None
        published = (START + dt.timedelta(days=rng.randrange(3650))).date().isoformat()
        if rng.random() < 0.05:
            published = None
        batch.append(
            (number, "article", f"Output {number}", venue, published, "{}", 0, 0, now, now)
        )
        identifiers.append((number, "doi", f"10.5555/bench.{number}"))
        if len(batch) >= 50_000:
            _flush_outputs(connection, batch, identifiers)
    _flush_outputs(connection, batch, identifiers)
    _add_events(connection, rng, 1, events, outputs)
    connection.commit()
    connection.close()


def _flush_outputs(connection, batch, identifiers) -> None:  # type: ignore[no-untyped-def]
    connection.executemany(
        "INSERT INTO outputs (id, type, title, venue, published_on, extra, merged_into_id,"
        " is_demo, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)",
        [row[:6] + row[7:] for row in batch],
    )
    connection.executemany(
        "INSERT INTO output_identifiers (output_id, scheme, value) VALUES (?, ?, ?)", identifiers
    )
    batch.clear()
    identifiers.clear()


def _add_events(connection, rng: random.Random, first: int, count: int, outputs: int) -> None:  # type: ignore[no-untyped-def]
    names = [name for name, _ in SOURCES]
    weights = [weight for _, weight in SOURCES]
    authors = max(count // 3, 10)
    heavy = max(authors // 200, 5)  # a few accounts post a lot
    events: list[tuple[object, ...]] = []
    matches: list[tuple[object, ...]] = []
    now = "2026-11-01 00:00:00.000000"
    for number in range(first, first + count):
        # A skewed choice of output: a few get much attention, most little, a third none.
        rank = int(outputs * 0.66 * rng.random() ** 2.5)
        output = (rank * 7919) % outputs + 1
        source = rng.choices(names, weights)[0]
        person = rng.randrange(heavy) if rng.random() < 0.2 else rng.randrange(authors)
        author = f"https://{source}.example/u{person}"
        when = _time_text(START + dt.timedelta(seconds=rng.randrange(SPAN_SECONDS)))
        key = f"bench-{number}"
        doi = f"10.5555/bench.{output}"
        events.append(
            (
                number, key_hash(key), key, f"{author}/post/{number}", "discusses",
                f"https://doi.org/{doi}", "doi", doi, source, when, now, author, 1,
            )
        )  # fmt: skip
        matches.append(
            (number, output, f"doi:{doi}", "doi-literal", "literal", now, source, author, when)
        )  # fmt: skip
        if len(events) >= 100_000:
            _flush_events(connection, events, matches)
    _flush_events(connection, events, matches)


def _flush_events(connection, events, matches) -> None:  # type: ignore[no-untyped-def]
    connection.executemany(
        "INSERT INTO events (id, key_hash, event_key, subj_id, relation_type_id, obj_id,"
        " obj_scheme, obj_value, source_id, occurred_at, collected_at, subj_author,"
        " evidence_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        events,
    )
    connection.executemany(
        "INSERT INTO event_matches (event_id, output_id, identifier, method, verification,"
        " matched_at, source_id, author, occurred_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        matches,
    )
    events.clear()
    matches.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--new-events", type=int, default=10_000)
    parser.add_argument("--db", type=Path, default=None, help="reuse or keep this store")
    parser.add_argument("--flags", action="store_true", help="also time flag detection")
    args = parser.parse_args()
    path = args.db or Path(tempfile.mkdtemp()) / "bench.db"
    if not path.exists():
        started = time.perf_counter()
        generate(path, args.outputs, args.events)
        print(f"generated {args.outputs:,} outputs, {args.events:,} events "
              f"in {time.perf_counter() - started:.1f} s ({path})")  # fmt: skip
    store = open_store(path)
    with store.begin() as connection:  # what matching does as it records matches
        add_first_mentions(connection)
    profile = load_profile("default")
    if args.flags:
        started = time.perf_counter()
        with store.begin() as connection:
            flags = detect_flags(connection, profile, as_of_end(AS_OF))
        print(f"flag detection: {time.perf_counter() - started:.1f} s ({flags:,} flags)")
    started = time.perf_counter()
    run = compute_scores(store, profile, AS_OF, flags=False)
    full = time.perf_counter() - started
    steps = ", ".join(f"{k} {v:.1f}" for k, v in run.seconds.items())
    print(f"full recompute with context: {full:.1f} s for {run.scored:,} outputs ({steps})")
    started = time.perf_counter()
    store.wait_for_checkpoints()
    print(f"  then SQLite's checkpoint, on a thread: {time.perf_counter() - started:.1f} s")

    import sqlite3

    connection = sqlite3.connect(path)
    last = connection.execute("SELECT max(id) FROM events").fetchone()[0]
    outputs = connection.execute("SELECT count(*) FROM outputs").fetchone()[0]
    last_match = connection.execute("SELECT max(id) FROM event_matches").fetchone()[0]
    _add_events(connection, random.Random(11), last + 1, args.new_events, outputs)
    connection.commit()
    connection.close()
    with store.begin() as session:
        add_first_mentions(session, after_match=last_match)
    started = time.perf_counter()
    update = update_scores(store, profile, AS_OF)
    seconds = time.perf_counter() - started
    print(f"incremental update after {args.new_events:,} new events: "
          f"{seconds:.2f} s ({update.scored:,} outputs rescored; "
          + ", ".join(f"{k} {v:.1f}" for k, v in update.seconds.items()) + ")")  # fmt: skip
    started = time.perf_counter()
    store.wait_for_checkpoints()
    print(f"  then SQLite's checkpoint, on a thread: {time.perf_counter() - started:.2f} s")

    rng = random.Random(3)
    times = []
    for _ in range(200):
        output_id = rng.randrange(1, outputs + 1)
        started = time.perf_counter()
        score = read_score(store, output_id, profile.name, AS_OF)
        times.append(time.perf_counter() - started)
        assert score is not None
        assert "breakdown" in score
    print(f"single score read: median {statistics.median(times) * 1000:.2f} ms, "
          f"max {max(times) * 1000:.2f} ms")  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory {peak:.0f} MiB; store {os.path.getsize(path) / 2**20:.0f} MiB")
    store.close()


if __name__ == "__main__":
    main()
