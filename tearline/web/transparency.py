"""The audit log as a transparency log for members, under /tearline/audit/: thin handlers over
tearline.audit.tree. Any member may read the hub's signed tree heads and consistency proofs (they say how
many entries the log holds, and nothing of what they are); a member's entries, with their inclusion
proofs, only to that member. Another member's entry answers as if it did not exist."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from ..audit import tree
from . import caller

Size = Annotated[int, Query(ge=1, le=2**62)]
After = Annotated[int, Query(ge=0, le=2**62)]
Limit = Annotated[int, Query(ge=1, le=tree.PAGE)]


def latest(request: Request) -> Response:
    caller.member_for(request, "meta")
    return caller.as_json(tree.signed_head(caller.hub(request).store, None))


def head(request: Request, size: Annotated[int, Path(ge=1, le=2**62)]) -> Response:
    caller.member_for(request, "meta")
    return caller.as_json(tree.signed_head(caller.hub(request).store, size))


def heads(request: Request, after: After = 0, limit: Limit = tree.PAGE) -> Response:
    caller.member_for(request, "meta")
    found = tree.heads(caller.hub(request).store, after, limit + 1)
    return caller.as_json({"heads": found[:limit], "more": len(found) > limit})


def consistency(request: Request, first: Size, second: Size | None = None) -> Response:
    caller.member_for(request, "meta")
    hub = caller.hub(request)
    return caller.as_json(tree.consistency(hub.store, hub.log.signer(), first, second))


def entries(request: Request, after: After = 0, size: Size | None = None, limit: Limit = tree.PAGE) -> Response:
    member = caller.member_for(request, "meta")
    return caller.as_json(tree.own_entries(caller.hub(request).store, member.api_root, member.name, after, size, limit))


def keys(request: Request) -> Response:
    caller.member_for(request, "meta")
    found = caller.hub(request).log.public_keys()
    return caller.as_json({"keys": [{k: key[k] for k in ("key_id", "public_key", "created_us", "retired_us")}
                                    for key in found]})


def router() -> APIRouter:
    api = APIRouter(prefix="/tearline/audit")
    api.add_api_route("/heads/", heads, methods=["GET"])
    api.add_api_route("/heads/latest/", latest, methods=["GET"])
    api.add_api_route("/heads/{size}/", head, methods=["GET"])
    api.add_api_route("/consistency/", consistency, methods=["GET"])
    api.add_api_route("/entries/", entries, methods=["GET"])
    api.add_api_route("/keys/", keys, methods=["GET"])
    return api
