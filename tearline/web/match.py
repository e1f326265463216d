"""The private-matching mailbox over HTTP, under /tearline/match/: thin handlers over
tearline.matching.mailbox. Messages travel as application/octet-stream (PSI protobufs, opaque to the
hub); everything else is JSON."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from ..matching import mailbox
from ..model import Member
from . import caller, trail

BYTES = "application/octet-stream"

# The handlers that read a body are async (the body arrives in pieces); the work on it runs in the
# thread pool, so that parsing a request of millions of values never stops the event loop for others.


def _member(request: Request) -> Member:
    return caller.member_for(request, "match")


async def _body(request: Request) -> tuple[Member, mailbox.Rules, bytes]:
    member = await run_in_threadpool(_member, request)
    rules = await run_in_threadpool(mailbox.rules_for, caller.hub(request).store, member)
    return member, rules, await caller.read_body(request, mailbox.max_body(rules))


async def open_request(request: Request, to: str, type: str, results: str = "asker") -> Response:
    hub = caller.hub(request)
    member, rules, body = await _body(request)
    return caller.as_json(await run_in_threadpool(
        mailbox.open_request, hub.store, member, to, type, results, body, rules, hub.bounds.mailbox_bytes,
        trail.recorder(hub.log, request, 201)), 201)


def inbox(request: Request) -> Response:
    return caller.as_json(mailbox.inbox(caller.hub(request).store, _member(request)))


def show(request_id: str, request: Request) -> Response:
    store = caller.hub(request).store
    member = _member(request)
    found = mailbox.show(store, member, request_id)
    found["asked_back"] = mailbox.reverse_of(store, member, request_id)
    return caller.as_json(found)


def request_body(request_id: str, request: Request) -> Response:
    return Response(mailbox.request_body(caller.hub(request).store, _member(request), request_id), media_type=BYTES)


async def answer(request_id: str, request: Request) -> Response:
    hub = caller.hub(request)
    member, rules, body = await _body(request)
    return caller.as_json(await run_in_threadpool(
        mailbox.answer, hub.store, member, request_id, body, rules, hub.bounds.mailbox_bytes,
        trail.recorder(hub.log, request, 200)))


def decline(request_id: str, request: Request) -> Response:
    hub = caller.hub(request)
    return caller.as_json(mailbox.decline(hub.store, _member(request), request_id,
                                          trail.recorder(hub.log, request, 200)))


async def ask_back(request_id: str, request: Request) -> Response:
    hub = caller.hub(request)
    member, _, body = await _body(request)
    return caller.as_json(await run_in_threadpool(
        mailbox.ask_back, hub.store, member, request_id, body, hub.bounds.mailbox_bytes,
        trail.recorder(hub.log, request, 201)), 201)


def collect(request_id: str, request: Request) -> Response:
    return Response(mailbox.reply_body(caller.hub(request).store, _member(request), request_id), media_type=BYTES)


def router() -> APIRouter:
    api = APIRouter(prefix="/tearline/match")
    api.add_api_route("/requests/", open_request, methods=["POST"])
    api.add_api_route("/inbox/", inbox, methods=["GET"])
    api.add_api_route("/requests/{request_id}/", show, methods=["GET"])
    api.add_api_route("/requests/{request_id}/request/", request_body, methods=["GET"])
    api.add_api_route("/requests/{request_id}/answer/", answer, methods=["POST"])
    api.add_api_route("/requests/{request_id}/decline/", decline, methods=["POST"])
    api.add_api_route("/requests/{request_id}/ask-back/", ask_back, methods=["POST"])
    api.add_api_route("/requests/{request_id}/answer/", collect, methods=["GET"])
    return api
