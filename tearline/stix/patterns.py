"""Indicator patterns, held to the OASIS pattern grammar.

The reference check (stix2-validator's, on the ANTLR parser of ``stix2-patterns``) costs about half a
millisecond a pattern, more than everything else the hub does to an object. Almost every pattern in
real feeds has one shape: observations in brackets, each comparing object paths with literals by
equality, joined by AND, OR or FOLLOWEDBY. ``_simple`` recognises exactly that shape (a strict subset
of the grammar, with the same checks on type names, property names and hash values that the reference
makes) and answers in microseconds; anything else — qualifiers, LIKE, MATCHES, sets, parentheses,
other literals — goes to the reference check itself. tests/test_stix_patterns.py holds the fast path to
the reference over generated patterns: whatever it accepts, the reference accepts.
"""

from __future__ import annotations

import functools
import re
from typing import Any

# 2.1 keywords are case-sensitive; a path step spelled like one is lexed as the keyword
_KEYWORDS = frozenset({"AND", "OR", "NOT", "FOLLOWEDBY", "LIKE", "MATCHES", "ISSUPERSET", "ISSUBSET", "EXISTS",
                       "LAST", "IN", "START", "STOP", "SECONDS", "true", "false", "WITHIN", "REPEATS", "TIMES"})
_TYPE = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_STEP = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STRING = re.compile(r"'(?:[^'\\]|\\['\\])*'")
_INT = re.compile(r"(?:0|[1-9][0-9]*)(?![0-9.A-Za-z_])")
_PROPERTY = re.compile(r"^[a-z0-9_]{3,250}$")
_OPS = ("!=", "=")
MAX_NESTING = 32  # levels of brackets and parentheses: no real pattern comes near it
MAX_LENGTH = 16_384  # longer patterns go to nobody: the reference parser's time grows with them


class _Fallback(Exception):
    """The pattern leaves the simple shape: the reference decides."""


def problems(obj: dict[str, Any]) -> list[str]:
    """What is wrong with an indicator's pattern, as the OASIS validator would say; [] when nothing."""
    pattern = obj.get("pattern")
    if obj.get("type") != "indicator" or obj.get("pattern_type") != "stix" or not isinstance(pattern, str):
        return []
    version = obj.get("pattern_version", obj.get("spec_version", "2.1"))
    if len(pattern) > MAX_LENGTH:
        return [f"pattern: longer than {MAX_LENGTH} characters"]
    if version == "2.1":
        try:
            if _simple(pattern):
                return []
        except _Fallback:
            pass
    if _nesting(pattern) > MAX_NESTING:
        return [f"pattern: nests deeper than {MAX_NESTING} brackets and parentheses"]
    try:
        return list(_reference(pattern, str(version)))
    except RecursionError:  # the reference parser recurses per level: a pattern cannot make the hub fail
        return ["pattern: nests too deeply for the STIX pattern grammar's parser"]


def _nesting(pattern: str) -> int:
    """How deep brackets and parentheses nest outside quoted strings (the reference parser recurses on
    each level, and 250 levels exhaust its stack)."""
    deepest = depth = 0
    quoted = escaped = False
    for ch in pattern:
        if quoted:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == "'":
                quoted = False
        elif ch == "'":
            quoted = True
        elif ch in "([":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]":
            depth -= 1
    return deepest


@functools.lru_cache(maxsize=2048)
def _reference(pattern: str, version: str) -> tuple[str, ...]:
    from stix2validator.util import ValidationOptions
    from stix2validator.v21.musts import patterns as oasis_patterns

    probe = {"type": "indicator", "id": "indicator--00000000-0000-4000-8000-000000000000", "pattern": pattern,
             "pattern_type": "stix", "pattern_version": version}
    return tuple(f"pattern: {_plain(str(e))}" for e in oasis_patterns(probe, ValidationOptions(version="2.1")))


def _plain(message: str) -> str:
    return message.replace("indicator--00000000-0000-4000-8000-000000000000: ", "")


@functools.cache
def _observables() -> tuple[frozenset[str], dict[str, frozenset[str]], dict[str, Any]]:
    """The reference's own tables: observable types, their properties, and hash formats."""
    from stix2patterns.v21.object_validator import HASHES_REGEX
    from stix2validator.v21 import enums

    return (frozenset(enums.OBSERVABLE_TYPES),
            {t: frozenset(props) for t, props in enums.OBSERVABLE_PROPERTIES.items()}, HASHES_REGEX)


def _simple(p: str) -> bool:
    """True when ``p`` is a valid pattern of the simple shape; _Fallback when it is not of that shape.
    Never True for a pattern the reference refuses."""
    i, n = 0, len(p)

    def spaces(at: int) -> int:
        while at < n and p[at] == " ":
            at += 1
        return at

    def word(at: int, words: tuple[str, ...]) -> tuple[str, int]:
        for w in words:
            end = at + len(w)
            if p.startswith(w, at) and (end == n or p[end] in " [(\"'"):
                return w, end
        raise _Fallback

    i = spaces(i)
    while True:
        if i >= n or p[i] != "[":
            raise _Fallback
        i = _observation(p, spaces(i + 1), n, spaces)
        i = spaces(i)
        if i == n:
            return True
        _, i = word(i, ("FOLLOWEDBY", "AND", "OR"))
        if i >= n or p[i] != " ":
            raise _Fallback
        i = spaces(i)


def _observation(p: str, i: int, n: int, spaces: Any) -> int:
    """One ``[ comparison (AND|OR comparison)* ]``; returns the index after its ']'."""
    while True:
        i = _comparison(p, i, n, spaces)
        i = spaces(i)
        if i < n and p[i] == "]":
            return i + 1
        for w in ("AND ", "OR "):
            if p.startswith(w, i):
                i = spaces(i + len(w))
                break
        else:
            raise _Fallback


def _comparison(p: str, i: int, n: int, spaces: Any) -> int:
    m = _TYPE.match(p, i)
    if not m or m.group() in _KEYWORDS:
        raise _Fallback
    obj_type = m.group()
    types, properties, hashes = _observables()
    if obj_type not in types and not 3 <= len(obj_type) <= 250:
        raise _Fallback
    i = m.end()
    if i >= n or p[i] != ":":
        raise _Fallback
    m = _STEP.match(p, i + 1)
    if not m or m.group() in _KEYWORDS:
        raise _Fallback
    path = [m.group()]
    known = properties.get(obj_type, frozenset())
    if path[0] not in known and not _PROPERTY.match(path[0]):
        raise _Fallback
    i = m.end()
    while i < n and p[i] == ".":
        m = _STEP.match(p, i + 1) or _STRING.match(p, i + 1)
        if not m or m.group() in _KEYWORDS:
            raise _Fallback
        path.append(m.group())
        i = m.end()
    i = spaces(i)
    for op in _OPS:
        if p.startswith(op, i):
            i = spaces(i + len(op))
            break
    else:
        raise _Fallback
    m = _STRING.match(p, i) or _INT.match(p, i)
    if not m:
        raise _Fallback
    literal = m.group()
    if "hashes" in path[:-1] or path[0] == "hashes":
        algorithm = path[-1].upper().replace("-", "").replace("'", "")
        if algorithm in hashes and not re.match(hashes[algorithm][0], literal.replace("'", "")):
            raise _Fallback  # the reference names the bad hash in its own words
    return m.end()
