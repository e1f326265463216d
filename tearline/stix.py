"""STIX 2.1 objects as the hub sees them: validation, versions and the references they make.

The hub checks every object it is given against the STIX 2.1 rules that decide whether an object is
well formed: type, identifier form, timestamps, the required properties of its type, the types its
references may point to, markings. The rules are declared in the tables below, next to each other,
so that they read like the specification. ``stix2-validator`` (the OASIS reference) is the judge in
the test suite — every object the hub serves is checked with it — but at about 5 ms per object it
cannot sit on a path that must take 20,000 objects a second, hence this compiled subset.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timezone
from typing import Any

SPEC_VERSION = "2.1"

_TIMESTAMP = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?Z$")
_TYPE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,248}[a-z0-9]$")
_IDENTIFIER = re.compile(
    r"^([a-z0-9][a-z0-9-]{1,248}[a-z0-9])--[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_PROPERTY_NAME = re.compile(r"^[a-z0-9_]{3,250}$|^id$")
_GOOD_NAMES: set[str] = set()  # names already seen to be well formed (feeds reuse a few hundred)

# Required properties beyond the common ones, per STIX 2.1 §4-§7. A tuple inside the tuple means
# "at least one of".
SDO_REQUIRED: dict[str, tuple[Any, ...]] = {
    "attack-pattern": ("name",),
    "campaign": ("name",),
    "course-of-action": ("name",),
    "grouping": ("context", "object_refs"),
    "identity": ("name",),
    "incident": ("name",),
    "indicator": ("pattern", "pattern_type", "valid_from"),
    "infrastructure": ("name",),
    "intrusion-set": ("name",),
    "location": (("region", "country", "latitude"),),
    "malware": ("is_family",),
    "malware-analysis": ("product", ("result", "analysis_sco_refs")),
    "note": ("content", "object_refs"),
    "observed-data": ("first_observed", "last_observed", "number_observed", ("objects", "object_refs")),
    "opinion": ("opinion", "object_refs"),
    "report": ("name", "published", "object_refs"),
    "threat-actor": ("name",),
    "tool": ("name",),
    "vulnerability": ("name",),
}
SRO_REQUIRED: dict[str, tuple[Any, ...]] = {
    "relationship": ("relationship_type", "source_ref", "target_ref"),
    "sighting": ("sighting_of_ref",),
}
SCO_REQUIRED: dict[str, tuple[Any, ...]] = {
    "artifact": (("payload_bin", "url"),),
    "autonomous-system": ("number",),
    "directory": ("path",),
    "domain-name": ("value",),
    "email-addr": ("value",),
    "email-message": ("is_multipart",),
    "file": (("hashes", "name"),),
    "ipv4-addr": ("value",),
    "ipv6-addr": ("value",),
    "mac-addr": ("value",),
    "mutex": ("name",),
    "network-traffic": ("protocols", ("src_ref", "dst_ref")),
    "process": (),
    "software": ("name",),
    "url": ("value",),
    "user-account": (),
    "windows-registry-key": (),
    "x509-certificate": (),
}
META_REQUIRED: dict[str, tuple[Any, ...]] = {
    "marking-definition": ("created",),
    "language-content": ("created", "modified", "object_ref", "contents"),
    "extension-definition": ("created", "modified", "created_by_ref", "name", "schema", "version", "extension_types"),
}

SDO_TYPES = frozenset(SDO_REQUIRED)
SRO_TYPES = frozenset(SRO_REQUIRED)
SCO_TYPES = frozenset(SCO_REQUIRED)
_SDO_OR_CUSTOM = "SDO"

# The type a reference property may point to (§3.7 and each object's definition). "SDO" means any
# domain object (or a custom one), "SCO" any cyber-observable, "ANY" anything but a marking.
REF_TARGETS: dict[str, frozenset[str]] = {
    "created_by_ref": frozenset({"identity"}),
    "object_marking_refs": frozenset({"marking-definition"}),
    "marking_ref": frozenset({"marking-definition"}),
    "sighting_of_ref": frozenset({"SDO"}),
    "where_sighted_refs": frozenset({"identity", "location"}),
    "observed_data_refs": frozenset({"observed-data"}),
    "source_ref": frozenset({"SDO", "SCO"}),
    "target_ref": frozenset({"SDO", "SCO"}),
    "sample_refs": frozenset({"file", "artifact"}),
    "operating_system_refs": frozenset({"software"}),
    "installed_software_refs": frozenset({"software"}),
    "host_vm_ref": frozenset({"software"}),
    "operating_system_ref": frozenset({"software"}),
    "sample_ref": frozenset({"file", "artifact", "network-traffic"}),
    "resolves_to_refs": frozenset({"ipv4-addr", "ipv6-addr", "mac-addr", "domain-name"}),
    "belongs_to_refs": frozenset({"autonomous-system"}),
}

_SDO_COMMON = ("type", "spec_version", "id", "created", "modified")
_TIMESTAMP_PROPS = frozenset((
    "created", "modified", "valid_from", "valid_until", "first_seen", "last_seen", "published",
    "first_observed", "last_observed", "start_time", "stop_time", "analysis_started", "analysis_ended",
    "submitted",
))


def parse_timestamp(value: str) -> datetime:
    """A STIX timestamp (RFC 3339, UTC, 'Z') → aware datetime, to the microsecond."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a STIX timestamp (YYYY-MM-DDTHH:MM:SS[.s+]Z)")
    return _parse_timestamp(value)


# Bulk feeds repeat the same few timestamps (created = modified = valid_from), so parsing is cached.
@functools.lru_cache(maxsize=65536)
def _parse_timestamp(value: str) -> datetime:
    m = _TIMESTAMP.match(value)
    if m is None:
        raise ValueError(f"{value!r} is not a STIX timestamp (YYYY-MM-DDTHH:MM:SS[.s+]Z)")
    frac = (m.group(7) or ".0")[1:7].ljust(6, "0")
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    try:
        return datetime(y, mo, d, h, mi, s, int(frac), tzinfo=timezone.utc)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid date and time: {exc}") from None


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def to_us(value: datetime) -> int:
    """Microseconds since the epoch: the integer the store orders versions and date_added by."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def format_us(us: int) -> str:
    """The inverse of ``to_us``, as a STIX/TAXII timestamp with microseconds."""
    seconds, micro = divmod(us, 1_000_000)
    dt = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{micro:06d}Z"


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


def kind_of(stix_type: str) -> str:
    if stix_type in SDO_TYPES:
        return "SDO"
    if stix_type in SRO_TYPES:
        return "SRO"
    if stix_type in SCO_TYPES:
        return "SCO"
    if stix_type in META_REQUIRED:
        return "META"
    return "CUSTOM"


def refs_of(obj: Any) -> list[tuple[str, str, Any]]:
    """Every reference an object makes: (property path, property name, value) for each *_ref and
    each item of each *_refs, at any depth (extensions, granular markings, embedded objects)."""
    found: list[tuple[str, str, Any]] = []
    if isinstance(obj, dict):
        _refs_in_dict(obj, "", found)
    elif isinstance(obj, list):
        _refs_in_list(obj, "", found)
    return found


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


def _refs_in_dict(obj: dict[Any, Any], path: str, found: list[tuple[str, str, Any]]) -> None:
    for key, value in obj.items():
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
        elif type(value) is dict:
            _refs_in_dict(value, f"{path}.{key}" if path else key, found)
        elif type(value) is list:
            _refs_in_list(value, f"{path}.{key}" if path else key, found)


def _refs_in_list(items: list[Any], path: str, found: list[tuple[str, str, Any]]) -> None:
    for item in items:  # a list of strings (labels, aliases) holds no reference
        if type(item) is dict:
            _refs_in_dict(item, path, found)
        elif type(item) is list:
            _refs_in_list(item, path, found)


@functools.lru_cache(maxsize=1024)
def _ref_allowed(prop: str, target: str) -> bool:
    allowed = REF_TARGETS.get(prop)
    if allowed is None:
        return target != "marking-definition" or prop.endswith("marking_refs")
    if target in allowed:
        return True
    kind = kind_of(target)
    if "SDO" in allowed and kind in ("SDO", "CUSTOM"):
        return True
    return "SCO" in allowed and kind == "SCO"


def validate(obj: Any) -> list[str]:
    """Every problem of one object, each naming the property and the reason; [] when it is valid."""
    return inspect(obj)[0]


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


def inspect(obj: Any) -> tuple[list[str], list[tuple[str, str, Any]]]:
    """(problems, references) of one object: validation and the edges the store indexes, in one pass.

    This runs on every object written, so the common case is kept short: what was already seen to be
    well formed (type names, property names, recurring identifiers) is remembered."""
    if not isinstance(obj, dict):
        return [f"an object must be a JSON object, got {type(obj).__name__}"], []
    problems: list[str] = []
    stix_type = obj.get("type")
    rules = _TYPE_RULES.get(stix_type) if type(stix_type) is str else None
    if rules is None:
        if not isinstance(stix_type, str) or not _TYPE_NAME.match(stix_type):
            return [f"type: {stix_type!r} is not a STIX type name (3-250 characters, a-z, 0-9 and '-')"], []
        rules = _type_rules(stix_type)
    kind, required = rules
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
        problems.append(
            f"type: '{stix_type}' is not a STIX 2.1 type; custom types start with 'x-' "
            "or are declared by an extension"
        )
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

    stamps: dict[str, datetime] = {}
    for prop in _TIMESTAMP_PROPS.intersection(obj):
        try:
            stamps[prop] = parse_timestamp(obj[prop])
        except ValueError as exc:
            problems.append(f"{prop}: {exc}")
    if "created" in stamps and "modified" in stamps and stamps["modified"] < stamps["created"]:
        problems.append("modified: must be later than or equal to created")
    for early, late in _ORDERED_STAMPS:
        if early in stamps and late in stamps and stamps[late] < stamps[early]:
            problems.append(f"{late}: must be later than or equal to {early}")

    if stix_type == "malware" and obj.get("is_family") is True and "name" not in obj:
        problems.append("name: required when is_family is true")
    if stix_type == "location" and ("latitude" in obj) != ("longitude" in obj):
        problems.append("latitude / longitude: each requires the other")
    for coord, bound in _COORDINATES:
        if coord in obj and (not isinstance(obj[coord], (int, float)) or isinstance(obj[coord], bool) or abs(obj[coord]) > bound):
            problems.append(f"{coord}: must be a number between -{bound} and {bound}")
    if "confidence" in obj and (
        not isinstance(obj["confidence"], int) or isinstance(obj["confidence"], bool) or not 0 <= obj["confidence"] <= 100
    ):
        problems.append("confidence: must be an integer from 0 to 100")
    for list_prop in _NONEMPTY_LISTS:
        if list_prop in obj and (type(obj[list_prop]) is not list or not obj[list_prop]):
            problems.append(f"{list_prop}: must be a non-empty list")
    if type(obj.get("external_references")) is list:
        for i, ref in enumerate(obj["external_references"]):
            if not isinstance(ref, dict) or not isinstance(ref.get("source_name"), str):
                problems.append(f"external_references[{i}]: must be an object with a source_name")
    if type(obj.get("granular_markings")) is list:
        for i, gm in enumerate(obj["granular_markings"]):
            if not isinstance(gm, dict):
                problems.append(f"granular_markings[{i}]: must be an object")
                continue
            sel = gm.get("selectors")
            if not isinstance(sel, list) or not sel or not all(isinstance(s, str) for s in sel):
                problems.append(f"granular_markings[{i}].selectors: must be a non-empty list of strings")
            if ("marking_ref" in gm) == ("lang" in gm):
                problems.append(f"granular_markings[{i}]: exactly one of marking_ref or lang is required")
        from .granular import selector_problems

        problems.extend(selector_problems(obj))
    for prop in _STRING_PROPS:
        if prop in obj and type(obj[prop]) is not str:
            problems.append(f"{prop}: must be a string")

    refs = refs_of(obj)
    for path, prop, value in refs:
        target = _id_type(value) if type(value) is str else None
        if target is None:
            problems.append(f"{path}: {value!r} is not a STIX identifier (type--UUID)")
        elif not _ref_allowed(prop, target):
            problems.append(f"{path}: may not refer to a {target}")
    for prop in _ID_LISTS:
        if prop in obj and type(obj[prop]) is not list:
            problems.append(f"{prop}: must be a list of identifiers")
    return problems, refs


_ORDERED_STAMPS = (("first_seen", "last_seen"), ("valid_from", "valid_until"), ("first_observed", "last_observed"))
_COORDINATES = (("latitude", 90), ("longitude", 180))
_NONEMPTY_LISTS = ("labels", "object_refs", "object_marking_refs", "external_references", "granular_markings")
_STRING_PROPS = ("name", "description", "relationship_type", "pattern", "pattern_type")
_ID_LISTS = ("where_sighted_refs", "observed_data_refs")  # the others are checked as non-empty lists above


def version_of(obj: dict[str, Any]) -> str | None:
    """The TAXII version of an object: modified, else created, else None (then date_added)."""
    value = obj.get("modified") or obj.get("created")
    return value if isinstance(value, str) else None
