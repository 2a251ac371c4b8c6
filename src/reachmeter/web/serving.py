"""Running the web application with uvicorn: in this process, or in several worker
processes sharing one listening socket."""

from __future__ import annotations

import os
import socket

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from reachmeter.settings import Settings

# The application of each worker process (see ``reachmeter.web.app.app_from_environment``).
WORKER_APP = "reachmeter.web.app:app_from_environment"


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
        log_level="info",
        access_log=access_log,
    )
    Multiprocess(config, sockets=[config.bind_socket()]).run()
