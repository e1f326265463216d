"""The private-matching mailbox over HTTP, under /tearline/match/: thin handlers over
tearline.matching.mailbox. Messages travel as application/octet-stream (PSI protobufs, opaque to the
hub); everything else is JSON."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from ..audit import AuditLog
from ..guard import RateLimiter
from ..limits import Limits
from ..matching import mailbox
from ..model import Member
from ..store import Store
from ..taxii.api import read_body
from . import caller, trail

BYTES = "application/octet-stream"


def router(store: Store, limiter: RateLimiter, limits: Limits, log: AuditLog) -> APIRouter:
    api = APIRouter(prefix="/tearline/match")

    def member_for(request: Request) -> Member:
        return caller.member_for(store, limiter, request, "match")

    async def body_of(request: Request, rules: mailbox.Rules) -> bytes:
        return await read_body(request, mailbox.max_body(rules))

    # The handlers that read a body are async (the body arrives in pieces); the work on it runs in the
    # thread pool, so that parsing a request of millions of values never stops the event loop for others.
    @api.post("/requests/")
    async def open_request(request: Request, to: str, type: str, results: str = "asker") -> Response:
        member = await run_in_threadpool(member_for, request)
        rules = await run_in_threadpool(mailbox.rules_for, store, member)
        body = await body_of(request, rules)
        return caller.as_json(await run_in_threadpool(
            mailbox.open_request, store, member, to, type, results, body, rules, limits.mailbox_bytes,
            trail.recorder(log, request, 201)), 201)

    @api.get("/inbox/")
    def inbox(request: Request) -> Response:
        return caller.as_json(mailbox.inbox(store, member_for(request)))

    @api.get("/requests/{request_id}/")
    def show(request_id: str, request: Request) -> Response:
        member = member_for(request)
        found = mailbox.show(store, member, request_id)
        found["asked_back"] = mailbox.reverse_of(store, member, request_id)
        return caller.as_json(found)

    @api.get("/requests/{request_id}/request/")
    def request_body(request_id: str, request: Request) -> Response:
        return Response(mailbox.request_body(store, member_for(request), request_id), media_type=BYTES)

    @api.post("/requests/{request_id}/answer/")
    async def answer(request_id: str, request: Request) -> Response:
        member = await run_in_threadpool(member_for, request)
        rules = await run_in_threadpool(mailbox.rules_for, store, member)
        body = await body_of(request, rules)
        return caller.as_json(await run_in_threadpool(
            mailbox.answer, store, member, request_id, body, rules, limits.mailbox_bytes, trail.recorder(log, request, 200)))

    @api.post("/requests/{request_id}/decline/")
    def decline(request_id: str, request: Request) -> Response:
        return caller.as_json(mailbox.decline(store, member_for(request), request_id, trail.recorder(log, request, 200)))

    @api.post("/requests/{request_id}/ask-back/")
    async def ask_back(request_id: str, request: Request) -> Response:
        member = await run_in_threadpool(member_for, request)
        body = await body_of(request, await run_in_threadpool(mailbox.rules_for, store, member))
        return caller.as_json(await run_in_threadpool(
            mailbox.ask_back, store, member, request_id, body, limits.mailbox_bytes, trail.recorder(log, request, 201)), 201)

    @api.get("/requests/{request_id}/answer/")
    def collect(request_id: str, request: Request) -> Response:
        return Response(mailbox.reply_body(store, member_for(request), request_id), media_type=BYTES)

    return api
