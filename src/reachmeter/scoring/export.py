"""Stored scores written out: CSV (one flat row per output) or JSON Lines (the stored
score as read), the same from ``reachmeter scores export`` and the API."""

from __future__ import annotations

import csv
import datetime as dt
from typing import Any, TextIO

import orjson

from reachmeter.scoring.run import iter_scores
from reachmeter.store import Store

__all__ = ["CSV_COLUMNS", "csv_row", "write_scores"]

CSV_COLUMNS = (
    "output_id",
    "profile",
    "profile_version",
    "as_of",
    "score",
    "mentions",
    "flags",
    "pct_all",
    "pct_venue",
    "pct_similar_age",
    "pct_venue_similar_age",
    "rank_all",
    *(f"history_{p}" for p in ("1d", "1w", "1m", "3m", "6m", "1y", "at")),
    "sources",
    "categories",
)


def csv_row(row: dict[str, Any]) -> dict[str, Any]:
    context = row["context"]
    flat = {k: row[k] for k in ("output_id", "profile", "profile_version", "as_of", "score")}
    flat.update(mentions=row["mentions"], flags=row["flags"])
    for group in ("all", "venue", "similar_age", "venue_similar_age"):
        flat[f"pct_{group}"] = context.get(group, {}).get("pct")
    flat["rank_all"] = context.get("all", {}).get("rank")
    for period, change in row["history"].items():
        flat[f"history_{period}"] = change
    flat["sources"] = orjson.dumps(row["breakdown"].get("sources", {})).decode()
    flat["categories"] = orjson.dumps(row["breakdown"].get("categories", {})).decode()
    return flat


def write_scores(store: Store, name: str, day: dt.date, fmt: str, out: TextIO) -> int:
    """Write a profile's stored scores for a day as ``csv`` or ``jsonl``; returns how many."""
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in iter_scores(store, name, day):
            writer.writerow(csv_row(row))
            count += 1
    else:
        for row in iter_scores(store, name, day):
            out.write(orjson.dumps(row).decode() + "\n")
            count += 1
    return count
