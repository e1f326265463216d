"""create_app(settings, store) → the FastAPI application: TAXII 2.1 under /taxii2/."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import audit, cluster, peering, probes, stix, write
from .. import keys as hub_keys
from .. import warn as warnings
from ..config import Settings, hub_path
from ..guard import RateLimiter
from ..limits import Limits
from ..store import Store
from . import admin, caller, dashboard, doorman, errors, match, monitor, taxii, trail, transparency, warn


class _TrailingSlash:
    """TAXII URLs end in '/'; clients that drop it get the same resource, not a redirect. (The
    dashboard's static files are named like files.)"""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].endswith("/") and not scope["path"].startswith("/ui/static/"):
            scope = dict(scope, path=scope["path"] + "/")
        await self.app(scope, receive, send)


def _jobs(store: Store, log: audit.AuditLog, outbox: Any, leader: cluster.Leader,
          buckets: cluster.SharedBuckets | None, metrics: monitor.Metrics) -> None:
    """One round of the background jobs, in the leading process only: the probe scan, pruning, escalation."""
    try:
        leading = leader.held()
    except Exception:  # the store is unreachable: nobody can scan it; the next round asks again
        logging.getLogger("tearline.cluster").exception("cannot ask for the background jobs' lead")
        return
    metrics.leader.set(1 if leading else 0)
    if not leading:
        return
    try:
        probes.scan(store)
        write.prune_statuses(store)
        if buckets is not None:
            buckets.prune()
    except Exception:  # a failed scan must not take the hub down; the next one retries
        logging.getLogger("tearline.guard").exception("probe scan failed")
    try:
        # still leading after a scan that may have taken long? (narrows the moment two processes could both
        # escalate; a lock lost in between is seen here)
        if not leader.held():
            return
        for sent in warnings.escalate(store, outbox):
            log.append(actor="hub", api_root=None, method="ADMIN", endpoint="warn escalate",
                       path="escalation", query=sent)
    except Exception:
        logging.getLogger("tearline.warn").exception("warning escalation failed")


def _peers(store: Store, keys: hub_keys.HubKeys, log: audit.AuditLog, leader: cluster.Leader) -> None:
    """One round of pulls from and pushes to the peer hubs, in the leading process only; a peer that fails is
    noted (tearline peer status) and tried again next round, the others go on."""
    try:
        if not leader.held():
            return
        names = [p["name"] for p in peering.listed(store)]
    except Exception:
        logging.getLogger("tearline.peering").exception("cannot list the peers")
        return
    for name in names:
        try:
            peering.sync(store, keys, log, name)
        except Exception:
            logging.getLogger("tearline.peering").exception("sync with peer %s failed", name)


def _scanner(store: Store, settings: Settings, log: audit.AuditLog, leader: cluster.Leader,
             buckets: cluster.SharedBuckets | None, metrics: monitor.Metrics, keys: hub_keys.HubKeys) -> Any:
    """The hub's lifespan: a thread that, every `guard_scan_seconds`, runs the background jobs (`_jobs`) when
    this process leads those sharing the store (tearline.cluster); and one that seals the audit log (a signed
    tree head over every entry) every `audit_seal_seconds` while entries arrive, and once more when the hub
    stops, so that no more than those seconds of the log's tail could be cut off unseen."""
    every = settings.guard_scan_seconds
    outbox = hub_path(settings.warn_outbox, settings.db, "outbox")

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        stop = threading.Event()

        def loop() -> None:
            # a round at once: a process that starts while none leads takes the lead now, not a scan later
            _jobs(store, log, outbox, leader, buckets, metrics)
            while not stop.wait(every):
                _jobs(store, log, outbox, leader, buckets, metrics)

        def seal() -> None:
            while not stop.wait(settings.audit_seal_seconds):
                try:
                    log.seal()
                except Exception:  # the next seal covers what this one missed
                    logging.getLogger("tearline.audit").exception("sealing the audit log failed")

        def federate() -> None:
            while not stop.wait(settings.peer_sync_seconds):
                _peers(store, keys, log, leader)

        threads = [threading.Thread(target=loop, name="tearline-guard", daemon=True),
                   threading.Thread(target=seal, name="tearline-seal", daemon=True)]
        if settings.peer_sync_seconds > 0:
            threads.append(threading.Thread(target=federate, name="tearline-peers", daemon=True))
        for thread in threads:
            thread.start()
        yield
        stop.set()
        for thread in threads:
            thread.join(5)
        leader.release()
        try:
            log.seal()  # the last requests, sealed as the hub stops
        except Exception:
            logging.getLogger("tearline.audit").exception("sealing the audit log at shutdown failed")

    return lifespan


# How often a thread that computes (judging a large envelope, marking a long description) hands the
# interpreter to the others: Python's 5 ms default lets one member's large request hold every other
# member's short ones behind it, several times over per request; at 1 ms a short request waits less.
SWITCH_INTERVAL = 0.001


def create_app(settings: Settings, store: Store) -> ASGIApp:
    sys.setswitchinterval(SWITCH_INTERVAL)
    log = audit.AuditLog(store, audit.key_path(settings.audit_key, settings.db), settings.audit_checkpoint_every)
    # several processes may serve a PostgreSQL store: its rate-limit buckets are then the store's, shared
    buckets = cluster.SharedBuckets(store) if cluster.shared(store) else None
    leader = cluster.Leader(store)
    metrics = monitor.Metrics()
    keys = hub_keys.load(settings)
    app = FastAPI(title="Tearline", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=_scanner(store, settings, log, leader, buckets, metrics, keys))
    errors.install(app)
    write.upkeep(store, keys)
    stix.warm()  # the OASIS schemas compile in a second or two: now, not on the first write
    app.state.hub = caller.Hub(store, settings, RateLimiter(buckets=buckets), keys, log, Limits.of(settings), leader)
    sessions = cluster.Sessions(store, dashboard.SESSION_SECONDS)
    app.state.pages = dashboard.Pages.load(sessions)
    app.state.metrics = metrics
    for router in (taxii.router(), match.router(), warn.router(), transparency.router(), admin.router(),
                   monitor.router(), dashboard.router()):
        app.include_router(router)
    return monitor.Front(doorman.Doorman(_TrailingSlash(trail.AuditTrail(app, log)), log, store,
                                            Limits.of(settings), settings.admin_token,
                                            lambda sid: sessions.valid(sid, settings.admin_token),
                                            buckets=buckets), metrics, store)


def from_environment() -> ASGIApp:
    """The hub of the TEARLINE_* settings: what each worker of ``serve --workers`` builds."""
    from ..config import load

    settings = load()
    return create_app(settings, Store(settings.db))
