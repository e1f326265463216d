"""OASIS taxii2-client against the running hub, and stix2-validator on every object it serves."""

from __future__ import annotations

import json

import pytest
import stix2
from requests import HTTPError
from stix2validator import ValidationOptions, validate_instance
from taxii2client.v21 import Server, as_pages

from tearline import markings
from tests.conftest import Hub
from tests.stixgen import indicator

OPTIONS = ValidationOptions(version="2.1")


def assert_valid(obj: dict) -> None:
    result = validate_instance(obj, OPTIONS)
    assert result.is_valid, [str(e) for e in result.errors]


def _actor_graph() -> list[dict]:
    """A small real-looking graph built with the stix2 library (the reference producer)."""
    actor = stix2.ThreatActor(name="Islamic State Khorasan Province", aliases=["ISKP"], threat_actor_types=["terrorist"])
    place = stix2.Location(country="AF", region="southern-asia", name="Nangarhar")
    incident = stix2.Incident(name="Attack in Jalalabad", description="IED attack claimed by ISKP")
    rels = [
        stix2.Relationship(incident, "attributed-to", actor),
        stix2.Relationship(incident, "located-at", place),
    ]
    ind = stix2.Indicator(
        name="ISKP propaganda channel", pattern="[url:value = 'https://t.me/example_channel']", pattern_type="stix",
        object_marking_refs=[markings.TLP2["amber"][0]],
    )
    rels.append(stix2.Relationship(ind, "indicates", actor))
    return [stix2.parse(o.serialize(), allow_custom=False) for o in (actor, place, incident, *rels, ind)]


def test_taxii2_client_end_to_end(hub: Hub, tokens: dict[str, str]) -> None:
    server = Server(f"{hub.url}/taxii2/", user="state-a", password=tokens["state-a"])
    assert server.title == hub.settings.title
    [root] = server.api_roots
    assert root.url.endswith("/taxii2/isis-k/")
    intel = next(c for c in root.collections if c.alias == "intel")
    assert intel.can_read and intel.can_write

    graph = _actor_graph()
    sent = [json.loads(o.serialize()) for o in graph]
    status = intel.add_objects({"objects": sent})
    assert status.status == "complete" and status.success_count == len(sent) and status.failure_count == 0

    bulk = [indicator(i) for i in range(230)]
    status = intel.add_objects({"objects": bulk})
    assert status.success_count == 230

    # paging with as_pages: every object once, in date_added order, each valid STIX 2.1
    served: list[dict] = []
    for page in as_pages(intel.get_objects, per_request=50):
        served += page.get("objects", [])
    ids = [o["id"] for o in served]
    assert len(ids) == len(set(ids))
    assert {o["id"] for o in sent + bulk} <= set(ids)
    for obj in served:
        assert_valid(obj)
    by_id = {o["id"]: o for o in served}
    for obj in sent + bulk:
        assert by_id[obj["id"]] == obj  # unchanged round trip

    manifest: list[dict] = []
    for page in as_pages(intel.get_manifest, per_request=100, type="indicator"):
        manifest += page.get("objects", [])
    assert len(manifest) == 231

    one = intel.get_object(bulk[0]["id"])
    assert one["objects"] == [bulk[0]]
    newer = dict(bulk[0], modified="2025-01-01T00:00:00.000Z", name="renamed")
    intel.add_objects({"objects": [newer]})
    versions = intel.object_versions(bulk[0]["id"])
    assert versions["versions"] == [bulk[0]["modified"], newer["modified"]]
    assert intel.get_object(bulk[0]["id"])["objects"] == [newer]
    assert intel.get_object(bulk[0]["id"], version="first")["objects"] == [bulk[0]]
    filtered = intel.get_objects(type="threat-actor")
    assert [o["name"] for o in filtered["objects"]] == ["Islamic State Khorasan Province", "Islamic State Khorasan Province"]
    for obj in filtered["objects"]:
        assert_valid(obj)


def test_tlp2_definitions_served_by_the_hub_are_valid_stix(hub: Hub, tokens: dict[str, str]) -> None:
    server = Server(f"{hub.url}/taxii2/", user="ngo-c", password=tokens["ngo-c"])
    intel = next(c for c in server.api_roots[0].collections if c.alias == "intel")
    assert not intel.can_write
    assert "objects" not in intel.get_objects(type="marking-definition")  # fetched by id, never listed
    for ident, _ in markings.TLP2.values():
        [d] = intel.get_object(ident)["objects"]
        assert d["id"] == ident
        assert_valid(d)


def test_each_member_through_taxii2_client_sees_only_what_the_gate_releases(store, tokens) -> None:  # type: ignore[no-untyped-def]
    """The TLP gate, driven as each member with the OASIS client: every page, the manifest and object
    lookups agree with the rule, and hidden objects answer like missing ones."""
    import datetime as dt
    import uuid

    from tearline import compact
    from tearline.config import Settings
    from tests.conftest import free_port
    from tests.stixgen import indicator

    spec = compact.parse(f"""
name: tc
scope:
  actors: [{{name: Islamic State Khorasan Province}}]
expires: {(dt.date.today() + dt.timedelta(days=90)).isoformat()}
members:
  - {{name: alpha, write: true, tlp_max: red}}
  - {{name: bravo, tlp_max: red}}
  - {{name: charlie, tlp_max: amber}}
  - {{name: ngo, tlp_max: green}}
""")
    keys = compact.apply(store, spec)
    posted = {}
    for level in markings.LEVELS:
        obj = indicator(0, object_marking_refs=[markings.TLP2[level][0]]) | {"id": f"indicator--{uuid.uuid4()}"}
        if level == "red":
            obj["x_tearline_recipients"] = ["bravo"]
        posted[level] = obj
    entitled = {"alpha": set(markings.LEVELS), "bravo": {"clear", "green", "amber", "red"},
                "charlie": {"clear", "green", "amber"}, "ngo": {"clear", "green"}}
    with Hub(store, Settings(db=store.url, port=free_port())) as hub:
        for member, token in keys.items():
            server = Server(f"{hub.url}/taxii2/", user=member, password=token)
            intel = next(c for c in server.api_roots[0].collections if c.alias == "intel")
            if member == "alpha":
                assert intel.add_objects({"objects": list(posted.values())}).success_count == 5
            seen = set()
            for page in as_pages(intel.get_objects, per_request=2, type="indicator"):
                for obj in page.get("objects", []):
                    assert_valid(obj)
                    seen.add(obj["id"])
            want = {posted[level]["id"] for level in entitled[member]}
            assert seen == want, member
            listed = {r["id"] for page in as_pages(intel.get_manifest, per_request=2, type="indicator")
                      for r in page.get("objects", [])}
            assert listed == want, member
            for level, obj in posted.items():
                if level in entitled[member]:
                    assert intel.get_object(obj["id"])["objects"][0]["id"] == obj["id"]
                else:
                    # taxii2-client raises requests' HTTPError on the 404
                    with pytest.raises(HTTPError, match="404"):
                        intel.get_object(obj["id"])
        # tear lines: one GREEN report whose sourcing is RED for bravo and one reference AMBER; each member
        # reads its own valid version of it through the OASIS client
        from tests.stixgen import ACTOR_ID

        ts = "2024-05-01T08:00:00.000Z"
        report = {"type": "report", "spec_version": "2.1", "id": f"report--{uuid.uuid4()}", "created": ts,
                  "modified": ts, "published": ts, "name": "ISKP cell", "object_refs": [ACTOR_ID],
                  "description": "A cell is preparing an attack.", "object_marking_refs": [markings.TLP2["green"][0]],
                  "external_references": [{"source_name": "press", "url": "https://example.org/a"},
                                          {"source_name": "liaison", "description": "partner service report"}],
                  "x_tearline_sourcing": "a human source inside the cell", "x_tearline_recipients": ["bravo"],
                  "granular_markings": [{"marking_ref": markings.TLP2["red"][0], "selectors": ["x_tearline_sourcing"]},
                                        {"marking_ref": markings.TLP2["amber"][0], "selectors": ["external_references.[1]"]}]}
        parts = {"alpha": (True, 2), "bravo": (True, 2), "charlie": (False, 2), "ngo": (False, 1)}
        for member, token in keys.items():
            server = Server(f"{hub.url}/taxii2/", user=member, password=token)
            intel = next(c for c in server.api_roots[0].collections if c.alias == "intel")
            if member == "alpha":
                assert intel.add_objects({"objects": [report]}).success_count == 1
            copy = intel.get_object(report["id"])["objects"][0]
            assert_valid(copy)
            sourcing, references = parts[member]
            assert ("x_tearline_sourcing" in copy) == sourcing, member
            assert len(copy["external_references"]) == references, member


def test_taxii2_client_reads_a_status_with_more_failures_than_the_hub_explains(hub: Hub, tokens: dict[str, str]) -> None:
    """taxii2-client checks that a status lists as many failures as it counts: all are listed, past
    max_failures with short messages."""
    server = Server(f"{hub.url}/taxii2/", user="state-a", password=tokens["state-a"])
    intel = next(c for c in server.api_roots[0].collections if c.alias == "intel")
    bad = [indicator(2000 + i) | {"pattern": "[not a pattern"} for i in range(hub.settings.max_failures + 20)]
    status = intel.add_objects({"objects": bad})  # taxii2-client validates the status it is given
    assert status.failure_count == len(bad) == len(status.failures)
    assert {f["id"] for f in status.failures} == {o["id"] for o in bad}
