"""A large JSON Lines file read, prepared and stored by two processes at once.

The file is cut into blocks of ``BLOCK_BYTES``, each starting where a line starts. Of two
workers, one takes the even blocks and the other the odd ones: each reads and prepares
its next block while the other stores the one before, then stores its own in its turn.
Turns go in the file's order, so events are stored (and numbered) as the file orders them,
only one process writes at a time (SQLite has one writer), and each block learns at its
turn how many lines come before it (for the line numbers of quarantined records).

This process hashes the file for its evidence record while the workers start, hands out
the turns and adds up what they stored. Compared with one process reading for another
that stores, nothing is sent between processes but counts, and the work of a batch (its
reading and its storing) is shared evenly by both cores.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reachmeter.ingest.batches import EVIDENCE_PENDING, prepared_batches, together, with_evidence
from reachmeter.ingest.readers import Span, line_start
from reachmeter.reading import Later, Processes
from reachmeter.store import Store
from reachmeter.store.engine import make_engine
from reachmeter.store.writer import BatchResult, FactWriter, PreparedBatch

__all__ = ["BLOCK_BYTES", "WORKERS", "shared_by_processes", "stored_by_processes"]

# A block is read and prepared whole before its turn: 16 MiB of Event Data is about
# 23,000 events, one transaction of a bulk load. Twice as large was no faster, and each
# worker held 185 MB at its peak instead of 137 MB.
BLOCK_BYTES = 16 * 1024 * 1024
WORKERS = 2
_STORED, _DONE = 0, 1


@dataclass(frozen=True, slots=True)
class Plan:
    """What every worker is given. ``transaction_events`` above zero joins a block's
    batches into transactions of at least that many events (a bulk load)."""

    url: str
    path: Path
    file_format: str
    sqlite: bool
    collected_at: dt.datetime
    batch_size: int
    max_line_bytes: int
    run_id: int | None
    block_bytes: int
    blocks: int
    workers: int
    transaction_events: int
    problems_kept: int


def shared_by_processes(store: Store) -> bool:
    """Whether other processes can open the store (not an in-memory SQLite database)."""
    url = store.engine.url
    return url.get_backend_name() != "sqlite" or url.database not in (None, "", ":memory:")


def stored_by_processes(
    store: Store,
    path: Path,
    file_format: str,
    *,
    record_evidence: Callable[[], int],
    collected_at: dt.datetime,
    batch_size: int,
    max_line_bytes: int,
    run_id: int | None,
    transaction_events: int,
    problems_kept: int,
) -> Iterator[tuple[int, BatchResult]]:
    """Store a JSON Lines file with two worker processes; yields, in the file's order,
    each transaction's records read and result.

    ``record_evidence()`` runs here while the workers start, and gives the evidence id
    that every row holds.
    """
    block_bytes = BLOCK_BYTES
    blocks = max(1, -(-path.stat().st_size // block_bytes))
    workers = min(WORKERS, blocks)
    plan = Plan(
        url=store.engine.url.render_as_string(hide_password=False),
        path=path,
        file_format=file_format,
        sqlite=store.dialect == "sqlite",
        collected_at=collected_at,
        batch_size=batch_size,
        max_line_bytes=max_line_bytes,
        run_id=run_id,
        block_bytes=block_bytes,
        blocks=blocks,
        workers=workers,
        transaction_events=transaction_events,
        problems_kept=problems_kept,
    )
    # A forked worker must not inherit open SQLite connections (their locks are this
    # process's); the pool opens new ones when next asked.
    store.engine.dispose()
    group = Processes(_store_blocks, [(plan, worker) for worker in range(workers)], record_evidence)
    done = lines = 0
    for _, message in group:
        if message[0] == _STORED:
            yield message[1], message[2]
            continue
        done += 1
        lines += message[1]
        if done < blocks:
            group.send(done % workers, lines)


def _store_blocks(evidence: Later[int], plan: Plan, worker: int) -> Iterator[tuple[Any, ...]]:
    """Worker: read and prepare each of its blocks, and store it in its turn."""

    def evidence_id() -> int:
        return evidence.get() if evidence.ready() else EVIDENCE_PENDING

    store = Store(make_engine(plan.url))
    writer = FactWriter(store, run_id=plan.run_id)
    deferred = (
        store.checkpoints_deferred(checkpoint_after=False)
        if plan.transaction_events
        else contextlib.nullcontext()
    )
    try:
        with deferred, plan.path.open("rb") as handle:
            for block in range(worker, plan.blocks, plan.workers):
                span = Span(
                    line_start(handle, block * plan.block_bytes),
                    line_start(handle, (block + 1) * plan.block_bytes),
                )
                batches = list(
                    prepared_batches(
                        plan.path,
                        plan.file_format,
                        evidence=evidence_id,
                        sqlite=plan.sqlite,
                        collected_at=plan.collected_at,
                        batch_size=plan.batch_size,
                        max_line_bytes=plan.max_line_bytes,
                        span=span,
                    )
                )
                # This block's turn: sent with the number of lines before it.
                line_base = 0 if block == 0 else evidence.receive()
                for batch in _transactions(batches, evidence.get(), plan.transaction_events):
                    batch.line_base = line_base
                    result = writer.write_prepared(batch)
                    del result.problems[plan.problems_kept :]
                    yield _STORED, batch.read, result
                yield _DONE, span.lines
    finally:
        store.engine.dispose()


def _transactions(
    batches: list[PreparedBatch], evidence_id: int, events: int
) -> Iterator[PreparedBatch]:
    """A block's batches given their evidence id, each taken from ``batches`` as it is
    stored (so that none is held once stored), and joined into transactions of at least
    ``events`` events when that is above zero."""
    ready = (with_evidence(batches.pop(0), evidence_id) for _ in range(len(batches)))
    return together(ready, events) if events else ready
