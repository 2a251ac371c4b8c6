"""The order in which one server process works through the requests waiting for it.

Under load, a process has several requests ready at once. Served first come, first served,
a badge (a few small reads) waits behind dashboard pages that take several times longer,
and every request ends up with about the same latency. Here each request gets a deadline:
its arrival time plus the budget of its kind (its latency target: a badge 20 ms, an API
read 50 ms, a page 100 ms), and the waiting request with the earliest deadline starts
first. A page that has waited long enough goes before newer quick requests, so nothing
waits for ever (earliest deadline first, a classic real-time scheduling rule). Budgets of
half the targets served badges too late under load: the gap between the kinds is what
orders them.

The hot reads (the output page, the outputs list, an output, its score and its mentions in
the API) run in the event loop on SQLite, so that this order is the order they are
served in. On a server database they run on worker threads instead: a network round trip
would hold up the loop.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from reachmeter.store import Store

__all__ = ["BUDGETS", "DeadlineOrder", "EarliestDeadlineFirst", "budget_of", "run_read"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

# Seconds: the p95 target of each kind of request (bench/web.py, docs/web.md).
BUDGETS = {"badge": 0.020, "static": 0.020, "api": 0.050, "page": 0.100}


def budget_of(path: str) -> float:
    """The latency budget of a request for ``path``."""
    if path.startswith("/badge/"):
        return BUDGETS["badge"]
    if path.startswith("/static/"):
        return BUDGETS["static"]
    if path.startswith("/api/"):
        return BUDGETS["api"]
    return BUDGETS["page"]


class EarliestDeadlineFirst:
    """Lets waiting requests start one at a time, the earliest deadline first.

    ``await turn(budget)`` returns when this request may start. One waiter is let go per
    turn of the event loop: it runs up to its first real wait (for an SQLite read in the
    loop, to its end) before the next is chosen, and requests that arrived meanwhile are
    chosen among too.
    """

    def __init__(self) -> None:
        self._waiting: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._dispatching = False
        self._loop: asyncio.AbstractEventLoop | None = None

    async def turn(self, budget: float) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # an application served again, by a new loop (tests)
            self._loop, self._waiting, self._dispatching = loop, [], False
        future: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._waiting, (loop.time() + budget, next(self._order), future))
        if not self._dispatching:
            self._dispatching = True
            loop.call_soon(self._dispatch, loop)
        await future

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        while self._waiting:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():  # a waiter whose client went away is cancelled
                future.set_result(None)
                break
        if self._waiting:
            loop.call_soon(self._dispatch, loop)
        else:
            self._dispatching = False

    def __len__(self) -> int:
        return len(self._waiting)


class DeadlineOrder:
    """ASGI middleware: each HTTP request waits for its turn (``EarliestDeadlineFirst``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.scheduler = EarliestDeadlineFirst()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.scheduler.turn(budget_of(scope["path"]))
        await self.app(scope, receive, send)


async def run_read(store: Store, read: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """``read(*args, **kwargs)``: here in the event loop on SQLite, on a worker thread on a
    server database."""
    if store.dialect == "sqlite":
        return read(*args, **kwargs)
    return await run_in_threadpool(read, *args, **kwargs)
