"""The FastAPI application: dashboard pages, the REST API and the badges on one store."""

from __future__ import annotations

from fastapi import FastAPI

from reachmeter.settings import Settings
from reachmeter.store import Store
from reachmeter.web import api, badges, pages


def create_app(store: Store, settings: Settings | None = None) -> FastAPI:
    """The application serving ``store``. ``app.state.store`` and ``app.state.settings`` are
    what every route reads."""
    app = FastAPI(
        title="ReachMeter",
        version="1",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.store = store
    app.state.settings = settings or Settings()
    app.include_router(api.router, prefix="/api/v1")
    app.include_router(badges.router)
    app.include_router(pages.router)
    return app
