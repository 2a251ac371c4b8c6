"""The FastAPI application: dashboard pages, the REST API and the badges on one store."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from reachmeter.settings import Settings
from reachmeter.store import Store
from reachmeter.web import api, badges, monitor_pages, pages
from reachmeter.web.scheduling import DeadlineOrder

STATIC_DIR = Path(__file__).parent / "static"
# Paths whose errors stay errors (scripts read them); a browser on a page is sent to log in.
_MACHINE_PREFIXES = ("/api/", "/badge/", "/static/")


def app_from_environment() -> FastAPI:
    """The application of one of several server processes (``reachmeter serve --workers``):
    the store and settings named by the environment (``REACHMETER_DATABASE_URL``, ...)."""
    from reachmeter.store import open_store

    settings = Settings()
    return create_app(open_store(settings.database_url), settings)


def create_app(store: Store, settings: Settings | None = None) -> FastAPI:
    """The application serving ``store``. ``app.state.store`` and ``app.state.settings`` are
    what every route reads."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Sync routes run on worker threads; under load, dozens of them contending for the
        # interpreter lock serve fewer requests than a few do (measured in bench/web.py).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.web_threads
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="ReachMeter",
        version="1",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.store = store
    app.state.settings = settings
    app.include_router(api.router, prefix="/api/v1")
    app.include_router(badges.router)
    app.include_router(pages.router)
    app.include_router(monitor_pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # Waiting requests start earliest deadline first: badges and API reads before pages.
    app.add_middleware(DeadlineOrder)

    @app.exception_handler(StarletteHTTPException)
    async def _login_or_error(request: Request, exc: StarletteHTTPException) -> Response:
        path = request.url.path
        if exc.status_code == 401 and not path.startswith(_MACHINE_PREFIXES):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(pages.login_url(target), status_code=303)
        if exc.status_code in {403, 404} and not path.startswith(_MACHINE_PREFIXES):
            return pages.error_page(request, exc.status_code, str(exc.detail))
        return await http_exception_handler(request, exc)

    return app
