"""The OASIS STIX 2.1 JSON schemas (cti-stix2-json-schemas, as stix2-validator ships them), compiled once
with jsonschema-rs: the reference's own rules on property types, closed vocabularies, formats and
required properties, at a few microseconds an object instead of the validator's milliseconds.

The schema for an object is chosen as stix2-validator chooses it: by its type's name; a type without one
is held to the common core (a custom observable, with neither created nor modified, to the
cyber-observable core)."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import jsonschema_rs

_FOLDERS = ("common", "sdos", "sros", "observables")


@functools.cache
def _schemas() -> tuple[dict[str, dict[str, Any]], Any]:
    """{name: schema} and a registry of every schema under its $id, so relative $refs resolve."""
    root = resources.files("stix2validator").joinpath("schemas-2.1", "schemas")
    by_name: dict[str, dict[str, Any]] = {}
    for folder in _FOLDERS:
        for entry in root.joinpath(folder).iterdir():
            if entry.name.endswith(".json"):
                by_name[entry.name[:-5]] = json.loads(entry.read_text(encoding="utf-8"))
    registry = jsonschema_rs.Registry([(s["$id"], s) for s in by_name.values() if "$id" in s])
    return by_name, registry


@functools.lru_cache(maxsize=256)
def _validator(name: str) -> Any:
    by_name, registry = _schemas()
    return jsonschema_rs.validator_for(by_name[name], registry=registry, validate_formats=True)


@functools.lru_cache(maxsize=4096)
def schema_name(stix_type: str, observable_like: bool) -> str:
    by_name, _ = _schemas()
    if stix_type in by_name and stix_type not in ("core", "cyber-observable-core"):
        return stix_type
    return "cyber-observable-core" if observable_like else "core"


def problems(obj: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """(where, message) for every way ``obj`` breaks its schema; [] when it keeps to it."""
    observable_like = "created" not in obj and "modified" not in obj and obj.get("type") != "marking-definition"
    check = _validator(schema_name(str(obj.get("type")), observable_like))
    if check.is_valid(obj):
        return []
    return [(tuple(e.instance_path), _words(e.message)) for e in check.iter_errors(obj)]


def _words(message: str) -> str:
    # jsonschema-rs quotes the JSON value it judges; when that is the whole object, say so instead
    if message.startswith("{") and " is not valid under " in message:
        message = "the object" + message[message.rindex(" is not valid under "):]
    return message if len(message) <= 300 else message[:297] + "..."
