"""The hub operator's API, under /tearline/admin/: probe alerts for now. It answers only to the
bearer token set as `admin_token`; without one configured it does not exist (404), so a member
cannot even learn that it is there."""

from __future__ import annotations

import hmac
from typing import Optional

import orjson
from fastapi import APIRouter, Request, Response

from .. import probes
from ..config import Settings
from ..errors import NotFound, Unauthorized
from ..store import Store


def router(store: Store, settings: Settings) -> APIRouter:
    api = APIRouter(prefix="/tearline/admin")

    def operator(request: Request) -> None:
        if not settings.admin_token:
            raise NotFound(f"no such endpoint: {request.url.path}")
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), settings.admin_token.encode()):
            raise Unauthorized("the admin API needs the operator's bearer token")

    @api.get("/alerts/")
    def alerts(request: Request, member: Optional[str] = None, compact: Optional[str] = None,
               status: Optional[str] = None) -> Response:
        operator(request)
        probes.scan(store)  # up to the last request, not the last background scan
        found = probes.stored_alerts(store, member, compact, status)
        return Response(orjson.dumps({"alerts": found}), media_type="application/json")

    return api
