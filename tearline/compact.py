"""Compacts: the declarative sharing agreement and ``apply``. The file and its checks are
tearline.compactfile; the names it defines are re-exported here, where callers look for them.

A compact becomes a TAXII API root ``/taxii2/<name>/`` with two collections, ``intel`` and
``warnings``, and one member row per partner. ``apply`` is declarative: the file is the truth, so
members missing from it are removed and lose access at once. New members' tokens are returned once.
"""

from __future__ import annotations

import uuid
from typing import Any

from . import markings, write
from .compactfile import Actor, CompactSpec, MemberSpec, load, parse
from .store import Store

__all__ = ["Actor", "CompactSpec", "MemberSpec", "actor_object", "apply", "is_actor_object", "load", "parse"]

# A fixed namespace so the threat-actor object of a compact's actor has the same id on every hub.
_ACTOR_NS = uuid.UUID("6f1c8f7e-3a0b-4d8e-9a52-3b1f7f0c2d11")


def actor_object(actor: Actor) -> dict[str, Any]:
    """The STIX threat-actor for a scope actor, with a name-derived (deterministic) id."""
    return {
        "type": "threat-actor",
        "spec_version": "2.1",
        "id": f"threat-actor--{uuid.uuid5(_ACTOR_NS, actor.name.lower())}",
        "created": "2015-01-01T00:00:00.000Z",
        "modified": "2015-01-01T00:00:00.000Z",
        "name": actor.name,
        **({"aliases": list(actor.aliases)} if actor.aliases else {}),  # STIX forbids an empty list
        "threat_actor_types": ["terrorist"],
        "object_marking_refs": [markings.TLP2["clear"][0]],
    }


def is_actor_object(obj: dict[str, Any]) -> bool:
    """Whether a threat-actor is a compact's own (its id derives from its name as ``actor_object`` makes it):
    what a member's tools link their reports to."""
    name = obj.get("name")
    return obj.get("type") == "threat-actor" and isinstance(name, str) and \
        obj.get("id") == f"threat-actor--{uuid.uuid5(_ACTOR_NS, name.lower())}"


def apply(store: Store, spec: CompactSpec) -> dict[str, str]:
    """Create or update the compact; return {member: token} for the members that are new, and
    {"member/person": token} for the people that are new."""
    tokens: dict[str, str] = {}
    with store.engine.begin() as conn:
        store.ensure_api_root(conn, spec.name, spec.title, spec.description, spec.policy().dumps())
        store.ensure_collection(conn, spec.name, "intel", f"{spec.title}: intelligence",
                                "Objects shared within the compact's scope")
        store.ensure_collection(conn, spec.name, "warnings", f"{spec.title}: warnings",
                                "Duty-to-warn notices, each visible only to its addressee", member_writable=False)
        existing = {m.name: m for m in store.members_of(conn, spec.name)}
        changed = []
        for m in spec.members:
            profile = {"redact": list(m.redact), "rate_limits": dict(m.rate_limits), "contacts": list(m.contacts),
                       "organisation": m.organisation, "people": list(m.people)}
            if m.kind == "hub":
                profile["kind"] = "hub"
            if m.certificate:  # pinned for any member that has one, not only hubs (tearline.auth)
                profile["certificate"] = m.certificate
            values = {"can_read": m.read, "can_write": m.write, "tlp_max": m.tlp_max, "profile": profile}
            before = existing.get(m.name)
            if before is not None:
                store.update_member(conn, spec.name, m.name, **values)
                if ((before.tlp_max, before.can_read, before.hides_authors)
                        != (m.tlp_max, m.read, "created_by_ref" in m.redact)):
                    changed.append(m.name)
            else:
                tokens[m.name] = store.add_member(conn, spec.name, m.name, **values)  # type: ignore[arg-type]
                changed.append(m.name)
        for gone in sorted(set(existing) - {m.name for m in spec.members}):
            store.drop_member(conn, spec.name, gone)
        ids = {m.name: m.id for m in store.members_of(conn, spec.name)}
        for m in spec.members:
            had = set(store.people_of(conn, ids[m.name]))
            for person in m.people:
                if person not in had:
                    tokens[f"{m.name}/{person}"] = store.add_person(conn, ids[m.name], person)
            for person in sorted(had - set(m.people)):
                store.drop_person(conn, ids[m.name], person)
        for coll in store.collections(spec.name, conn):
            # clients resolving object_marking_refs find the TLP 2.0 definitions in every collection
            objs = markings.definitions() + ([actor_object(a) for a in spec.actors] if coll.alias == "intel" else [])
            write.hub_write(store, conn, coll, objs, None)
        write.settle_members(store, conn, spec.name, changed)
    return tokens
