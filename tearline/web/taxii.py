"""The TAXII 2.1 endpoints (OASIS TAXII 2.1, §4 and §5), thin: parse → gate → store → resource.

Every read goes through tearline.release; a collection, object or status the member may not see
answers exactly as one that does not exist. The protocol itself (queries, envelopes, resources, media
types) is tearline.taxii; this module only routes HTTP to it.
"""

from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Request, Response
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from .. import probes, release, write
from ..errors import NotFound
from ..model import Collection, Member
from ..stix import format_us
from ..taxii import media, query, resources
from . import caller, trail

DATE_FIRST = "X-TAXII-Date-Added-First"
DATE_LAST = "X-TAXII-Date-Added-Last"
IGNORED = "X-Tearline-Ignored-Parameters"
COLLECTION = "/taxii2/{api_root}/collections/{collection_id}"


def taxii_response(body: bytes | dict[str, Any], status: int = 200,
                   released: release.Released | None = None) -> Response:
    headers = {}
    if released is not None and released.first is not None and released.last is not None:
        headers[DATE_FIRST] = format_us(released.first)
        headers[DATE_LAST] = format_us(released.last)
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(content=content, status_code=status, media_type=media.TAXII, headers=headers)


def _answer(request: Request, released: release.Released, q: query.TaxiiQuery | None = None) -> Response:
    request.state.audit_ids = released.ids
    response = taxii_response(released.body, released=released)
    if released.first is None and q is not None and q.added_after_us is not None:
        # §3.2 wants the headers on every page and gives no value for an empty one: the client's own
        # added_after, so a client that polls with the last header it saw asks the same question again
        response.headers[DATE_FIRST] = response.headers[DATE_LAST] = format_us(q.added_after_us)
    if q is not None and q.ignored:  # named back, quoted and bounded, so a typo does not pass unnoticed
        response.headers[IGNORED] = ", ".join(quote(name[:60], safe="[]_-.") for name in q.ignored[:10]) + (
            f", … {len(q.ignored) - 10} more" if len(q.ignored) > 10 else "")
    return response


def _member(request: Request, kind: str) -> Member:
    member = caller.member_for(request, kind)
    media.check_accept(request.headers.get("accept"))
    return member


def _root(request: Request, member: Member, api_root: str) -> Any:
    row = caller.hub(request).store.api_root(api_root) if member.api_root == api_root else None
    if row is None:
        raise NotFound(f"no API root {api_root!r} on this server", details={"api_root": api_root})
    return row


def _collection(request: Request, member: Member, api_root: str, collection_id: str) -> Collection:
    if member.api_root != api_root:
        raise NotFound(f"no API root {api_root!r} on this server", details={"api_root": api_root})
    coll = caller.hub(request).store.collection(api_root, collection_id)
    if coll is None:
        raise NotFound(f"no collection {collection_id!r} in API root {api_root!r}",
                       details={"collection": collection_id})
    return coll


def _query(request: Request, endpoint: str) -> query.TaxiiQuery:
    qp = request.query_params
    multi = {k: qp.getlist(k) for k in qp.keys()}  # noqa: SIM118 (a multi-dict: keys() lists each name once)
    return query.parse(dict(qp), endpoint, caller.hub(request).settings.page_size, multi=multi)


def discovery(request: Request) -> Response:
    member = _member(request, "meta")
    _query(request, "none")
    settings = caller.hub(request).settings
    base = str(request.base_url).rstrip("/")
    return taxii_response(resources.discovery(base, member.api_root, settings.title, settings.contact))


def get_api_root(api_root: str, request: Request) -> Response:
    member = _member(request, "meta")
    _query(request, "none")
    row = _root(request, member, api_root)
    return taxii_response(resources.api_root(row.title, row.description,
                                              caller.hub(request).settings.max_content_length))


def get_collections(api_root: str, request: Request) -> Response:
    member = _member(request, "meta")
    _query(request, "none")
    _root(request, member, api_root)
    found = caller.hub(request).store.collections(api_root)
    listed = [resources.collection(member, c) for c in found]
    return taxii_response({"collections": listed} if listed else {})  # §5.1.1: no empty list


def get_collection(api_root: str, collection_id: str, request: Request) -> Response:
    member = _member(request, "meta")
    _query(request, "none")
    return taxii_response(resources.collection(member, _collection(request, member, api_root, collection_id)))


def get_objects(api_root: str, collection_id: str, request: Request) -> Response:
    member = _member(request, "read")
    q = _query(request, "objects")
    coll = _collection(request, member, api_root, collection_id)
    hub = caller.hub(request)
    return _answer(request, release.objects_page(hub.store, member, coll, q, hub.keys, datetime.date.today()), q)


async def add_objects(api_root: str, collection_id: str, request: Request) -> Response:
    # async only to read the body as it arrives; everything that touches the store runs in the thread pool
    hub = caller.hub(request)
    member = await run_in_threadpool(_member, request, "write")
    _query(request, "none")
    media.check_content_type(request.headers.get("content-type"))
    coll = await run_in_threadpool(_collection, request, member, api_root, collection_id)
    envelope = resources.parse_envelope(await caller.read_body(request, hub.settings.max_content_length))
    await run_in_threadpool(hub.limiter.charge, member, "write", len(envelope))  # the store's buckets, maybe

    def record(conn: Connection, status: dict[str, Any]) -> None:
        refused = status["failure_count"]
        request.state.ingested = (status["success_count"], refused)
        seq = trail.within(hub.log, request, conn, 202,
                           f"{refused} of {status['total_count']} objects refused" if refused else "",
                           [s["id"] for s in status["successes"]])
        if status["unseen"] is not None:
            probes.note(conn, seq, status["unseen"])

    received = await run_in_threadpool(release.received_copy, member, coll, hub.keys, datetime.date.today()) \
        if member.can_read else None
    status = await run_in_threadpool(write.add_envelope, hub.store, coll, member, envelope, hub.keys, None,
                                     hub.bounds, record, received)
    return taxii_response(release.status_resource(status), status=202)


def get_manifest(api_root: str, collection_id: str, request: Request) -> Response:
    member = _member(request, "read")
    q = _query(request, "manifest")
    coll = _collection(request, member, api_root, collection_id)
    hub = caller.hub(request)
    return _answer(request, release.manifest_page(hub.store, member, coll, q, hub.keys, datetime.date.today()), q)


def get_object(api_root: str, collection_id: str, object_id: str, request: Request) -> Response:
    member = _member(request, "read")
    q = _query(request, "object")
    coll = _collection(request, member, api_root, collection_id)
    hub = caller.hub(request)
    return _answer(request, release.object_page(hub.store, member, coll, object_id, q, hub.keys,
                                                datetime.date.today()), q)


def delete_object(api_root: str, collection_id: str, object_id: str, request: Request) -> Response:
    member = _member(request, "write")
    q = _query(request, "delete")
    coll = _collection(request, member, api_root, collection_id)
    if "match[version]" not in request.query_params:
        q = query.TaxiiQuery(versions=("all",), spec_versions=q.spec_versions)
    hub = caller.hub(request)
    chosen = release.deletable(hub.store, member, coll, object_id, q, hub.keys, datetime.date.today(),
                               write.peers_of(hub.store, member, coll))
    write.delete_versions(hub.store, coll, member, object_id, chosen, hub.keys,
                          lambda conn: trail.within(hub.log, request, conn, 200, "", [object_id]))
    return Response(status_code=200, media_type=media.TAXII)


def get_versions(api_root: str, collection_id: str, object_id: str, request: Request) -> Response:
    member = _member(request, "read")
    q = _query(request, "versions")
    coll = _collection(request, member, api_root, collection_id)
    hub = caller.hub(request)
    return _answer(request, release.versions_page(hub.store, member, coll, object_id, q, hub.keys,
                                                  datetime.date.today()), q)


def get_status(api_root: str, status_id: str, request: Request) -> Response:
    member = _member(request, "meta")
    _query(request, "none")
    _root(request, member, api_root)
    return taxii_response(release.status(caller.hub(request).store, member, api_root, status_id))


def router() -> APIRouter:
    api = APIRouter()
    api.add_api_route("/taxii2/", discovery, methods=["GET"])
    api.add_api_route("/taxii2/{api_root}/", get_api_root, methods=["GET"])
    api.add_api_route("/taxii2/{api_root}/collections/", get_collections, methods=["GET"])
    api.add_api_route(f"{COLLECTION}/", get_collection, methods=["GET"])
    api.add_api_route(f"{COLLECTION}/objects/", get_objects, methods=["GET"])
    api.add_api_route(f"{COLLECTION}/objects/", add_objects, methods=["POST"])
    api.add_api_route(f"{COLLECTION}/manifest/", get_manifest, methods=["GET"])
    api.add_api_route(f"{COLLECTION}/objects/{{object_id}}/", get_object, methods=["GET"])
    api.add_api_route(f"{COLLECTION}/objects/{{object_id}}/", delete_object, methods=["DELETE"])
    api.add_api_route(f"{COLLECTION}/objects/{{object_id}}/versions/", get_versions, methods=["GET"])
    api.add_api_route("/taxii2/{api_root}/status/{status_id}/", get_status, methods=["GET"])
    return api
