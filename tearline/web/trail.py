"""The audit trail at the HTTP edge: every request is on record before its response starts — who (the
authenticated member, or nobody), the route, the filters, the outcome, the reason for a refusal, and the
ids returned or written. A write records itself inside its own transaction (``within``), so a committed
write always has its entry and a write that did not commit never has one; every other request is
recorded by the middleware. If a record cannot be written, the request fails rather than go unrecorded.
Every response to a member carries the newest signed tree head (``Tearline-Tree-Head``), which the member
can keep and check later heads against (tearline.audit, tearline.witness)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import audit

HEAD_HEADER = b"tearline-tree-head"  # the newest signed tree head, on every response to a member


def _fields(scope: Scope, state: dict[str, Any], status: int) -> dict[str, Any]:
    member = state.get("audit_member")
    route = scope.get("route")
    query = {k: v if len(v) > 1 else v[0]
             for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
    return {"actor": member.name if member else None, "api_root": member.api_root if member else None,
            "method": scope["method"], "endpoint": getattr(route, "path", scope["path"]), "path": scope["path"],
            "query": query, "status": status, "reason": state.get("audit_reason", ""),
            "ids": state.get("audit_ids", ())}


def within(log: audit.AuditLog, request: Request, conn: Connection, status: int, reason: str, ids: list[str]) -> int:
    """Record ``request`` in the transaction of the write it made (called just before that commits); return
    the entry's sequence number."""
    state: dict[str, Any] = request.scope.setdefault("state", {})
    seq = log.append(**(_fields(request.scope, state | {"audit_reason": reason, "audit_ids": ids}, status)), conn=conn)
    state["audited"] = True
    return seq


def recorder(log: audit.AuditLog, request: Request, status: int) -> Callable[[Connection, str], int]:
    """``within`` for a write that makes one id: the callback a step calls in its transaction with that id."""
    return lambda conn, made: within(log, request, conn, status, "", [made])


class AuditTrail:
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
                head = await run_in_threadpool(self._record, scope, state, message["status"])
                if head is not None:
                    message = message | {"headers": [*message.get("headers", ()), (HEAD_HEADER, head.encode())]}
            await send(message)

        await self.app(scope, receive, recorded)

    def _record(self, scope: Scope, state: dict[str, Any], status: int) -> str | None:
        """Record the request (unless its write did; then sign the checkpoint it made due) and return the tree
        head the response carries: to members only, the newest the hub signed."""
        if state.get("audited"):
            self.log.settle()
        else:
            self.log.append(**_fields(scope, state, status))
        return self.log.head_header() if state.get("audit_member") is not None else None
