"""One object, judged: every problem named with the property and the reason, and the references it makes.

Three layers, each at least as strict as the OASIS validator on what it covers and together at least as
strict as it on errors (tests/test_stix_validation.py holds the hub to stix2-validator over generated
objects):

1. Tearline's own checks, first, in words a person acts on: type and identifier form, timestamps,
   required properties, references and what they may point to, tear-line selectors.
2. The OASIS JSON schemas (tearline.stix.schemas): property types, closed vocabularies, formats.
   Their messages are added for properties the first layer had nothing to say about.
3. The MUST rules schemas cannot state (tearline.stix.musts) and indicator patterns
   (tearline.stix.patterns).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from . import musts, patterns, schemas, selectors
from .refs import MAX_DEPTH, Ref, _id_type, ref_allowed, walk
from .timestamps import MILLIS, parse_timestamp
from .vocabulary import META_REQUIRED, SCO_REQUIRED, SDO_REQUIRED, SPEC_VERSION, SRO_REQUIRED, TYPE_NAME, kind_of

_PROPERTY_NAME = re.compile(r"^[a-z0-9_]{3,250}$|^id$")
_GOOD_NAMES: set[str] = set()  # names already seen to be well formed (feeds reuse a few hundred)
_TIMESTAMP_PROPS = frozenset((
    "created", "modified", "valid_from", "valid_until", "first_seen", "last_seen", "published",
    "first_observed", "last_observed", "start_time", "stop_time", "analysis_started", "analysis_ended",
    "submitted",
))
_COORDINATES = (("latitude", 90), ("longitude", 180))
_NONEMPTY_LISTS = ("labels", "object_refs", "object_marking_refs", "external_references", "granular_markings")
_STRING_PROPS = ("name", "description", "relationship_type", "pattern", "pattern_type")
_BOOLEAN_PROPS = ("revoked", "is_family", "defanged", "is_multipart", "is_self_signed", "is_hidden",
                  "is_service_account", "is_privileged", "can_escalate_privs", "is_disabled")
_ID_LISTS = ("where_sighted_refs", "observed_data_refs")  # the others are checked as non-empty lists above
_REQUIRED_IN_MESSAGE = re.compile(r'^"([^"]+)" is a required property')

# Per type name already seen: (kind, the properties it requires). Only well-formed names get here.
_TYPE_RULES: dict[str, tuple[str, tuple[Any, ...]]] = {}


def _type_rules(stix_type: str) -> tuple[str, tuple[Any, ...]]:
    kind = kind_of(stix_type)
    if kind == "SCO":
        required: tuple[Any, ...] = SCO_REQUIRED[stix_type]
    elif kind in ("SDO", "SRO"):
        required = ("created", "modified") + (SDO_REQUIRED.get(stix_type) or SRO_REQUIRED[stix_type])
    elif kind == "META":
        required = META_REQUIRED[stix_type]
    else:
        required = ("created", "modified")
    if len(_TYPE_RULES) < 10_000:
        _TYPE_RULES[stix_type] = (kind, required)
    return kind, required


def warm() -> None:
    """Compile the OASIS schemas now (about two seconds), not on the first object a client sends."""
    for name in ("indicator", "relationship", "identity", "report", "core", "cyber-observable-core"):
        schemas.problems({"type": name, "created": "x"} if name != "cyber-observable-core" else {"type": "x-y"})


def validate(obj: Any) -> list[str]:
    """Every problem of one object, each naming the property and the reason; [] when it is valid."""
    return inspect(obj)[0]


def inspect(obj: Any) -> tuple[list[str], list[Ref]]:
    """(problems, references) of one object: validation and the edges the store indexes, in one pass.

    This runs on every object written, so the common case is kept short: what was already seen to be
    well formed (type names, property names, recurring identifiers) is remembered."""
    if not isinstance(obj, dict):
        return [f"an object must be a JSON object, got {type(obj).__name__}"], []
    bad_keys: list[str] = []
    refs, deepest = walk(obj, bad_keys)
    if deepest > MAX_DEPTH:
        return [f"the object nests deeper than {MAX_DEPTH} levels; no STIX object needs that"], []
    if bad_keys:
        shown = ", ".join(repr(k[:60]) for k in bad_keys[:3])
        return [f"{shown}: a property or dictionary key is 1 to 250 printable ASCII characters"], []
    problems: list[str] = []
    stix_type = obj.get("type")
    rules = _TYPE_RULES.get(stix_type) if type(stix_type) is str else None
    if rules is None:
        if not isinstance(stix_type, str) or not TYPE_NAME.match(stix_type):
            return [f"type: {stix_type!r} is not a STIX type name (3-250 characters, a-z, 0-9 and '-')"], []
        rules = _type_rules(stix_type)
    kind, required = rules
    _identity(obj, stix_type, kind, problems)
    _properties(obj, stix_type, required, problems)
    stamps = _timestamps(obj, kind, problems)
    _values(obj, stix_type, problems)
    _references(obj, stix_type, refs, problems)
    _off_schema(obj, stix_type, problems)
    problems.extend(musts.problems(obj, stix_type, stamps))
    problems.extend(patterns.problems(obj))
    return problems, refs


def _properties(obj: dict[str, Any], stix_type: str, required: Any, problems: list[str]) -> None:
    """The properties the type requires, and every property's name and emptiness."""
    for req in required:
        if type(req) is tuple:
            if not any(name in obj for name in req):
                problems.append(f"{' / '.join(req)}: at least one of these properties is required for {stix_type}")
        elif req not in obj:
            problems.append(f"{req}: required property is missing for {stix_type}")
    for name, value in obj.items():
        if name not in _GOOD_NAMES:
            if not isinstance(name, str) or not _PROPERTY_NAME.match(name):
                problems.append(f"{name}: property names are 3-250 characters of a-z, 0-9 and '_'")
            elif len(_GOOD_NAMES) < 100_000:
                _GOOD_NAMES.add(name)
        if value is None:
            problems.append(f"{name}: null is not allowed; leave the property out instead")
        elif not value and (type(value) is list or type(value) is dict):
            problems.append(f"{name}: empty lists and objects are not allowed; leave the property out instead")


def _off_schema(obj: dict[str, Any], stix_type: str, problems: list[str]) -> None:
    """What the OASIS schemas find that the named checks did not already say."""
    off_schema = schemas.problems(obj)
    if not off_schema:
        return
    said = {p.split(":", 1)[0].split("[", 1)[0].split(".", 1)[0].split(" / ", 1)[0] for p in problems}
    own = bool(problems)
    for where, message in off_schema:
        prop = where[0] if where else (_REQUIRED_IN_MESSAGE.match(message) or [None, None])[1]
        # a complaint about the whole object ("not valid under any of the schemas") adds nothing to
        # the named problems it comes from
        if prop not in said and not (prop is None and own):
            problems.append(f"{_render(where) or stix_type}: {message}")


def _identity(obj: dict[str, Any], stix_type: str, kind: str, problems: list[str]) -> None:
    identifier = obj.get("id")
    if identifier is None:
        problems.append("id: required property is missing")
    else:
        own = _id_type(identifier) if type(identifier) is str else None
        if own is None:
            problems.append(f"id: {identifier!r} is not an identifier of the form {stix_type}--<UUID>")
        elif own != stix_type:
            problems.append(f"id: {identifier!r} does not start with the object's type '{stix_type}--'")
    spec = obj.get("spec_version")
    if kind == "SCO":
        if spec != SPEC_VERSION and "spec_version" in obj:
            problems.append(f"spec_version: must be '2.1', got {spec!r}")
    elif spec != SPEC_VERSION:
        if "spec_version" not in obj:
            problems.append("spec_version: required property is missing (STIX 2.1 objects carry '2.1')")
        else:
            problems.append(f"spec_version: must be '2.1', got {spec!r}")
    if kind == "CUSTOM" and not (stix_type.startswith("x-") or "extensions" in obj):
        problems.append(f"type: '{stix_type}' is not a STIX 2.1 type; custom types start with 'x-' "
                        "or are declared by an extension")


def _timestamps(obj: dict[str, Any], kind: str, problems: list[str]) -> dict[str, datetime]:
    stamps: dict[str, datetime] = {}
    for prop in _TIMESTAMP_PROPS.intersection(obj):
        try:
            stamps[prop] = parse_timestamp(obj[prop])
        except ValueError as exc:
            problems.append(f"{prop}: {exc}")
            continue
        if prop in ("created", "modified") and kind != "SCO" and not MILLIS.search(obj[prop]):
            problems.append(f"{prop}: {obj[prop]!r} must be precise to the millisecond (e.g. …T10:00:00.000Z)")
    return stamps


def _values(obj: dict[str, Any], stix_type: str, problems: list[str]) -> None:
    if stix_type == "malware" and obj.get("is_family") is True and "name" not in obj:
        problems.append("name: required when is_family is true")
    if stix_type == "observed-data" and "objects" in obj:
        problems.append("objects: deprecated in STIX 2.1; send the observables as objects of their own and list "
                        "their ids in object_refs")
    if stix_type == "location" and ("latitude" in obj) != ("longitude" in obj):
        problems.append("latitude / longitude: each requires the other")
    for coord, bound in _COORDINATES:
        value = obj.get(coord)
        if coord in obj and (not isinstance(value, (int, float)) or isinstance(value, bool) or abs(value) > bound):
            problems.append(f"{coord}: must be a number between -{bound} and {bound}")
    confidence = obj.get("confidence")
    if "confidence" in obj and (
            not isinstance(confidence, int) or isinstance(confidence, bool) or not 0 <= confidence <= 100):
        problems.append("confidence: must be an integer from 0 to 100")
    for list_prop in _NONEMPTY_LISTS:
        if list_prop in obj and (type(obj[list_prop]) is not list or not obj[list_prop]):
            problems.append(f"{list_prop}: must be a non-empty list")
    if type(obj.get("external_references")) is list:
        for i, ref in enumerate(obj["external_references"]):
            if not isinstance(ref, dict) or not isinstance(ref.get("source_name"), str):
                problems.append(f"external_references[{i}]: must be an object with a source_name")
    if type(obj.get("granular_markings")) is list:
        _granular(obj, problems)
    problems.extend(f"{prop}: must be a string" for prop in _STRING_PROPS if prop in obj and type(obj[prop]) is not str)
    problems.extend(f"{prop}: must be true or false, got {obj[prop]!r}"
                    for prop in _BOOLEAN_PROPS if prop in obj and type(obj[prop]) is not bool)


def _granular(obj: dict[str, Any], problems: list[str]) -> None:
    for i, gm in enumerate(obj["granular_markings"]):
        if not isinstance(gm, dict):
            problems.append(f"granular_markings[{i}]: must be an object")
            continue
        sel = gm.get("selectors")
        if not isinstance(sel, list) or not sel or not all(isinstance(s, str) for s in sel):
            problems.append(f"granular_markings[{i}].selectors: must be a non-empty list of strings")
        if ("marking_ref" in gm) == ("lang" in gm):
            problems.append(f"granular_markings[{i}]: exactly one of marking_ref or lang is required")
    problems.extend(selectors.problems(obj))


def _references(obj: dict[str, Any], stix_type: str, refs: list[Ref], problems: list[str]) -> None:
    observable = musts.observable_refs()
    for path, prop, value in refs:
        target = _id_type(value) if type(value) is str else None
        if target is None:
            problems.append(f"{path}: {value!r} is not a STIX identifier (type--UUID)")
        elif not ref_allowed(prop, target):
            problems.append(f"{path}: may not refer to a {target}")
        elif path == prop and (stix_type, prop) in observable and target not in observable[(stix_type, prop)]:
            problems.append(f"{path}: a {stix_type} may not refer to a {target} here "
                            f"(only {', '.join(sorted(observable[(stix_type, prop)]))})")
    for prop in _ID_LISTS:
        if prop in obj and type(obj[prop]) is not list:
            problems.append(f"{prop}: must be a list of identifiers")


def _render(where: tuple[Any, ...]) -> str:
    out = ""
    for step in where:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out
