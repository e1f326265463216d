"""TAXII 2.1 query parameters → a ``TaxiiQuery``; every bad parameter is named in the error.

Filters per TAXII 2.1 §3.4: match[id], match[type], match[version] (last, first, all or timestamps),
match[spec_version], added_after, limit, next. A malformed value is refused (400, §3.4). A TAXII parameter
an endpoint does not take (match[id] on one object, §5.6) is refused too. Any other parameter, a match
field this server does not know included, is ignored as §3.4 lets a server do, and named back to the
client (``X-Tearline-Ignored-Parameters``) so that a typo does not pass unnoticed.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from ..errors import BadRequest
from ..stix import TYPE_NAME, id_type, parse_timestamp, to_us

ALLOWED = {
    "objects": {"match[id]", "match[type]", "match[version]", "match[spec_version]", "added_after", "limit", "next"},
    "object": {"match[version]", "match[spec_version]", "added_after", "limit", "next"},
    "manifest": {"match[id]", "match[type]", "match[version]", "match[spec_version]", "added_after", "limit", "next"},
    "versions": {"match[spec_version]", "added_after", "limit", "next"},
    "delete": {"match[version]", "match[spec_version]"},
    "none": set(),
}

TAXII_PARAMETERS = set().union(*ALLOWED.values())
SPEC_VERSION = re.compile(r"^[0-9]{1,3}\.[0-9]{1,3}$")


@dataclasses.dataclass(frozen=True)
class TaxiiQuery:
    ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    # ("last",) by default; may hold "first", "last", "all" and timestamps in microseconds
    versions: tuple[str, ...] = ("last",)
    version_us: tuple[int, ...] = ()
    spec_versions: tuple[str, ...] = ()
    added_after_us: int | None = None
    next: str | None = None  # opaque: only the release module, which issued it, can read it
    limit: int = 0
    ignored: tuple[str, ...] = ()  # parameters this server does not know, left out of the query


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _ids(value: str, problems: list[str]) -> dict[str, object]:
    ids = _split(value)
    bad = [i for i in ids if id_type(i) is None]
    if bad or not ids:
        problems.append(f"match[id]: not STIX identifiers: {', '.join(bad) or '(empty)'}")
    return {"ids": ids}


def _types(value: str, problems: list[str]) -> dict[str, object]:
    types = _split(value)
    bad = [t for t in types if not TYPE_NAME.match(t)]
    if bad or not types:
        problems.append(f"match[type]: not STIX type names: {', '.join(bad) or '(empty)'}")
    return {"types": types}


def _versions(value: str, problems: list[str]) -> dict[str, object]:
    words: list[str] = []
    stamps: list[int] = []
    for part in _split(value):
        if part in ("first", "last", "all"):
            words.append(part)
            continue
        try:
            stamps.append(to_us(parse_timestamp(part)))
        except ValueError:
            problems.append(f"match[version]: {part!r} is not first, last, all or a STIX timestamp")
    if not words and not stamps:
        problems.append("match[version]: empty")
    if "all" in words and len(words) + len(stamps) > 1:  # §3.4.1: all is every version; with others it means nothing
        problems.append("match[version]: 'all' cannot be combined with other values")
    given = [*words, *stamps]
    if len(set(given)) < len(given):
        problems.append("match[version]: a value is given more than once")
    return {"versions": tuple(words), "version_us": tuple(stamps)}


def _spec_versions(value: str, problems: list[str]) -> dict[str, object]:
    specs = _split(value)
    # a well-formed version this server holds nothing of (2.0, 2.2) matches nothing; only a malformed one is 400
    if not specs or any(not SPEC_VERSION.match(s) for s in specs):
        problems.append(f"match[spec_version]: {value!r} is not a list of STIX versions such as 2.1")
    return {"spec_versions": specs}


def _added_after(value: str, problems: list[str]) -> dict[str, object]:
    try:
        return {"added_after_us": to_us(parse_timestamp(value))}
    except ValueError as exc:
        problems.append(f"added_after: {exc}")
        return {}


def _limit(value: str, problems: list[str]) -> dict[str, object]:
    # str.isdigit() also takes '²' and other digits int() refuses; a huge positive limit is only capped
    if not (value.isascii() and value.isdigit()) or len(value) > 100 or int(value) < 1:
        problems.append(f"limit: {value!r} is not a positive integer")
        return {}
    return {"limit": int(value)}


_PARSERS = {"match[id]": _ids, "match[type]": _types, "match[version]": _versions,
            "match[spec_version]": _spec_versions, "added_after": _added_after, "limit": _limit,
            "next": lambda value, _: {"next": value}}


def parse(params: Mapping[str, str], endpoint: str, page_size: int, *,
          multi: Mapping[str, list[str]] | None = None) -> TaxiiQuery:
    """Parse the query string of one endpoint; raise BadRequest naming every bad parameter."""
    problems: list[str] = []
    unknown = set(params) - ALLOWED[endpoint]
    misplaced = sorted(unknown & TAXII_PARAMETERS)
    if misplaced:
        problems.append(f"parameter(s) this endpoint does not take: {', '.join(misplaced)}")
    ignored = tuple(sorted(unknown - TAXII_PARAMETERS))
    repeated = sorted(k for k, v in (multi or {}).items() if len(v) > 1 and k in TAXII_PARAMETERS)
    if repeated:
        problems.append(f"parameter(s) given more than once: {', '.join(repeated)} (use a comma-separated list)")
    fields: dict[str, object] = {}
    for name, read in _PARSERS.items():
        if name in params:
            fields |= read(params[name], problems)
    if problems:
        raise BadRequest("; ".join(problems), details={"problems": problems})
    fields["limit"] = min(int(fields.get("limit", page_size)), page_size)  # type: ignore[call-overload]
    return TaxiiQuery(**fields, ignored=ignored)  # type: ignore[arg-type]
