"""A small demo store with two hostile mentions, shared by the web tests (built once per
test process)."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import orjson
from sqlalchemy import select

from reachmeter.demo import generate_demo
from reachmeter.demo.load import load_demo
from reachmeter.ingest import ingest_paths
from reachmeter.scoring import latest_as_of, top_scores
from reachmeter.store import open_store
from reachmeter.store.schema import OutputIdentifier

# Starlette's test client warns (on import) that it will move to the httpx2 package.
STARLETTE_HTTPX_WARNING = "Using `httpx` with `starlette.testclient` is deprecated"
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=STARLETTE_HTTPX_WARNING)
    from fastapi.testclient import TestClient

__all__ = ["TestClient", "demo_store_path"]

SCRIPT_TEXT = "<script>alert(1)</script>"
IMG_TEXT = '<img src=x onerror="alert(2)"> image'
HOSTILE_AUTHOR = "<b>bold</b> author"


@functools.cache
def demo_store_path(base: Path) -> tuple[Path, int]:
    """The path of a demo store (scale 0.1) built under ``base``, and the id of the output
    that carries the two hostile mentions (the top-scoring output)."""
    directory = base / "web-demo"
    directory.mkdir()
    data, files = generate_demo(directory / "files", scale=0.1)
    path = directory / "demo.db"
    store = open_store(path)
    try:
        load_demo(
            store,
            files,
            meta={"seed": "test", "scale": "0.1", "as_of": data.as_of.isoformat()},
            score_as_of=data.as_of.date(),
        )
        day = latest_as_of(store, "default")
        assert day is not None
        target = int(top_scores(store, "default", day, 1)[0]["output_id"])
        with store.engine.connect() as connection:
            doi = connection.execute(
                select(OutputIdentifier.value).where(
                    OutputIdentifier.output_id == target, OutputIdentifier.scheme == "doi"
                )
            ).scalar_one()
        hostile = directory / "hostile.jsonl"
        records = [
            {
                "id": f"hostile-{n}",
                "subj_id": f"https://forum.example/thread/{n}",
                "relation_type_id": "discusses",
                "obj_id": f"https://doi.org/{doi}",
                "source_id": "reddit",
                "occurred_at": f"2026-10-2{n + 1}T12:00:00Z",
                "subj": {
                    "pid": f"https://forum.example/thread/{n}",
                    "title": text,
                    "author": {"name": HOSTILE_AUTHOR, "url": f"https://forum.example/u/{n}"},
                },
            }
            for n, text in enumerate((SCRIPT_TEXT, IMG_TEXT))
        ]
        hostile.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
        summary = ingest_paths(store, [hostile])
        assert summary.stored == 2, summary
    finally:
        store.close()
    return path, target
