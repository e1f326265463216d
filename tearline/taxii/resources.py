"""TAXII 2.1 resources as plain data (§4, §5): the envelope a client posts, and the discovery, API root
and collection resources the hub answers with. No HTTP here: tearline.web.taxii routes requests to them."""

from __future__ import annotations

import re
from typing import Any

import orjson

from ..errors import BadRequest
from ..model import Collection, Member, can_read, can_write
from . import media

BUNDLE_ID = re.compile(r"^bundle--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def parse_envelope(body: bytes) -> list[Any]:
    """The objects of a posted envelope (§3.7), or of a STIX bundle, which is what the OASIS stix2 library's
    TAXIICollectionSink and other common clients post: both carry an ``objects`` list, and properties an
    envelope does not define (a bundle's ``type`` and ``id``, anything else) are ignored. A body that is one
    STIX object, or a bundle with a malformed id, is refused with what it is."""
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(envelope, dict):
        raise BadRequest("the body must be a TAXII envelope or a STIX bundle: a JSON object with an 'objects' list")
    kind = envelope.get("type")
    if kind is not None and kind != "bundle":
        raise BadRequest(f"the body is a STIX {str(kind)[:60]!r} object, not an envelope or a bundle: post it inside "
                         "{\"objects\": [...]}", details={"property": "type"})
    if kind == "bundle" and not (isinstance(envelope.get("id"), str) and BUNDLE_ID.match(envelope["id"])):
        raise BadRequest("the bundle's id must be 'bundle--' and a lowercase UUID", details={"property": "id"})
    if "objects" not in envelope:  # optional in both (§3.7): an envelope or bundle of nothing
        return []
    if not isinstance(envelope["objects"], list):
        raise BadRequest("'objects' must be a list", details={"property": "objects"})
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
