"""The hub operator's API, under /tearline/admin/: probe alerts for now. It answers only to the
bearer token set as `admin_token`; without one configured it does not exist (404), so a member
cannot even learn that it is there."""

from __future__ import annotations

import hmac

import orjson
from fastapi import APIRouter, Request, Response

from .. import probes
from ..errors import NotFound, Unauthorized
from . import caller


def operator(request: Request) -> None:
    """Unauthorized unless the request carries the operator's bearer token; NotFound when the hub has none."""
    token = caller.hub(request).settings.admin_token
    if not token:
        raise NotFound(f"no such endpoint: {request.url.path}")
    scheme, _, given = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Unauthorized("the admin API needs the operator's bearer token")


def alerts(request: Request, member: str | None = None, compact: str | None = None,
           status: str | None = None) -> Response:
    operator(request)
    store = caller.hub(request).store
    probes.scan(store)  # up to the last request, not the last background scan
    found = probes.stored_alerts(store, member, compact, status)
    return Response(orjson.dumps({"alerts": found}), media_type="application/json")


def router() -> APIRouter:
    api = APIRouter(prefix="/tearline/admin")
    api.add_api_route("/alerts/", alerts, methods=["GET"])
    return api
