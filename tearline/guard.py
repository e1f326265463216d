"""The counter-intelligence guard: limits on how fast each member may use each class of endpoint, so
that nobody can page through a compact, harvest manifests or probe the mailbox at machine speed.

Limits are requests per minute per member and endpoint class, set in the compact file
(``rate_limits``, with per-member overrides) and resolved into each member's profile when the compact
is applied. Each (member, class) has a token bucket holding ten seconds' worth of requests, refilled
continuously; a request that finds it empty gets 429 with Retry-After, and the refusal is on record in
the audit trail like any other. Buckets live in the hub process (one hub process per store).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from .errors import TooManyRequests
from .model import Member

# Endpoint classes and their default limits (requests per minute per member)
CLASSES = {
    "meta": 600,  # discovery, API root, collections, status
    "read": 1200,  # objects, object, versions, manifest
    "write": 120,  # POST objects, DELETE object
    "match": 60,  # the private-matching mailbox
}
BURST_SECONDS = 10


def parse_limits(raw: Any, where: tuple[Any, ...], problem: Any) -> dict[str, int]:
    """A ``rate_limits`` mapping from a compact file: {class: requests per minute}."""
    if not isinstance(raw, dict):
        problem(where, f"must be a mapping of endpoint class ({', '.join(CLASSES)}) to requests per minute")
        return {}
    out = {}
    for key, value in raw.items():
        if key not in CLASSES:
            problem((*where, key), f"unknown endpoint class (known: {', '.join(CLASSES)})")
        elif not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1_000_000:
            problem((*where, key), f"must be a whole number of requests per minute from 1 to 1000000, got {value!r}")
        else:
            out[key] = value
    return out


class RateLimiter:
    def __init__(self, clock: Any = time.monotonic):
        self._clock = clock
        self._buckets: dict[tuple[str, int, str], tuple[float, float]] = {}  # → (tokens, last refill)
        self._lock = threading.Lock()

    def check(self, member: Member, kind: str) -> None:
        per_minute = (member.profile.get("rate_limits") or {}).get(kind, CLASSES[kind])
        rate = per_minute / 60.0
        capacity = max(1.0, rate * BURST_SECONDS)
        key = (member.api_root, member.id, kind)
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                wait = math.ceil((1.0 - tokens) / rate)
                raise TooManyRequests(
                    f"member {member.name!r} is over its limit of {per_minute} {kind} requests a minute; "
                    f"retry in {wait} s", details={"retry_after": wait, "class": kind, "per_minute": per_minute})
            self._buckets[key] = (tokens - 1.0, now)
