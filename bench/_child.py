"""Running a benchmark step in a fresh process, so its peak memory is its own."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any


def run_in_child(target: Callable[..., None], *args: object) -> Any:
    """Run ``target(*args, results)`` in a spawned process; returns what it put on ``results``."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=target, args=(*args, results))
    child.start()
    outcome = results.get()
    child.join()
    return outcome
