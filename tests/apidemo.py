"""The API and badge tests' shared parts: the demo organisation in a store, and an
in-process client.

The demo (one tenth of its full size) goes in through the real importers, ingest and
scoring, as ``reachmeter demo`` loads it; the SQLite file is built once per test session.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from reachmeter.demo import DEFAULT_AS_OF, generate_demo
from reachmeter.demo.load import load_demo
from reachmeter.settings import Settings
from reachmeter.store import Store, open_store
from reachmeter.web.app import create_app
from tests.conftest import _postgres_schema_url

DEMO_SCALE = 0.1
AS_OF = DEFAULT_AS_OF.date()
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
TEST_KEY = "key-for-tests-only"


@functools.cache
def _demo_files() -> Any:
    directory = Path(tempfile.mkdtemp(prefix="reachmeter-api-demo-"))
    return generate_demo(directory / "files", scale=DEMO_SCALE)[1]


@functools.cache
def _sqlite_demo() -> Path:
    path = Path(tempfile.mkdtemp(prefix="reachmeter-api-store-")) / "demo.db"
    store = open_store(path)
    try:
        load_demo(store, _demo_files(), score_as_of=AS_OF)
    finally:
        store.close()
    return path


def demo_stores(request: pytest.FixtureRequest) -> Iterator[Store]:
    """The demo store on SQLite (built once) or on PostgreSQL (built per module)."""
    if request.param == "sqlite":
        store = open_store(_sqlite_demo())
        try:
            yield store
        finally:
            store.close()
        return
    for url in _postgres_schema_url():
        store = open_store(url)
        try:
            load_demo(store, _demo_files(), score_as_of=AS_OF)
            yield store
        finally:
            store.close()


def make_app(store: Store, *, public: bool = True) -> FastAPI:
    return create_app(store, Settings(public_dashboard=public, secret_key=TEST_KEY))


class AppClient:
    """A synchronous client calling the application in process (ASGI), no server."""

    def __init__(self, app: FastAPI, headers: dict[str, str] | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers=headers,
        )

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._loop.run_until_complete(self._client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


@contextlib.contextmanager
def client(app: FastAPI, headers: dict[str, str] | None = None) -> Iterator[AppClient]:
    opened = AppClient(app, headers)
    try:
        yield opened
    finally:
        opened.close()
