"""Who is calling: the member a request authenticates as, recorded for the audit trail before anything
can refuse it, and held to its rate limits. Every member-facing router admits its callers here."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request, Response

from ..auth import authenticate
from ..guard import RateLimiter
from ..model import Member
from ..store import Store


def admitted(request: Request, member: Member, limiter: RateLimiter, kind: str) -> Member:
    request.state.audit_member = member  # the audit trail records who, even if the request is then refused
    limiter.check(member, kind)
    return member


def member_for(store: Store, limiter: RateLimiter, request: Request, kind: str) -> Member:
    """The member of the request's credentials (Basic or Bearer), admitted for ``kind`` of request."""
    return admitted(request, authenticate(store, request.headers.get("authorization")), limiter, kind)


def as_json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
