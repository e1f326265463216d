"""The MISP bridge with misp-stix and pymisp, MISP's own libraries, both ways: a realistic MISP event (domain,
ip-dst, sha256, a file object, a threat-actor galaxy, per-attribute TLP, a comment) pushed by a member, and
what each member may read pulled back as MISP events, next to the demo's incidents; counts compared."""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymisp import MISPEvent
from typer.testing import CliRunner

from tearline import compact, events, markings, misp, write
from tearline import keys as hub_keys
from tearline.cli import app
from tearline.errors import BadRequest
from tearline.events import actors, tostix
from tearline.store import Store
from tests.conftest import Hub, stored_ids
from tests.stixgen import TS

DATA = Path(__file__).resolve().parent / "data"
EVENT = DATA / "misp-event-iskp.json"
EVENTS_DATA = Path(__file__).resolve().parent.parent / "tearline" / "data" / "events"
OBJECTS = "/taxii2/isis-k/collections/intel/objects/"


def _actor(demo_spec: compact.CompactSpec) -> dict[str, Any]:
    return compact.actor_object(demo_spec.actors[0])


ACTOR = compact.actor_object(compact.Actor("Islamic State Khorasan Province",
                                           ("ISIS-K", "ISKP", "IS-K", "Wilayat Khorasan", "Islamic State Khorasan")))


def _event() -> dict[str, Any]:
    [event] = misp.read_events(EVENT)
    return event


# --- push, without a hub -------------------------------------------------------------------------------

def test_an_event_becomes_stix_with_misps_tlp_inheritance_and_its_link_to_the_actor(
        demo_spec: compact.CompactSpec) -> None:
    actor = _actor(demo_spec)
    done = misp.to_stix(_event(), "isis-k", [actor])
    by_type = Counter(o["type"] for o in done.objects)
    # 3 attributes and 1 object with indicators (each with its observation), the comment, the report, the
    # galaxy's threat-actor and the creator's identity; nothing of MISP's TLP definitions (the hub's are 2.0)
    assert by_type == {"indicator": 4, "observed-data": 4, "relationship": 4, "file": 2, "domain-name": 1,
                       "ipv4-addr": 1, "network-traffic": 1, "x-misp-attribute": 1, "report": 1,
                       "threat-actor": 1, "identity": 1}
    level = {o["id"].split("--")[1]: markings.tlp_of(o) for o in done.objects if o["type"] != "relationship"}
    assert level["11111111-1111-4111-8111-111111111111"] == "green"  # no tag of its own: the event's
    assert level["22222222-2222-4222-8222-222222222222"] == "amber"  # its own tlp:amber
    assert level["33333333-3333-4333-8333-333333333333"] == "clear"  # its own tlp:clear
    assert level["55555555-5555-4555-8555-555555555555"] == "amber"  # a MISP object: its strictest attribute
    assert level["5e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"] == "green"  # the report: the event's tag
    tlp_ids = {markings.TLP2[x][0] for x in markings.LEVELS}
    for obj in done.objects:
        assert set(obj.get("object_marking_refs", ())) & set(markings.LEVEL_OF_ID) <= tlp_ids  # 2.0 ids only
        if obj["type"] == "relationship":  # no further than the stricter of its ends
            ends = [markings.tlp_of(o) for o in done.objects if o["id"] in (obj["source_ref"], obj["target_ref"])]
            assert markings.rank(markings.tlp_of(obj)) == max(markings.rank(x) for x in ends)
    [report] = [o for o in done.objects if o["type"] == "report"]
    assert actor["id"] in report["object_refs"]
    assert done.linked_by == 'galaxy cluster misp-galaxy:threat-actor="ISKP"' and done.level == "green"


@pytest.mark.parametrize("how", ["tag", "attribute tag", "threat-actor attribute", "synonym"])
def test_the_actor_is_found_wherever_misp_users_name_it(demo_spec: compact.CompactSpec, how: str) -> None:
    event = _event()
    event.pop("Galaxy")
    event["Tag"] = [t for t in event["Tag"] if not t["name"].startswith("misp-galaxy")]
    if how == "tag":
        event["Tag"].append({"name": 'misp-galaxy:threat-actor="Islamic State Khorasan Province"'})
    elif how == "attribute tag":
        event["Attribute"][0]["Tag"] = [{"name": 'misp-galaxy:threat-actor="ISIS-K"'}]
    elif how == "threat-actor attribute":
        event["Attribute"].append({"uuid": "88888888-8888-4888-8888-888888888888", "type": "threat-actor",
                                   "category": "Attribution", "value": "  iskp ", "to_ids": False})
    else:
        event["Tag"].append({"name": "Wilayat   Khorasan"})
    done = misp.to_stix(event, "isis-k", [_actor(demo_spec)])
    [report] = [o for o in done.objects if o["type"] == "report"]
    assert _actor(demo_spec)["id"] in report["object_refs"]


def test_an_event_that_names_no_actor_is_refused_in_misps_terms(demo_spec: compact.CompactSpec) -> None:
    event = _event()
    event.pop("Galaxy")
    event["Tag"] = [{"name": "tlp:green"}, {"name": 'misp-galaxy:threat-actor="APT28"'}]
    with pytest.raises(BadRequest) as refused:
        misp.to_stix(event, "isis-k", [_actor(demo_spec)])
    said = refused.value.description
    assert "5e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b" in said and "misp-galaxy:threat-actor=" in said
    assert "ISIS-K" in said and "threat-actor attribute" in said


@given(st.sampled_from(["tlp:white", "TLP:WHITE", "tlp:clear", "tlp:green", "tlp:amber", "tlp:amber+strict",
                        "tlp:red", " Tlp : Amber ", "tlp:ex:chr", "tlp:unclear", "pap:green", "green", ""]))
def test_tlp_tags_in_either_version_are_read_as_tlp_2(tag: str) -> None:
    found = misp.tag_level({"name": tag})
    name = tag.strip().lower().replace(" ", "")
    expected = {"tlp:white": "clear"}.get(name, name[4:] if name[4:] in markings.LEVELS and name[:4] == "tlp:"
                                           else None)
    assert found == expected


@given(event_level=st.sampled_from([None, *markings.LEVELS]),
       own=st.lists(st.sampled_from([None, "white", *markings.LEVELS]), min_size=3, max_size=3))
def test_every_object_carries_its_own_tag_else_the_events(event_level: str | None, own: list[str | None]) -> None:
    event = copy.deepcopy(_event())
    event["Tag"] = [t for t in event["Tag"] if misp.tag_level(t) is None]
    if event_level:
        event["Tag"].append({"name": f"tlp:{event_level}"})
    for attribute, level in zip(event["Attribute"][:3], own, strict=True):
        attribute["Tag"] = [{"name": f"tlp:{level}"}] if level else []
    done = misp.to_stix(event, "isis-k", [ACTOR])
    for attribute, level in zip(event["Attribute"][:3], own, strict=True):
        want = {"white": "clear"}.get(level or "", level) or event_level or "amber"  # untagged: AMBER
        for obj in done.objects:
            if obj["id"].endswith(attribute["uuid"]):
                assert markings.tlp_of(obj) == want, (obj["id"], level, event_level)


_VALUES = {  # (MISP object or None, relation or type, value): what an event's attributes carry
    "domain": ("domain-ip", "domain", "relay-7.khurasan.example"),
    "ip": ("domain-ip", "ip", "198.51.100.77"),
    "from": ("email", "from", "recruiter@mail.example"),
    "subject": ("email", "subject", "Bayan weekly 1445"),
    "ip-dst": (None, "ip-dst", "203.0.113.99"),
    "url": (None, "url", "https://files.example/bayan.apk"),
}


def _generated(event_level: str | None, own: dict[str, str | None], private: dict[str, bool],
               published: bool) -> dict[str, Any]:
    event = copy.deepcopy(_event())
    event["Tag"] = [{"name": 'misp-galaxy:threat-actor="ISKP"'}] + ([{"name": f"tlp:{event_level}"}] if event_level else [])
    event.pop("Galaxy")
    if not published:
        event.pop("published")
        event.pop("publish_timestamp")
    event["Attribute"], objects = [], {}
    for n, (key, (holder, relation, value)) in enumerate(_VALUES.items()):
        attribute = {"uuid": f"{n + 1:08x}-0000-4000-8000-00000000abcd", "type": relation.replace("from", "email-src")
                     .replace("subject", "email-subject").replace("ip", "ip-dst").replace("ip-dst-dst", "ip-dst"),
                     "value": value, "to_ids": True, "timestamp": "1710086400", "category": "Network activity"}
        if own[key]:
            attribute["Tag"] = [{"name": f"tlp:{own[key]}"}]
        if private[key]:
            attribute["distribution"] = "0"
        if holder is None:
            event["Attribute"].append(attribute)
        else:
            attribute["object_relation"] = relation
            objects.setdefault(holder, []).append(attribute)
    event["Object"] = [{"uuid": f"{n + 20:08x}-0000-4000-8000-00000000abcd", "name": holder, "meta-category": "network",
                        "timestamp": "1710086400", "Attribute": attrs} for n, (holder, attrs) in enumerate(objects.items())]
    return event


@given(event_level=st.sampled_from([None, *markings.LEVELS]),
       own=st.fixed_dictionaries({k: st.sampled_from([None, "white", *markings.LEVELS]) for k in _VALUES}),
       private=st.fixed_dictionaries({k: st.booleans() for k in _VALUES}), published=st.booleans())
def test_no_value_goes_further_than_its_misp_author_let_it(event_level: str | None, own: dict[str, str | None],
                                                           private: dict[str, bool], published: bool) -> None:
    """The push's TLP invariant, over generated events: every STIX object that carries an attribute's value (its
    observable, an indicator's pattern, an observation) is at least as strict as the attribute's own tag, else
    the event's (MISP's inheritance; AMBER where neither says), however misp-stix groups values (a domain-ip or
    email object makes one indicator of several); a value MISP's distribution keeps at home is in no object at
    all. Published or not
    (misp-stix makes a report or a grouping), the event is linked to the compact's actor."""
    event = _generated(event_level, own, private, published)
    done = misp.to_stix(event, "isis-k", [ACTOR])
    text = {o["id"]: json.dumps(o) for o in done.objects}
    for key, (_, _, value) in _VALUES.items():
        carriers = [o for o in done.objects if value in text[o["id"]]]
        if private[key]:
            assert not carriers, (key, [o["id"] for o in carriers])
            continue
        # what no tag marks, in an event that has none, has not been cleared for release: AMBER
        want = {"white": "clear"}.get(own[key] or "", own[key]) or event_level or "amber"
        assert carriers, key
        for obj in carriers:
            got = markings.tlp_of(obj)
            assert got is not None and markings.rank(got) >= markings.rank(want), (key, obj["id"], got, want)
    [container] = [o for o in done.objects if o["type"] in ("report", "grouping")]
    assert container["type"] == ("report" if published else "grouping") and ACTOR["id"] in container["object_refs"]


@pytest.mark.parametrize(("change", "said"), [
    (lambda e: e.update(distribution="0"), "Your organisation only"),
    (lambda e: e.update(Attribute={"uuid": "x"}), "Attribute must be a list of objects"),
    (lambda e: e["Attribute"][0].update(Tag=[{"name": "tlp:amber strict"}]), "names no TLP level"),
    (lambda e: e["Attribute"][0].update(Tag=["tlp:red"]), "a tag without a name"),
    (lambda e: e.update(timestamp="2024-03-10T16:00:00Z"), "misp-stix made nothing of it"),
])
def test_what_misp_users_get_wrong_is_named_and_nothing_converted(change: Any, said: str) -> None:
    event = copy.deepcopy(_event())
    change(event)
    with pytest.raises(BadRequest, match=said):
        misp.to_stix(event, "isis-k", [ACTOR])


@pytest.mark.parametrize("spelling", ["ISIS K", "IS-KP", "Wilayat-Khorasan", "Islamic State - Khorasan Province",
                                      "Islamic State Khorasan Province (ISKP)", "isis\u2011k"])
def test_the_actor_is_found_however_it_is_spelled(spelling: str) -> None:
    event = copy.deepcopy(_event())
    event.pop("Galaxy")
    event["Tag"] = [{"name": "tlp:green"}, {"name": f'misp-galaxy:threat-actor="{spelling}"'}]
    assert ACTOR["id"] in next(o for o in misp.to_stix(event, "isis-k", [ACTOR]).objects
                               if o["type"] == "report")["object_refs"]


def test_files_that_are_not_misp_events_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(BadRequest, match="bad.json: not JSON"):
        misp.read_events(bad)
    bad.write_text(json.dumps({"type": "bundle", "objects": []}))
    with pytest.raises(BadRequest, match="not a MISP event"):
        misp.read_events(bad)
    several = tmp_path / "search.json"
    several.write_text(json.dumps({"response": [json.loads(EVENT.read_text()), json.loads(EVENT.read_text())]}))
    assert len(misp.read_events(several)) == 2


# --- both ways, through a hub --------------------------------------------------------------------------

def _cli(hub: Hub, member: str, token: str, *args: str) -> Any:
    return CliRunner().invoke(app, ["misp", *args, "--compact", "isis-k", "--hub", hub.url, "--member", member,
                                    "--token", token])


def _seed_incidents(hub: Hub, store: Store, demo_spec: compact.CompactSpec, tmp_path: Path) -> list[dict[str, Any]]:
    """The demo's incidents: its three event files (UCDP GED Pakistan, a UCDP Candidate release, the curated
    list), shared as `tearline demo` shares them."""
    db = tmp_path / "e.duckdb"
    events.ingest([EVENTS_DATA / "ucdp-ged-pakistan" / "conflict_data_pak.csv",
                   EVENTS_DATA / "ucdp-candidate-2023-10" / "GEDEvent_v23_0_10.csv",
                   EVENTS_DATA / "iskp-attacks" / "iskp_attacks.csv"], db)
    objs = tostix.actor_objects(events.connect(db), demo_spec.actors[0].name, None, None,
                                actors.with_compact(demo_spec))
    intel = store.collection("isis-k", "intel")
    assert intel is not None
    with store.engine.begin() as conn:
        write.hub_write(store, conn, intel, objs, hub_keys.load(hub.settings))
    return [o for o in objs if o["type"] == "incident"]


def _pulled(hub: Hub, member: str, token: str, out: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    done = _cli(hub, member, token, "pull", "--out", str(out))
    assert done.exit_code == 0, done.output
    found = {}
    for file in sorted(out.glob("*.json")):
        doc = json.loads(file.read_text())
        MISPEvent().load(copy.deepcopy(doc))  # MISP's own library loads it as an event (and empties what it read)
        found[doc["Event"]["uuid"]] = doc["Event"]
    made = found.pop("5e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b")
    [own] = found.values()
    return made, own


def _tags(item: dict[str, Any]) -> set[str]:
    return {t["name"] for t in item.get("Tag") or ()}


def test_a_misp_event_goes_in_and_each_member_pulls_what_it_may_read(
        hub: Hub, tokens: dict[str, str], store: Store, demo_spec: compact.CompactSpec, tmp_path: Path) -> None:
    incidents = _seed_incidents(hub, store, demo_spec, tmp_path)
    pushed = _cli(hub, "state-a", tokens["state-a"], "push", str(EVENT))
    assert pushed.exit_code == 0, pushed.output
    sent = misp.to_stix(_event(), "isis-k", [_actor(demo_spec)]).objects
    assert f"{len(sent)} of {len(sent)} objects accepted" in pushed.output
    amber = {o["id"] for o in sent if markings.tlp_of(o) == "amber"}
    fatalities = sum(i["x_tearline_fatalities"]["best"] for i in incidents)

    for member, sees_amber in (("state-a", True), ("state-b", True), ("ngo-c", False)):
        made, own = _pulled(hub, member, tokens[member], tmp_path / member)
        # the MISP event as it was made, less what the member may not read
        attributes = Counter(a["type"] for a in made["Attribute"])
        assert attributes == ({"domain": 1, "ip-dst": 1, "sha256": 1, "comment": 1} if sees_amber
                              else {"domain": 1, "sha256": 1, "comment": 1}), member
        assert [o["name"] for o in made.get("Object", [])] == (["file"] if sees_amber else []), member
        assert "tlp:green" in _tags(made) and 'misp-galaxy:threat-actor="ISKP"' in _tags(made)
        by_value = {a["value"]: a for a in made["Attribute"]}
        if sees_amber:
            assert _tags(by_value["203.0.113.45"]) == {"tlp:amber"}
        assert "tlp:clear" in _tags(by_value["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"])
        assert any("Telegram" in a["value"] for a in made["Attribute"] if a["type"] == "comment")
        # the rest in the bridge's own event: every incident, its casualty figures and its place
        kept = [o for o in own["Object"] if o["name"] == "incident"]
        assert len(kept) == len(incidents), member
        figures = [next(int(a["value"]) for a in o["Attribute"] if a["object_relation"] == "fatalities-best")
                   for o in kept]
        assert sum(figures) == fatalities
        places = {o["uuid"] for o in own["Object"] if o["name"] == "geolocation"}
        assert all(r["referenced_uuid"] in places for o in kept for r in o.get("ObjectReference", []))
        assert len(places) == len(incidents)
        assert [t for t in _tags(own) if t.startswith("tlp:")] == ["tlp:green"]  # the strictest of its contents
        # the member's true levels: nothing above what it reads, and no TLP it was merely sent a definition of
        text = json.dumps([made, own])
        for level in ("red", "amber+strict") + (() if sees_amber else ("amber",)):
            assert f'"tlp:{level}"' not in text, (member, level)
        received = stored_ids(_client(hub, member, tokens[member]), OBJECTS, {})
        assert bool(amber & received) is sees_amber


def _client(hub: Hub, member: str, token: str) -> Any:
    from tests.conftest import client
    return client(hub, member, token)


def test_push_posts_nothing_when_one_event_cannot_go(hub: Hub, tokens: dict[str, str], tmp_path: Path) -> None:
    good = json.loads(EVENT.read_text())
    bad = copy.deepcopy(good)
    bad["Event"]["uuid"] = "9d0c5b8e-1f2a-4b3c-8d4e-5f6a7b8c9d0e"
    bad["Event"].pop("Galaxy")
    bad["Event"]["Tag"] = [{"name": "tlp:green"}]
    (tmp_path / "good.json").write_text(json.dumps(good))
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with _client(hub, "state-a", tokens["state-a"]) as c:
        before = stored_ids(c, OBJECTS, {})
        done = _cli(hub, "state-a", tokens["state-a"], "push", str(tmp_path / "good.json"), str(tmp_path / "bad.json"))
        assert done.exit_code == 2
        assert "nothing posted" in done.output and "bad.json" in done.output and "misp-galaxy:threat-actor" in done.output
        assert "Traceback" not in done.output
        assert stored_ids(c, OBJECTS, {}) == before
    refused = _cli(hub, "ngo-c", tokens["ngo-c"], "push", str(tmp_path / "good.json"))  # ngo-c may not write
    assert refused.exit_code != 0 and "Traceback" not in refused.output


def _incident(n: int, place: str, **extra: Any) -> list[dict[str, Any]]:
    ts = f"2024-05-0{n}T00:00:00.000Z"
    inc = {"type": "incident", "spec_version": "2.1", "id": f"incident--{n:08x}-1111-4111-8111-111111111111",
           "created": ts, "modified": ts, "name": f"attack {n}", "description": f"{n} killed",
           "x_tearline_fatalities": {"best": n}, "object_marking_refs": [markings.TLP2["green"][0]], **extra}
    rel = {"type": "relationship", "spec_version": "2.1", "id": f"relationship--{n:08x}-2222-4222-8222-222222222222",
           "created": ts, "modified": ts, "relationship_type": "located-at", "source_ref": inc["id"],
           "target_ref": place, "object_marking_refs": [markings.TLP2["green"][0]]}
    return [inc, rel]


def test_pull_keeps_a_tear_lines_level_and_one_place_for_incidents_that_share_it() -> None:
    place = {"type": "location", "spec_version": "2.1", "id": "location--0a0a0a0a-3333-4333-8333-333333333333",
             "created": TS, "modified": TS, "name": "Jalalabad", "country": "AF", "latitude": 34.43,
             "longitude": 70.45, "object_marking_refs": [markings.TLP2["green"][0]]}
    red_part = {"granular_markings": [{"marking_ref": markings.TLP2["red"][0], "selectors": ["description"]}]}
    objs = [place, *_incident(1, place["id"], **red_part), *_incident(2, place["id"]), *markings.definitions()]
    [event] = misp.to_misp(objs, "t", misp.event_uuid("h", "c", "m")).events
    incidents = [o for o in event["Event"]["Object"] if o["name"] == "incident"]
    places = [o for o in event["Event"]["Object"] if o["name"] == "geolocation"]
    assert len(incidents) == 2 and len(places) == 1  # MISP refuses two objects with one uuid
    assert all(r["referenced_uuid"] == places[0]["uuid"] for o in incidents for r in o["ObjectReference"])
    first = next(o for o in incidents if o["uuid"].startswith("00000001"))
    assert {t["name"] for a in first["Attribute"] for t in a.get("Tag", [])} == {"tlp:red"}  # below its tear line
    assert [t["name"] for t in event["Event"]["Tag"]] == ["tlp:red"]


def test_one_object_misp_stix_cannot_read_costs_its_event_never_the_pull() -> None:
    sent = misp.to_stix(_event(), "isis-k", [ACTOR]).objects
    made = next(o for o in sent if o["type"] == "report")
    indicator = next(o for o in sent if o["type"] == "indicator")
    # a sighting by an organisation the member may not see: misp-stix's importer cannot restore it
    sighting = {"type": "sighting", "spec_version": "2.1", "id": "sighting--0b0b0b0b-4444-4444-8444-444444444444",
                "created": TS, "modified": TS, "sighting_of_ref": indicator["id"],
                "where_sighted_refs": ["identity--0c0c0c0c-5555-4555-8555-555555555555"],
                "object_marking_refs": [markings.TLP2["green"][0]]}
    made = made | {"object_refs": [*made["object_refs"], sighting["id"]]}
    objs = [made if o["id"] == made["id"] else o for o in sent] + [sighting, ACTOR, *markings.definitions()]
    pulled = misp.to_misp(objs, "t", misp.event_uuid("h", "c", "m"))
    [restored] = [e["Event"] for e in pulled.events if e["Event"]["uuid"] == "5e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"]
    assert {a["type"] for a in restored["Attribute"]} == {"domain", "ip-dst", "sha256", "comment"}
    assert any("sighting" in n and "left out" in n for n in pulled.notes)


def _pe_event(pe_level: str) -> dict[str, Any]:
    """MISP's own file upload: a file object that includes a pe object (misp-stix merges the pe into the
    file's observable and indicator, named after the file)."""
    def attribute(n: int, kind: str, value: str, relation: str, tag: str | None = None) -> dict[str, Any]:
        return {"uuid": f"0000{n:04x}-0000-4000-8000-00000000beef", "type": kind, "value": value,
                "object_relation": relation, "to_ids": kind != "text", "category": "Payload delivery",
                "timestamp": "1710086400", **({"Tag": [{"name": f"tlp:{tag}"}]} if tag else {})}
    file, pe = "11111111-0000-4000-8000-00000000beef", "22222222-0000-4000-8000-00000000beef"
    return {"uuid": "33333333-0000-4000-8000-00000000beef", "info": "dropper", "date": "2024-03-10",
            "timestamp": "1710086400", "published": True, "publish_timestamp": "1710086400",
            "Tag": [{"name": "tlp:green"}, {"name": 'misp-galaxy:threat-actor="ISKP"'}],
            "Object": [
                {"uuid": file, "name": "file", "meta-category": "file", "timestamp": "1710086400",
                 "Attribute": [attribute(1, "filename", "dropper.exe", "filename")],
                 "ObjectReference": [{"uuid": "44444444-0000-4000-8000-00000000beef", "referenced_uuid": pe,
                                      "relationship_type": "includes", "Object": {"uuid": pe, "name": "pe"}}]},
                {"uuid": pe, "name": "pe", "meta-category": "file", "timestamp": "1710086400",
                 "Attribute": [attribute(2, "text", "EXE", "type", pe_level),
                               attribute(3, "filename", "HiddenOriginal.exe", "original-filename", pe_level),
                               attribute(4, "imphash", "1234567890abcdef1234567890abcdef", "imphash", pe_level)]}]}


@pytest.mark.parametrize("pe_level", ["amber", "red"])
def test_values_misp_stix_merges_into_another_objects_observable_keep_their_level(pe_level: str) -> None:
    done = misp.to_stix(_pe_event(pe_level), "isis-k", [ACTOR])
    carriers = [o for o in done.objects if "HiddenOriginal" in json.dumps(o) or "1234567890abcdef" in json.dumps(o)]
    assert carriers and all(markings.tlp_of(o) == pe_level for o in carriers), \
        [(o["id"], markings.tlp_of(o)) for o in carriers]


def test_what_misp_keeps_at_home_stays_there_whatever_its_kind() -> None:
    event = copy.deepcopy(_event())
    event["EventReport"] = [{"uuid": "55555555-0000-4000-8000-00000000cafe", "name": "ORG-ONLY report",
                             "content": "the informant is ORG-ONLY-NAME", "distribution": "0",
                             "timestamp": "1710086400"}]
    event["Attribute"][0]["Tag"] = [{"name": "source:ORG-ONLY-SOURCE", "local": True}]
    event["Note"] = [{"uuid": "66666666-0000-4000-8000-00000000cafe", "note": "ORG-ONLY-NOTE", "distribution": "4",
                      "note_type_name": "Note", "created": "2024-03-10 00:00:00", "modified": "2024-03-10 00:00:00"}]
    done = misp.to_stix(event, "isis-k", [ACTOR])
    text = json.dumps(done.objects)
    assert "ORG-ONLY" not in text
    assert sum("left out" in n for n in done.notes) >= 3


def test_a_second_event_claiming_a_uuid_never_overwrites_the_first() -> None:
    sent = misp.to_stix(_event(), "isis-k", [ACTOR]).objects
    report = next(o for o in sent if o["type"] == "report")
    forged = {**report, "type": "grouping", "id": "grouping--" + report["id"].split("--")[1], "context": "unspecified",
              "name": "RETRACTED: remove these indicators", "object_refs": report["object_refs"][:3]}
    forged.pop("published")
    forged.pop("report_types", None)
    pulled = misp.to_misp([*sent, forged, ACTOR, *markings.definitions()], "t", misp.event_uuid("h", "c", "m"))
    by_uuid = Counter(e["Event"]["uuid"] for e in pulled.events)
    assert max(by_uuid.values()) == 1
    genuine = next(e["Event"] for e in pulled.events if e["Event"]["uuid"] == report["id"].split("--")[1])
    assert genuine["info"] == report["name"] and any("claims MISP event uuid" in n for n in pulled.notes)


def test_odd_input_is_named_never_a_traceback(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BadRequest, match="nested deeper"):
        misp.read_events(deep)
    # an incident "located at" something that is no location: no empty geolocation, nothing lost silently
    who = {"type": "identity", "spec_version": "2.1", "id": "identity--0d0d0d0d-6666-4666-8666-666666666666",
           "created": TS, "modified": TS, "name": "Jalalabad municipality", "identity_class": "organization"}
    [event] = misp.to_misp([who, *_incident(3, who["id"])], "t", misp.event_uuid("h", "c", "m")).events
    assert [o["name"] for o in event["Event"]["Object"] if o["name"] == "geolocation"] == []
    assert any(o["name"] == "incident" for o in event["Event"]["Object"])


def test_pulled_tags_are_never_looser_than_the_members_copy() -> None:
    """misp-stix tags from object markings alone: a part below a tear line (here a RED description of a GREEN
    indicator) must raise the attribute's own tag, since in MISP an attribute's tag overrides its event's."""
    partner = {"type": "indicator", "spec_version": "2.1", "id": "indicator--0e0e0e0e-7777-4777-8777-777777777777",
               "created": TS, "modified": TS, "name": "partner relay", "pattern": "[domain-name:value = 'relay.example']",
               "pattern_type": "stix", "valid_from": TS, "description": "RED PART: source is informant K",
               "object_marking_refs": [markings.TLP2["green"][0]],
               "granular_markings": [{"marking_ref": markings.TLP2["red"][0], "selectors": ["description"]}]}
    [event] = misp.to_misp([partner, *markings.definitions()], "t", misp.event_uuid("h", "c", "m")).events
    carrying = [a for a in event["Event"].get("Attribute", []) if "relay.example" in json.dumps(a)]
    carrying += [a for o in event["Event"].get("Object", []) for a in o.get("Attribute", [])
                 if "relay.example" in json.dumps(a)]
    assert carrying and all({t["name"] for t in a.get("Tag", []) if t["name"].startswith("tlp:")} == {"tlp:red"}
                            for a in carrying), carrying


def test_misps_own_spellings_pass_the_hubs_stix_rules() -> None:
    """A regkey as MISP writes it (HKLM\\…) gets STIX's full hive name; a sighting keeps what was seen, not who
    saw it (another organisation's to share, and an identity the compact would refuse as unconnected)."""
    event = copy.deepcopy(_event())
    event["Attribute"].append({"uuid": "99999999-0000-4000-8000-00000000d00d", "type": "regkey", "to_ids": True,
                               "category": "Persistence mechanism", "timestamp": "1710086400",
                               "value": "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\updater"})
    event["Attribute"][0]["Sighting"] = [{"uuid": "aaaaaaaa-0000-4000-8000-00000000d00d", "type": "0",
                                          "date_sighting": "1710090000", "source": "",
                                          "Organisation": {"uuid": "bbbbbbbb-0000-4000-8000-00000000d00d",
                                                           "name": "Another CERT"}}]
    done = misp.to_stix(event, "isis-k", [ACTOR])
    [key] = [o for o in done.objects if o["type"] == "windows-registry-key"]
    assert key["key"] == "HKEY_LOCAL_MACHINE\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\updater"
    assert all("HKLM" not in o.get("pattern", "") for o in done.objects)
    assert "Another CERT" not in json.dumps(done.objects)
    assert all("where_sighted_refs" not in o for o in done.objects if o["type"] == "sighting")
