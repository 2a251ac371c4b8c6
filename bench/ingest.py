"""Benchmark: ingest of N generated Crossref Event Data events into a fresh SQLite store.

Prints events/s end to end, the parse-only rate of the same file (orjson, one line at a
time) measured in the same run, their ratio, the peak memory of the ingest process and of
its largest worker process (a large file is stored by two workers; their sum bounds what
the ingest held at once), and the CPU time the ingest took (its own and its workers'): on
a busy machine the CPU time per event compares runs more steadily than the rate.

    .venv/bin/python bench/ingest.py                 # 1,000,000 events
    .venv/bin/python bench/ingest.py --events 5000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import resource
import tempfile
import time
import uuid
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import orjson

from _child import run_in_child

SOURCES = (
    ("twitter", "discusses", 0.55),
    ("reddit", "discusses", 0.08),
    ("wikipedia", "references", 0.07),
    ("wordpressdotcom", "discusses", 0.08),
    ("newsfeed", "discusses", 0.07),
    ("hypothesis", "annotates", 0.05),
    ("crossref", "cites", 0.10),
)


def generate(path: Path, count: int, outputs: int, seed: int = 7) -> None:
    """Write ``count`` realistic Event Data events, one JSON object per line."""
    rng = random.Random(seed)
    names = [name for name, _, _ in SOURCES]
    relations = {name: relation for name, relation, _ in SOURCES}
    weights = [weight for _, _, weight in SOURCES]
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    with path.open("wb") as handle:
        for number in range(count):
            source = rng.choices(names, weights)[0]
            # Attention is heavy-tailed: a few outputs get most of the events.
            output = min(int(rng.paretovariate(1.2)), outputs) - 1
            occurred = start + dt.timedelta(seconds=rng.randrange(0, 700 * 86400))
            subj_id = f"https://example.org/{source}/post/{number}"
            event = {
                "license": "https://creativecommons.org/publicdomain/zero/1.0/",
                "obj_id": f"https://doi.org/10.5555/bench.{output}",
                "source_token": "45a1ef76-4f43-4cdc-9ba8-5a6ad01cc231",
                "occurred_at": occurred.isoformat().replace("+00:00", "Z"),
                "subj_id": subj_id,
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "terms": "https://doi.org/10.13003/CED-terms-of-use",
                "action": "add",
                "subj": {"pid": subj_id, "title": f"Post {number}", "issued": occurred.isoformat()},
                "source_id": source,
                "obj": {"pid": f"https://doi.org/10.5555/bench.{output}", "url": None},
                "timestamp": (occurred + dt.timedelta(hours=3)).isoformat(),
                "evidence_record": f"https://evidence.eventdata.crossref.org/evidence/{number}",
                "relation_type_id": relations[source],
            }
            handle.write(orjson.dumps(event) + b"\n")


def parse_only(path: Path) -> tuple[int, float]:
    loads = orjson.loads
    count = 0
    started = time.perf_counter()
    with path.open("rb") as handle:
        for line in handle:
            loads(line)
            count += 1
    return count, time.perf_counter() - started


def _ingest_child(path: str, db: str, results: Queue[Any]) -> None:
    from reachmeter.ingest import ingest_paths
    from reachmeter.store import open_store

    store = open_store(db)
    started = time.perf_counter()
    summary = ingest_paths(store, [Path(path)])
    store.wait_for_checkpoints()  # a bulk load leaves its last checkpoint to a thread
    elapsed = time.perf_counter() - started
    store.close()
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (own.ru_utime + own.ru_stime, workers.ru_utime + workers.ru_stime)
    peaks = (own.ru_maxrss, workers.ru_maxrss)
    results.put((summary.stored, summary.duplicates, summary.quarantined, elapsed, peaks, cpu))


Outcome = tuple[int, int, int, float, tuple[int, int], tuple[float, float]]


def ingest_in_child(path: Path, db: Path) -> Outcome:
    outcome: Outcome = run_in_child(_ingest_child, str(path), str(db))
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--outputs", type=int, default=50_000)
    parser.add_argument("--rerun", action="store_true", help="also time a re-run (all duplicates)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reachmeter-bench-") as tmp:
        path = Path(tmp) / "events.jsonl"
        started = time.perf_counter()
        generate(path, args.events, args.outputs)
        size_mb = path.stat().st_size / 1e6
        print(
            f"generated {args.events:,} events ({size_mb:,.0f} MB) in "
            f"{time.perf_counter() - started:.1f} s"
        )
        parsed, parse_s = parse_only(path)
        parse_rate = parsed / parse_s
        print(f"parse only (orjson):  {parse_rate:>12,.0f} events/s  ({parse_s:.2f} s)")
        db = Path(tmp) / "bench.db"
        stored, dups, quarantined, ingest_s, peak_kib, cpu = ingest_in_child(path, db)
        rate = args.events / ingest_s
        print(
            f"ingest end to end:    {rate:>12,.0f} events/s  ({ingest_s:.2f} s; "
            f"stored {stored:,}, duplicates {dups:,}, quarantined {quarantined:,})"
        )
        print(f"ingest / parse-only:  {rate / parse_rate:>12.1%}")
        own_mb, worker_mb = peak_kib[0] / 1024, peak_kib[1] / 1024
        print(
            f"peak memory (ingest): {own_mb:>12,.0f} MB  (largest worker {worker_mb:,.0f} MB; "
            f"at most {own_mb + 2 * worker_mb:,.0f} MB in all)"
        )
        print(
            f"CPU time (ingest):    {sum(cpu) / args.events * 1e6:>12.1f} us/event  "
            f"(ingest process {cpu[0]:.1f} s, workers {cpu[1]:.1f} s)"
        )
        print(f"database size:        {db.stat().st_size / 1e6:>12,.0f} MB")
        if args.rerun:
            stored, dups, _, rerun_s, peak_kib, _ = ingest_in_child(path, db)
            print(
                f"re-run (duplicates):  {args.events / rerun_s:>12,.0f} events/s  "
                f"(stored {stored:,}, duplicates {dups:,}, "
                f"peak {max(peak_kib) / 1024:,.0f} MB)"
            )


if __name__ == "__main__":
    main()
