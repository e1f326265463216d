"""The TAXII 2.1 endpoints (OASIS TAXII 2.1, §4 and §5), thin: parse → gate → store → resource.

Every read goes through tearline.release; a collection, object or status the member may not see
answers exactly as one that does not exist.
"""

from __future__ import annotations

import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from .. import probes, release, write
from ..audit import AuditLog
from ..config import Settings
from ..limits import Limits
from ..errors import BadRequest, NotFound, PayloadTooLarge
from ..guard import RateLimiter
from ..keys import HubKeys
from ..model import Collection, Member, can_read, can_write
from ..stix import format_us
from ..store import Store
from ..web import caller, trail
from . import media, query

DATE_FIRST = "X-TAXII-Date-Added-First"
DATE_LAST = "X-TAXII-Date-Added-Last"


def taxii_response(body: bytes | dict[str, Any], status: int = 200,
                   released: release.Released | None = None) -> Response:
    headers = {}
    if released is not None and released.first is not None and released.last is not None:
        headers[DATE_FIRST] = format_us(released.first)
        headers[DATE_LAST] = format_us(released.last)
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(content=content, status_code=status, media_type=media.TAXII, headers=headers)


def _answer(request: Request, released: release.Released) -> Response:
    request.state.audit_ids = released.ids
    return taxii_response(released.body, released=released)


def router(store: Store, settings: Settings, limiter: RateLimiter, keys: HubKeys, log: AuditLog) -> APIRouter:
    api = APIRouter()
    bounds = Limits.of(settings)

    def member_for(request: Request, kind: str) -> Member:
        member = caller.member_for(store, limiter, request, kind)
        media.check_accept(request.headers.get("accept"))
        return member

    def root_for(member: Member, api_root: str) -> Any:
        row = store.api_root(api_root) if member.api_root == api_root else None
        if row is None:
            raise NotFound(f"no API root {api_root!r} on this server", details={"api_root": api_root})
        return row

    def collection_for(member: Member, api_root: str, collection_id: str) -> Collection:
        if member.api_root != api_root:
            raise NotFound(f"no API root {api_root!r} on this server", details={"api_root": api_root})
        coll = store.collection(api_root, collection_id)
        if coll is None:
            raise NotFound(f"no collection {collection_id!r} in API root {api_root!r}", details={"collection": collection_id})
        return coll

    def params(request: Request, endpoint: str) -> query.TaxiiQuery:
        qp = request.query_params
        multi = {k: qp.getlist(k) for k in qp.keys()}
        return query.parse(dict(qp), endpoint, settings.page_size, multi=multi)

    @api.get("/taxii2/")
    def discovery(request: Request) -> Response:
        member = member_for(request, "meta")
        params(request, "none")
        base = str(request.base_url).rstrip("/")
        return taxii_response({
            "title": settings.title,
            "description": "Tearline: a scoped intelligence exchange (TAXII 2.1)",
            **({"contact": settings.contact} if settings.contact else {}),
            "default": f"{base}/taxii2/{member.api_root}/",
            "api_roots": [f"{base}/taxii2/{member.api_root}/"],
        })

    @api.get("/taxii2/{api_root}/")
    def get_api_root(api_root: str, request: Request) -> Response:
        member = member_for(request, "meta")
        params(request, "none")
        row = root_for(member, api_root)
        return taxii_response({
            "title": row.title, "description": row.description, "versions": [media.TAXII],
            "max_content_length": settings.max_content_length,
        })

    def collection_resource(member: Member, coll: Collection) -> dict[str, Any]:
        return {
            "id": coll.id, "title": coll.title, "description": coll.description, "alias": coll.alias,
            "can_read": can_read(member, coll), "can_write": can_write(member, coll),
            "media_types": [media.STIX],
        }

    @api.get("/taxii2/{api_root}/collections/")
    def get_collections(api_root: str, request: Request) -> Response:
        member = member_for(request, "meta")
        params(request, "none")
        root_for(member, api_root)
        return taxii_response({"collections": [collection_resource(member, c) for c in store.collections(api_root)]})

    @api.get("/taxii2/{api_root}/collections/{collection_id}/")
    def get_collection(api_root: str, collection_id: str, request: Request) -> Response:
        member = member_for(request, "meta")
        params(request, "none")
        return taxii_response(collection_resource(member, collection_for(member, api_root, collection_id)))

    @api.get("/taxii2/{api_root}/collections/{collection_id}/objects/")
    def get_objects(api_root: str, collection_id: str, request: Request) -> Response:
        member = member_for(request, "read")
        q = params(request, "objects")
        coll = collection_for(member, api_root, collection_id)
        return _answer(request, release.objects_page(store, member, coll, q, keys, datetime.date.today()))

    @api.post("/taxii2/{api_root}/collections/{collection_id}/objects/")
    async def add_objects(api_root: str, collection_id: str, request: Request) -> Response:
        member = await run_in_threadpool(member_for, request, "write")
        params(request, "none")
        media.check_content_type(request.headers.get("content-type"))
        coll = await run_in_threadpool(collection_for, member, api_root, collection_id)
        body = await read_body(request, settings.max_content_length)
        envelope = _parse_envelope(body)
        limiter.charge(member, "write", len(envelope))

        def record(conn: Connection, status: dict[str, Any]) -> None:
            refused = status["failure_count"]
            seq = trail.within(log, request, conn, 202,
                               f"{refused} of {status['total_count']} objects refused" if refused else "",
                               [s["id"] for s in status["successes"]])
            if status["hidden"]:
                probes.note(conn, seq, status["hidden"])

        status = await run_in_threadpool(write.add_envelope, store, coll, member, envelope, keys, None, bounds, record)
        return taxii_response(release.status_resource(status), status=202)

    @api.get("/taxii2/{api_root}/collections/{collection_id}/manifest/")
    def get_manifest(api_root: str, collection_id: str, request: Request) -> Response:
        member = member_for(request, "read")
        q = params(request, "manifest")
        coll = collection_for(member, api_root, collection_id)
        return _answer(request, release.manifest_page(store, member, coll, q, keys, datetime.date.today()))

    @api.get("/taxii2/{api_root}/collections/{collection_id}/objects/{object_id}/")
    def get_object(api_root: str, collection_id: str, object_id: str, request: Request) -> Response:
        member = member_for(request, "read")
        q = params(request, "object")
        coll = collection_for(member, api_root, collection_id)
        return _answer(request, release.object_page(store, member, coll, object_id, q, keys, datetime.date.today()))

    @api.delete("/taxii2/{api_root}/collections/{collection_id}/objects/{object_id}/")
    def delete_object(api_root: str, collection_id: str, object_id: str, request: Request) -> Response:
        member = member_for(request, "write")
        q = params(request, "delete")
        coll = collection_for(member, api_root, collection_id)
        if "match[version]" not in request.query_params:
            q = query.TaxiiQuery(versions=("all",), spec_versions=q.spec_versions)
        chosen = release.deletable(store, member, coll, object_id, q, keys, datetime.date.today(),
                                   write.peers_of(store, member, coll))
        write.delete_versions(store, coll, member, object_id, chosen, keys,
                              lambda conn: trail.within(log, request, conn, 200, "", [object_id]))
        return Response(status_code=200, media_type=media.TAXII)

    @api.get("/taxii2/{api_root}/collections/{collection_id}/objects/{object_id}/versions/")
    def get_versions(api_root: str, collection_id: str, object_id: str, request: Request) -> Response:
        member = member_for(request, "read")
        q = params(request, "versions")
        coll = collection_for(member, api_root, collection_id)
        return _answer(request, release.versions_page(store, member, coll, object_id, q, keys, datetime.date.today()))

    @api.get("/taxii2/{api_root}/status/{status_id}/")
    def get_status(api_root: str, status_id: str, request: Request) -> Response:
        member = member_for(request, "meta")
        params(request, "none")
        root_for(member, api_root)
        return taxii_response(release.status(store, member, api_root, status_id))

    return api


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest(f"Content-Length {declared!r} is not a number")
        if int(declared) > limit:
            raise PayloadTooLarge(f"body of {declared} bytes is over this server's max_content_length of {limit}",
                                  details={"max_content_length": limit})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over this server's max_content_length of {limit} bytes",
                                  details={"max_content_length": limit})
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_envelope(body: bytes) -> list[Any]:
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(envelope, dict):
        raise BadRequest("the body must be a TAXII envelope: a JSON object with an 'objects' list")
    if "objects" not in envelope or not isinstance(envelope["objects"], list):
        raise BadRequest("the envelope has no 'objects' list", details={"property": "objects"})
    unknown = sorted(set(envelope) - {"objects", "more", "next"})
    if unknown:
        raise BadRequest(f"unknown envelope properties: {', '.join(unknown)}", details={"properties": unknown})
    return list(envelope["objects"])
