"""The private-matching mailbox over HTTP, under /tearline/match/: thin handlers over
tearline.matching.mailbox. Messages travel as application/octet-stream (PSI protobufs, opaque to the
hub); everything else is JSON."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ..guard import RateLimiter
from ..limits import Limits
from ..matching import mailbox
from ..model import Member
from ..store import Store
from ..taxii.api import read_body
from . import caller

BYTES = "application/octet-stream"


def router(store: Store, limiter: RateLimiter, limits: Limits) -> APIRouter:
    api = APIRouter(prefix="/tearline/match")

    def member_for(request: Request) -> Member:
        return caller.member_for(store, limiter, request, "match")

    async def body_of(request: Request, rules: mailbox.Rules) -> bytes:
        return await read_body(request, mailbox.max_body(rules))

    @api.post("/requests/")
    async def open_request(request: Request, to: str, type: str, results: str = "asker") -> Response:
        member = member_for(request)
        rules = mailbox.rules_for(store, member)
        return caller.as_json(mailbox.open_request(store, member, to, type, results, await body_of(request, rules), rules,
                                                 limits.mailbox_bytes), 201)

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
        member = member_for(request)
        rules = mailbox.rules_for(store, member)
        return caller.as_json(mailbox.answer(store, member, request_id, await body_of(request, rules), rules,
                                                    limits.mailbox_bytes))

    @api.post("/requests/{request_id}/decline/")
    def decline(request_id: str, request: Request) -> Response:
        return caller.as_json(mailbox.decline(store, member_for(request), request_id))

    @api.post("/requests/{request_id}/ask-back/")
    async def ask_back(request_id: str, request: Request) -> Response:
        member = member_for(request)
        body = await body_of(request, mailbox.rules_for(store, member))
        return caller.as_json(mailbox.ask_back(store, member, request_id, body, limits.mailbox_bytes), 201)

    @api.get("/requests/{request_id}/answer/")
    def collect(request_id: str, request: Request) -> Response:
        return Response(mailbox.reply_body(store, member_for(request), request_id), media_type=BYTES)

    return api
