"""TAXII 2.1 resources as plain data (§4, §5): the envelope a client posts, and the discovery, API root
and collection resources the hub answers with. No HTTP here: tearline.web.taxii routes requests to them."""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import BadRequest
from ..model import Collection, Member, can_read, can_write
from . import media


def parse_envelope(body: bytes) -> list[Any]:
    """The objects of a posted envelope (§3.7), or a BadRequest that names what is wrong with it."""
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


def discovery(base: str, api_root: str, title: str, contact: str) -> dict[str, Any]:
    return {
        "title": title,
        "description": "Tearline: a scoped intelligence exchange (TAXII 2.1)",
        **({"contact": contact} if contact else {}),
        "default": f"{base}/taxii2/{api_root}/",
        "api_roots": [f"{base}/taxii2/{api_root}/"],
    }


def api_root(title: str, description: str, max_content_length: int) -> dict[str, Any]:
    return {"title": title, "description": description, "versions": [media.TAXII],
            "max_content_length": max_content_length}


def collection(member: Member, coll: Collection) -> dict[str, Any]:
    return {
        "id": coll.id, "title": coll.title, "description": coll.description, "alias": coll.alias,
        "can_read": can_read(member, coll), "can_write": can_write(member, coll),
        "media_types": [media.STIX],
    }
