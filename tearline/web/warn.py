"""Duty to warn over HTTP, under /tearline/warnings/: thin handlers over tearline.warn for members.

A member drafts, approves (a second person of the same member), waives and delivers its own warnings,
and acknowledges those delivered to it. Every one of these steps is taken by a person within the member,
signed in with their own token (Basic ``member/person``, or the person's Bearer token; the compact lists
a member's ``people``): the hub records ``member:person`` from the credentials, never from the body, so
the two-person rule takes two logins. A body's ``by``, when sent, must name the person signed in. The
member's own token reads warnings; it takes no step. A warning a member may not see answers 404, exactly
like one that does not exist."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from .. import release, warn
from ..errors import BadRequest, Forbidden
from ..model import Member
from . import caller, trail

MAX_BODY = 256 * 1024
STEPS = {"approve": "approved", "waive": "waived", "deliver": "delivered", "acknowledge": "acknowledged"}
TEXT_FIELDS = ("by", "from_report", "text", "note", "reason", "why")


def _person(member: Member, body: dict[str, Any], action: str) -> str:
    """Who takes the step: the person signed in (a body's ``by`` may only repeat it)."""
    if member.person is None:
        raise Forbidden(f"a warning is {action} by a person with their own token, not with the member's: sign in "
                        f"as {member.name}/<person> (the compact file lists the member's people)",
                        details={"needs": "person"})
    said = body.get("by")
    if said is not None and said != member.person:
        raise BadRequest(f"by: {str(said)[:70]!r} is not who is signed in ({member.name}/{member.person}); a step "
                         "is recorded under the credentials that took it", details={"fields": ["by"]})
    return member.person


async def _fields(request: Request, required: tuple[str, ...]) -> dict[str, Any]:
    raw = await caller.read_body(request, MAX_BODY)
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("the body is a JSON object")
    missing = [f for f in required if not isinstance(body.get(f), str) or not body[f].strip()]
    if missing:
        raise BadRequest(f"missing or empty: {', '.join(missing)}", details={"fields": missing})
    wrong = [f for f in TEXT_FIELDS if f in body and not isinstance(body[f], str)]
    if wrong:
        raise BadRequest(f"must be text: {', '.join(wrong)}", details={"fields": wrong})
    return body


def inbox(request: Request) -> Response:
    member = caller.member_for(request, "meta")
    hub = caller.hub(request)
    warn.expire(hub.store)
    return caller.as_json({"warnings": release.warnings_for(hub.store, member, hub.keys)})


def one(warning_id: str, request: Request) -> Response:
    member = caller.member_for(request, "meta")
    hub = caller.hub(request)
    warn.expire(hub.store)
    return caller.as_json(release.warning_for(hub.store, member, warning_id, hub.keys))


async def draft(request: Request) -> Response:
    hub = caller.hub(request)
    member = await run_in_threadpool(caller.member_for, request, "write")
    body = await _fields(request, ("to", "ask"))
    person = _person(member, body, "drafted")
    target = body.get("target") if isinstance(body.get("target"), dict) else {}
    window = body.get("window") if isinstance(body.get("window"), list) and len(body["window"]) == 2 else ["", ""]
    w = await run_in_threadpool(
        warn.draft, hub.store, member.api_root, f"{member.name}:{person}", body["to"], bool(body.get("outside")),
        target, (str(window[0]), str(window[1])), body.get("confidence"), body["ask"], str(body.get("text") or ""),
        body.get("from_report"), member, hub.keys, trail.recorder(hub.log, request, 201))
    return caller.as_json(await run_in_threadpool(release.warning_for, hub.store, member, w["id"], hub.keys), 201)


def _take(request: Request, member: Member, person: str, warning_id: str, action: str, body: dict[str, Any]) -> None:
    hub = caller.hub(request)
    current = release.warning_for(hub.store, member, warning_id, hub.keys)
    if action == "acknowledge":
        if current["addressee"] != member.name or current["outside"]:
            raise Forbidden(f"only {current['addressee']}, to whom it was delivered, can acknowledge it")
        warn.move(hub.store, warning_id, "acknowledge", member.name, f"by {person}", None, None,
                  trail.recorder(hub.log, request, 200))
        return
    if current.get("author_member") != member.name:
        raise Forbidden(f"only the member that drafted warning {warning_id} can {action} it")
    note = f"{body.get('reason', '')}: {body.get('why', '')}" if action == "waive" else str(body.get("note") or "")
    warn.move(hub.store, warning_id, action, f"{member.name}:{person}", note, None, hub.log,
              trail.recorder(hub.log, request, 200))


async def step(warning_id: str, action: str, request: Request) -> Response:
    hub = caller.hub(request)
    member = await run_in_threadpool(caller.member_for, request, "write")
    if action not in STEPS:
        raise BadRequest(f"unknown step {action!r}: approve, waive, deliver or acknowledge (waivers are "
                         "reviewed by the hub's reviewers: `tearline warn review`)")
    body = await _fields(request, ())
    person = _person(member, body, STEPS[action])
    await run_in_threadpool(_take, request, member, person, warning_id, action, body)
    return caller.as_json(await run_in_threadpool(release.warning_for, hub.store, member, warning_id, hub.keys))


def router() -> APIRouter:
    api = APIRouter(prefix="/tearline/warnings")
    api.add_api_route("/", inbox, methods=["GET"])
    api.add_api_route("/{warning_id}/", one, methods=["GET"])
    api.add_api_route("/", draft, methods=["POST"])
    api.add_api_route("/{warning_id}/{action}/", step, methods=["POST"])
    return api
