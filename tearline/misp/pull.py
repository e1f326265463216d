"""What a member may read, as MISP events.

misp-stix classifies a whole bundle as MISP-made as soon as one object carries its tool label, and then loses
everything else; it does not convert incidents at all. So each event that came from MISP (its report or
grouping carries the label) is restored by the internal parser on its own, everything else goes through the
external parser into one event of the bridge's own, and the incidents become MISP ``incident`` objects that
keep their casualty figures, date, source and places (``geolocation`` objects). Attributes and objects carry
the TLP of the member's copy, parts below a tear line included; the bridge's own event carries the strictest
level of its contents, so nobody who re-shares it whole loosens anything. What cannot be converted is named
in the notes; one partner's object that misp-stix cannot read costs its own event, never the pull.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from .. import compact, markings
from .events import strictest, tag_level

# misp-stix's own label on what it made from a MISP event (its importer checks for either)
MISP_MADE = frozenset({'misp:tool="MISP-STIX-Converter"', 'misp:tool="misp2stix2"'})
_EVENT_NS = uuid.UUID("2c0a8d4e-61b7-4f3a-9d55-7e1b0c9f4a21")  # the bridge's own event of a member's copy


@dataclasses.dataclass
class Pulled:
    events: list[dict[str, Any]]  # {"Event": …} as MISP imports them
    counts: dict[str, int]  # what was read and what became what
    notes: list[str]


def _refs(obj: dict[str, Any]) -> set[str]:
    found = set()
    for key, value in obj.items():
        if key.endswith("_ref") and isinstance(value, str):
            found.add(value)
        elif key.endswith("_refs") and isinstance(value, list):
            found.update(v for v in value if isinstance(v, str))
    return found | marking_refs(obj)


def marking_refs(obj: dict[str, Any]) -> set[str]:
    """The marking definitions an object names."""
    found = {r for r in obj.get("object_marking_refs") or () if isinstance(r, str)}
    return found | {g["marking_ref"] for g in obj.get("granular_markings") or ()
                    if isinstance(g, dict) and isinstance(g.get("marking_ref"), str)}


def misp_made(obj: dict[str, Any]) -> bool:
    return obj.get("type") in ("report", "grouping") and bool(MISP_MADE & set(obj.get("labels") or ()))


def level(obj: dict[str, Any]) -> str | None:
    """The strictest TLP anywhere in a copy: its own marking and those of its parts (a tear line's)."""
    parts = [markings.LEVEL_OF_ID.get(g.get("marking_ref")) for g in obj.get("granular_markings") or ()
             if isinstance(g, dict)]
    return strictest([markings.tlp_of(obj), *parts])


def _bundle(objs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": list(objs)}


def _with_support(group: dict[str, dict[str, Any]], held: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """A group's objects and the identities and marking definitions they name (a converter resolves them)."""
    need = {r for obj in group.values() for r in _refs(obj)}
    extra = [held[r] for r in sorted(need - set(group)) if r in held and held[r]["type"] in
             ("identity", "marking-definition")]
    return [*group.values(), *extra]


def _true_levels(event: dict[str, Any], copies: Iterable[dict[str, Any]], notes: list[str]) -> dict[str, Any]:
    """Tags no looser than the member's copies: misp-stix tags what it converts from object markings alone, so
    a part below a tear line, a galaxy made of a stricter object, or what cannot carry a tag of its own (an
    event report) could be re-shared in MISP at a looser level than the hub released it at. Each attribute is
    tagged at least as strict as the copies named after it and the galaxy clusters on it; an event report
    stricter than its event raises the event's tag."""
    named: dict[str, list[str | None]] = {}
    for obj in copies:
        named.setdefault(str(obj.get("id", "")).split("--", 1)[-1], []).append(level(obj))
        if obj.get("name") and obj.get("type") not in ("report", "grouping", "identity"):
            # a galaxy cluster misp-stix made of an object keeps its name, not always its uuid
            named.setdefault(f"name:{obj['name']}", []).append(level(obj))
    event_level = strictest(tag_level(t) for t in event.get("Tag") or ())

    def raise_to(item: dict[str, Any], floor: str | None, uuids: Iterable[str]) -> None:
        own = strictest(tag_level(t) for t in item.get("Tag") or ())
        want = strictest([found for u in uuids for found in named.get(str(u), [])])
        if want and markings.rank(want) > markings.rank(own or floor or "clear"):
            item["Tag"] = [t for t in item.get("Tag") or () if tag_level(t) is None] + [{"name": f"tlp:{want}"}]

    def clusters(item: dict[str, Any]) -> list[str]:
        return [key for g in item.get("Galaxy") or () for c in g.get("GalaxyCluster") or ()
                for key in (str(c.get("uuid")), f"name:{c.get('value')}")]

    for a in event.get("Attribute") or ():
        raise_to(a, event_level, [a.get("uuid"), *clusters(a)])
    for o in event.get("Object") or ():
        for a in o.get("Attribute") or ():
            raise_to(a, event_level, [a.get("uuid"), o.get("uuid"), *clusters(a)])
    reports = strictest(found for r in event.get("EventReport") or () for found in named.get(str(r.get("uuid")), []))
    events_own = strictest([reports, *(found for u in clusters(event) for found in named.get(u, []))])
    if events_own and markings.rank(events_own) > markings.rank(event_level or "clear"):
        event["Tag"] = [t for t in event.get("Tag") or () if tag_level(t) is None] + [{"name": f"tlp:{events_own}"}]
        notes.append(f"MISP event {event.get('uuid')}: tagged tlp:{events_own}, the level of what it holds that "
                     "carries no tag of its own (an event report, an event-level galaxy)")
    return event


def _tag(obj: dict[str, Any]) -> list[str]:
    found = level(obj)
    return [f"tlp:{found}"] if found else []


def _parse(parser_cls: Any, objs: list[dict[str, Any]], title: str | None, notes: list[str],
           what: str) -> dict[str, Any] | None:
    from misp_stix_converter.tools.stix2_loading_helpers import load_stix2_content

    parser = parser_cls()
    try:
        parser.load_stix_bundle(load_stix2_content(_bundle(objs)))
        parser.parse_stix_bundle(single_event=True, title=title)
        event = json.loads(parser.misp_event.to_json())
    except Exception as exc:  # one partner's object misp-stix cannot read costs its own event, not the pull
        notes.append(f"{what}: misp-stix could not convert it ({type(exc).__name__}: {str(exc)[:200]}); left out")
        return None
    notes += [str(m) for ms in [*parser.warnings.values(), *parser.errors.values()] for m in ms]
    return event


def _geolocation(place: dict[str, Any]) -> dict[str, Any]:
    from pymisp import MISPObject

    geo = MISPObject("geolocation", standalone=False, strict=False)
    geo.uuid = place["id"].split("--", 1)[1]
    tags = _tag(place)
    for key, rel in (("latitude", "latitude"), ("longitude", "longitude"), ("name", "text"),
                     ("administrative_area", "region"), ("city", "city"), ("country", "countrycode")):
        if place.get(key) not in (None, ""):
            geo.add_attribute(rel, value=place[key], Tag=tags, disable_correlation=True)
    if isinstance(place.get("precision"), (int, float)):
        geo.add_attribute("accuracy-radius", value=place["precision"] / 1000, Tag=tags, disable_correlation=True)
    return json.loads(geo.to_json())


def _incident(inc: dict[str, Any], places: list[str]) -> dict[str, Any]:
    """One incident as a MISP ``incident`` object: name, description, casualty figures (counters beyond the
    template, which MISP stores), date as first_seen, source and event id as the comment; it refers to the
    ``geolocation`` objects of its places."""
    from pymisp import MISPObject

    tags = _tag(inc)
    obj = MISPObject("incident", standalone=False, strict=False)
    obj.uuid = inc["id"].split("--", 1)[1]
    obj.first_seen = inc.get("first_seen") or inc.get("created")
    refs = inc.get("external_references") or []
    obj.comment = "; ".join(f"{r.get('source_name')} {r.get('external_id') or r.get('url') or ''}".strip()
                            for r in refs if isinstance(r, dict))[:1000]
    obj.add_attribute("name", value=inc.get("name") or inc["id"], Tag=tags)
    if inc.get("description"):
        obj.add_attribute("description", value=inc["description"], Tag=tags)
    figures = inc.get("x_tearline_fatalities") if isinstance(inc.get("x_tearline_fatalities"), dict) else {}
    for key in ("best", "low", "high"):
        if isinstance(figures.get(key), int):
            obj.add_attribute(f"fatalities-{key}", value=figures[key], type="counter", Tag=tags,
                              comment=f"people killed ({key} estimate)", disable_correlation=True)
    for place in places:
        obj.add_reference(place.split("--", 1)[1], "located-at")
    return json.loads(obj.to_json())


def _incident_objects(incidents: list[dict[str, Any]], rels: list[dict[str, Any]],
                      held: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    located: dict[str, list[str]] = {}
    for r in rels:
        place = held.get(r.get("target_ref", ""))
        if r.get("relationship_type") == "located-at" and place is not None and place.get("type") == "location":
            located.setdefault(r["source_ref"], []).append(place["id"])
    out = [_incident(inc, located.get(inc["id"], [])) for inc in incidents]
    # a place several incidents share is one geolocation object (MISP refuses two objects with one uuid)
    out += [_geolocation(held[p]) for p in sorted({p for ps in located.values() for p in ps})]
    return out


def to_misp(objs: Sequence[dict[str, Any]], title: str, event_uuid: str) -> Pulled:
    """A member's copy of a collection as MISP events: one per event that came from MISP, and one (``title``,
    ``event_uuid``) for everything else."""
    # both libraries log what they also return (misp-stix) or what MISP accepts (pymisp: object relations
    # beyond a template, as the casualty figures are); the notes say what was not carried over
    logging.getLogger("misp_stix_converter").setLevel(logging.ERROR)
    logging.getLogger("pymisp").setLevel(logging.ERROR)
    from misp_stix_converter import ExternalSTIX2toMISPParser, InternalSTIX2toMISPParser

    held = {o["id"]: o for o in objs}
    notes: list[str] = []
    taken: set[str] = set()
    events = []
    actors = {o["id"] for o in objs if compact.is_actor_object(o)}
    claimed: dict[str, str] = {}  # MISP event uuid → the container that holds it (the first listed)
    for report in [o for o in objs if misp_made(o)]:
        group = {ref: held[ref] for ref in report.get("object_refs") or () if ref in held and ref not in actors}
        taken.add(report["id"])
        if not group:
            notes.append(f"{report['id']}: you may read none of what it holds; left out")
            continue
        taken |= set(group)
        # the link to the compact's actor was the bridge's own: the event names the actor in its galaxy
        group[report["id"]] = {**report, "object_refs": list(group)}
        said: list[str] = []
        event = _parse(InternalSTIX2toMISPParser, _with_support(group, held), None, said, report["id"])
        sightings = [i for i, o in group.items() if o["type"] == "sighting"]
        if event is None and sightings:
            # a sighting whose sighter the member may not see is one misp-stix cannot restore: the event
            # goes without its sightings rather than not at all
            for i in sightings:
                del group[i]
            group[report["id"]] = {**report, "object_refs": [i for i in group if i != report["id"]]}
            said = [f"{report['id']}: {len(sightings)} sighting(s) misp-stix cannot restore; left out"]
            event = _parse(InternalSTIX2toMISPParser, _with_support(group, held), None, said, report["id"])
        notes += said
        if event is not None:
            event = _true_levels(event, group.values(), notes)
            owner = claimed.setdefault(str(event.get("uuid")), report["id"])
            if owner != report["id"]:
                # a second container claiming a uuid (another partner's, or the same event once unpublished): it
                # must not overwrite the first, here or in MISP, which would take it for an update of it
                event["uuid"] = str(uuid.uuid5(_EVENT_NS, report["id"]))
                notes.append(f"{report['id']} claims MISP event uuid {owner.split('--')[1]}, already {owner}'s "
                             f"(listed first); written as {event['uuid']}")
            events.append({"Event": event})
    mine = _own_event([o for o in objs if o["id"] not in taken], held, title, event_uuid, notes,
                      ExternalSTIX2toMISPParser)
    incidents = sum(1 for o in objs if o["type"] == "incident" and o["id"] not in taken)
    if mine is not None:
        events.append({"Event": mine})
    return Pulled(events, {"objects": len(objs), "misp_events": len(events) - (mine is not None),
                           "incidents": incidents}, notes)


def _own_event(rest: list[dict[str, Any]], held: dict[str, dict[str, Any]], title: str, event_uuid: str,
               notes: list[str], parser_cls: Any) -> dict[str, Any] | None:
    """Everything not made by MISP as one event of the bridge's own, incidents as MISP incident objects."""
    incidents = [o for o in rest if o["type"] == "incident"]
    inc_ids = {o["id"] for o in incidents}
    inc_rels = [o for o in rest if o["type"] == "relationship" and o.get("source_ref") in inc_ids]
    places = {r["target_ref"] for r in inc_rels if r.get("relationship_type") == "located-at"
              and str(r.get("target_ref")).startswith("location--")}
    kept_rels = {"located-at", "attributed-to"}  # carried by the incident object and the event's actor galaxy
    lost = [r for r in inc_rels if r.get("relationship_type") not in kept_rels]
    if lost:
        kinds = ", ".join(sorted({str(r.get("relationship_type")) for r in lost}))
        notes.append(f"{len(lost)} relationship(s) of incidents ({kinds}) have no MISP form here; left out")
    # what else refers to a place keeps it in the converted content
    elsewhere = {r for o in rest if o["type"] != "relationship" or o.get("source_ref") not in inc_ids
                 for r in _refs(o)}
    dropped = inc_ids | {r["id"] for r in inc_rels} | (places - elsewhere)
    converted = [o for o in rest if o["id"] not in dropped and o["type"] != "marking-definition"]
    if not converted and not incidents:
        return None
    own: dict[str, Any] = {}
    if converted:
        said: list[str] = []
        own = _parse(parser_cls, _with_support({o["id"]: o for o in converted}, held), title, said,
                     "the rest of the collection") or {}
        sightings = [o for o in converted if o["type"] == "sighting"]
        if not own and sightings:
            # one partner's sighting misp-stix cannot restore (its sighter out of the member's sight) must not
            # cost every partner's content: the rest goes without sightings
            said = [f"{len(sightings)} sighting(s) misp-stix cannot restore; left out"]
            kept = {o["id"]: o for o in converted if o["type"] != "sighting"}
            own = _parse(parser_cls, _with_support(kept, held), title, said, "the rest of the collection") or {}
        notes += said
    if own:
        own = _true_levels(own, converted, notes)
    own.update({"info": title, "uuid": event_uuid})
    own["Object"] = [*(own.get("Object") or []), *_incident_objects(incidents, inc_rels, held)]
    found = strictest(level(o) for o in rest if o["type"] != "marking-definition")
    own["Tag"] = [t for t in own.get("Tag") or () if tag_level(t) is None] + \
        ([{"name": f"tlp:{found}"}] if found else [])
    return own


def event_uuid(hub: str, compact_name: str, member: str) -> str:
    """The bridge's own event of a member's copy keeps its uuid from pull to pull, so MISP updates it."""
    return str(uuid.uuid5(_EVENT_NS, f"{hub.rstrip('/')}|{compact_name}|{member}"))
