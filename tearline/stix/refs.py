"""Identifiers and the references an object makes, at any depth."""

from __future__ import annotations

import functools
import re
from typing import Any

from .vocabulary import REF_TARGETS, kind_of

_IDENTIFIER = re.compile(
    r"^([a-z0-9][a-z0-9-]{1,248}[a-z0-9])--[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
# Deeper than any STIX object needs (extensions inside extensions reach four or five); a limit checked
# before anything walks the object, so no input can make a walk recurse without end.
MAX_DEPTH = 32

Ref = tuple[str, str, Any]  # (property path, property name, value)


def id_type(identifier: Any) -> str | None:
    """The type part of a STIX identifier, or None if it is not one (type--UUID)."""
    if type(identifier) is not str:
        return None
    return _id_type(identifier)


# Most references name a few objects over and over (the TLP definitions, the compact's actors,
# authors' identities); an LRU keeps those and lets the one-off ids pass through.
@functools.lru_cache(maxsize=4096)
def _id_type(identifier: str) -> str | None:
    m = _IDENTIFIER.match(identifier)
    return m.group(1) if m else None


def depth(obj: Any) -> int:
    """How deep ``obj`` nests (a scalar is 0); past MAX_DEPTH the count stops."""
    return walk(obj)[1] if type(obj) is dict or type(obj) is list else 0


# How a property name takes part in references — 1 a *_ref, 2 a *_refs, 0 neither — kept per name,
# since this runs over every property of every object written and feeds reuse a few hundred names.
_REF_KIND: dict[str, int] = {}


def _ref_kind(key: Any) -> int:
    if type(key) is not str:
        return 0
    kind = 1 if key.endswith("_ref") else 2 if key.endswith("_refs") else 0
    if len(_REF_KIND) < 100_000:
        _REF_KIND[key] = kind
    return kind


def refs_of(obj: Any) -> list[Ref]:
    """Every reference an object makes: (property path, property name, value) for each *_ref and
    each item of each *_refs, at any depth (extensions, granular markings, embedded objects)."""
    return walk(obj)[0]


_GOOD_KEYS: set[str] = set()  # keys already seen to be well formed (feeds reuse a few hundred)


def _bad_key(key: Any) -> bool:
    """STIX dictionary keys are ASCII and at most 250 characters; control characters (NUL above all) name
    nothing and some stores cannot keep them."""
    if key in _GOOD_KEYS:
        return False
    if type(key) is not str or not key or len(key) > 250 or not key.isascii() or not key.isprintable():
        return True
    if len(_GOOD_KEYS) < 100_000:
        _GOOD_KEYS.add(key)
    return False


def walk(obj: Any, bad_keys: list[str] | None = None) -> tuple[list[Ref], int]:
    """The references an object makes and how deep it nests, in one pass that uses no recursion (so no
    input can exhaust the stack) and stops descending past MAX_DEPTH; malformed dictionary keys are added
    to ``bad_keys`` when given."""
    found: list[Ref] = []
    deepest = 0
    stack: list[tuple[Any, str, int]] = [(obj, "", 0)]
    while stack:
        node, path, level = stack.pop()
        if level > deepest:
            deepest = level
            if level > MAX_DEPTH:
                return found, level
        if type(node) is list:  # a list of strings (labels, aliases) holds no reference
            stack.extend((item, path, level + 1) for item in reversed(node)
                         if type(item) is dict or type(item) is list)
            continue
        later: list[tuple[Any, str, int]] = []
        for key, value in node.items():
            if bad_keys is not None and _bad_key(key):
                bad_keys.append(f"{path}.{key}" if path else str(key))
            kind = _REF_KIND.get(key)
            if kind is None:
                kind = _ref_kind(key)
            if kind == 1:
                found.append((f"{path}.{key}" if path else key, key, value))
            elif kind == 2:
                if type(value) is list:
                    here = f"{path}.{key}" if path else key
                    for item in value:
                        found.append((here, key, item))
                        if type(item) is dict or type(item) is list:
                            later.append((item, here, level + 2))
            elif type(value) is dict or type(value) is list:
                later.append((value, f"{path}.{key}" if path else key, level + 1))
        if later:
            stack.extend(reversed(later))
    return found, deepest


@functools.lru_cache(maxsize=1024)
def ref_allowed(prop: str, target: str) -> bool:
    """May a reference in ``prop`` point to an object of type ``target``?"""
    allowed = REF_TARGETS.get(prop)
    if allowed is None:
        return target != "marking-definition" or prop.endswith("marking_refs")
    if target in allowed:
        return True
    kind = kind_of(target)
    if "SDO" in allowed and kind in ("SDO", "CUSTOM"):
        return True
    return "SCO" in allowed and kind == "SCO"
