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

from collections.abc import Mapping, Sequence
from typing import Any

from . import markings
from .model import Policy
from .stix import SCO_TYPES, Ref

UNREACHED = 99
SRO = frozenset({"relationship", "sighting"})
# types a compact always admits: they carry no intelligence of their own
SUPPORT = frozenset({"marking-definition", "extension-definition", "language-content"})
_CARRY_ONLY = ("created_by_ref", "object_marking_refs", "marking_ref")


def tlp_rank(obj: dict[str, Any], policy: Policy) -> int:
    if obj.get("id") in markings.RANK_OF_ID:
        return 0  # the TLP definitions themselves, which every reader must resolve
    found = markings.tlp_rank_of(obj)
    return markings.rank(policy.default_tlp) if found is None else found


_CARRIES: dict[tuple[str, str, bool], bool] = {}  # per (path, prop, observable?): only carries a distance?


def _carries(stix_type: str, path: str, prop: str) -> bool:
    """A reference that only carries its object's distance to its target: an author's identity and markings
    (the identity of an author that wrote about everything must not connect everything), and what an
    observation is made of (the observables an observed-data lists, and the observables they name, come in
    with it: they are its content, not separate intelligence)."""
    observable = stix_type == "observed-data" and prop == "object_refs" or stix_type in SCO_TYPES
    key = (path, prop, observable)
    found = _CARRIES.get(key)
    if found is None:
        found = observable or prop in _CARRY_ONLY or path.endswith(_CARRY_ONLY)
        if len(_CARRIES) < 10_000:
            _CARRIES[key] = found
    return found


def distances(policy: Policy, envelope: Sequence[tuple[dict[str, Any], list[Ref]]],
              held: Mapping[str, int]) -> dict[str, int]:
    """Hop distance from the compact's actors of every object in the envelope (UNREACHED if none).

    ``held``: the lowest hop of each stored id the writer may see that the envelope names (stored versions
    keep the distance they were admitted at). Only the envelope's own references count: what stored objects
    refer to never admits a new object, since a reference the writer may not see (cut from its copy, or to an
    object hidden from it) would otherwise tell it, by admitting a guess, what it points at. The graph's
    edges, with their weights: a relationship or sighting takes the distance of its nearest end (weight 0)
    and puts its ends within one hop of each other; any other reference links two objects both ways
    (weight 1); a carrying reference passes its object's distance to its target (weight 0). A shortest-path
    search over them, in time linear in the envelope."""
    start: dict[str, int] = dict(held)
    names = set(policy.actor_names)
    for obj, _ in envelope:
        if obj["type"] in ("threat-actor", "intrusion-set") and names:
            aliases = {str(obj.get("name", "")).lower(), *(str(a).lower() for a in obj.get("aliases") or ())}
            if aliases & names:
                start[obj["id"]] = 0
    dist = _shortest(start, _edges(envelope))
    return {obj["id"]: dist.get(obj["id"], UNREACHED) for obj, _ in envelope}


def _edges(envelope: Sequence[tuple[dict[str, Any], list[Ref]]]) -> dict[str, list[tuple[str, int]]]:
    """The envelope's reference graph, weighted as ``distances`` says."""
    edges: dict[str, list[tuple[str, int]]] = {}

    def edge(a: str, b: str, weight: int) -> None:
        edges.setdefault(a, []).append((b, weight))

    for obj, refs in envelope:
        me, kind = obj["id"], obj["type"]
        links = []
        for path, prop, target in refs:
            if not isinstance(target, str):
                continue
            if _carries(kind, path, prop):
                edge(me, target, 0)
            else:
                links.append(target)
        if kind in SRO:
            for a in links:
                edge(a, me, 0)
                for b in links:
                    if a != b:
                        edge(a, b, 1)
        else:
            for t in links:
                edge(me, t, 1)
                edge(t, me, 1)
    return edges


def _shortest(start: Mapping[str, int], edges: Mapping[str, list[tuple[str, int]]]) -> dict[str, int]:
    """Dijkstra with buckets: weights are 0 or 1 and distances stop at UNREACHED."""
    dist: dict[str, int] = {}
    buckets: list[list[str]] = [[] for _ in range(UNREACHED + 1)]
    for node, d in start.items():
        if d < UNREACHED:
            buckets[d].append(node)
    best = dict(start)
    for d in range(UNREACHED):
        bucket = buckets[d]
        while bucket:
            node = bucket.pop()
            if node in dist or best.get(node, UNREACHED) != d:
                continue
            dist[node] = d
            for nxt, weight in edges.get(node, ()):
                nd = d + weight
                if nd < best.get(nxt, UNREACHED) and nxt not in dist:
                    best[nxt] = nd
                    buckets[nd].append(nxt)
    return dist


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
