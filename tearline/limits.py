"""The hub's limits on what one request may make it do, checked before the work they bound.

Every per-object and per-request step of the hub is linear in its input; these limits bound the input, so
that no member (and no stranger) can make one request cost the hub, or the other members, more than a
stated amount. Each is a setting (tearline.config; the README's settings table):

- ``max_objects``: objects in one envelope (a larger envelope is refused whole, 422, before any is judged);
- ``max_string``: characters in any one string of an object, ``max_list``: items in any one list or
  properties in any one dictionary (an object over either fails on its own, named, before validation);
  nesting deeper than tearline.stix.MAX_DEPTH fails the same way;
- ``max_failures``: failures a status resource explains at length (messages up to MESSAGE_CHARS); every
  failure is listed, as TAXII 2.1 §4.3.1 and its clients expect (taxii2-client refuses a status whose
  ``failures`` disagree with ``failure_count``), the rest with messages cut to SHORT_MESSAGE_CHARS, so a status
  stays a fraction of the envelope it answers;
- ``member_storage_mb``: bytes of object versions one member may have stored in one compact (an envelope
  that would pass it is refused whole, 422, and stores nothing);
- ``member_mailbox_mb``: bytes of private-matching messages one member may have waiting in the mailbox;
- ``address_per_minute`` / ``anonymous_per_minute``: requests per client address that end without an
  authenticated caller, and of those the ones that end refused (tearline.web.doorman).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .errors import Unprocessable
from .stix import MAX_DEPTH

MESSAGE_CHARS = 2_000  # one failure's message in a status; the whole message says what the first part shows
SHORT_MESSAGE_CHARS = 160  # past the first max_failures
MB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Limits:
    objects: int = 10_000
    string: int = 262_144
    list: int = 10_000
    failures: int = 100
    storage_bytes: int = 1024 * MB
    mailbox_bytes: int = 256 * MB
    address_per_minute: int = 600
    anonymous_per_minute: int = 60

    @classmethod
    def of(cls, settings: Any) -> Limits:
        return cls(objects=settings.max_objects, string=settings.max_string, list=settings.max_list,
                   failures=settings.max_failures, storage_bytes=settings.member_storage_mb * MB,
                   mailbox_bytes=settings.member_mailbox_mb * MB, address_per_minute=settings.address_per_minute,
                   anonymous_per_minute=settings.anonymous_per_minute)


def check_envelope(count: int, limits: Limits) -> None:
    if count > limits.objects:
        raise Unprocessable(f"the envelope holds {count:,} objects; this hub takes at most {limits.objects:,} "
                              "in one envelope (max_objects): send them in several",
                              details={"max_objects": limits.objects, "objects": count})


def object_problems(obj: Any, limits: Limits) -> list[str]:
    """What in ``obj`` is over the limits: [] when nothing is. One pass, no recursion, and it stops at the
    first problem, so an object built to be expensive costs no more than its own size to refuse. (This runs
    on every object written: the pass that finds a problem is kept to counting, and only an object over a
    limit is walked again to say where.)"""
    if _within(obj, limits):
        return []
    return _where(obj, limits)


def _within(obj: Any, limits: Limits) -> bool:
    most_string, most_list = limits.string, limits.list
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        node, level = stack.pop()
        if level > MAX_DEPTH:
            return False
        kind = type(node)
        if kind is dict or kind is list:
            if len(node) > most_list:
                return False
            if kind is dict:
                if any(type(key) is str and len(key) > most_string for key in node):
                    return False
                node = node.values()
            for item in node:
                vk = type(item)
                if vk is str:
                    if len(item) > most_string:
                        return False
                elif vk is dict or vk is list:
                    stack.append((item, level + 1))
        elif kind is str and len(node) > most_string:
            return False
    return True


def _where(obj: Any, limits: Limits) -> list[str]:
    stack: list[tuple[Any, str, int]] = [(obj, "", 0)]
    while stack:
        node, path, level = stack.pop()
        if level > MAX_DEPTH:
            return [f"{path or 'the object'}: nests deeper than {MAX_DEPTH} levels; no STIX object needs that"]
        kind = type(node)
        if kind is str:
            if len(node) > limits.string:
                return [f"{path}: a string of {len(node):,} characters; this hub keeps at most {limits.string:,} "
                        "(max_string)"]
        elif kind is list:
            if len(node) > limits.list:
                return [f"{path}: a list of {len(node):,} items; this hub keeps at most {limits.list:,} (max_list)"]
            stack.extend((item, f"{path}[{i}]", level + 1) for i, item in enumerate(node)
                         if type(item) in (str, list, dict))
        elif kind is dict:
            if len(node) > limits.list:
                return [f"{path or 'the object'}: {len(node):,} properties; this hub keeps at most {limits.list:,} "
                        "in one dictionary (max_list)"]
            for key, value in node.items():
                if type(key) is str and len(key) > limits.string:
                    return [f"{path or 'the object'}: a key of {len(key):,} characters"]
                if type(value) in (str, list, dict):
                    stack.append((value, f"{path}.{key[:60]}" if path else key[:60], level + 1))
    return ["over the hub's limits"]


def reference_problems(refs: list[tuple[str, str, Any]], limits: Limits) -> list[str]:
    """Each reference is stored with its path: an object whose references' paths add up to more than
    ``limits.string`` characters (long keys, deep nesting, repeated per list item) fails on its own."""
    total = sum(len(path) for path, _, _ in refs)
    if total > limits.string or len(refs) > limits.list:
        return [f"references: {len(refs):,} of them, their paths adding up to {total:,} characters; this hub "
                f"keeps at most {limits.list:,} references and {limits.string:,} characters of their paths per "
                "object (max_list, max_string)"]
    return []


def bounded_failures(failures: list[dict[str, Any]], limits: Limits) -> list[dict[str, Any]]:
    """The failures a status lists: all of them, the first ``limits.failures`` with messages cut to
    MESSAGE_CHARS, the rest to SHORT_MESSAGE_CHARS."""
    out = []
    for n, f in enumerate(failures):
        message = f.get("message", "")
        most = MESSAGE_CHARS if n < limits.failures else SHORT_MESSAGE_CHARS
        if len(message) > most:
            f = f | {"message": message[:most] + f" … ({len(message) - most:,} more characters)"}
        f = f | {k: v[:300] for k, v in f.items() if k != "message" and isinstance(v, str) and len(v) > 300}
        out.append(f)
    return out
