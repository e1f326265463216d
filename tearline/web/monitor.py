"""What a load balancer and an operator's monitoring ask of a running hub.

- ``GET /tearline/health/``: 200 when this process can reach its store (one trivial query, at most once a
  second whatever the number of askers), 503 when it cannot. Open to anyone, as load balancers ask without
  credentials; it says nothing a stranger could use (no version, no counts, no error text). It is answered in
  front of the hub: a load balancer asking every few seconds is not a member's request, so it is neither
  counted against an address's limits nor recorded in the audit trail.
- ``GET /tearline/admin/metrics/``: the Prometheus exposition format, with the operator's bearer token only
  (like the rest of the admin API it does not exist without one). Requests, latencies and refusals by endpoint
  class (meta, read, write, match: the guard's classes; dashboard, admin, health for the rest), objects
  ingested and refused, the audit log's unsealed entries and seal age, and whether this process runs the
  background jobs. Under ``serve --workers N`` the workers' figures are added up (prometheus-client's
  multiprocess mode, in a directory the parent makes), so a scrape through any worker sees the whole hub.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import audit
from ..config import metrics_dir
from ..store import Store
from . import admin, caller


def endpoint_class(scope: Scope) -> str:
    """The guard's class of the request when a member was admitted, else what its path is."""
    found = scope.get("state", {}).get("guard_class")
    if found:
        return str(found)
    path, method = scope.get("path", ""), scope.get("method", "GET")
    if path.startswith("/tearline/admin"):
        return "admin"
    if path == "/" or path.startswith("/ui"):
        return "dashboard"
    if "/match/" in path:
        return "match"
    if "/objects/" in path or "/manifest/" in path:
        return "write" if method in ("POST", "DELETE") else "read"
    return "meta"


class Metrics:
    """This process's instruments, in a registry of their own (a test may run several hubs in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("tearline_requests", "Requests answered, by endpoint class and status code.",
                                ["endpoint_class", "status"], registry=r)
        self.latency = Histogram("tearline_request_seconds", "Time to the start of the response, by endpoint class.",
                                 ["endpoint_class"], registry=r,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.refusals = Counter("tearline_refusals", "Requests refused (status 400 and above), by endpoint class "
                                "and status code.", ["endpoint_class", "status"], registry=r)
        self.ingested = Counter("tearline_ingest_objects", "Objects of POSTed envelopes, stored or refused.",
                                ["outcome"], registry=r)
        # livesum: a worker's value counts while it lives (one killed without a goodbye can count until the
        # parent replaces it); the audit figures are the store's, so the most recent reading of any worker is it
        self.leader = Gauge("tearline_background_leader", "1 in the process that runs the probe scan and "
                            "escalation now, else 0.", registry=r, multiprocess_mode="livesum")
        self.unsealed = Gauge("tearline_audit_unsealed_entries", "Audit entries appended since the newest signed "
                              "tree head.", registry=r, multiprocess_mode="mostrecent")
        self.seal_age = Gauge("tearline_audit_seal_age_seconds", "Seconds since the newest signed tree head.",
                              registry=r, multiprocess_mode="mostrecent")

    def exposition(self) -> bytes:
        if metrics_dir():
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            return bytes(generate_latest(merged))
        return bytes(generate_latest(self.registry))


HEALTH_PATHS = ("/tearline/health", "/tearline/health/")
HEALTH_SECONDS = 1.0


class Front:
    """The outermost layer: answers health checks itself and counts every other request by class, status and
    time to its response's start."""

    def __init__(self, app: ASGIApp, metrics: Metrics, store: Store):
        self.app = app
        self.metrics = metrics
        self.store = store
        self._health: tuple[float, bool] = (-HEALTH_SECONDS, False)
        self._asking: asyncio.Lock | None = None

    def _probe(self) -> bool:
        try:
            with self.store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:  # whatever the store says stays out of the answer
            return False

    async def _reachable(self) -> bool:
        """The store's answer of the last second; one probe at a time, so a flood of health checks takes one
        thread, never the pool every request needs."""
        if self._asking is None:
            self._asking = asyncio.Lock()
        async with self._asking:
            checked, ok = self._health
            if time.monotonic() - checked >= HEALTH_SECONDS:
                ok = await run_in_threadpool(self._probe)
                self._health = (time.monotonic(), ok)
        return ok

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in HEALTH_PATHS and scope["method"] in ("GET", "HEAD"):
            ok = await self._reachable()
            self.metrics.requests.labels("health", "200" if ok else "503").inc()
            body = b'{"status": "ok"}' if ok else b'{"status": "unavailable"}'
            await Response(body, status_code=200 if ok else 503, media_type="application/json",
                           headers={"Cache-Control": "no-store"})(scope, receive, send)
            return
        started = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                kind = endpoint_class(scope)
                status = str(message["status"])
                self.metrics.requests.labels(kind, status).inc()
                self.metrics.latency.labels(kind).observe(time.perf_counter() - started)
                if message["status"] >= 400:
                    self.metrics.refusals.labels(kind, status).inc()
                stored, refused = state.get("ingested", (0, 0))
                if stored:
                    self.metrics.ingested.labels("stored").inc(stored)
                if refused:
                    self.metrics.ingested.labels("refused").inc(refused)
            await send(message)

        await self.app(scope, receive, timed)


async def metrics(request: Request) -> Response:
    admin.operator(request)
    hub = caller.hub(request)
    watched: Metrics = request.app.state.metrics
    unsealed, age = await run_in_threadpool(audit.seal_lag, hub.store)
    watched.unsealed.set(unsealed)
    if age is not None:
        watched.seal_age.set(age)
    watched.leader.set(1 if hub.leader.leading else 0)
    return Response(await run_in_threadpool(watched.exposition), media_type=CONTENT_TYPE_LATEST)


def router() -> APIRouter:
    api = APIRouter()
    api.add_api_route("/tearline/admin/metrics/", metrics, methods=["GET"])
    return api
