"""What a compact lets in: objects within `hops` of its actors, of allowed types, and the TLP,
author and recipients each stored version carries for the outbound gate.

The graph is made of relationships, sightings and embedded references among the compact's objects.
A relationship or sighting is an edge: its own distance is that of its nearest endpoint, and it puts
its endpoints within one hop of each other. Any other reference (a report's object_refs, a
location_ref …) links the two objects both ways. `created_by_ref` and marking references only carry
an object's distance to the identity or marking it names: the identity of an author that wrote about
everything must not connect everything. An envelope is judged as a whole, so an indicator arriving with
its `indicates` relationship to the actor is in scope.

Deleting an object does not re-judge the rest: each version keeps the distance it was admitted at, so a
deletion orphans nothing retroactively (what was shared stays shared, and stays auditable).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

import orjson

from . import markings

UNREACHED = 99
SRO = frozenset({"relationship", "sighting"})
# types a compact always admits: they carry no intelligence of their own
SUPPORT = frozenset({"marking-definition", "extension-definition", "language-content"})
_CARRY_ONLY = ("created_by_ref", "object_marking_refs", "marking_ref")


@dataclasses.dataclass(frozen=True)
class Policy:
    actor_names: tuple[str, ...] = ()  # the scope actors' names and aliases, lower-case
    actor_label: str = "the compact's actors"
    hops: int = 2
    types: tuple[str, ...] = ()  # allow-list; empty admits every type
    default_tlp: str = "amber"  # for objects with no TLP marking
    expires: str | None = None  # ISO date: read-only after it
    grace_days: int = 30  # closed this many days after expiry
    members_visible: bool = False  # may members learn who else is in the compact?
    region: tuple[str, ...] = ()  # ISO 3166 alpha-2 countries a location may lie in; empty: anywhere
    window: tuple[str, ...] = ()  # (first day, last day) an object's own date must fall in; empty: any time
    matching: dict[str, Any] = dataclasses.field(default_factory=dict)  # private matching rules (compact file)
    escalate_after_hours: int = 24  # duty to warn: when an unacknowledged warning goes to the next contact

    def dumps(self) -> str:
        return orjson.dumps(dataclasses.asdict(self)).decode()

    @classmethod
    def loads(cls, text: str) -> "Policy":
        raw = orjson.loads(text or "{}")
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in fields})

    def state(self, today: dt.date) -> str:
        """open, read-only (past expiry) or closed (past the grace period)."""
        if not self.expires:
            return "open"
        ends = dt.date.fromisoformat(self.expires)
        if today <= ends:
            return "open"
        return "read-only" if today <= ends + dt.timedelta(days=self.grace_days) else "closed"


def tlp_rank(obj: dict[str, Any], policy: Policy) -> int:
    if obj.get("type") == "marking-definition":
        return 0
    found = markings.tlp_rank_of(obj)
    return markings.rank(policy.default_tlp) if found is None else found


_CARRIES: dict[str, bool] = {}  # per reference path: does it only carry a distance? (feeds reuse a few)


def _graph_edges(edges: list[tuple[str, str, Any]]) -> tuple[list[str], list[str]]:
    """(links, carried): references that link both ways, and those that only carry a distance."""
    links, carried = [], []
    for path, prop, target in edges:
        carries = _CARRIES.get(path)
        if carries is None:
            carries = prop in _CARRY_ONLY or path.endswith(_CARRY_ONLY)
            if len(_CARRIES) < 10_000:
                _CARRIES[path] = carries
        (carried if carries else links).append(target)
    return links, carried


def distances(policy: Policy, envelope: Sequence[tuple[dict[str, Any], list[tuple[str, str, Any]]]],
              near: Any) -> dict[str, int]:
    """Hop distance from the compact's actors of every object in the envelope (UNREACHED if none).
    ``near`` is what the collection holds around the envelope (``tearline.store.Around``)."""

    dist: dict[str, int] = {}

    def lower(node: str, value: int) -> bool:
        if value < dist.get(node, UNREACHED):
            dist[node] = value
            return True
        return False

    # stored versions keep the distance they were admitted at
    for stix_id, versions in near.held.items():
        lower(stix_id, min(v.hop for v in versions))
    # stored objects that link to the new ones (a relationship that arrived before its indicator)
    for target, hop in near.linked.items():
        lower(target, hop + 1)
    for obj, _ in envelope:
        if obj["type"] in ("threat-actor", "intrusion-set"):
            names = {str(obj.get("name", "")).lower(), *(str(a).lower() for a in obj.get("aliases") or ())}
            if names & set(policy.actor_names):
                lower(obj["id"], 0)
    # Relax until nothing changes; distances only shrink and are bounded, so this ends.
    graph = [(obj["id"], obj["type"] in SRO, *_graph_edges(edges)) for obj, edges in envelope]
    for _ in range(len(envelope) + 2):
        changed = False
        for me, is_sro, links, carried in graph:
            if is_sro:
                ends = [t for t in links if isinstance(t, str)]
                if ends:
                    changed |= lower(me, min(dist.get(t, UNREACHED) for t in ends))
                    for a in ends:
                        for b in ends:
                            if a != b:
                                changed |= lower(a, dist.get(b, UNREACHED) + 1)
            else:
                for t in links:
                    changed |= lower(t, dist.get(me, UNREACHED) + 1)
                    changed |= lower(me, dist.get(t, UNREACHED) + 1)
            for t in carried:
                changed |= lower(t, dist.get(me, UNREACHED))
        if not changed:
            break
    return {obj["id"]: dist.get(obj["id"], UNREACHED) for obj, _ in envelope}


# The date an object is about, for the compact's time window: the first of these it has.
_OWN_DATE = ("first_seen", "valid_from", "published", "first_observed", "start_time", "created")


def refusal(obj: dict[str, Any], hop: int, policy: Policy) -> str | None:
    """Why an object is off-scope, in words a person understands; None when it is admitted."""
    kind = obj.get("type")
    if kind in SUPPORT:
        return None
    if policy.types and kind not in policy.types:
        return f"{obj['id']}: type {kind} is not shared in this compact (allowed: {', '.join(policy.types)})"
    if policy.region and kind == "location" and isinstance(obj.get("country"), str) \
            and obj["country"].upper() not in policy.region:
        return (f"{obj['id']} lies in {obj['country'].upper()}, outside the compact's region "
                f"({', '.join(policy.region)})")
    if policy.window and kind not in ("threat-actor", "intrusion-set", "identity"):
        day = next((str(obj[p])[:10] for p in _OWN_DATE if isinstance(obj.get(p), str)), None)
        if day and not policy.window[0] <= day <= policy.window[1]:
            return (f"{obj['id']} dates from {day}, outside the compact's time window "
                    f"{policy.window[0]} to {policy.window[1]}")
    if hop > policy.hops:
        nearest = "not connected to it at all" if hop >= UNREACHED else f"{hop} hops away"
        return (f"{obj['id']} is not connected to {policy.actor_label} within {policy.hops} hops "
                f"({nearest}); send it with the relationship that links it")
    return None
