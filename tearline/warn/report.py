"""A warning as STIX: the Tearline warning extension's id, the namespace its ids are made in, the
location its report points to, and the key that signs what leaves the hub. The lowest room of
tearline.warn: the lifecycle and the outside party's document both build on it."""

from __future__ import annotations

import uuid
from typing import Any, Protocol

import pycountry

EXTENSION_ID = "extension-definition--3f6c2b1e-7a4d-5e8f-9b0c-1d2e3f4a5b6c"
NS = uuid.UUID("2c7e5d1a-8b3f-4e6d-9a1c-5f0e7d3b2a19")


class Signer(Protocol):
    """The hub's signing key (tearline.audit.AuditLog.sign)."""

    def sign(self, message: bytes) -> dict[str, str]: ...


def location(current: dict[str, Any]) -> dict[str, Any]:
    """The STIX location of a warning's target (its report's one reference)."""
    report = current["report"]
    target = report["extensions"][EXTENSION_ID]["target"]
    country = pycountry.countries.get(alpha_3=target["country"])
    return {"type": "location", "spec_version": "2.1", "id": report["object_refs"][0],
            "created": report["created"], "modified": report["modified"],
            "country": country.alpha_2 if country else target["country"],
            **({"city": target["city"]} if target.get("city") else {}),
            **({"administrative_area": target["province"]} if target.get("province") else {}),
            "object_marking_refs": report["object_marking_refs"]}
