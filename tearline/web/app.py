"""create_app(settings, store) → the FastAPI application: TAXII 2.1 under /taxii2/."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import audit, stix, write
from .. import keys as hub_keys
from ..guard import RateLimiter
from ..taxii import api as taxii
from ..config import Settings
from ..store import Store
from . import admin, dashboard, errors, match, warn


class _TrailingSlash:
    """TAXII URLs end in '/'; clients that drop it get the same resource, not a redirect. (The
    dashboard's static files are named like files.)"""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].endswith("/") and not scope["path"].startswith("/ui/static/"):
            scope = dict(scope, path=scope["path"] + "/")
        await self.app(scope, receive, send)


class _AuditTrail:
    """Records every request in the audit log before its response starts: who (the authenticated
    member, or nobody), the route, the filters, the outcome, the reason for a refusal, and the ids
    returned or written. If the record cannot be written, the request fails rather than go unrecorded."""

    def __init__(self, app: ASGIApp, log: audit.AuditLog):
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        started = False

        async def recorded(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                started = True
                await run_in_threadpool(self._record, scope, state, message["status"])
            await send(message)

        await self.app(scope, receive, recorded)

    def _record(self, scope: Scope, state: dict[str, Any], status: int) -> None:
        from urllib.parse import parse_qs

        member = state.get("audit_member")
        route = scope.get("route")
        query = {k: v if len(v) > 1 else v[0]
                 for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
        self.log.append(actor=member.name if member else None, api_root=member.api_root if member else None,
                        method=scope["method"], endpoint=getattr(route, "path", scope["path"]), path=scope["path"],
                        query=query, status=status, reason=state.get("audit_reason", ""),
                        ids=state.get("audit_ids", ()))


def _scanner(store: Store, settings: Settings, log: audit.AuditLog) -> Any:
    """The hub's lifespan: a thread that, every `guard_scan_seconds`, scans the audit trail for probing
    and escalates unacknowledged warnings to the addressees' next contacts (each escalation audited)."""
    import contextlib
    import logging
    import threading

    from .. import probes
    from .. import warn as warnings
    from ..config import hub_path

    every = settings.guard_scan_seconds
    outbox = hub_path(settings.warn_outbox, settings.db, "outbox")

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(every):
                try:
                    probes.scan(store)
                except Exception:  # a failed scan must not take the hub down; the next one retries
                    logging.getLogger("tearline.guard").exception("probe scan failed")
                try:
                    for sent in warnings.escalate(store, outbox):
                        log.append(actor="hub", api_root=None, method="ADMIN", endpoint="warn escalate",
                                   path="escalation", query=sent)
                except Exception:
                    logging.getLogger("tearline.warn").exception("warning escalation failed")

        thread = threading.Thread(target=loop, name="tearline-guard", daemon=True)
        thread.start()
        yield
        stop.set()
        thread.join(5)

    return lifespan


def create_app(settings: Settings, store: Store) -> ASGIApp:
    log = audit.AuditLog(store, audit.key_path(settings.audit_key, settings.db), settings.audit_checkpoint_every)
    app = FastAPI(title="Tearline", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=_scanner(store, settings, log))
    errors.install(app)
    limiter = RateLimiter()
    keys = hub_keys.load(settings)
    write.upkeep(store, keys)
    stix.warm()  # the OASIS schemas compile in a second or two: now, not on the first write
    app.include_router(taxii.router(store, settings, limiter, keys))
    app.include_router(match.router(store, limiter))
    app.include_router(warn.router(store, limiter, log, keys))
    app.include_router(admin.router(store, settings))
    app.include_router(dashboard.router(store, settings, limiter, keys, log))
    app.state.store = store
    app.state.settings = settings
    app.state.audit = log
    return _TrailingSlash(_AuditTrail(app, log))
