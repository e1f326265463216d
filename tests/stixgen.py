"""Builders of valid STIX 2.1 objects for the tests (deterministic when given a seed)."""

from __future__ import annotations

import uuid
from typing import Any

from tearline import markings

TS = "2024-03-01T10:00:00.000Z"


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
        **extra,
    }


def envelope(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"objects": objs}
