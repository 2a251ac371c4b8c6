"""The demo organisation: a fictional university library, generated and loaded like real data.

``generate`` writes ordinary input files (people and outputs CSV, Crossref Event Data JSON
Lines, observation JSON Lines); ``load`` runs the real importers and the real ingest on them.
"""

from __future__ import annotations

from reachmeter.demo.generate import (
    DEFAULT_AS_OF,
    DEFAULT_SEED,
    DemoData,
    DemoFiles,
    build_demo,
    generate_demo,
    write_demo,
)

__all__ = [
    "DEFAULT_AS_OF",
    "DEFAULT_SEED",
    "DemoData",
    "DemoFiles",
    "build_demo",
    "generate_demo",
    "write_demo",
]
