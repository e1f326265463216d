"""Scope on write: objects within `hops` of the compact's actors, judged an envelope at a time."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tearline import compact
from tearline.store import Store
from tests.conftest import TAXII, Hub, client
from tests.stixgen import ACTOR_ID, TS

POST = {"Content-Type": TAXII}
OBJECTS = "/taxii2/isis-k/collections/intel/objects/"


def sdo(kind: str, **extra: object) -> dict:
    base = {"type": kind, "spec_version": "2.1", "id": f"{kind}--{uuid.uuid4()}", "created": TS, "modified": TS,
            "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]}
    if kind == "indicator":
        base |= {"pattern": "[domain-name:value = 'x.example']", "pattern_type": "stix", "valid_from": TS}
    elif kind == "malware":
        base |= {"is_family": True, "name": "ISKP loader"}
    elif kind != "relationship":
        base["name"] = f"{kind} {uuid.uuid4().hex[:6]}"
    return base | extra


def rel(source: dict | str, kind: str, target: dict | str) -> dict:
    s = source if isinstance(source, str) else source["id"]
    t = target if isinstance(target, str) else target["id"]
    return sdo("relationship", relationship_type=kind, source_ref=s, target_ref=t)


def post(c: httpx.Client, objs: list) -> dict:
    r = c.post(OBJECTS, json={"objects": objs}, headers=POST)
    assert r.status_code == 202, r.text
    return r.json()


def refused(status: dict) -> dict[str, str]:
    return {f["id"]: f["message"] for f in status.get("failures", [])}


def test_a_lone_indicator_is_refused_with_a_reason_a_person_understands(alice: httpx.Client) -> None:
    ind = sdo("indicator")
    status = post(alice, [ind])
    assert status["success_count"] == 0
    assert refused(status)[ind["id"]] == (
        f"{ind['id']} is not connected to Islamic State Khorasan Province within 2 hops (not connected to it at "
        "all); send it with the relationship that links it")


def test_an_indicator_arriving_with_its_relationship_is_admitted(alice: httpx.Client) -> None:
    ind = sdo("indicator")
    status = post(alice, [ind, rel(ind, "indicates", ACTOR_ID)])
    assert status["success_count"] == 2 and status["failure_count"] == 0


def test_a_relationship_cannot_arrive_before_its_indicator(alice: httpx.Client) -> None:
    # what is stored is closed under the references an object cannot do without: a relationship to nothing
    # would reach members as a reference to nothing
    ind = sdo("indicator")
    link = rel(ind, "indicates", ACTOR_ID)
    status = post(alice, [link])
    assert refused(status) == {link["id"]: f"source_ref: {ind['id']} is not in this collection; send it in the "
                                           "same envelope"}
    assert post(alice, [ind, link])["success_count"] == 2


def test_hops_count_from_the_actor(alice: httpx.Client) -> None:
    malware = sdo("malware")
    ind = sdo("indicator")
    far = sdo("infrastructure")
    link = rel(far, "related-to", ind)
    status = post(alice, [rel(malware, "uses", ACTOR_ID), malware, rel(ind, "indicates", malware), ind, link, far])
    # malware 1 hop, indicator 2 hops: in; the infrastructure is 3 hops away: out, and with it the
    # relationship that would point at it
    assert set(refused(status)) == {far["id"], link["id"]}
    assert "within 2 hops (3 hops away)" in refused(status)[far["id"]]
    assert refused(status)[link["id"]] == (f"source_ref: {far['id']} was refused in this envelope, and this cannot "
                                           "stand without it")


def test_an_actor_is_recognised_by_its_aliases_and_a_stranger_is_not(alice: httpx.Client) -> None:
    alias = sdo("intrusion-set", name="Wilayat Khorasan")
    stranger = sdo("threat-actor", name="Lashkar-e-Taiba")
    ind = sdo("indicator")
    status = post(alice, [alias, stranger, ind, rel(ind, "indicates", alias)])
    assert set(refused(status)) == {stranger["id"]}


def test_an_authors_identity_comes_in_with_what_it_wrote_but_links_nothing(alice: httpx.Client) -> None:
    me = sdo("identity", identity_class="organization")
    ind = sdo("indicator", created_by_ref=me["id"])
    other = sdo("indicator", created_by_ref=me["id"])
    status = post(alice, [me, ind, rel(ind, "indicates", ACTOR_ID), other])
    # the identity is admitted through the in-scope indicator; it does not pull the other one in
    assert set(refused(status)) == {other["id"]}
    assert post(alice, [sdo("identity", identity_class="individual")])["success_count"] == 0


def test_a_type_allow_list_narrows_the_scope(store: Store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = compact.parse("""
name: narrow
scope:
  actors: [{name: Islamic State Khorasan Province, aliases: [ISKP]}]
  hops: 2
  types: [indicator, relationship, threat-actor]
members:
  - {name: a, write: true, tlp_max: amber}
""")
    tokens = compact.apply(store, spec)
    from tearline.config import Settings
    from tests.conftest import free_port

    with Hub(store, Settings(db=store.url, port=free_port())) as hub, client(hub, "a", tokens["a"]) as c:
        malware = sdo("malware")
        r = c.post("/taxii2/narrow/collections/intel/objects/", json={"objects": [malware, rel(malware, "uses", ACTOR_ID)]},
                   headers=POST).json()
        assert refused(r)[malware["id"]].endswith("type malware is not shared in this compact "
                                                   "(allowed: indicator, relationship, threat-actor)")


def _narrow_hub(store: Store, extra: str):  # type: ignore[no-untyped-def]
    from tearline.config import Settings
    from tests.conftest import free_port

    spec = compact.parse(f"""
name: narrow
scope:
  actors: [{{name: Islamic State Khorasan Province}}]
{extra}
members:
  - {{name: a, write: true, tlp_max: amber}}
""")
    tokens = compact.apply(store, spec)
    return Hub(store, Settings(db=store.url, port=free_port())), tokens["a"]


def test_a_region_keeps_out_places_elsewhere(store: Store) -> None:
    hub, token = _narrow_hub(store, "  region: [AFG, PAK]")
    with hub, client(hub, "a", token) as c:
        kabul = sdo("location", country="AF")
        paris = sdo("location", country="FR")
        r = c.post("/taxii2/narrow/collections/intel/objects/", json={"objects": [
            kabul, paris, rel(ACTOR_ID, "located-at", kabul), rel(ACTOR_ID, "located-at", paris)]}, headers=POST).json()
        assert refused(r)[paris["id"]] == f"{paris['id']} lies in FR, outside the compact's region (AF, PK)"
        assert kabul["id"] not in refused(r)


def test_a_time_window_keeps_out_what_is_about_another_time(store: Store) -> None:
    hub, token = _narrow_hub(store, "  window: {from: 2015-01-01, to: 2025-12-31}")
    with hub, client(hub, "a", token) as c:
        old = sdo("indicator", created="2012-04-01T00:00:00.000Z", modified="2012-04-01T00:00:00.000Z",
                  valid_from="2012-04-01T00:00:00.000Z")
        new = sdo("indicator")
        r = c.post("/taxii2/narrow/collections/intel/objects/", json={"objects": [
            old, new, rel(old, "indicates", ACTOR_ID), rel(new, "indicates", ACTOR_ID)]}, headers=POST).json()
        assert refused(r)[old["id"]] == (f"{old['id']} dates from 2012-04-01, outside the compact's time window "
                                         "2015-01-01 to 2025-12-31")
        assert new["id"] not in refused(r)


def test_bad_region_and_window_are_named_in_the_compact_file() -> None:
    from tearline.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        compact.parse("""name: x
scope:
  actors: [{name: A}]
  region: [AFG, XYZ]
  window: {from: 2020-01-01, to: 2019-01-01}
members: [{name: a}]
""", "c.yaml")
    assert "c.yaml:4: scope.region: 'XYZ' is not an ISO 3166 country code" in str(info.value)
    assert "c.yaml:5: scope.window: ends before it starts" in str(info.value)
