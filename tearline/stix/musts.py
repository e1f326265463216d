"""The STIX 2.1 MUST rules that JSON schemas cannot say, as stix2-validator checks them (its ``musts``
module, with its own tables of language codes, character sets and observable types): dates that exist,
timestamps in order, markings that do not mark themselves, codes from the registries the specification
names, and UUIDv4 where an observable has nothing to derive its id from.

The reference runs each rule over every object (about half a millisecond an object, mostly in dateutil);
here each rule looks only at the properties it concerns, so an object without them costs a dict lookup.
"""

from __future__ import annotations

import functools
import re
import uuid
from typing import Any

from .timestamps import parse_timestamp

_PROPERTY = re.compile(r"^[a-z0-9_]{3,250}$")
_CHARSET = re.compile(r"^[a-zA-Z0-9_\(\)-]+$")
_MIME = re.compile(r"^(application|audio|font|image|message|model|multipart|text|video)/[a-zA-Z0-9.+_-]+")
_OPS = {"gt": (lambda a, b: a > b, "later than"), "ge": (lambda a, b: a >= b, "later than or equal to")}
# observables whose id must be a UUIDv4 when none of these (their id-contributing properties) is present
_V4_UNLESS = {"artifact": ("hashes", "payload_bin"), "email-message": ("from_ref", "subject", "body"),
              "user-account": ("account_type", "user_id", "account_login"), "windows-registry-key": ("key", "values"),
              "x509-certificate": ("hashes", "serial_number")}


@functools.cache
def _tables() -> Any:
    from stix2validator.v21 import enums

    return enums


@functools.cache
def _codes(name: str) -> frozenset[str]:
    enums = _tables()
    found = {"lang": enums.LANG_CODES, "software": list(enums.LANG_CODES) + list(enums.SOFTWARE_LANG_CODES),
             "charset": enums.char_sets(), "media": enums.media_types()}[name]
    return frozenset(found)


@functools.cache
def observable_refs() -> dict[tuple[str, str], frozenset[str]]:
    """(observable type, top-level reference property) → the types it may point to."""
    out = {}
    for stix_type, props in _tables().OBSERVABLE_PROP_REFS.items():
        for prop, targets in props.items():
            if isinstance(targets, list):
                out[(stix_type, prop)] = frozenset(targets)
    return out


@functools.lru_cache(maxsize=1024)
def _rules(stix_type: str) -> tuple[tuple[str, ...], dict[str, Any], tuple[tuple[str, str, str], ...]]:
    """Per type: its observable timestamps, its embedded ones, and the orders its timestamps must keep."""
    enums = _tables()
    return (tuple(enums.TIMESTAMP_OBSERVABLE_PROPERTIES.get(stix_type, ())),
            enums.TIMESTAMP_EMBEDDED_PROPERTIES.get(stix_type, {}),
            (("modified", "ge", "created"), *enums.TIMESTAMP_COMPARE.get(stix_type, ()),
             *enums.TIMESTAMP_COMPARE_OBSERVABLE.get(stix_type, ())))


def problems(obj: dict[str, Any], stix_type: str, parsed: dict[str, Any]) -> list[str]:
    """Every MUST the object breaks. ``parsed`` holds its top-level timestamps already read (name → datetime)."""
    out: list[str] = []
    _timestamps(obj, stix_type, parsed, out)
    if stix_type == "marking-definition":
        ident = obj.get("id")
        marks = obj.get("object_marking_refs")
        if (isinstance(marks, list) and ident in marks) or any(
                isinstance(g, dict) and g.get("marking_ref") == ident for g in obj.get("granular_markings") or ()):
            out.append("object_marking_refs / granular_markings: a marking definition cannot mark itself")
    _codes_and_names(obj, stix_type, out)
    if (stix_type == "process" or (stix_type in _V4_UNLESS and not any(k in obj for k in _V4_UNLESS[stix_type]))) \
            and not _uuid4(obj.get("id")):
        out.append(f"id: a {stix_type} with nothing to derive its id from must use a UUIDv4")
    return out


def _timestamps(obj: dict[str, Any], stix_type: str, parsed: dict[str, Any], out: list[str]) -> None:
    """Timestamps that must parse (top level and embedded) and the order they must be in."""
    observed, embedded, compares = _rules(stix_type)
    stamps = dict(parsed) if observed else parsed
    for prop in observed:
        if prop in obj and prop not in stamps:
            try:
                stamps[prop] = parse_timestamp(obj[prop])
            except ValueError as exc:
                out.append(f"{prop}: {exc}")
    for container, props in embedded.items():
        value = obj.get(container)
        inner = value.values() if container == "extensions" and isinstance(value, dict) else [value]
        for item, prop in ((item, prop) for item in inner if isinstance(item, dict) for prop in props if prop in item):
            try:
                parse_timestamp(item[prop])
            except ValueError as exc:
                out.append(f"{container}.{prop}: {exc}")
    for late, op, early in compares:
        if late in stamps and early in stamps:
            test, words = _OPS[op]
            a, b = stamps[late], stamps[early]
            if a == b:  # a datetime stops at the microsecond; the strings may still differ below it
                a, b = _fraction(obj.get(late)), _fraction(obj.get(early))
                width = max(len(a), len(b))
                a, b = a.ljust(width, "0"), b.ljust(width, "0")
            if not test(a, b):
                out.append(f"{late}: must be {words} {early}")


def _codes_and_names(obj: dict[str, Any], stix_type: str, out: list[str]) -> None:
    """Values that must come from a registry: language codes, CPE names, media types, character sets."""
    if "lang" in obj and (not isinstance(obj["lang"], str) or obj["lang"] not in _codes("lang")):
        out.append(f"lang: {obj['lang']!r} is not an RFC 5646 language code")
    if stix_type == "software" and isinstance(obj.get("languages"), list):
        bad = [v for v in obj["languages"] if not isinstance(v, str) or v not in _codes("software")]
        if bad:
            out.append(f"languages: not RFC 5646 language codes: {', '.join(map(repr, bad))}")
    if stix_type == "software" and "cpe" in obj and isinstance(obj["cpe"], str):
        out.extend(_cpe(obj["cpe"]))
    if stix_type == "artifact" and isinstance(obj.get("mime_type"), str) and not _media_type(obj["mime_type"]):
        out.append(f"mime_type: {obj['mime_type']!r} is not an IANA media type of the form type/subtype")
    for owner, prop in (("directory", "path_enc"), ("file", "name_enc")):
        if stix_type == owner and isinstance(obj.get(prop), str) and not _charset(obj[prop]):
            out.append(f"{prop}: {obj[prop]!r} is not an IANA character set")
    if stix_type == "language-content" and isinstance(obj.get("contents"), dict):
        for key, value in obj["contents"].items():
            if key not in _codes("lang"):
                out.append(f"contents: {key!r} is not an RFC 5646 language code")
            out.extend(f"contents.{key}: {sub!r} is not a property name"
                       for sub in (value if isinstance(value, dict) else ()) if not _PROPERTY.match(str(sub)))


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _fraction(raw: Any) -> str:
    text = str(raw)
    return text[text.index(".") + 1:-1] if "." in text else ""


def _media_type(value: str) -> bool:
    listed = _codes("media")
    return value in listed if listed else bool(_MIME.match(value))


def _charset(value: str) -> bool:
    listed = _codes("charset")
    return value in listed if listed else bool(_CHARSET.match(value))


def _uuid4(ident: Any) -> bool:
    try:
        return uuid.UUID(str(ident).split("--")[-1]).version == 4
    except ValueError:
        return True  # a malformed id is reported by the id rule


def _cpe(value: str) -> list[str]:
    from cpe import CPE

    try:
        CPE(value, CPE.VERSION_2_3)
    except (NotImplementedError, ValueError, TypeError):
        return [f"cpe: {value!r} is not a CPE 2.3 name"]
    return []
