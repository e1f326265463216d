"""Properties over generated input, against the running hub: what goes in valid comes out unchanged;
what goes in broken is refused with a 4xx or a failure, never a 500, and changes nothing stored."""

from __future__ import annotations

import uuid

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stix2validator import ValidationOptions, validate_instance

from tearline import stix
from tests.conftest import TAXII
from tests.strategies import broken_objects, json_values, stix_objects

POST = {"Content-Type": TAXII}
OBJECTS = "/taxii2/isis-k/collections/intel/objects/"
FIXTURES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def manifest(c: httpx.Client) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    params: dict[str, str] = {"match[version]": "all"}
    while True:
        body = c.get("/taxii2/isis-k/collections/intel/manifest/", params=params).json()
        out += [(r["id"], r["version"]) for r in body.get("objects", [])]
        if not body["more"]:
            return out
        params["next"] = body["next"]


@FIXTURES
@given(objs=st.lists(stix_objects(), min_size=1, max_size=5, unique_by=lambda o: o["id"]))
def test_valid_objects_round_trip_unchanged(alice: httpx.Client, objs: list[dict]) -> None:
    # The hub outlives the examples: fresh ids keep one example's objects from being another's versions.
    for obj in objs:
        obj["id"] = f"{obj['type']}--{uuid.uuid4()}"
    status = alice.post(OBJECTS, json={"objects": objs}, headers=POST).json()
    assert status["success_count"] == len(objs), status["failures"]
    for obj in objs:
        got = alice.get(f"{OBJECTS}{obj['id']}/").json()["objects"]
        assert got == [obj]


@FIXTURES
@given(obj=broken_objects())
def test_broken_objects_fail_with_a_reason_and_are_not_stored(alice: httpx.Client, obj: object) -> None:
    before = manifest(alice)
    r = alice.post(OBJECTS, json={"objects": [obj]}, headers=POST)
    assert r.status_code == 202
    status = r.json()
    assert status["failure_count"] == 1 and status["success_count"] == 0
    assert status["failures"][0]["message"]
    assert manifest(alice) == before


@FIXTURES
@given(body=st.binary(max_size=200) | json_values.map(lambda v: httpx.Request("POST", "/", json=v).content))
def test_arbitrary_bodies_never_500_nor_write(alice: httpx.Client, body: bytes) -> None:
    before = manifest(alice)
    r = alice.post(OBJECTS, content=body, headers=POST)
    assert r.status_code in (202, 400), r.text
    assert r.headers["content-type"] == TAXII
    if r.status_code == 202:
        assert r.json()["success_count"] == 0
    assert manifest(alice) == before


_PARAM_NAMES = st.sampled_from(["match[id]", "match[type]", "match[version]", "match[spec_version]", "added_after",
                                "limit", "next", "match[x]", "", "limit[]"])


@FIXTURES
@given(params=st.dictionaries(_PARAM_NAMES, st.text(max_size=30), max_size=4),
       path=st.sampled_from([OBJECTS, "/taxii2/isis-k/collections/intel/manifest/",
                             f"{OBJECTS}indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f/",
                             f"{OBJECTS}indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f/versions/"]))
def test_arbitrary_query_strings_never_500(alice: httpx.Client, params: dict, path: str) -> None:
    r = alice.get(path, params=params)
    assert r.status_code in (200, 400, 404), r.text
    assert r.headers["content-type"] == TAXII


@settings(max_examples=150, deadline=None)
@given(obj=stix_objects() | broken_objects())
def test_hub_validation_never_accepts_what_the_oasis_validator_rejects(obj: object) -> None:
    if stix.validate(obj):
        return
    result = validate_instance(obj, ValidationOptions(version="2.1"))
    assert result.is_valid, [str(e) for e in result.errors]
