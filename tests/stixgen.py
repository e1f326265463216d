"""Builders of valid STIX 2.1 objects for the tests (deterministic when given a seed)."""

from __future__ import annotations

import uuid
from typing import Any

from tearline import compact, markings

TS = "2024-03-01T10:00:00.000Z"
# The demo compact's actor: test objects point at it (an embedded reference is a graph link), so they
# are in the compact's scope without a relationship each.
ACTOR_ID = compact.actor_object(compact.Actor("Islamic State Khorasan Province", ()))["id"]


def indicator(n: int = 0, *, modified: str = TS, **extra: Any) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid5(uuid.NAMESPACE_URL, f'ind-{n}')}",
        "created": TS,
        "modified": modified,
        "name": f"ISKP relay domain {n}",
        "pattern": f"[domain-name:value = 'relay{n}.example.org']",
        "pattern_type": "stix",
        "valid_from": TS,
        "object_marking_refs": [markings.TLP2["green"][0]],
        "x_tearline_about_ref": ACTOR_ID,
        **extra,
    }


def envelope(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"objects": objs}
