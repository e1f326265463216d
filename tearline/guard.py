"""The counter-intelligence guard: limits on how fast each member may use each class of endpoint, so
that nobody can page through a compact, harvest manifests or probe the mailbox at machine speed.

Limits are requests per minute per member and endpoint class, set in the compact file
(``rate_limits``, with per-member overrides) and resolved into each member's profile when the compact
is applied. Each (member, class) has a token bucket holding ten seconds' worth of requests, refilled
continuously; a request that finds it empty gets 429 with Retry-After, and the refusal is on record in
the audit trail like any other. An envelope counts as one write per OBJECTS_PER_WRITE objects, so a
member's share of the hub's work is bounded by what it sends, not by how many requests it makes; one
larger than the member's whole burst is refused (422) with the size it may send. Buckets live in the
hub process on SQLite, and in the store on PostgreSQL, where several processes share them (tearline.cluster).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from .errors import TooManyRequests, Unprocessable
from .model import Member

# Endpoint classes and their default limits (requests per minute per member)
CLASSES = {
    "meta": 600,  # discovery, API root, collections, status
    "read": 1200,  # objects, object, versions, manifest
    "write": 120,  # POST objects (one per OBJECTS_PER_WRITE objects), DELETE object
    "match": 60,  # the private-matching mailbox
}
BURST_SECONDS = 10
OBJECTS_PER_WRITE = 100  # an envelope counts as one write request per this many objects it holds


class Buckets:
    """Token buckets, each holding BURST_SECONDS' worth of its rate and refilled continuously. Keys are
    anything hashable; the number of keys is bounded (the least recently used go first), so callers that
    key by something a stranger chooses (a client address) cannot grow the hub's memory without end."""

    MAX_KEYS = 100_000

    def __init__(self, clock: Any = time.monotonic):
        self._clock = clock
        self._buckets: dict[Any, tuple[float, float]] = {}  # → (tokens, last refill), oldest use first
        self._lock = threading.Lock()

    def take(self, key: Any, per_minute: int, charge: float = 1.0, debt: bool = False) -> int:
        """Take ``charge`` tokens; 0 when they were there, else the seconds until they will be (nothing taken).
        With ``debt``, the charge is taken even past empty (the bucket then refills from below zero)."""
        rate = per_minute / 60.0
        capacity = max(1.0, rate * BURST_SECONDS)
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            wait = 0 if tokens >= charge or debt else max(1, math.ceil((charge - tokens) / rate))
            self._buckets[key] = (tokens - charge if not wait else tokens, now)
            if len(self._buckets) > self.MAX_KEYS:
                del self._buckets[next(iter(self._buckets))]
        return wait

    def empty(self, key: Any, per_minute: int) -> bool:
        """Would taking one token now fail? (Takes nothing.)"""
        rate = per_minute / 60.0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (max(1.0, rate * BURST_SECONDS), now))
        return tokens + (now - last) * rate < 1.0

    def empty_any(self, pairs: list[tuple[Any, int]]) -> bool:
        """Would taking one token now fail in any of these (key, per_minute) buckets?"""
        return any(self.empty(key, per_minute) for key, per_minute in pairs)


class RateLimiter:
    """Each member's limits, per endpoint class."""

    def __init__(self, clock: Any = time.monotonic, buckets: Any = None):
        self._buckets = buckets if buckets is not None else Buckets(clock)

    def charge(self, member: Member, kind: str, objects: int) -> None:
        """Charge an envelope (checked already as one request) for its size: it counts one request per
        OBJECTS_PER_WRITE objects, taken even past empty so that the member's next requests wait for it. An
        envelope larger than the member's whole burst is refused (422: 413 is only for a body over
        max_content_length, TAXII 2.1 §4.2.1): no single request of a member may cost more than ten seconds of
        its share of the hub."""
        per_minute = (member.profile.get("rate_limits") or {}).get(kind, CLASSES[kind])
        burst = max(1.0, per_minute / 60.0 * BURST_SECONDS)
        cost = objects / OBJECTS_PER_WRITE
        if cost > burst:
            most = int(burst * OBJECTS_PER_WRITE)
            raise Unprocessable(f"an envelope of {objects:,} objects counts as {cost:,.0f} {kind} requests, "
                                  f"more than member {member.name!r} may make at once under its limit of "
                                  f"{per_minute} a minute: send at most {most:,} objects per envelope",
                                  details={"max_objects": most})
        if cost > 1:
            self._buckets.take((member.api_root, member.id, kind), per_minute, cost - 1, debt=True)

    def check(self, member: Member, kind: str) -> None:
        per_minute = (member.profile.get("rate_limits") or {}).get(kind, CLASSES[kind])
        wait = self._buckets.take((member.api_root, member.id, kind), per_minute)
        if wait:
            raise TooManyRequests(
                f"member {member.name!r} is over its limit of {per_minute} {kind} requests a minute; "
                f"retry in {wait} s", details={"retry_after": wait, "class": kind, "per_minute": per_minute})
