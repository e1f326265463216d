"""The TAXII 2.1 endpoints (OASIS TAXII 2.1, §4 and §5), thin: parse → gate → store → resource.

Every read goes through ``release.visible``; a collection, object or status the member may not see
answers exactly as one that does not exist.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from .. import release
from .. import leak
from ..guard import RateLimiter
from ..config import Settings
from ..errors import BadRequest, Forbidden, NotFound, PayloadTooLarge
from ..release import Collection, Member
from ..stix import format_us
from ..store import Page, Store
from ..store.schema import objects
from ..web import caller
from . import media, query

DATE_FIRST = "X-TAXII-Date-Added-First"
DATE_LAST = "X-TAXII-Date-Added-Last"


def taxii_response(body: bytes | dict[str, Any], status: int = 200, page: Page | None = None) -> Response:
    headers = {}
    if page is not None and page.rows:
        headers[DATE_FIRST] = format_us(page.first_added)  # type: ignore[arg-type]
        headers[DATE_LAST] = format_us(page.last_added)  # type: ignore[arg-type]
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(content=content, status_code=status, media_type=media.TAXII, headers=headers)


def _more_next(page: Page) -> bytes:
    if page.more:
        return b'"more":true,"next":' + orjson.dumps(query.encode_next(page.last_added))  # type: ignore[arg-type]
    return b'"more":false'


def router(store: Store, settings: Settings, limiter: RateLimiter, leak_key: bytes) -> APIRouter:
    api = APIRouter()

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

    def readable(member: Member, coll: Collection) -> release.Gate:
        return release.gate_for(member, coll, datetime.date.today())

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
            "can_read": release.can_read(member, coll), "can_write": release.can_write(member, coll),
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
        page = store.page(readable(member, coll), q)
        request.state.audit_ids = [r.stix_id for r in page.rows]
        return _envelope(page, member, coll)

    def _envelope(page: Page, member: Member, coll: Collection) -> Response:
        hidden = store.grouped(*release.hidden_targets(member, coll, [r.added_us for r in page.rows])) if page.rows else {}
        mark = leak.member_key(leak_key, member.api_root, member.name)
        # a member's own objects come back exactly as it sent them: it cannot leak them from the compact
        bodies = b",".join(release.release_body(member, row.body, hidden.get(row.added_us, set()),
                                                None if row.author == member.id else mark, row.author == member.id)
                           for row in page.rows)
        if not page.rows:
            return taxii_response(b"{" + _more_next(page) + b"}", page=page)
        return taxii_response(b"{" + _more_next(page) + b',"objects":[' + bodies + b"]}", page=page)

    @api.post("/taxii2/{api_root}/collections/{collection_id}/objects/")
    async def add_objects(api_root: str, collection_id: str, request: Request) -> Response:
        member = await run_in_threadpool(member_for, request, "write")
        params(request, "none")
        media.check_content_type(request.headers.get("content-type"))
        coll = await run_in_threadpool(collection_for, member, api_root, collection_id)
        if not release.can_write(member, coll):
            raise Forbidden(f"member {member.name!r} may not write to collection {coll.alias!r}")
        policy = coll.rules
        state = policy.state(datetime.date.today())
        if state != "open":
            raise Forbidden(f"compact {api_root!r} expired on {policy.expires}: it is {state}; nothing more can be added")
        body = await read_body(request, settings.max_content_length)
        envelope = _parse_envelope(body)
        status = await run_in_threadpool(store.add_objects, coll, member, envelope, policy)
        request.state.audit_ids = [s["id"] for s in status.get("successes", [])]
        if status.get("failure_count"):
            request.state.audit_reason = f"{status['failure_count']} of {status['total_count']} objects refused"
        return taxii_response(status, status=202)

    @api.get("/taxii2/{api_root}/collections/{collection_id}/manifest/")
    def get_manifest(api_root: str, collection_id: str, request: Request) -> Response:
        member = member_for(request, "read")
        q = params(request, "manifest")
        gate = readable(member, collection_for(member, api_root, collection_id))
        page = store.page(gate, q, columns=(objects.c.stix_id, objects.c.version, objects.c.spec_version))
        request.state.audit_ids = [r.stix_id for r in page.rows]
        records = [
            {"id": r.stix_id, "date_added": format_us(r.added_us), "version": r.version,
             "media_type": f"application/stix+json;version={r.spec_version}"}
            for r in page.rows
        ]
        if not records:
            return taxii_response(b"{" + _more_next(page) + b"}", page=page)
        return taxii_response(b"{" + _more_next(page) + b',"objects":' + orjson.dumps(records) + b"}", page=page)

    @api.get("/taxii2/{api_root}/collections/{collection_id}/objects/{object_id}/")
    def get_object(api_root: str, collection_id: str, object_id: str, request: Request) -> Response:
        member = member_for(request, "read")
        q = params(request, "object")
        coll = collection_for(member, api_root, collection_id)
        gate = readable(member, coll)
        page = store.page(gate, _with_id(q, object_id))
        if not page.rows and q.after_us is None and not store.page(gate, _any_version(object_id, q)).rows:
            raise NotFound(f"no object {object_id!r} in this collection", details={"object_id": object_id})
        request.state.audit_ids = [r.stix_id for r in page.rows]
        return _envelope(page, member, coll)

    @api.delete("/taxii2/{api_root}/collections/{collection_id}/objects/{object_id}/")
    def delete_object(api_root: str, collection_id: str, object_id: str, request: Request) -> Response:
        member = member_for(request, "write")
        q = params(request, "delete")
        coll = collection_for(member, api_root, collection_id)
        gate = readable(member, coll)
        if not release.can_write(member, coll):
            raise Forbidden(f"member {member.name!r} may not delete from collection {coll.alias!r}")
        if "match[version]" not in request.query_params:
            q = query.TaxiiQuery(versions=("all",), spec_versions=q.spec_versions)
        # a member deletes only what it wrote
        mine = dataclasses.replace(gate, where=(*gate.where, objects.c.author == member.id))
        if store.delete_versions(mine, coll.num, object_id, q) == 0:
            raise NotFound(f"no object {object_id!r} (matching the filters) in this collection", details={"object_id": object_id})
        request.state.audit_ids = [object_id]
        return Response(status_code=200, media_type=media.TAXII)

    @api.get("/taxii2/{api_root}/collections/{collection_id}/objects/{object_id}/versions/")
    def get_versions(api_root: str, collection_id: str, object_id: str, request: Request) -> Response:
        member = member_for(request, "read")
        q = params(request, "versions")
        gate = readable(member, collection_for(member, api_root, collection_id))
        page = store.page(gate, _any_version(object_id, q))
        if not page.rows and q.after_us is None and q.added_after_us is None:
            raise NotFound(f"no object {object_id!r} in this collection", details={"object_id": object_id})
        request.state.audit_ids = [object_id] * len(page.rows)
        versions = orjson.dumps([r.version for r in page.rows])
        return taxii_response(b"{" + _more_next(page) + b',"versions":' + versions + b"}", page=page)

    @api.get("/taxii2/{api_root}/status/{status_id}/")
    def get_status(api_root: str, status_id: str, request: Request) -> Response:
        member = member_for(request, "meta")
        params(request, "none")
        root_for(member, api_root)
        return taxii_response(store.status(api_root, status_id, member))

    return api


def _with_id(q: query.TaxiiQuery, object_id: str) -> query.TaxiiQuery:
    return query.TaxiiQuery(
        ids=(object_id,), versions=q.versions, version_us=q.version_us, spec_versions=q.spec_versions,
        added_after_us=q.added_after_us, after_us=q.after_us, limit=q.limit,
    )


def _any_version(object_id: str, q: query.TaxiiQuery) -> query.TaxiiQuery:
    return query.TaxiiQuery(
        ids=(object_id,), versions=("all",), spec_versions=q.spec_versions,
        added_after_us=q.added_after_us, after_us=q.after_us, limit=q.limit,
    )


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
