"""create_app(settings, store) → the FastAPI application: TAXII 2.1 under /taxii2/."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from ..taxii import api as taxii
from ..config import Settings
from ..store import Store
from . import errors, match


class _TrailingSlash:
    """TAXII URLs end in '/'; clients that drop it get the same resource, not a redirect."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].endswith("/"):
            scope = dict(scope, path=scope["path"] + "/")
        await self.app(scope, receive, send)


def create_app(settings: Settings, store: Store) -> ASGIApp:
    app = FastAPI(title="Tearline", docs_url=None, redoc_url=None, openapi_url=None)
    errors.install(app)
    app.include_router(taxii.router(store, settings))
    app.include_router(match.router(store))
    app.state.store = store
    app.state.settings = settings
    return _TrailingSlash(app)
