"""A MISP event as the STIX objects a member posts into a compact.

MISP users take three things for granted that misp-stix does not carry over, so they are made explicit here:
- *TLP inheritance.* A MISP attribute without a TLP tag of its own falls under its event's. Every STIX object
  is marked with the level of what it came from: an attribute's own tag, else the event's; a MISP object (an
  indicator's pattern can hold all its values) the strictest of its attributes' levels; a sighting its
  attribute's; a galaxy cluster the strictest of what it is attached to; the relationships misp-stix makes the
  stricter of their ends. What the bridge cannot trace to its source gets the strictest level in the event:
  nothing goes further than its author let it. TLP 1.0 tags (``tlp:white``) are read as their 2.0 equivalents.
- *Distribution.* An event whose distribution is "Your organisation only" or a sharing group is refused; such
  attributes and objects are left out, and said so: MISP users rely on them staying home.
- *Naming the actor.* A compact admits only what is linked to its actor. An event that names the actor (name
  or alias, in any case, spacing or punctuation) in a galaxy cluster, a tag (``misp-galaxy:threat-actor="ISKP"``)
  or a ``threat-actor`` attribute has its report (or, unpublished, its grouping) linked to the compact's own
  threat-actor object; an event that names it nowhere is refused with what to add, in MISP's terms.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import re
import uuid
from collections.abc import Sequence
from typing import Any

from .. import markings
from ..errors import BadRequest
from .events import _list, attributes, name, own_level, private, shape_problems, strictest, tags, without_tlp

_GALAXY_TAG = re.compile(r'^misp-galaxy:[\w.-]+\s*=\s*"(.+)"$', re.IGNORECASE)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MISSING_NS = uuid.UUID("8e3f1c52-7b0a-4d6e-9f21-5c4a3b2d1e0f")  # uuids for attributes exported without one
UNTAGGED = "amber"  # the level of what no TLP tag marks, in an event that has none
_SHORTEST = 4  # shorter texts ("tcp", "80") say nothing worth a level, and would mark everything


@dataclasses.dataclass
class Converted:
    event: str  # how a MISP user names it
    objects: list[dict[str, Any]]
    linked_by: str  # where the event names the compact's actor
    level: str | None  # the event's TLP, or None when the compact's default governs
    notes: list[str]  # what was left out, and what misp-stix said it could not carry over


def _norm(text: Any) -> str:
    return re.sub(r"[\W_]+", "", str(text)).casefold()


def _spellings(text: Any) -> list[str]:
    """A name as written, and the parts of "Name (ALIAS)" (ACLED's way of naming ISKP)."""
    text = str(text)
    inner = re.findall(r"\(([^()]*)\)", text)
    return [_norm(text), _norm(re.sub(r"\([^()]*\)", "", text)), *(_norm(i) for i in inner)]


def actor_names(actors: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Every name and alias of the compact's actors (letters and digits only, case folded) → its STIX id."""
    names = {}
    for a in actors:
        for n in [a.get("name"), *(a.get("aliases") or ())]:
            if n and _norm(n):
                names[_norm(n)] = a["id"]
    return names


def _match(text: Any, names: dict[str, str]) -> str | None:
    return next((names[s] for s in _spellings(text) if s and s in names), None)


def _clusters(item: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for g in _list(item, "Galaxy") for c in _list(g, "GalaxyCluster")]


def _names_actor(event: dict[str, Any], names: dict[str, str]) -> tuple[str, str] | None:
    """(actor id, where the event names it) or None."""
    holders = [("event", event), *((f"attribute {a.get('value', '')!s:.40}", a) for _, a in attributes(event))]
    for _, item in holders:
        for cluster in _clusters(item):
            meta = cluster.get("meta") if isinstance(cluster.get("meta"), dict) else {}
            synonyms = meta.get("synonyms") if isinstance(meta.get("synonyms"), list) else []
            for n in [cluster.get("value"), *synonyms]:
                if n and (found := _match(n, names)):
                    return found, f"galaxy cluster {cluster.get('tag_name') or cluster.get('value')}"
    for where, item in holders:
        for tag in tags(item):
            text = str(tag.get("name", "")).strip()
            quoted = _GALAXY_TAG.match(text)
            if found := _match(quoted.group(1) if quoted else text, names):
                return found, f"{where.split(' ')[0]} tag {text}"
    for obj, a in attributes(event):
        named = a.get("type") == "threat-actor" or (
            obj is not None and obj.get("name") == "threat-actor" and a.get("object_relation") == "name")
        if named and (found := _match(a.get("value", ""), names)):
            return found, f"threat-actor attribute {a['value']}"
    return None


def _refusal(event: dict[str, Any], compact_name: str, actors: Sequence[dict[str, Any]]) -> str:
    first = actors[0] if actors else {}
    label = first.get("name", "its actor")
    others = ", ".join(first.get("aliases") or ())
    return (f"{name(event)} names no actor of compact {compact_name!r}, which admits only what is linked to "
            f"{label}. Add the threat-actor galaxy cluster to the event (tag misp-galaxy:threat-actor=\"{label}\""
            + (f", or one of its synonyms: {others}" if others else "")
            + "), or a threat-actor attribute with that name, and export it again")


_ANALYST = ("Note", "Opinion", "Relationship")  # MISP 2.5 analyst data, each with its own distribution


def _keep_shared(event: dict[str, Any]) -> list[str]:
    """Leave out what MISP keeps at home: attributes, objects, event reports, analyst data and galaxy
    clusters whose distribution is the organisation or a sharing group, and local tags (MISP never syncs them).
    Say what."""
    notes: list[str] = []

    def kept(items: list[dict[str, Any]], what: Any) -> list[dict[str, Any]]:
        out = []
        for item in items:
            if where := private(item):
                notes.append(f"{what(item)} left out: its distribution is {where}")
            else:
                out.append(item)
        return out

    def clean(item: dict[str, Any]) -> None:
        if isinstance(item.get("Tag"), list):
            local = [t for t in tags(item) if str(t.get("local", "")).lower() in ("1", "true")]
            if local:
                notes.append(f"local tag(s) {', '.join(str(t.get('name')) for t in local)} left out: MISP keeps "
                             "them on this instance")
                item["Tag"] = [t for t in tags(item) if t not in local]
        for g in _list(item, "Galaxy"):
            g["GalaxyCluster"] = kept(_list(g, "GalaxyCluster"), lambda c: f"galaxy cluster {c.get('value')}")
        for key in _ANALYST:
            if isinstance(item.get(key), list):
                item[key] = kept(_list(item, key), lambda n, k=key: f"analyst {k.lower()} {n.get('uuid', '')}")

    event["Attribute"] = kept(_list(event, "Attribute"),
                              lambda a: f"attribute {a.get('type')} {a.get('value', '')!s:.40}")
    objects = []
    for obj in kept(_list(event, "Object"), lambda o: f"object {o.get('name')} {o.get('uuid', '')}"):
        inner = kept(_list(obj, "Attribute"),
                     lambda a, o=obj: f"attribute {a.get('object_relation')} of object {o.get('name')}")
        if inner:
            objects.append({**obj, "Attribute": inner})
    event["Object"] = objects
    if isinstance(event.get("EventReport"), list):
        event["EventReport"] = kept(_list(event, "EventReport"), lambda r: f"event report {r.get('name', '')!s:.40}")
    for item in [event, *event["Attribute"], *event["Object"], *(a for o in event["Object"] for a in o["Attribute"]),
                 *_list(event, "EventReport")]:
        clean(item)
    return notes


def _levels(event: dict[str, Any], level: str | None) -> dict[str, str | None]:
    """uuid (lower case) → the TLP of what the STIX objects named after it carry."""
    eff: dict[str, str | None] = {}

    def put(key: Any, lv: str | None) -> None:
        if key:
            k = str(key).lower()
            eff[k] = strictest([eff.get(k), lv]) if k in eff else lv

    put(event.get("uuid"), level)
    put((event.get("Orgc") or {}).get("uuid") if isinstance(event.get("Orgc"), dict) else None, level)
    for c in _clusters(event):
        put(c.get("uuid"), level)
    for _, a in attributes(event):
        mine = own_level(a) or level
        put(a.get("uuid"), mine)
        for s in _list(a, "Sighting"):
            put(s.get("uuid"), mine)
        for c in _clusters(a):
            put(c.get("uuid"), mine)
    for obj in _list(event, "Object"):
        put(obj.get("uuid"), strictest(own_level(a) or level for a in _list(obj, "Attribute")) or level)
    return eff


def to_stix(event: dict[str, Any], compact_name: str, actors: Sequence[dict[str, Any]]) -> Converted:
    """One MISP event as the STIX objects to post in the compact (BadRequest when it names no actor of the
    compact, or MISP's distribution keeps it at home)."""
    from misp_stix_converter import MISPtoSTIX21Parser

    logging.getLogger("misp_stix_converter").setLevel(logging.CRITICAL)  # what it logs, it also returns: notes
    if problems := shape_problems(event):
        raise BadRequest(f"{name(event)}: " + "; ".join(problems[:20]), code="misp_malformed")
    if where := private(event):
        raise BadRequest(f"{name(event)}: its distribution is {where}, which keeps it in your MISP; change the "
                         "event's distribution to share it", code="misp_private")
    linked = _names_actor(event, actor_names(actors))
    if linked is None:
        raise BadRequest(_refusal(event, compact_name, actors), code="misp_no_actor")
    actor_id, linked_by = linked
    event = copy.deepcopy(event)
    notes = _keep_shared(event)
    for n, (_, a) in enumerate(attributes(event)):
        if not a.get("uuid"):  # the same uuid on every push of the same export, so nothing doubles
            a["uuid"] = str(uuid.uuid5(_MISSING_NS, f"{event.get('uuid')}|{n}|{a.get('type')}|{a.get('value')}"))
    level = own_level(event)
    # what nobody tagged has not been cleared for release: AMBER, whatever the compact's default
    base = level or UNTAGGED
    eff = _levels(event, base)
    worst = strictest([base, *eff.values()])
    values = _values(event, base)
    for _, a in attributes(event):
        without_tlp(a)
    without_tlp(event)

    parser = MISPtoSTIX21Parser()
    try:
        parser.parse_misp_event({"Event": event})
        objs = json.loads(parser.bundle.serialize()).get("objects") or []
    except Exception as exc:  # misp-stix raises what its own code meets; the event is what was wrong
        raise BadRequest(f"{name(event)}: misp-stix cannot convert it ({type(exc).__name__}: {exc})",
                         code="misp_unconvertible") from None
    said = [str(m) for ms in [*parser.warnings.values(), *parser.errors.values()] for m in ms]
    if not objs:
        raise BadRequest(f"{name(event)}: misp-stix made nothing of it" + (f" ({said[0]})" if said else ""),
                         code="misp_unconvertible")
    objs = _hives(_without_sighters(objs, event, notes))
    if level is None:
        notes.append(f"the event has no TLP tag: what no tag marks is sent as TLP:{UNTAGGED.upper()}")
    return Converted(name(event), _marked(objs, eff, worst, actor_id, values), linked_by, level, notes + said)


_HIVES = {"HKLM": "HKEY_LOCAL_MACHINE", "HKCU": "HKEY_CURRENT_USER", "HKCR": "HKEY_CLASSES_ROOT",
          "HKU": "HKEY_USERS", "HKCC": "HKEY_CURRENT_CONFIG"}


def _without_sighters(objs: list[dict[str, Any]], event: dict[str, Any], notes: list[str]) -> list[dict[str, Any]]:
    """MISP names the organisation behind each sighting; which partner saw what is theirs to share, not the
    event author's, and the compact would refuse their identity as unconnected anyway. The sightings go, without
    who made them."""
    author = (event.get("Orgc") or {}).get("uuid") if isinstance(event.get("Orgc"), dict) else None
    sighters = {r for o in objs if o["type"] == "sighting" for r in o.get("where_sighted_refs") or ()}
    sighters.discard(f"identity--{author}")
    if not sighters:
        return objs
    notes.append(f"{len(sighters)} sighting organisation(s) left out of their sightings: who saw what is "
                 "theirs to share")
    creators = {o.get("created_by_ref") for o in objs}
    out = []
    for obj in objs:
        if obj["id"] in sighters and obj["id"] not in creators:
            continue
        if obj["type"] == "sighting":
            kept = [r for r in obj.get("where_sighted_refs") or () if r not in sighters]
            obj = {k: v for k, v in obj.items() if k != "where_sighted_refs"} | ({"where_sighted_refs": kept}
                                                                                if kept else {})
        out.append(obj)
    return out


def _hives(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """MISP writes registry keys with abbreviated hives (HKLM\\…); STIX wants the hive's full name."""
    for obj in objs:
        key = obj.get("key")
        if obj["type"] == "windows-registry-key" and isinstance(key, str):
            head, sep, rest = key.partition("\\")
            obj["key"] = _HIVES.get(head.upper(), head) + sep + rest
        if obj["type"] == "indicator" and isinstance(obj.get("pattern"), str):
            for short, full in _HIVES.items():
                obj["pattern"] = re.sub(rf"'{short}\\\\", f"'{full}\\\\\\\\", obj["pattern"], flags=re.IGNORECASE)
    return objs


def _values(event: dict[str, Any], base: str) -> list[tuple[str, str]]:
    """(text, level) for what each attribute says (its value, each part of a composite value, its comment):
    wherever misp-stix puts a text, the object holding it is at least that strict."""
    found = []
    for _, a in attributes(event):
        mine = own_level(a) or base
        texts = [str(a.get("value", "")), *str(a.get("value", "")).split("|"), str(a.get("comment") or "")]
        found += [(t, mine) for t in texts if len(t.strip()) >= _SHORTEST]
    return found


def _marked(objs: list[dict[str, Any]], eff: dict[str, str | None], worst: str | None,
            actor_id: str, values: list[tuple[str, str]]) -> list[dict[str, Any]]:
    out = []
    for obj in objs:
        if obj["type"] == "marking-definition" and obj["id"] in markings.LEVEL_OF_ID:
            continue  # the hub holds the TLP definitions; ours are 2.0
        suffix = obj["id"].split("--", 1)[-1].lower()
        found = eff.get(suffix, worst) if _UUID.match(suffix) else worst
        if obj["type"] in ("report", "grouping") and actor_id not in obj.get("object_refs", ()):
            obj["object_refs"] = [*obj.get("object_refs", ()), actor_id]
        # misp-stix merges values across MISP objects (a pe into its file, a registry value into its key, a
        # display name into an address): the values an object holds decide too, not only its name
        text = json.dumps(obj, ensure_ascii=False)
        held = [lv for v, lv in values if v in text or json.dumps(v, ensure_ascii=False)[1:-1] in text]
        _mark(obj, strictest([found, *held]))
        out.append(obj)
    levels = {o["id"]: markings.tlp_of(o) for o in out}
    for obj in out:
        if obj["type"] == "relationship":
            # misp-stix's relationships join what one attribute or object became, or an object to what it
            # references: each says as much as the stricter of its ends
            ends = [levels.get(obj.get("source_ref")), levels.get(obj.get("target_ref"))]
            if all(ends):
                _mark(obj, strictest(ends))
        elif obj["type"] == "sighting" and levels.get(obj.get("sighting_of_ref")):
            _mark(obj, strictest([levels[obj["id"]], levels[obj["sighting_of_ref"]]]))
    return out


def _mark(obj: dict[str, Any], level: str | None) -> None:
    marks = [m for m in obj.get("object_marking_refs") or () if m not in markings.LEVEL_OF_ID]
    if level and obj["type"] != "marking-definition":
        marks.append(markings.TLP2[level][0])
    if marks:
        obj["object_marking_refs"] = marks
    else:
        obj.pop("object_marking_refs", None)
