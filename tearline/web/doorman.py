"""Before authentication: limits per client address, so that a stranger (or a member without its
credentials) cannot flood the hub, its audit trail or its members' share of it, and cannot lock a member
out by flooding from the member's address.

Only requests that end without an authenticated caller count (members are held to their own limits,
tearline.guard). Two buckets per address (tearline.guard.Buckets): ``address_per_minute`` counts every such
request, ``anonymous_per_minute`` those of them that end refused (a wrong token, a made-up path). A request
without any credentials is charged as it arrives (so a burst of them at once cannot overrun the buckets);
one with credentials is charged when it ends, if they did not work. Once either bucket of an address is
empty, only requests with working credentials (a member's or a person's token, the operator's, or a live
dashboard session) get in until it refills. Requests refused here never reach the hub, so they are not
recorded one by one: the first refusal of an address in each minute is recorded, with how many were
refused since the last record.

On PostgreSQL the buckets are the store's (tearline.cluster), shared by every hub process, and read off the
event loop.

Addresses are the peer's, as the socket sees it, an IPv6 address counted with its /64: behind a reverse proxy
every client shares the proxy's address, and the limits should be raised (or set on the proxy) accordingly.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import audit, tls
from ..auth import authenticate
from ..errors import TearlineError
from ..guard import Buckets
from ..limits import Limits
from ..store import Store
from .errors import error_response

WINDOW = 60.0  # seconds between two records of one address's refusals


class Doorman:
    def __init__(self, app: ASGIApp, log: audit.AuditLog, store: Store, limits: Limits, admin_token: str = "",
                 session_valid: Callable[[str], bool] = lambda _sid: False, clock: Any = time.monotonic,
                 buckets: Any = None):
        self.app = app
        self.log = log
        self.store = store
        self.limits = limits
        self.admin_token = admin_token
        self.session_valid = session_valid
        self.clock = clock
        self.buckets = buckets if buckets is not None else Buckets(clock)
        # buckets in the store answer through the database: never on the event loop
        self._off_loop = buckets is not None
        self._refused: dict[str, tuple[float, int]] = {}  # address → (last record, refusals since)
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        address = _holder((scope.get("client") or ("unknown", 0))[0])
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        presented = "authorization" in headers or "tearline_session=" in headers.get("cookie", "")
        limits = self.limits
        if not presented:
            wait = await self._call(self.buckets.take, ("address", address), limits.address_per_minute)
            if wait:
                await self._refuse(scope, send, address, wait, "address_per_minute", limits.address_per_minute)
                return
            if await self._call(self.buckets.empty, ("anonymous", address), limits.anonymous_per_minute):
                await self._refuse(scope, send, address, 1, "anonymous_per_minute", limits.anonymous_per_minute)
                return
        elif await self._call(self.buckets.empty_any, [(("address", address), limits.address_per_minute),
                                                       (("anonymous", address), limits.anonymous_per_minute)]) \
                and not await run_in_threadpool(self._credentialed, headers, tls.presented(scope)):
            await self._refuse(scope, send, address, 1, "anonymous_per_minute", limits.anonymous_per_minute)
            return
        state: dict[str, Any] = scope.setdefault("state", {})

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start" and state.get("audit_member") is None:
                if presented:  # charged now that its credentials turned out not to work
                    await self._call(self.buckets.take, ("address", address), limits.address_per_minute, 1.0, True)
                if message["status"] >= 400:
                    await self._call(self.buckets.take, ("anonymous", address), limits.anonymous_per_minute, 1.0,
                                     True)
            await send(message)

        await self.app(scope, receive, watched)

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await run_in_threadpool(fn, *args) if self._off_loop else fn(*args)

    def _credentialed(self, headers: dict[str, str], client_cert: str | None = None) -> bool:
        """Do the request's credentials work (checked only for an address over its limits)?"""
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "tearline_session" and self.session_valid(value):
                return True
        authorization = headers.get("authorization")
        if not authorization:
            return False
        operator = f"Bearer {self.admin_token}".encode()
        if self.admin_token and hmac.compare_digest(authorization.strip().encode(), operator):
            return True
        try:
            authenticate(self.store, authorization, client_cert)
        except TearlineError:
            return False
        return True

    async def _refuse(self, scope: Scope, send: Send, address: str, wait: int, setting: str, per_minute: int) -> None:
        text = (f"too many requests from {address}: over this hub's limit of {per_minute} a minute ({setting}); "
                f"retry in {wait} s")
        now = self.clock()
        with self._lock:
            last, since = self._refused.get(address, (-math.inf, 0))
            due = now - last >= WINDOW
            self._refused[address] = (now, 0) if due else (last, since + 1)
            if len(self._refused) > Buckets.MAX_KEYS:
                del self._refused[next(iter(self._refused))]
        if due:
            await run_in_threadpool(
                self.log.append, actor=None, api_root=None, method=scope["method"], endpoint="(before authentication)",
                path=scope["path"], query={"address": address}, status=429,
                reason=text + (f"; {since} more refused from this address since the last record" if since else ""))
        await error_response(429, "Too many requests", text, "too_many_requests",
                             {"retry_after": wait, "setting": setting, "per_minute": per_minute})(scope, _nothing, send)


def _holder(address: str) -> str:
    """Who an address's allowance belongs to: the address, or for IPv6 its /64, which one subscriber holds
    whole (an attacker with a /64 would otherwise have 2^64 fresh allowances)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}
