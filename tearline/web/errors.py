"""The only translation of errors into HTTP: the TAXII 2.1 error resource (§3.6.1).

A client's mistake gets its 4xx with a description that names what is wrong; anything else is a 500
whose body says only that — internals stay in the server log.
"""

from __future__ import annotations

import logging
import uuid

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from ..errors import TearlineError
from ..taxii.media import TAXII

log = logging.getLogger("tearline.web")


def error_response(status: int, title: str, description: str, code: str, details: dict | None = None) -> Response:
    body = {"title": title, "description": description, "error_code": code, "http_status": str(status)}
    if details:
        body["details"] = details
    headers = {"WWW-Authenticate": 'Basic realm="tearline", Bearer'} if status == 401 else {}
    if status == 429 and details and "retry_after" in details:
        headers["Retry-After"] = str(details["retry_after"])
    return Response(orjson.dumps(body), status_code=status, media_type=TAXII, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(TearlineError)
    async def tearline_error(request: Request, exc: TearlineError) -> Response:
        request.state.audit_reason = exc.description
        return error_response(exc.status, exc.title, exc.description, exc.code, exc.details)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        request.state.audit_reason = str(exc.detail)
        if exc.status_code == 404:
            return error_response(404, "Not found", f"no such endpoint: {request.url.path}", "not_found")
        if exc.status_code == 405:
            return error_response(405, "Method not allowed", f"{request.method} is not allowed on {request.url.path}",
                                  "method_not_allowed")
        return error_response(exc.status_code, "HTTP error", str(exc.detail), "http")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        request.state.audit_reason = "; ".join(problems)
        return error_response(400, "Bad request", "; ".join(problems), "bad_request")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        incident = uuid.uuid4().hex[:12]
        request.state.audit_reason = f"internal error, incident {incident}"
        log.exception("internal error %s on %s %s", incident, request.method, request.url.path)
        return error_response(500, "Internal error", f"the server failed; incident {incident} is in its log",
                              "internal")
