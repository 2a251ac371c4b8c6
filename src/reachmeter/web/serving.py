"""Running the web application with uvicorn: in this process, or in several worker
processes sharing one listening socket."""

from __future__ import annotations

import asyncio
import logging
import os
import selectors
import socket
import threading
from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from reachmeter.settings import Settings

# The application of each worker process (see ``reachmeter.web.app.app_from_environment``).
WORKER_APP = "reachmeter.web.app:app_from_environment"
# The event loop of each worker process (uvicorn's ``loop`` option: a custom loop factory).
WORKER_LOOP = "reachmeter.web.serving:new_turn_taking_loop"

_log = logging.getLogger("uvicorn.error")
# After accepting a connection, a worker leaves the next ones to the others for this long
# per connection it serves (up to PAUSE_CAP connections' worth: 5 ms).
PAUSE_PER_CONNECTION = 0.0005
PAUSE_CAP = 10
ACCEPT_POLL_SECONDS = 0.25  # how soon the accepting thread notices the server closing


class _TurnTakingServer:
    """Accepts the connections of a listening socket that other processes accept from too,
    one at a time, leaving more of them to the processes that serve fewer.

    asyncio's and uvloop's servers accept every connection waiting at once: when clients
    open their (keep-alive) connections together, the first process to wake takes most of
    them and keeps them, and its clients queue behind each other while the other process
    idles (measured: 15 connections against 5, and p95 latencies 50% higher). Here a thread
    accepts one connection, hands it to the event loop, and then waits a little longer the
    more connections this process serves before it accepts the next: the processes end up
    with about as many connections each (10 and 10), without talking to each other.
    ``close`` and ``wait_closed`` are all uvicorn asks of a server.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        backlog: int,
    ) -> None:
        self._loop, self._sock, self._factory = loop, sock, protocol_factory
        self._open: set[asyncio.BaseTransport] = set()
        self._connecting: set[asyncio.Task[Any]] = set()
        self._closed = threading.Event()
        sock.listen(backlog)
        # Non-blocking: when another process takes the connection first, accept() says so
        # at once instead of waiting for the next one (and holding up the server's close).
        sock.setblocking(False)
        self._thread = threading.Thread(target=self._accepting, name="accept", daemon=True)
        self._thread.start()

    def _load(self) -> int:
        return len(self._open) + len(self._connecting)

    def _accepting(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ)
            while not self._closed.is_set():
                if not selector.select(timeout=ACCEPT_POLL_SECONDS):
                    continue
                try:
                    connection, _ = self._sock.accept()
                except (BlockingIOError, InterruptedError):
                    continue  # another process took it
                except OSError as exc:  # out of file descriptors, ...: try again shortly
                    if self._closed.is_set():
                        return
                    _log.error("accepting a connection failed: %s", exc)
                    self._closed.wait(0.1)
                    continue
                connection.setblocking(False)
                try:
                    self._loop.call_soon_threadsafe(self._connect, connection)
                except RuntimeError:  # the loop is closed
                    connection.close()
                    return
                # Counted without the loop's lock: a connection more or less changes little.
                self._closed.wait(min(self._load() + 1, PAUSE_CAP) * PAUSE_PER_CONNECTION)

    def _connect(self, connection: socket.socket) -> None:
        if self._closed.is_set():
            connection.close()
            return
        self._open = {t for t in self._open if not t.is_closing()}
        task = self._loop.create_task(self._loop.connect_accepted_socket(self._factory, connection))
        self._connecting.add(task)
        task.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task[Any]) -> None:
        self._connecting.discard(task)
        if task.cancelled():
            return
        if task.exception() is not None:
            _log.error("setting up a connection failed: %s", task.exception())
            return
        transport, _ = task.result()
        self._open.add(transport)

    def is_serving(self) -> bool:
        return not self._closed.is_set()

    def close(self) -> None:
        self._closed.set()

    async def wait_closed(self) -> None:
        await asyncio.to_thread(self._thread.join)
        if self._connecting:
            await asyncio.gather(*self._connecting, return_exceptions=True)


def _turn_taking(base: type[asyncio.AbstractEventLoop]) -> type[asyncio.AbstractEventLoop]:
    class TurnTakingLoop(base):  # type: ignore[valid-type,misc]
        """An event loop whose servers on a shared socket take connections in turns."""

        async def create_server(self, protocol_factory: Any, *args: Any, **kwargs: Any) -> Any:
            sock = kwargs.get("sock")
            if sock is None or args or kwargs.get("ssl") is not None:
                return await super().create_server(protocol_factory, *args, **kwargs)
            return _TurnTakingServer(self, sock, protocol_factory, kwargs.get("backlog") or 100)

    return TurnTakingLoop


def new_turn_taking_loop() -> asyncio.AbstractEventLoop:
    """The event loop of a worker process (uvicorn's ``loop`` option, a loop factory):
    uvloop's when installed, as uvicorn's ``auto`` chooses, with servers that take turns
    accepting (``_TurnTakingServer``)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover  (uvloop is a dependency except on Windows)
        return _turn_taking(asyncio.SelectorEventLoop)()
    return _turn_taking(uvloop.Loop)()


class _Config(uvicorn.Config):
    """uvicorn's configuration, with Nagle's algorithm off on the shared listening socket.

    A single uvicorn process has asyncio open its socket, which turns Nagle's algorithm off
    on each connection; with several workers uvicorn binds the socket itself, asyncio no
    longer recognises it as TCP, and every response waits some 40 ms for the client's
    delayed acknowledgement. Connections accepted on Linux inherit the listener's option.
    """

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


def run(app: FastAPI, *, host: str, port: int, access_log: bool) -> None:
    """Serve ``app`` in this process until interrupted."""
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log)


def run_workers(
    settings: Settings, *, workers: int, host: str, port: int, access_log: bool
) -> None:
    """Serve ``WORKER_APP`` in ``workers`` spawned processes until interrupted. They build
    the application from their environment, which is given ``settings`` here."""
    os.environ.update(settings.environment())
    config = _Config(
        WORKER_APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop=WORKER_LOOP,
        log_level="info",
        access_log=access_log,
    )
    Multiprocess(config, sockets=[config.bind_socket()]).run()
