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
from ..audit import AuditLog
from ..errors import BadRequest, Forbidden
from ..guard import RateLimiter
from ..keys import HubKeys
from ..model import Member
from ..store import Store
from ..taxii.api import read_body
from . import caller, trail

MAX_BODY = 256 * 1024


def router(store: Store, limiter: RateLimiter, log: AuditLog, keys: HubKeys) -> APIRouter:
    api = APIRouter(prefix="/tearline/warnings")

    def member_for(request: Request, kind: str) -> Member:
        return caller.member_for(store, limiter, request, kind)

    def person_of(member: Member, body: dict[str, Any], action: str) -> str:
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

    async def fields(request: Request, required: tuple[str, ...]) -> dict[str, Any]:
        raw = await read_body(request, MAX_BODY)
        try:
            body = orjson.loads(raw or b"{}")
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise BadRequest("the body is a JSON object")
        missing = [f for f in required if not isinstance(body.get(f), str) or not body[f].strip()]
        if missing:
            raise BadRequest(f"missing or empty: {', '.join(missing)}", details={"fields": missing})
        wrong = [f for f in ("by", "from_report", "text", "note", "reason", "why") if f in body and not isinstance(body[f], str)]
        if wrong:
            raise BadRequest(f"must be text: {', '.join(wrong)}", details={"fields": wrong})
        return body

    @api.get("/")
    def inbox(request: Request) -> Response:
        member = member_for(request, "meta")
        warn.expire(store)
        return caller.as_json({"warnings": release.warnings_for(store, member, keys)})

    @api.get("/{warning_id}/")
    def one(warning_id: str, request: Request) -> Response:
        member = member_for(request, "meta")
        warn.expire(store)
        return caller.as_json(release.warning_for(store, member, warning_id, keys))

    @api.post("/")
    async def draft(request: Request) -> Response:
        member = await run_in_threadpool(member_for, request, "write")
        body = await fields(request, ("to", "ask"))
        person = person_of(member, body, "drafted")
        target = body.get("target") if isinstance(body.get("target"), dict) else {}
        window = body.get("window") if isinstance(body.get("window"), list) and len(body["window"]) == 2 else ["", ""]
        w = await run_in_threadpool(
            warn.draft, store, member.api_root, f"{member.name}:{person}", body["to"], bool(body.get("outside")),
            target, (str(window[0]), str(window[1])), body.get("confidence"), body["ask"], str(body.get("text") or ""),
            body.get("from_report"), member, keys, trail.recorder(log, request, 201))
        return caller.as_json(await run_in_threadpool(release.warning_for, store, member, w["id"], keys), 201)

    @api.post("/{warning_id}/{action}/")
    async def step(warning_id: str, action: str, request: Request) -> Response:
        member = await run_in_threadpool(member_for, request, "write")
        if action not in ("approve", "waive", "deliver", "acknowledge"):
            raise BadRequest(f"unknown step {action!r}: approve, waive, deliver or acknowledge (waivers are "
                             "reviewed by the hub's reviewers: `tearline warn review`)")
        body = await fields(request, ())
        person = person_of(member, body, {"approve": "approved", "waive": "waived", "deliver": "delivered",
                                          "acknowledge": "acknowledged"}[action])
        current = await run_in_threadpool(release.warning_for, store, member, warning_id, keys)
        if action == "acknowledge":
            if current["addressee"] != member.name or current["outside"]:
                raise Forbidden(f"only {current['addressee']}, to whom it was delivered, can acknowledge it")
            await run_in_threadpool(warn.move, store, warning_id, "acknowledge", member.name, f"by {person}", None, None,
                                    trail.recorder(log, request, 200))
        else:
            if current.get("author_member") != member.name:
                raise Forbidden(f"only the member that drafted warning {warning_id} can {action} it")
            note = f"{body.get('reason', '')}: {body.get('why', '')}" if action == "waive" else str(body.get("note") or "")
            await run_in_threadpool(warn.move, store, warning_id, action, f"{member.name}:{person}", note,
                                    None, log, trail.recorder(log, request, 200))
        return caller.as_json(await run_in_threadpool(release.warning_for, store, member, warning_id, keys))

    return api
