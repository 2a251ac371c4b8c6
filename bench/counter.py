"""Benchmark: import of a generated COUNTER R5.1 Item Report (IR) into a fresh SQLite store.

The report has N items (default 200,000) with one Total_Item_Requests row each and 12
months of counts, written as TSV and as JSON (COUNTER_SUSHI). Each is imported in its own
child process into its own store; the time and peak memory of each are printed, and
checked against the targets (30 s, 500 MB).

    .venv/bin/python bench/counter.py
    .venv/bin/python bench/counter.py --items 50000
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import orjson

from _child import run_in_child

MONTHS = [f"2025-{m:02d}" for m in range(1, 13)]
MONTH_HEADINGS = [
    f"{name}-2025"
    for name in ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
]
TARGET_SECONDS = 30.0
TARGET_MB = 500.0


def _items(count: int, seed: int = 11) -> list[tuple[int, list[int]]]:
    rng = random.Random(seed)
    return [(number, [rng.randrange(0, 400) for _ in MONTHS]) for number in range(count)]


def write_tsv(path: Path, items: list[tuple[int, list[int]]]) -> None:
    header = [
        ("Report_Name", "Item Report"),
        ("Report_ID", "IR"),
        ("Release", "5.1"),
        ("Institution_Name", "Bench University"),
        ("Institution_ID", "ROR:00bench00"),
        ("Metric_Types", "Total_Item_Requests"),
        ("Report_Filters", "Metric_Type=Total_Item_Requests"),
        ("Report_Attributes", ""),
        ("Exceptions", ""),
        ("Reporting_Period", "Begin_Date=2025-01-01; End_Date=2025-12-31"),
        ("Created", "2026-01-05T10:00:00Z"),
        ("Created_By", "Bench Publisher"),
        ("Registry_Record", ""),
    ]
    columns = [
        "Item", "Publisher", "Publisher_ID", "Platform", "DOI", "Proprietary_ID",
        "Data_Type", "YOP", "Access_Type", "Access_Method", "Metric_Type",
        "Reporting_Period_Total", *MONTH_HEADINGS,
    ]  # fmt: skip
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        for key, value in header:
            handle.write(f"{key}\t{value}\n")
        handle.write("\n")
        handle.write("\t".join(columns) + "\n")
        for number, counts in items:
            cells = [
                f"Item {number}", "Bench Publisher", "ISNI:0000000000000000", "Bench Platform",
                f"10.5555/bench.{number}", f"BP:{number}", "Article", str(2000 + number % 25),
                "Controlled", "Regular", "Total_Item_Requests", str(sum(counts)),
                *map(str, counts),
            ]  # fmt: skip
            handle.write("\t".join(cells) + "\n")


def write_json(path: Path, items: list[tuple[int, list[int]]]) -> None:
    header = {
        "Release": "5.1",
        "Report_ID": "IR",
        "Report_Name": "Item Report",
        "Created": "2026-01-05T10:00:00Z",
        "Created_By": "Bench Publisher",
        "Institution_Name": "Bench University",
        "Report_Filters": {"Begin_Date": "2025-01-01", "End_Date": "2025-12-31"},
    }
    with path.open("wb") as handle:
        handle.write(b'{"Report_Header": ' + orjson.dumps(header) + b', "Report_Items": [\n')
        for position, (number, counts) in enumerate(items):
            item = {
                "Item": f"Item {number}",
                "Publisher": "Bench Publisher",
                "Platform": "Bench Platform",
                "Item_ID": {"DOI": f"10.5555/bench.{number}", "Proprietary": f"BP:{number}"},
                "Attribute_Performance": [
                    {
                        "Data_Type": "Article",
                        "YOP": str(2000 + number % 25),
                        "Access_Type": "Controlled",
                        "Access_Method": "Regular",
                        "Performance": {
                            "Total_Item_Requests": dict(zip(MONTHS, counts, strict=True))
                        },
                    }
                ],
            }
            handle.write((b",\n" if position else b"") + orjson.dumps(item))
        handle.write(b"\n]}\n")


def _import_child(path: str, db: str, results: Queue[Any]) -> None:
    from reachmeter.store import open_store
    from reachmeter.usage.importer import import_counter

    store = open_store(db)
    started = time.perf_counter()
    summary = import_counter(store, [Path(path)])
    elapsed = time.perf_counter() - started
    store.close()
    # A large report is read in a second process: its peak counts too (both at once, as
    # an upper bound).
    peak_kib = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    result = summary.files[0]
    results.put((result.status, result.stored, result.problems[:3], elapsed, peak_kib))


def import_in_child(path: Path, db: Path) -> tuple[str, int, list[str], float, tuple[int, int]]:
    outcome: tuple[str, int, list[str], float, tuple[int, int]] = run_in_child(
        _import_child, str(path), str(db)
    )
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    args = parser.parse_args()
    items = _items(args.items)
    failed = False
    with tempfile.TemporaryDirectory(prefix="reachmeter-counter-bench-") as tmp:
        for fmt, writer in (("tsv", write_tsv), ("json", write_json)):
            path = Path(tmp) / f"ir.{fmt}"
            writer(path, items)
            size_mb = path.stat().st_size / 1e6
            status, stored, problems, seconds, peak_kib = import_in_child(
                path, Path(tmp) / f"{fmt}.db"
            )
            own_mb, reader_mb = (kib / 1024 for kib in peak_kib)
            peak_mb = own_mb + reader_mb
            ok = status == "imported" and seconds <= TARGET_SECONDS and peak_mb <= TARGET_MB
            failed = failed or not ok
            print(
                f"IR {fmt:<4} {args.items:,} items x 12 months ({size_mb:,.0f} MB): "
                f"{status}, {stored:,} observations in {seconds:.1f} s "
                f"({stored / seconds:,.0f}/s), peak memory {peak_mb:,.0f} MB "
                f"({own_mb:,.0f} importing + {reader_mb:,.0f} reading) "
                f"[{'ok' if ok else 'OVER TARGET'}]"
            )
            for problem in problems:
                print(f"  problem: {problem}")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
