"""The TAXII 2.1 API end to end over HTTP, on SQLite and on PostgreSQL."""

from __future__ import annotations

import httpx
import pytest

from tearline import markings
from tests.conftest import TAXII, Hub, client, stored_ids
from tests.stixgen import envelope, indicator

POST = {"Content-Type": TAXII}
OBJECTS = "/taxii2/isis-k/collections/intel/objects/"
MANIFEST = "/taxii2/isis-k/collections/intel/manifest/"


def post(c: httpx.Client, objs: list, path: str = OBJECTS) -> dict:
    r = c.post(path, json=envelope(objs), headers=POST)
    assert r.status_code == 202, r.text
    assert r.headers["content-type"] == TAXII
    return r.json()


def test_discovery_names_only_the_members_own_api_root(alice: httpx.Client, hub: Hub) -> None:
    r = alice.get("/taxii2/")
    assert r.status_code == 200 and r.headers["content-type"] == TAXII
    assert r.json()["api_roots"] == [f"{hub.url}/taxii2/isis-k/"]
    root = alice.get("/taxii2/isis-k/").json()
    assert root["versions"] == [TAXII] and root["max_content_length"] == hub.settings.max_content_length


def test_collections_report_rights_per_member(alice: httpx.Client, ngo: httpx.Client) -> None:
    mine = {c["alias"]: c for c in alice.get("/taxii2/isis-k/collections/").json()["collections"]}
    theirs = {c["alias"]: c for c in ngo.get("/taxii2/isis-k/collections/").json()["collections"]}
    assert set(mine) == {"intel", "warnings"}
    assert mine["intel"]["can_write"] and not theirs["intel"]["can_write"]
    assert not mine["warnings"]["can_write"]
    one = alice.get(f"/taxii2/isis-k/collections/{mine['intel']['id']}/").json()
    assert one == mine["intel"]


def test_envelope_stores_valid_objects_and_reports_each_invalid_one(alice: httpx.Client) -> None:
    good = indicator(1)
    no_pattern = {k: v for k, v in indicator(2).items() if k != "pattern"}
    bad_time = indicator(3, modified="yesterday")
    status = post(alice, [good, no_pattern, bad_time])
    assert status["status"] == "complete"
    assert (status["total_count"], status["success_count"], status["failure_count"]) == (3, 1, 2)
    assert status["successes"] == [{"id": good["id"], "version": good["modified"]}]
    messages = {f["id"]: f["message"] for f in status["failures"]}
    assert "pattern: required property is missing" in messages[no_pattern["id"]]
    assert "modified: 'yesterday' is not a STIX timestamp" in messages[bad_time["id"]]
    got = alice.get(OBJECTS, params={"match[type]": "indicator"}).json()["objects"]
    assert got == [good]
    # the status stays readable afterwards
    again = alice.get(f"/taxii2/isis-k/status/{status['id']}/").json()
    assert again == status


def test_versions_first_last_all_and_by_timestamp(alice: httpx.Client) -> None:
    v1, v2, v3 = (indicator(7, modified=f"2024-03-0{d}T10:00:00.000Z") for d in (2, 3, 4))
    post(alice, [v2])
    post(alice, [v3, v1])
    ident = v1["id"]

    def versions(value: str | None) -> list[str]:
        params = {"match[id]": ident} | ({"match[version]": value} if value else {})
        return [o["modified"] for o in alice.get(OBJECTS, params=params).json()["objects"]]

    assert versions(None) == [v3["modified"]]
    assert versions("last") == [v3["modified"]]
    assert versions("first") == [v1["modified"]]
    assert sorted(versions("all")) == [v1["modified"], v2["modified"], v3["modified"]]
    assert versions(v2["modified"]) == [v2["modified"]]
    assert sorted(versions(f"first,{v2['modified']}")) == [v1["modified"], v2["modified"]]
    listed = alice.get(f"{OBJECTS}{ident}/versions/").json()
    assert sorted(listed["versions"]) == sorted([v1["modified"], v2["modified"], v3["modified"]]) and not listed["more"]
    # re-adding a version already held is a success and changes nothing
    again = post(alice, [v2])
    assert again["success_count"] == 1
    assert len(alice.get(f"{OBJECTS}{ident}/versions/").json()["versions"]) == 3


def test_paging_with_limit_and_next_visits_every_object_once(alice: httpx.Client) -> None:
    objs = [indicator(100 + i) for i in range(25)]
    post(alice, objs)
    seen: list[str] = []
    params = {"match[type]": "indicator", "limit": "7"}
    pages = 0
    while True:
        r = alice.get(OBJECTS, params=params)
        body = r.json()
        pages += 1
        seen += [o["id"] for o in body["objects"]]
        assert r.headers["X-TAXII-Date-Added-First"] <= r.headers["X-TAXII-Date-Added-Last"]
        if not body["more"]:
            assert "next" not in body
            break
        params["next"] = body["next"]
    assert pages == 4
    assert seen == [o["id"] for o in objs]


def test_added_after_returns_only_later_additions(alice: httpx.Client) -> None:
    post(alice, [indicator(200)])
    first = alice.get(OBJECTS, params={"match[type]": "indicator"})
    cut = first.headers["X-TAXII-Date-Added-Last"]
    post(alice, [indicator(201)])
    later = alice.get(OBJECTS, params={"added_after": cut}).json()["objects"]
    assert [o["id"] for o in later] == [indicator(201)["id"]]
    assert alice.get(OBJECTS, params={"added_after": "2999-01-01T00:00:00Z"}).json() == {"more": False}


def test_manifest_lists_versions_with_date_added_and_media_type(alice: httpx.Client) -> None:
    post(alice, [indicator(300)])
    manifest = alice.get("/taxii2/isis-k/collections/intel/manifest/", params={"match[type]": "indicator"}).json()
    [record] = manifest["objects"]
    assert record["id"] == indicator(300)["id"] and record["version"] == indicator(300)["modified"]
    assert record["media_type"] == "application/stix+json;version=2.1" and record["date_added"].endswith("Z")


def test_match_spec_version_and_type_lists(alice: httpx.Client) -> None:
    post(alice, [indicator(400)])
    listed = alice.get(OBJECTS, params={"match[type]": "marking-definition,indicator",
                                        "match[spec_version]": "2.1"}).json()
    assert indicator(400)["id"] in {o["id"] for o in listed["objects"]}
    assert alice.get(OBJECTS, params={"match[spec_version]": "2.0"}).json() == {"more": False}


def test_listings_carry_no_tlp_definition_and_each_resolves_by_id(alice: httpx.Client, ngo: httpx.Client) -> None:
    """A copy names only the TLP levels its objects carry: a listing holds no TLP definition (MISP's importer
    would tag a GREEN reader's event RED for a definition it merely received), and each one a member's objects
    reference is fetched by its published id, by path or by match[id]."""
    post(alice, [indicator(410, object_marking_refs=[markings.TLP2["green"][0]])])
    for member in (alice, ngo):
        listed = stored_ids(member, OBJECTS, {})
        manifest = {r["id"] for r in member.get(MANIFEST).json().get("objects", [])}
        assert not {i for i in listed | manifest if i in markings.LEVEL_OF_ID}
        assert indicator(410)["id"] in listed
        for level in markings.LEVELS:
            ident = markings.TLP2[level][0]
            assert member.get(f"{OBJECTS}{ident}/").json()["objects"] == [markings.definition(level)]
            assert member.get(OBJECTS, params={"match[id]": ident}).json()["objects"] == [markings.definition(level)]


def test_object_by_id_and_delete(alice: httpx.Client, ngo: httpx.Client) -> None:
    obj = indicator(500)
    post(alice, [obj, indicator(500, modified="2024-04-01T00:00:00.000Z")])
    path = f"{OBJECTS}{obj['id']}/"
    assert alice.get(path).json()["objects"][0]["modified"] == "2024-04-01T00:00:00.000Z"
    assert ngo.delete(path).status_code == 403
    assert alice.delete(path, params={"match[version]": "last"}).status_code == 200
    assert alice.get(path).json()["objects"] == [obj]  # the older version is now the latest
    assert alice.delete(path).status_code == 200
    r = alice.get(path)
    assert r.status_code == 404 and r.json()["http_status"] == "404"
    assert alice.delete(path).status_code == 404


def test_credentials_401_rights_403_and_existence_404(hub: Hub, tokens: dict[str, str], ngo: httpx.Client) -> None:
    anon = httpx.get(f"{hub.url}/taxii2/", headers={"Accept": TAXII})
    assert anon.status_code == 401 and "WWW-Authenticate" in anon.headers
    wrong = httpx.get(f"{hub.url}/taxii2/", headers={"Accept": TAXII}, auth=("state-a", tokens["state-b"]))
    assert wrong.status_code == 401
    bearer = httpx.get(f"{hub.url}/taxii2/", headers={"Accept": TAXII, "Authorization": f"Bearer {tokens['ngo-c']}"})
    assert bearer.status_code == 200
    assert ngo.post(OBJECTS, json=envelope([indicator(1)]), headers=POST).status_code == 403
    assert ngo.get("/taxii2/other-compact/collections/").status_code == 404
    assert ngo.get("/taxii2/isis-k/collections/no-such-collection/objects/").status_code == 404
    assert ngo.get("/taxii2/isis-k/status/0b1a3f1e-0000-4000-8000-000000000000/").status_code == 404


def test_a_status_is_visible_only_to_the_member_that_posted(alice: httpx.Client, hub: Hub, tokens: dict[str, str]) -> None:
    status = post(alice, [indicator(600)])
    with client(hub, "state-b", tokens["state-b"]) as bob:
        r = bob.get(f"/taxii2/isis-k/status/{status['id']}/")
        unknown = bob.get("/taxii2/isis-k/status/0b1a3f1e-0000-4000-8000-000000000000/")
    assert r.status_code == unknown.status_code == 404


def test_media_types_406_and_415(alice: httpx.Client) -> None:
    assert alice.get("/taxii2/", headers={"Accept": "text/html"}).status_code == 406
    assert alice.get("/taxii2/", headers={"Accept": "application/taxii+json;version=2.0"}).status_code == 406
    assert alice.get("/taxii2/", headers={"Accept": "application/taxii+json"}).status_code == 200
    r = alice.post(OBJECTS, json=envelope([indicator(1)]), headers={"Content-Type": "application/json"})
    assert r.status_code == 415 and "Content-Type" in r.json()["description"]


@pytest.mark.parametrize("hub", [{"max_content_length": 2000}], indirect=True)
def test_oversized_body_is_413_and_writes_nothing(alice: httpx.Client) -> None:
    big = [indicator(700 + i) for i in range(20)]
    r = alice.post(OBJECTS, json=envelope(big), headers=POST)
    assert r.status_code == 413 and "2000" in r.json()["description"]
    assert alice.get(OBJECTS, params={"match[type]": "indicator"}).json() == {"more": False}


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"next": "garbage"}, "next"),
        ({"added_after": "last tuesday"}, "added_after"),
        ({"match[version]": "newest"}, "match[version]"),
        ({"match[id]": "not-an-id"}, "match[id]"),
        ({"match[spec_version]": "three"}, "match[spec_version]"),
        ({"match[version]": "all,first"}, "match[version]"),
    ],
)
def test_bad_query_parameters_are_400_naming_the_parameter(alice: httpx.Client, params: dict, named: str) -> None:
    r = alice.get(OBJECTS, params=params)
    assert r.status_code == 400 and r.headers["content-type"] == TAXII
    assert named in r.json()["description"]


@pytest.mark.parametrize(
    ("body", "says"),
    [(b"{not json", "not valid JSON"), (b"[]", "envelope"), (b'{"objects": 3}', "objects"),
     (b'{"type": "indicator", "objects": []}', "not an envelope or a bundle"),
     (b'{"type": "bundle", "id": "bundle--1", "objects": []}', "bundle's id")],
)
def test_malformed_envelopes_are_400(alice: httpx.Client, body: bytes, says: str) -> None:
    r = alice.post(OBJECTS, content=body, headers=POST)
    assert r.status_code == 400 and says in r.json()["description"]


def test_unknown_endpoint_and_method_get_taxii_errors(alice: httpx.Client) -> None:
    r = alice.get("/taxii2/isis-k/nowhere/")
    assert r.status_code == 404 and r.headers["content-type"] == TAXII
    assert alice.put(OBJECTS).status_code == 405


def test_rotated_or_removed_member_loses_access_at_once(hub: Hub, tokens: dict[str, str], store) -> None:  # type: ignore[no-untyped-def]
    with client(hub, "state-b", tokens["state-b"]) as bob:
        assert bob.get("/taxii2/").status_code == 200
        new = store.rotate_token("isis-k", "state-b")
        assert bob.get("/taxii2/").status_code == 401
    with client(hub, "state-b", new) as bob:
        assert bob.get("/taxii2/").status_code == 200
        store.remove_member("isis-k", "state-b")
        assert bob.get("/taxii2/").status_code == 401
