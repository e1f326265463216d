"""What every handler needs from a request, in one place: the running hub's parts, the member the request
authenticates as (recorded for the audit trail before anything can refuse it, and held to its rate
limits), and the request's body, read no further than a limit. Every member-facing router admits its
callers here."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from fastapi import Request, Response

from .. import tls
from ..audit import AuditLog
from ..auth import authenticate
from ..cluster import Leader
from ..config import Settings
from ..errors import BadRequest, PayloadTooLarge
from ..guard import RateLimiter
from ..keys import HubKeys
from ..limits import Limits
from ..model import Member
from ..store import Store


@dataclasses.dataclass(frozen=True)
class Hub:
    """The parts of one running hub, built once by ``create_app`` and handed to every handler."""

    store: Store
    settings: Settings
    limiter: RateLimiter
    keys: HubKeys
    log: AuditLog
    bounds: Limits
    leader: Leader


def hub(request: Request) -> Hub:
    found: Hub = request.app.state.hub
    return found


def admitted(request: Request, member: Member, kind: str) -> Member:
    request.state.audit_member = member  # the audit trail records who, even if the request is then refused
    request.state.guard_class = kind
    hub(request).limiter.check(member, kind)
    return member


def member_for(request: Request, kind: str) -> Member:
    """The member of the request's credentials (Basic or Bearer), admitted for ``kind`` of request."""
    return admitted(request, authenticate(hub(request).store, request.headers.get("authorization"),
                                          tls.presented(request.scope)), kind)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it is over ``limit`` bytes (declared or as it arrives)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest(f"Content-Length {declared!r} is not a number")
        if int(declared) > limit:
            raise PayloadTooLarge(f"body of {declared} bytes is over this server's max_content_length of {limit}",
                                  details={"max_content_length": limit})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over this server's max_content_length of {limit} bytes",
                                  details={"max_content_length": limit})
        chunks.append(chunk)
    return b"".join(chunks)


def as_json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
