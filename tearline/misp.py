"""The MISP bridge: a member's MISP events in, and what the member may read out as MISP events.

It runs on the member's machine (tearline.cli.misp) and reaches the hub over TAXII like any of the member's
tools, so everything it writes passes the compact's scope and TLP rules, and everything it reads the gate.
The conversion is misp-stix's, MISP's own converter; what is written here is what misp-stix leaves to its
caller.

Push. MISP users take two things for granted that misp-stix does not carry over:
- *TLP inheritance.* A MISP attribute without a TLP tag of its own falls under its event's; misp-stix marks
  only the event's report, and the hub would give every other object the compact's default. Each STIX object
  is marked here with the TLP of what it came from: the attribute's own tag (for a MISP object, the strictest
  of its attributes' tags), else the event's. TLP 1.0 tags (``tlp:white``) are read as their 2.0 equivalents.
- *Naming the actor.* A compact admits only what is linked to its actor. An event that names the actor in a
  galaxy cluster (its value or a synonym), a tag (``misp-galaxy:threat-actor="ISKP"``) or a ``threat-actor``
  attribute has its report linked to the compact's own threat-actor object; an event that names it nowhere is
  refused with what to add, in MISP's terms.

Pull. misp-stix classifies a whole bundle as MISP-made as soon as one object carries its tool label, and then
loses everything else; it does not convert incidents at all. So each event that came from MISP (its report
carries the label) is restored by the internal parser on its own, everything else goes through the external
parser into one event, and the incidents become MISP ``incident`` objects that keep their casualty figures,
date, place (a ``geolocation`` object) and source. Attributes and objects carry the TLP of the member's copy;
the bridge's own event carries the strictest of its contents (nobody who re-shares it whole loosens anything).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import re
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from . import compact, markings
from .errors import BadRequest, ConfigError

# misp-stix's own label on what it made from a MISP event (its importer checks for either)
MISP_MADE = frozenset({'misp:tool="MISP-STIX-Converter"', 'misp:tool="misp2stix2"'})
_TAG_TLP = re.compile(r"^tlp\s*:\s*(white|clear|green|amber\+strict|amber|red)\s*$", re.IGNORECASE)
_GALAXY_TAG = re.compile(r'^misp-galaxy:[\w.-]+\s*=\s*"(.+)"$', re.IGNORECASE)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_EVENT_NS = uuid.UUID("2c0a8d4e-61b7-4f3a-9d55-7e1b0c9f4a21")  # the bridge's own event of a member's copy


# --- reading MISP's files --------------------------------------------------------------------------

def read_events(path: Path) -> list[dict[str, Any]]:
    """The MISP events in one file as MISP exports them: ``{"Event": …}``, a bare event, a list of either, or
    a REST search's ``{"response": [...]}``."""
    try:
        doc = json.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise BadRequest(f"{path}: not JSON ({exc})") from None
    if isinstance(doc, dict) and isinstance(doc.get("response"), list):
        doc = doc["response"]
    found = []
    for n, item in enumerate(doc if isinstance(doc, list) else [doc]):
        event = item.get("Event", item) if isinstance(item, dict) else None
        if not isinstance(event, dict) or not ("info" in event or "Attribute" in event or "Object" in event):
            where = f"{path}" if not isinstance(doc, list) else f"{path}, item {n}"
            raise BadRequest(f"{where}: not a MISP event (expected {{\"Event\": {{\"info\": …, \"Attribute\": "
                             "[…]}}}} as MISP exports it)")
        found.append(event)
    return found


def _name(event: dict[str, Any]) -> str:
    return f"MISP event {event.get('uuid') or '(no uuid)'} \"{event.get('info') or ''}\""


# --- TLP tags ----------------------------------------------------------------------------------------

def tag_level(tag: Any) -> str | None:
    """The TLP 2.0 level a MISP tag names (``tlp:white`` is CLEAR), or None."""
    name = tag.get("name") if isinstance(tag, dict) else tag
    found = _TAG_TLP.match(name.strip()) if isinstance(name, str) else None
    if not found:
        return None
    level = found.group(1).lower()
    return "clear" if level == "white" else level


def _strictest(levels: Iterable[str | None]) -> str | None:
    ranked = [markings.rank(x) for x in levels if x]
    return markings.LEVELS[max(ranked)] if ranked else None


def _own_level(item: dict[str, Any]) -> str | None:
    return _strictest(tag_level(t) for t in item.get("Tag") or ())


def _without_tlp(item: dict[str, Any]) -> None:
    if item.get("Tag"):
        item["Tag"] = [t for t in item["Tag"] if tag_level(t) is None]


# --- push: MISP → STIX --------------------------------------------------------------------------------

@dataclasses.dataclass
class Converted:
    event: str  # how a MISP user names it
    objects: list[dict[str, Any]]
    linked_by: str  # where the event names the compact's actor
    level: str | None  # the event's TLP, or None when the compact's default governs
    notes: list[str]  # what misp-stix said it could not carry over


def _norm(text: Any) -> str:
    return " ".join(str(text).replace('"', " ").split()).casefold()


def actor_names(actors: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Every name and alias of the compact's actors (normalised) → the actor's STIX id."""
    names = {}
    for a in actors:
        for n in [a.get("name"), *(a.get("aliases") or ())]:
            if n:
                names[_norm(n)] = a["id"]
    return names


def _names_actor(event: dict[str, Any], names: dict[str, str]) -> tuple[str, str] | None:
    """(actor id, where the event names it) or None."""
    for galaxy in event.get("Galaxy") or ():
        for cluster in galaxy.get("GalaxyCluster") or ():
            meta = cluster.get("meta") or {}
            for n in [cluster.get("value"), *(meta.get("synonyms") or ())]:
                if n and _norm(n) in names:
                    return names[_norm(n)], f"galaxy cluster {cluster.get('tag_name') or cluster.get('value')}"
    attributes = list(event.get("Attribute") or ())
    for obj in event.get("Object") or ():
        attributes += obj.get("Attribute") or ()
    for where, item in [("event", event), *(("attribute", a) for a in attributes)]:
        for tag in item.get("Tag") or ():
            name = tag.get("name") if isinstance(tag, dict) else None
            if not isinstance(name, str):
                continue
            found = _GALAXY_TAG.match(name.strip())
            value = found.group(1) if found else name
            if _norm(value) in names:
                return names[_norm(value)], f"{where} tag {name}"
    for a in attributes:
        if a.get("type") == "threat-actor" and _norm(a.get("value", "")) in names:
            return names[_norm(a["value"])], f"threat-actor attribute {a['value']}"
    return None


def _refusal(event: dict[str, Any], compact_name: str, actors: Sequence[dict[str, Any]]) -> str:
    first = actors[0] if actors else {}
    label = first.get("name", "its actor")
    others = ", ".join(first.get("aliases") or ())
    return (f"{_name(event)} names no actor of compact {compact_name!r}, which admits only what is linked to "
            f"{label}. Add the threat-actor galaxy cluster to the event (tag misp-galaxy:threat-actor=\"{label}\""
            + (f", or one of its synonyms: {others}" if others else "")
            + "), or a threat-actor attribute with that name, and export it again")


def to_stix(event: dict[str, Any], compact_name: str, actors: Sequence[dict[str, Any]]) -> Converted:
    """One MISP event as the STIX objects to post in the compact (BadRequest when it names no actor of it)."""
    from misp_stix_converter import MISPtoSTIX21Parser

    linked = _names_actor(event, actor_names(actors))
    if linked is None:
        raise BadRequest(_refusal(event, compact_name, actors), code="misp_no_actor")
    actor_id, linked_by = linked
    event = copy.deepcopy(event)
    level = _own_level(event)
    own: dict[str, str] = {}  # attribute or object uuid → its TLP, where it is not the event's
    for a in event.get("Attribute") or ():
        if (found := _own_level(a)) and a.get("uuid"):
            own[str(a["uuid"]).lower()] = found
        _without_tlp(a)
    for obj in event.get("Object") or ():
        found = _strictest(_own_level(a) for a in obj.get("Attribute") or ())
        if found and obj.get("uuid"):
            own[str(obj["uuid"]).lower()] = found
        for a in obj.get("Attribute") or ():
            _without_tlp(a)
    _without_tlp(event)

    parser = MISPtoSTIX21Parser()
    try:
        parser.parse_misp_event({"Event": event})
    except Exception as exc:  # misp-stix raises what its own code meets; the event is what was wrong
        raise BadRequest(f"{_name(event)}: misp-stix cannot convert it ({type(exc).__name__}: {exc})",
                         code="misp_unconvertible") from None
    objs = json.loads(parser.bundle.serialize())["objects"]
    notes = [str(m) for ms in parser.warnings.values() for m in ms] + \
            [str(m) for ms in parser.errors.values() for m in ms]

    out = []
    for obj in objs:
        if obj["type"] == "marking-definition" and obj["id"] in markings.LEVEL_OF_ID:
            continue  # the hub holds the TLP definitions; ours are 2.0
        marks = [m for m in obj.get("object_marking_refs") or () if m not in markings.LEVEL_OF_ID]
        suffix = obj["id"].split("--", 1)[-1]
        mine = own.get(suffix) if _UUID.match(suffix) else None
        chosen = mine or level
        if chosen and obj["type"] != "marking-definition":
            marks.append(markings.TLP2[chosen][0])
        if marks:
            obj["object_marking_refs"] = marks
        else:
            obj.pop("object_marking_refs", None)
        if obj["type"] == "report" and actor_id not in obj.get("object_refs", ()):
            obj["object_refs"] = [*obj.get("object_refs", ()), actor_id]
        out.append(obj)
    # misp-stix's relationships join what one attribute became (an indicator based on its observation): each
    # goes as far as the stricter of its ends, no further and no less far
    levels = {o["id"]: markings.tlp_of(o) for o in out}
    for obj in out:
        ends = [levels.get(obj.get("source_ref")), levels.get(obj.get("target_ref"))]
        if obj["type"] == "relationship" and all(ends) and (found := _strictest(ends)):
            others = [m for m in obj.get("object_marking_refs") or () if m not in markings.LEVEL_OF_ID]
            obj["object_marking_refs"] = [*others, markings.TLP2[found][0]]
    return Converted(_name(event), out, linked_by, level, notes)


# --- pull: STIX → MISP --------------------------------------------------------------------------------

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
    for g in obj.get("granular_markings") or ():
        if isinstance(g.get("marking_ref"), str):
            found.add(g["marking_ref"])
    return found


def marking_refs(obj: dict[str, Any]) -> set[str]:
    """The marking definitions an object names."""
    found = {r for r in obj.get("object_marking_refs") or () if isinstance(r, str)}
    return found | {g["marking_ref"] for g in obj.get("granular_markings") or ()
                    if isinstance(g, dict) and isinstance(g.get("marking_ref"), str)}


def misp_made(obj: dict[str, Any]) -> bool:
    return obj.get("type") in ("report", "grouping") and bool(MISP_MADE & set(obj.get("labels") or ()))


def _bundle(objs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": list(objs)}


def _with_support(group: dict[str, dict[str, Any]], held: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """A group's objects and the identities and marking definitions they name (a converter resolves them)."""
    need = {r for obj in group.values() for r in _refs(obj)}
    extra = [held[r] for r in sorted(need - set(group)) if r in held and held[r]["type"] in
             ("identity", "marking-definition")]
    return [*group.values(), *extra]


def _tlp_tag(obj: dict[str, Any]) -> dict[str, Any] | None:
    level = markings.tlp_of(obj)
    return {"name": f"tlp:{level}"} if level else None


def _parse(parser_cls: Any, objs: list[dict[str, Any]], title: str | None, notes: list[str]) -> dict[str, Any]:
    from misp_stix_converter.tools.stix2_loading_helpers import load_stix2_content

    parser = parser_cls()
    parser.load_stix_bundle(load_stix2_content(_bundle(objs)))
    parser.parse_stix_bundle(single_event=True, title=title)
    notes += [str(m) for ms in parser.warnings.values() for m in ms]
    notes += [str(m) for ms in parser.errors.values() for m in ms]
    return json.loads(parser.misp_event.to_json())


def _incident_objects(incidents: list[dict[str, Any]], rels: list[dict[str, Any]],
                      held: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each incident as a MISP ``incident`` object (name, description, casualty figures, date, source) and,
    where it was located, a ``geolocation`` object it references."""
    from pymisp import MISPObject

    located = {r["source_ref"]: r["target_ref"] for r in rels if r.get("relationship_type") == "located-at"}
    out = []
    for inc in incidents:
        tag = _tlp_tag(inc)
        tags = [tag["name"]] if tag else []
        obj = MISPObject("incident", standalone=False, strict=False)
        obj.uuid = inc["id"].split("--", 1)[1]
        obj.first_seen = inc.get("first_seen") or inc.get("created")
        refs = inc.get("external_references") or []
        obj.comment = "; ".join(f"{r.get('source_name')} {r.get('external_id') or r.get('url') or ''}".strip()
                                for r in refs)[:1000]
        obj.add_attribute("name", value=inc.get("name") or inc["id"], Tag=tags)
        if inc.get("description"):
            obj.add_attribute("description", value=inc["description"], Tag=tags)
        figures = inc.get("x_tearline_fatalities") or {}
        for key in ("best", "low", "high"):
            if isinstance(figures.get(key), int):
                obj.add_attribute(f"fatalities-{key}", value=figures[key], type="counter", Tag=tags,
                                  comment=f"people killed ({key} estimate)", disable_correlation=True)
        place = held.get(located.get(inc["id"], ""))
        if place is not None:
            geo = MISPObject("geolocation", standalone=False, strict=False)
            geo.uuid = place["id"].split("--", 1)[1]
            ptags = [t["name"]] if (t := _tlp_tag(place)) else []
            for key, rel in (("latitude", "latitude"), ("longitude", "longitude"), ("name", "text"),
                             ("administrative_area", "region"), ("city", "city"), ("country", "countrycode")):
                if place.get(key) not in (None, ""):
                    geo.add_attribute(rel, value=place[key], Tag=ptags, disable_correlation=True)
            if isinstance(place.get("precision"), (int, float)):
                geo.add_attribute("accuracy-radius", value=place["precision"] / 1000, Tag=ptags,
                                  disable_correlation=True)
            obj.add_reference(geo.uuid, "located-at")
            out.append(json.loads(geo.to_json()))
        out.insert(len(out) - (1 if place is not None else 0), json.loads(obj.to_json()))
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
    for report in [o for o in objs if misp_made(o)]:
        group = {}
        for ref in report.get("object_refs") or ():
            if ref in held and ref not in actors:
                group[ref] = held[ref]
        # the link to the compact's actor was the bridge's own: the event names the actor in its galaxy
        group[report["id"]] = {**report, "object_refs": list(group)}
        taken |= set(group)
        event = _parse(InternalSTIX2toMISPParser, _with_support(group, held), None, notes)
        events.append({"Event": event})

    rest = [o for o in objs if o["id"] not in taken]
    incidents = [o for o in rest if o["type"] == "incident"]
    inc_ids = {o["id"] for o in incidents}
    inc_rels = [o for o in rest if o["type"] == "relationship" and o.get("source_ref") in inc_ids]
    places = {r["target_ref"] for r in inc_rels if r.get("relationship_type") == "located-at"}
    # what else refers to a place keeps it in the converted content
    elsewhere = {r for o in rest if o["type"] != "relationship" or o.get("source_ref") not in inc_ids
                 for r in _refs(o)}
    dropped = inc_ids | {r["id"] for r in inc_rels} | (places - elsewhere)
    converted = [o for o in rest if o["id"] not in dropped and o["type"] != "marking-definition"]
    counts = {"objects": len(objs), "misp_events": len(events), "incidents": len(incidents)}
    if converted or incidents:
        own: dict[str, Any] = {"info": title, "uuid": event_uuid, "Attribute": [], "Object": []}
        if converted:
            own = _parse(ExternalSTIX2toMISPParser, _with_support({o["id"]: o for o in converted}, held),
                         title, notes)
            own["uuid"] = event_uuid
        own.setdefault("Object", []).extend(_incident_objects(incidents, inc_rels, held))
        level = _strictest(markings.tlp_of(o) for o in rest if o["type"] != "marking-definition")
        tags = [t for t in own.get("Tag") or () if tag_level(t) is None]
        own["Tag"] = tags + ([{"name": f"tlp:{level}"}] if level else [])
        events.append({"Event": own})
    return Pulled(events, counts, notes)


def event_uuid(hub: str, compact_name: str, member: str) -> str:
    """The bridge's own event of a member's copy keeps its uuid from pull to pull, so MISP updates it."""
    return str(uuid.uuid5(_EVENT_NS, f"{hub.rstrip('/')}|{compact_name}|{member}"))
