"""TAXII 2.1 (OASIS Standard, 10 June 2021), one test per normative statement the hub implements, each named
with its section. What the spec leaves to the server (MAY) is tested as the choice the hub made."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest
import stix2

from tests.conftest import TAXII, Hub
from tests.stixgen import TS, indicator

POST = {"Content-Type": TAXII}
ROOT = "/taxii2/isis-k/"
OBJECTS = "/taxii2/isis-k/collections/intel/objects/"
MANIFEST = "/taxii2/isis-k/collections/intel/manifest/"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _post(c: httpx.Client, objs: list, **extra: object) -> dict:
    r = c.post(OBJECTS, json={"objects": objs, **extra}, headers=POST)
    assert r.status_code == 202, r.text
    return r.json()


def _observable_graph() -> list[dict]:
    """An indicator in the compact's scope, a domain-name observable (no created, no modified) and the
    relationship that brings the observable into scope."""
    ind = indicator(900)
    domain = stix2.DomainName(value="relay900.example.org")
    rel = stix2.Relationship(source_ref=ind["id"], relationship_type="related-to", target_ref=domain.id,
                             created=TS, modified=TS)
    return [ind, json.loads(domain.serialize()), json.loads(rel.serialize())]


# --- §1.6.9, §3.1, §3.2, §3.3: HTTP ------------------------------------------------------------------

def test_1_6_9_a_request_without_credentials_gets_401_with_www_authenticate(hub: Hub) -> None:
    r = httpx.get(f"{hub.url}{ROOT}", headers={"Accept": TAXII})
    assert r.status_code == 401 and "Basic" in r.headers["www-authenticate"]


def test_3_1_a_defined_accept_or_content_type_is_never_406_or_415(alice: httpx.Client) -> None:
    for accept in ("application/taxii+json", "application/taxii+json;version=2.1", "*/*", "application/*"):
        assert alice.get(ROOT, headers={"Accept": accept}).status_code == 200, accept
    r = alice.post(OBJECTS, json={"objects": [indicator(901)]},
                   headers={"Content-Type": "application/taxii+json", "Accept": TAXII})
    assert r.status_code == 202


def test_3_1_every_response_carries_the_taxii_media_type(alice: httpx.Client) -> None:
    for path in ("/taxii2/", ROOT, f"{ROOT}collections/", OBJECTS, MANIFEST, f"{ROOT}nowhere/"):
        assert alice.get(path).headers["content-type"] == TAXII, path


def test_3_2_date_added_headers_are_the_first_and_last_date_added_of_the_page(alice: httpx.Client) -> None:
    _post(alice, [indicator(i) for i in range(910, 913)])
    time.sleep(0.002)
    _post(alice, [indicator(913)])
    r = alice.get(MANIFEST, params={"limit": 10})
    records = r.json()["objects"]
    assert r.headers["x-taxii-date-added-first"] == records[0]["date_added"]
    assert r.headers["x-taxii-date-added-last"] == records[-1]["date_added"]
    assert all(TIMESTAMP.match(rec["date_added"]) for rec in records)  # §2: microseconds, UTC


def test_3_3_objects_and_manifest_are_sorted_by_date_added_ascending(alice: httpx.Client) -> None:
    for i in range(920, 924):
        _post(alice, [indicator(i)])
    added = [rec["date_added"] for rec in alice.get(MANIFEST).json()["objects"]]
    assert added == sorted(added)


# --- §3.4: filtering ---------------------------------------------------------------------------------------

def test_3_4_a_malformed_parameter_is_400(alice: httpx.Client) -> None:
    for params in ({"added_after": "yesterday"}, {"limit": "-3"}, {"match[type]": "Not A Type!"}):
        assert alice.get(OBJECTS, params=params).status_code == 400, params


def test_3_4_a_parameter_given_twice_is_400(alice: httpx.Client) -> None:
    r = alice.get(OBJECTS, params=[("added_after", TS), ("added_after", TS)])
    assert r.status_code == 400 and "more than once" in r.json()["description"]


def test_3_4_match_fields_the_server_does_not_know_are_ignored_and_named(alice: httpx.Client) -> None:
    _post(alice, [indicator(930)])
    plain = alice.get(OBJECTS, params={"match[type]": "indicator"})
    odd = alice.get(OBJECTS, params={"match[type]": "indicator", "match[colour]": "red", "cachebust": "1"})
    assert odd.status_code == 200 and odd.json() == plain.json()
    assert odd.headers["x-tearline-ignored-parameters"] == "cachebust, match[colour]"


def test_5_6_a_match_field_the_endpoint_does_not_take_is_400(alice: httpx.Client) -> None:
    obj = indicator(931)
    _post(alice, [obj])
    r = alice.get(f"{OBJECTS}{obj['id']}/", params={"match[type]": "indicator"})
    assert r.status_code == 400 and "match[type]" in r.json()["description"]


def test_3_4_limit_is_never_exceeded_and_more_says_when_objects_remain(alice: httpx.Client) -> None:
    _post(alice, [indicator(i) for i in range(940, 945)])
    page = alice.get(OBJECTS, params={"limit": 2, "match[type]": "indicator"}).json()
    assert len(page["objects"]) == 2 and page["more"] is True and page["next"]
    huge = alice.get(OBJECTS, params={"limit": "9" * 30})  # a positive integer: capped, not refused
    assert huge.status_code == 200


def test_3_4_1_match_version_all_cannot_be_combined_and_values_cannot_repeat(alice: httpx.Client) -> None:
    for value in ("all,first", "last,all", f"{TS},all", "last,last", f"{TS},{TS}"):
        r = alice.get(OBJECTS, params={"match[version]": value})
        assert r.status_code == 400 and "match[version]" in r.json()["description"], value


def test_3_4_1_without_match_version_only_the_latest_version_is_returned(alice: httpx.Client) -> None:
    first = indicator(950)
    newer = indicator(950, modified="2024-05-01T00:00:00.000Z", name="renamed")
    _post(alice, [first])
    _post(alice, [newer])
    got = alice.get(OBJECTS, params={"match[id]": first["id"]}).json()["objects"]
    assert [o["modified"] for o in got] == [newer["modified"]]
    both = alice.get(OBJECTS, params={"match[id]": first["id"], "match[version]": "all"}).json()["objects"]
    assert sorted(o["modified"] for o in both) == [first["modified"], newer["modified"]]


def test_3_4_1_an_object_without_modified_is_versioned_by_created_else_by_date_added(alice: httpx.Client) -> None:
    graph = _observable_graph()
    _post(alice, graph)
    manifest = {rec["id"]: rec for rec in alice.get(MANIFEST).json()["objects"]}
    assert manifest[graph[0]["id"]]["version"] == graph[0]["modified"]
    domain = manifest[graph[1]["id"]]  # an observable has neither: the server's date_added, consistently
    assert domain["version"] == domain["date_added"]


def test_3_4_1_match_spec_version_returns_no_other_spec_version(alice: httpx.Client) -> None:
    _post(alice, [indicator(960)])
    assert "objects" not in alice.get(OBJECTS, params={"match[spec_version]": "2.0"}).json()
    assert alice.get(OBJECTS, params={"match[spec_version]": "2.2"}).status_code == 200  # well-formed: none
    assert all(o["spec_version"] == "2.1"
               for o in alice.get(OBJECTS, params={"match[spec_version]": "2.1"}).json()["objects"])


# --- §3.7, §5.4: envelopes posted ---------------------------------------------------------------------------

def test_3_7_a_stix_bundle_is_accepted_as_an_envelope(alice: httpx.Client) -> None:
    bundle = {"type": "bundle", "id": "bundle--2f2c8c53-0d5b-4b63-9d6f-7e0b6b8a3c11", "objects": [indicator(970)]}
    r = alice.post(OBJECTS, json=bundle, headers=POST)
    assert r.status_code == 202 and r.json()["success_count"] == 1


def test_7_1_1_envelope_properties_the_server_does_not_understand_are_ignored(alice: httpx.Client) -> None:
    status = _post(alice, [indicator(971)], x_sent_by="a partner's script", next="ignored")
    assert status["success_count"] == 1


def test_3_7_an_envelope_without_objects_is_an_empty_envelope(alice: httpx.Client) -> None:
    r = alice.post(OBJECTS, json={}, headers=POST)
    assert r.status_code == 202 and r.json()["total_count"] == 0


def test_3_7_an_empty_page_has_no_objects_list(alice: httpx.Client) -> None:
    assert "objects" not in alice.get(OBJECTS, params={"match[type]": "grouping"}).json()


# --- §4.3: status -------------------------------------------------------------------------------------------

def test_4_3_1_status_lists_are_absent_when_empty_and_match_their_counts(alice: httpx.Client) -> None:
    status = _post(alice, [indicator(980)])
    assert status["success_count"] == 1 and len(status["successes"]) == 1
    assert "failures" not in status and "pendings" not in status
    assert status["pending_count"] == 0 and status["status"] == "complete"
    again = alice.get(f"{ROOT}status/{status['id']}/").json()
    assert again == status


def test_4_3_1_every_status_detail_has_a_version_observables_and_failures_too(alice: httpx.Client) -> None:
    graph = _observable_graph()
    broken = {"type": "domain-name", "spec_version": "2.1", "id": "domain-name--0b7a4c9e-2c53-5e42-9a6d-5b4f2c1d0e9a"}
    status = _post(alice, [*graph, broken, 7])
    details = status["successes"] + status["failures"]
    assert len(details) == 5 and all(d.get("version") for d in details), details
    stamped = {d["id"]: d["version"] for d in status["failures"]}
    assert set(stamped.values()) == {status["request_timestamp"]}  # no version of its own: one server value
    assert status["success_count"] + status["failure_count"] == status["total_count"] == 5


# --- §5: collections and versions ---------------------------------------------------------------------------

def test_5_8_1_a_versions_page_with_no_versions_has_no_versions_list(alice: httpx.Client) -> None:
    obj = indicator(990)
    _post(alice, [obj])
    url = f"{OBJECTS}{obj['id']}/versions/"
    assert alice.get(url).json()["versions"] == [obj["modified"]]
    later = alice.get(url, params={"added_after": "2999-01-01T00:00:00.000Z"})
    assert later.status_code == 200 and "versions" not in later.json()


@pytest.mark.parametrize("path", ["/taxii2/", ROOT, f"{ROOT}collections/"])
def test_3_4_parameters_on_endpoints_without_filters_are_ignored(alice: httpx.Client, path: str) -> None:
    assert alice.get(path, params={"_": "1700000000"}).status_code == 200


@pytest.mark.parametrize("hub", [{"max_objects": 5}], indirect=True)
def test_4_2_1_a_body_under_max_content_length_is_never_413(alice: httpx.Client) -> None:
    r = alice.post(OBJECTS, json={"objects": [indicator(i) for i in range(995, 1001)]}, headers=POST)
    assert r.status_code == 422 and r.json()["details"] == {"max_objects": 5, "objects": 6}


def test_5_5_an_object_filtered_to_no_version_is_an_empty_envelope_not_404(alice: httpx.Client) -> None:
    obj = indicator(1010)
    _post(alice, [obj])
    url = f"{OBJECTS}{obj['id']}/"
    for params in ({"added_after": "2999-01-01T00:00:00.000Z"}, {"match[spec_version]": "2.0"},
                   {"match[version]": "2001-01-01T00:00:00.000Z"}):
        r = alice.get(url, params=params)
        assert r.status_code == 200 and "objects" not in r.json(), params
    assert alice.get(f"{url}versions/", params={"match[spec_version]": "2.0"}).status_code == 200
    missing = f"{OBJECTS}indicator--6c3f2c83-2f66-4d2e-9a4c-4c5e3f0b9d11/"
    assert alice.get(missing, params={"added_after": "2999-01-01T00:00:00.000Z"}).status_code == 404


def test_5_7_a_member_that_may_read_but_not_write_gets_403_for_any_id(alice: httpx.Client, ngo: httpx.Client) -> None:
    obj = indicator(1011)
    _post(alice, [obj])
    for object_id in (obj["id"], "indicator--6c3f2c83-2f66-4d2e-9a4c-4c5e3f0b9d12"):  # seen or not: 403 alike
        assert ngo.delete(f"{OBJECTS}{object_id}/").status_code == 403


def test_5_5_an_exact_duplicate_of_an_object_the_member_receives_is_no_error(
        hub: Hub, alice: httpx.Client, tokens: dict[str, str]) -> None:
    """§5.5: "If a client publishes an exact duplicate of an Object already present in the Collection, the server
    MUST NOT return an error for that Object." A member re-posting another member's object exactly as it
    received it (a MISP or stix2 round trip does) gets a success and nothing is stored; it is judged on the copy
    the member receives, so re-posting what its copy hides (state-b's profile names authors by pseudonym) stays
    a refusal and confirms nothing."""
    from tests.conftest import client

    author = {"type": "identity", "spec_version": "2.1", "id": "identity--3f9b0c2e-6d1a-4e8b-9c7f-5a2d4e6b8c01",
              "created": TS, "modified": TS, "name": "State A CERT", "identity_class": "organization"}
    shared = indicator(930, created_by_ref=author["id"], description="relay seen in Nangarhar")
    _post(alice, [author, shared])
    with client(hub, "state-b", tokens["state-b"]) as bob:
        [copy] = bob.get(f"{OBJECTS}{shared['id']}/").json()["objects"]
        assert copy["created_by_ref"] != author["id"]  # its profile names authors by pseudonym
        again = _post(bob, [copy])
        assert again["success_count"] == 1 and "failures" not in again
        assert again["successes"] == [{"id": shared["id"], "version": shared["modified"]}]
        assert bob.get(f"{OBJECTS}{shared['id']}/versions/").json()["versions"] == [shared["modified"]]
        original = _post(bob, [shared])  # what its copy does not hold: refused like any other version
        assert original["failure_count"] == 1 and "shared by another member" in original["failures"][0]["message"]
        changed = _post(bob, [{**copy, "description": "something else"}])
        assert changed["failure_count"] == 1
    [mine] = alice.get(f"{OBJECTS}{shared['id']}/").json()["objects"]
    assert mine == shared  # untouched


def test_3_2_an_empty_page_asked_with_added_after_echoes_it_in_both_date_headers(alice: httpx.Client) -> None:
    _post(alice, [indicator(940)])
    for path in (OBJECTS, MANIFEST, f"{OBJECTS}{indicator(940)['id']}/", f"{OBJECTS}{indicator(940)['id']}/versions/"):
        r = alice.get(path, params={"added_after": "2999-01-01T00:00:00Z"})
        assert r.status_code == 200, path
        assert r.headers["X-TAXII-Date-Added-First"] == r.headers["X-TAXII-Date-Added-Last"] \
            == "2999-01-01T00:00:00.000000Z", path
